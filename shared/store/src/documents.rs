//! Accepted documents and their legs: one leg per recipient copy, with its delivery state, its
//! transport status (as the recipient's system reports it) and its business status (from status
//! packages).

use std::fmt;
use std::str::FromStr;

use lienthong_edxml::splice::{Edit, Spliced};
use lienthong_edxml::{CopyStatus, Format, MessageType, StatusCode};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use std::sync::Arc;

use crate::columns::Columns;
use crate::groups::{RenditionPut, StageWrite, StageWritten};
use crate::outbox::{OutboxMessage, OutboxRow};
use crate::spool::Body;
use crate::writing::{Value, Writing, at_once};
use crate::{
    RuleError, Store, StoreError, get_opt_string, now_ms, parse_format, placeholders, sha256_hex,
    sql, value_rows,
};

/// Where a leg is on its way to the recipient's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Accepted by the gateway, not yet routed.
    Accepted,
    /// Routed, on its way to delivery.
    Routed,
    /// In the recipient's inbox.
    Delivered,
    /// Will not be delivered; `reason` says why.
    Failed,
}

/// The transport status of a recipient's copy, reported by its system through `updateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportStatus {
    Initial,
    Processing,
    Done,
    Fail,
}

macro_rules! text_enum {
    ($t:ty, $what:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!(concat!("`{}` is not a ", $what, " (", $($s, " "),* , ")"), other)),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(DeliveryState, "delivery state", {
    Accepted => "accepted", Routed => "routed", Delivered => "delivered", Failed => "failed",
});
text_enum!(TransportStatus, "transport status", {
    Initial => "initial", Processing => "processing", Done => "done", Fail => "fail",
});

impl TransportStatus {
    /// `done` is final; everything else may move on (a copy that failed may be fetched again).
    pub fn may_become(self, next: TransportStatus) -> bool {
        match self {
            Self::Done => next == Self::Done,
            _ => next != Self::Initial || self == Self::Initial,
        }
    }
}

/// A document the gateway is accepting.
#[derive(Debug)]
pub struct NewDocument {
    /// The bus's id for this package (`docId` in the REST interface).
    pub doc_id: String,
    /// One document per key: resubmitting the same key returns the first `doc_id`.
    pub idem_key: String,
    pub message_type: MessageType,
    pub sender: String,
    pub sender_system: String,
    /// edXML `DocumentId` (for a status package, the one it answers).
    pub document_id: String,
    pub subject: Option<String>,
    pub status_code: Option<StatusCode>,
    /// For a status package, the `doc_id` of the document it answers.
    pub response_for: Option<String>,
    pub recipients: Vec<String>,
    /// The format the sender sent `body` in.
    pub format: Format,
    pub body: Body,
    /// For a status package, the legs of the original whose business status it changes.
    pub status_update: Option<StatusUpdate>,
    /// Set when another bus forwarded the package here.
    pub arrival: Option<Arrival>,
}

/// Where a document forwarded by another bus came from, and the way it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// The bus that forwarded it here: receipts for its legs go back there.
    pub peer: String,
    /// Its docId on that bus.
    pub peer_doc: String,
    /// The buses it passed, the origin first and `peer` last.
    pub via: Vec<String>,
    /// The TraceHeader each of those buses added (`OrganId`, `yyyy/MM/dd HH:mm:ss`).
    pub trace: Vec<Hop>,
}

/// One bus's TraceHeader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    #[serde(rename = "organId")]
    pub organ_id: String,
    pub timestamp: String,
}

/// A business status applied to legs of the original document.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub doc_id: String,
    pub legs: Vec<String>,
    pub code: StatusCode,
    pub description: Option<String>,
    /// The status was checked by the recipient's own bus and reaches this one on its way back,
    /// perhaps out of order: the status furthest along the flow is kept, and one that changes
    /// nothing is no error.
    pub merge: bool,
}

/// What [`Store::accept_many`] did: each document's result, in the order given, and how many
/// documents the group's one transaction stored (0 when the group failed, or when fewer than
/// two could join it).
#[derive(Debug)]
pub struct AcceptedMany {
    pub results: Vec<Result<Acceptance, StoreError>>,
    pub in_group: usize,
}

/// What acceptance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Stored now; these outbox messages are to be published.
    New {
        doc_id: String,
        outbox: Vec<OutboxRow>,
    },
    /// Stored before under the same key; `outbox` holds what is still unpublished.
    Existing {
        doc_id: String,
        outbox: Vec<OutboxRow>,
    },
}

impl Acceptance {
    pub fn doc_id(&self) -> &str {
        match self {
            Self::New { doc_id, .. } | Self::Existing { doc_id, .. } => doc_id,
        }
    }

    /// The outbox messages to publish.
    pub fn outbox(&self) -> &[OutboxRow] {
        match self {
            Self::New { outbox, .. } | Self::Existing { outbox, .. } => outbox,
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentRow {
    pub doc_id: String,
    pub message_type: MessageType,
    pub sender: String,
    pub sender_system: String,
    pub document_id: String,
    pub subject: Option<String>,
    pub status_code: Option<String>,
    pub response_for: Option<String>,
    pub size: i64,
    pub sha256: String,
    pub created_ms: i64,
    /// The format the sender sent the package in.
    pub format: Format,
    /// Set when another bus forwarded the package here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Arrival>,
}

/// A translation of a document into one format, produced by the translator for the recipients
/// that receive that format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenditionRow {
    pub doc_id: String,
    pub format: Format,
    pub size: i64,
    pub sha256: String,
    pub created_ms: i64,
    /// Set when the rendition is kept as the document's package and a few edits instead of
    /// bytes of its own (an edXML recipient's rendition of an edXML package).
    #[serde(skip)]
    pub spliced: Option<SplicedFrom>,
}

/// A rendition kept as a package and the edits that make it (`lienthong_edxml::splice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplicedFrom {
    /// The blob of the package the edits apply to (the document's own).
    pub base_sha256: String,
    pub edits: Vec<Edit>,
}

/// A document's legs and their recipients' agencies, as a stage read them: what a stage
/// chained before the router hands it in the same process (`lienthong_bus::Pipeline::leave_for`),
/// so that the router reads neither again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegsRead {
    pub legs: Vec<Leg>,
    /// The agencies of the legs not failed (those the router may route), as `Store::agencies_in`
    /// answers.
    pub agencies: Vec<crate::Agency>,
}

/// One recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leg {
    pub doc_id: String,
    pub recipient: String,
    pub delivery: DeliveryState,
    pub transport: TransportStatus,
    pub business: Option<StatusCode>,
    pub recall: Option<StatusCode>,
    pub business_desc: Option<String>,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The bus the copy was forwarded to; absent when it is delivered here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
}

impl Leg {
    pub fn copy_status(&self) -> CopyStatus {
        CopyStatus {
            business: self.business,
            recall: self.recall,
        }
    }
}

/// A row of a recipient's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxEntry {
    pub document: DocumentRow,
    pub leg: Leg,
}

/// What an operator searches documents by; every field given narrows the search. Pages go
/// newest first; `before` is the last `doc_id` of the previous page.
#[derive(Debug, Clone, Default)]
pub struct DocumentSearch {
    pub doc_id: Option<String>,
    /// The edXML `DocumentId` (a status package: the one it answers).
    pub document_id: Option<String>,
    /// Sender or recipient.
    pub agency: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before: Option<String>,
    pub limit: i64,
}

/// The smallest UUIDv7 text of a millisecond: bounds a range of document ids by time.
fn uuid7_floor(ms: i64) -> String {
    let ms = ms.max(0);
    format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

/// A query's parameters, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Param>);

enum Param {
    Text(String),
    Int(i64),
}

impl Params {
    fn text(&mut self, v: &str) -> String {
        self.0.push(Param::Text(v.to_owned()));
        format!("${}", self.0.len())
    }
    fn int(&mut self, v: i64) -> String {
        self.0.push(Param::Int(v));
        format!("${}", self.0.len())
    }
    /// The conditions of a search's time range and page on `table` (with doc_id and
    /// created_ms columns).
    fn range(&mut self, q: &DocumentSearch, table: &str) -> Vec<String> {
        let mut c = Vec::new();
        if let Some(from) = q.from_ms {
            c.push(format!(
                "{table}.doc_id >= {}",
                self.text(&uuid7_floor(from))
            ));
            c.push(format!("{table}.created_ms >= {}", self.int(from)));
        }
        if let Some(to) = q.to_ms {
            let next = uuid7_floor(to.saturating_add(1));
            c.push(format!("{table}.doc_id < {}", self.text(&next)));
            c.push(format!("{table}.created_ms <= {}", self.int(to)));
        }
        if let Some(b) = &q.before {
            c.push(format!("{table}.doc_id < {}", self.text(b)));
        }
        c
    }
}

/// Which inbox rows to list.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only these transport statuses; empty means every status but `done`.
    pub transport: Vec<TransportStatus>,
    pub limit: Option<i64>,
}

pub(crate) const DOC_COLUMNS: &str = "d.doc_id, d.message_type, d.sender, d.sender_system, d.document_id, d.subject, d.status_code, d.response_for, d.size, d.sha256, d.created_ms, d.format, d.peer, d.peer_doc, d.via, d.trace";
pub(crate) const LEG_COLUMNS: &str = "l.doc_id AS leg_doc_id, l.recipient, l.delivery, l.transport, l.business, l.recall, l.business_desc, l.reason, l.created_ms AS leg_created_ms, l.updated_ms, l.bus AS leg_bus";

fn parse_col<T: FromStr<Err = String>>(
    row: &(impl Columns + ?Sized),
    col: &str,
) -> Result<T, StoreError> {
    row.text(col)?.parse().map_err(StoreError::Corrupt)
}

fn status_col(row: &(impl Columns + ?Sized), col: &str) -> Result<Option<StatusCode>, StoreError> {
    get_opt_string(row, col)?
        .map(|s| StatusCode::parse(&s).map_err(|e| StoreError::Corrupt(e.0)))
        .transpose()
}

pub(crate) fn document_from_row(row: &(impl Columns + ?Sized)) -> Result<DocumentRow, StoreError> {
    Ok(DocumentRow {
        doc_id: row.text("doc_id")?,
        message_type: row
            .text("message_type")?
            .parse()
            .map_err(|e: lienthong_edxml::ShapeError| StoreError::Corrupt(e.0))?,
        sender: row.text("sender")?,
        sender_system: row.text("sender_system")?,
        document_id: row.text("document_id")?,
        subject: get_opt_string(row, "subject")?,
        status_code: get_opt_string(row, "status_code")?,
        response_for: get_opt_string(row, "response_for")?,
        size: row.int("size")?,
        sha256: row.text("sha256")?,
        created_ms: row.int("created_ms")?,
        format: parse_format(row, "format")?,
        arrival: arrival_from_row(row)?,
    })
}

fn arrival_from_row(row: &(impl Columns + ?Sized)) -> Result<Option<Arrival>, StoreError> {
    let (Some(peer), Some(peer_doc)) = (
        get_opt_string(row, "peer")?,
        get_opt_string(row, "peer_doc")?,
    ) else {
        return Ok(None);
    };
    let via = get_opt_string(row, "via")?
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let trace = match get_opt_string(row, "trace")? {
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| StoreError::Corrupt(format!("documents.trace: {e}")))?,
        None => Vec::new(),
    };
    Ok(Some(Arrival {
        peer,
        peer_doc,
        via,
        trace,
    }))
}

fn entry_from_row(row: &AnyRow) -> Result<InboxEntry, StoreError> {
    Ok(InboxEntry {
        document: document_from_row(row)?,
        leg: leg_from_row(row)?,
    })
}

pub(crate) fn rendition_from_row(
    row: &(impl Columns + ?Sized),
) -> Result<RenditionRow, StoreError> {
    Ok(RenditionRow {
        doc_id: row.text("doc_id")?,
        format: parse_format(row, "format")?,
        size: row.int("size")?,
        sha256: row.text("sha256")?,
        created_ms: row.int("created_ms")?,
        spliced: spliced_from_row(row)?,
    })
}

fn spliced_from_row(row: &(impl Columns + ?Sized)) -> Result<Option<SplicedFrom>, StoreError> {
    let (Some(base_sha256), Some(edits)) = (row.opt_text("base_sha256")?, row.opt_text("edits")?)
    else {
        return Ok(None);
    };
    let edits = serde_json::from_str(&edits).map_err(|e| {
        StoreError::Corrupt(format!(
            "a rendition's edits of {base_sha256} are not readable: {e}"
        ))
    })?;
    Ok(Some(SplicedFrom { base_sha256, edits }))
}

/// A spliced rendition's edits as stored (JSON).
pub(crate) fn edits_json(edits: &[Edit]) -> Result<String, StoreError> {
    serde_json::to_string(edits)
        .map_err(|e| StoreError::Corrupt(format!("a rendition's edits were not written: {e}")))
}

pub(crate) fn leg_from_row(row: &(impl Columns + ?Sized)) -> Result<Leg, StoreError> {
    Ok(Leg {
        doc_id: row.text("leg_doc_id")?,
        recipient: row.text("recipient")?,
        delivery: parse_col(row, "delivery")?,
        transport: parse_col(row, "transport")?,
        business: status_col(row, "business")?,
        recall: status_col(row, "recall")?,
        business_desc: get_opt_string(row, "business_desc")?,
        reason: get_opt_string(row, "reason")?,
        created_ms: row.int("leg_created_ms")?,
        updated_ms: row.int("updated_ms")?,
        bus: get_opt_string(row, "leg_bus")?,
    })
}

impl Store {
    /// Stores an accepted package, its legs, any business status it carries and the outbox
    /// messages announcing it, all in one transaction; or finds the document stored earlier under
    /// the same idempotency key.
    pub async fn accept(
        &self,
        doc: &NewDocument,
        outbox: &[OutboxMessage],
    ) -> Result<Acceptance, StoreError> {
        // No look for the key first: callers look before reading the package (the gateway does),
        // and the insert below finds a document accepted meanwhile under the same key.
        let digest = doc.body.sha256();
        let inline = self.stores_inline(&doc.body);
        if !inline {
            // Durable before the row that points at it commits.
            self.put_outside(&digest, &doc.body).await?;
        }

        let mut tx = self.begin().await?;
        let now = now_ms();
        let text = format!(
            "INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES {} ON CONFLICT (idem_key) DO NOTHING",
            value_rows(1, DOCUMENT_VALUES)
        );
        let inserted = Writing::Tx(&mut tx)
            .execute(&text, &document_values(doc, &digest, now))
            .await?;
        if inserted == 0 {
            // Accepted before under this key (by a concurrent submission, or long ago).
            tx.rollback().await?;
            let existing = self.doc_id_for_key(&doc.idem_key).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("idempotency key {} vanished", doc.idem_key))
            })?;
            let outbox = self.unpublished_for(&existing).await?;
            return Ok(Acceptance::Existing {
                doc_id: existing,
                outbox,
            });
        }
        if inline {
            // In the database, the bytes go in with the row (and so through memory).
            Self::insert_blob(&mut tx, &digest, &doc.body).await?;
        }
        for recipient in &doc.recipients {
            sqlx::query(
                "INSERT INTO legs (doc_id, recipient, delivery, transport, created_ms, updated_ms)
                 VALUES ($1, $2, 'accepted', 'initial', $3, $3)",
            )
            .bind(&doc.doc_id)
            .bind(recipient)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(update) = &doc.status_update {
            apply_status(&mut tx, update, now).await?;
        }
        let outbox = Self::insert_outbox(&mut tx, outbox).await?;
        tx.commit().await?;
        Ok(Acceptance::New {
            doc_id: doc.doc_id.clone(),
            outbox,
        })
    }

    /// [`Store::accept`] for documents submitted together, each with its outbox messages: one
    /// transaction whose statements each carry every document of the group (one `INSERT` of the
    /// documents, one of their legs, one of their blobs, one of their messages), instead of a
    /// transaction and four statements for each. Each result is what `accept` would have given
    /// that document alone, in the order given. The group commits or fails whole; when it
    /// fails, each document is accepted on its own, so one that cannot be stored costs the
    /// others nothing.
    ///
    /// Accepted on their own, as by `accept`: a status package (it changes the legs it answers,
    /// by the status rules), a package kept outside the database or spooled to a file, and one
    /// whose key was accepted before (or earlier in the same group), which gets the first
    /// document's id.
    pub async fn accept_many(&self, batch: &[(&NewDocument, &[OutboxMessage])]) -> AcceptedMany {
        let mut results: Vec<Option<Result<Acceptance, StoreError>>> =
            (0..batch.len()).map(|_| None).collect();
        // The documents that may join the group, each with the bytes it keeps in the database.
        let (grouped, group): (Vec<usize>, Vec<Grouped>) = batch
            .iter()
            .enumerate()
            .filter_map(|(i, &(doc, outbox))| match &doc.body {
                Body::Bytes(bytes)
                    if doc.status_update.is_none() && self.stores_inline(&doc.body) =>
                {
                    Some((i, (doc, bytes.as_slice(), outbox)))
                }
                _ => None,
            })
            .unzip();
        let mut in_group = 0;
        // A group of one too when it is stored in place: the group's statements are then calls
        // on this thread, where `accept` would hand each to sqlx's connection.
        if group.len() > 1 || (self.in_place.is_some() && !group.is_empty()) {
            match self.accept_group(&group).await {
                Ok(stored) => {
                    for (&i, outbox) in grouped.iter().zip(stored) {
                        if let Some(outbox) = outbox {
                            in_group += 1;
                            results[i] = Some(Ok(Acceptance::New {
                                doc_id: batch[i].0.doc_id.clone(),
                                outbox,
                            }));
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, documents = group.len(),
                    "a group of acceptances failed; accepting each on its own"),
            }
        }
        for (i, (doc, outbox)) in batch.iter().enumerate() {
            if results[i].is_none() {
                results[i] = Some(self.accept(doc, outbox).await);
            }
        }
        AcceptedMany {
            results: results.into_iter().flatten().collect(),
            in_group,
        }
    }

    /// The group of [`Store::accept_many`] (documents held in memory, kept in the database), in
    /// one transaction: for each document stored, its outbox rows; `None` for one whose key
    /// was taken, which the transaction leaves alone.
    async fn accept_group(
        &self,
        group: &[Grouped<'_>],
    ) -> Result<Vec<Option<Vec<OutboxRow>>>, StoreError> {
        let now = now_ms();
        let digests: Vec<String> = group.iter().map(|(d, _, _)| d.body.sha256()).collect();
        // In place on a SQLite file once its write lock is free (`in_place.rs`).
        if let Some(in_place) = &self.in_place
            && let Some(done) = in_place
                .write_soon("acceptance", |w| {
                    at_once(store_group(w, group, &digests, now))
                })
                .await
        {
            return done;
        }
        let mut tx = self.begin().await?;
        let stored = store_group(&mut Writing::Tx(&mut tx), group, &digests, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The document accepted under an idempotency key, if any.
    pub async fn doc_id_for_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.groups.keys.call(key.to_owned()).await
    }

    /// A document's row: from the database the first time this process asks, then from memory
    /// (a row never changes once its acceptance commits).
    pub async fn document(&self, doc_id: &str) -> Result<Option<DocumentRow>, StoreError> {
        if let Some(row) = self.documents.get(doc_id) {
            return Ok(Some(row));
        }
        let row = self.groups.documents.call(doc_id.to_owned()).await?;
        if let Some(row) = &row {
            self.documents.put(row);
        }
        Ok(row)
    }

    /// The edoc a sender sent under an edXML `DocumentId` (what a status package answers).
    pub async fn find_edoc(
        &self,
        sender: &str,
        document_id: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        sqlx::query(sql(format!(
            "SELECT {DOC_COLUMNS} FROM documents d
             WHERE d.sender = $1 AND d.document_id = $2 AND d.message_type = 'edoc'
             ORDER BY d.created_ms LIMIT 1"
        )))
        .bind(sender)
        .bind(document_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(document_from_row)
        .transpose()
    }

    /// The exact bytes accepted for a document.
    pub async fn package(&self, doc: &DocumentRow) -> Result<Vec<u8>, StoreError> {
        self.blob(&doc.sha256, || format!("package of {}", doc.doc_id))
            .await
    }

    /// The bytes accepted for a document as a source, read a piece at a time (local files are read
    /// in place; other stores give a local copy made without holding it). The digest is checked
    /// first, a chunk at a time.
    pub async fn package_source(
        &self,
        doc: &DocumentRow,
    ) -> Result<Arc<dyn lienthong_edxml::source::Source>, StoreError> {
        self.blob_source(&doc.sha256, || format!("package of {}", doc.doc_id))
            .await
    }

    /// A document's rendition in a format as a source (see [`Store::package_source`]).
    pub async fn rendition_source(
        &self,
        doc_id: &str,
        format: Format,
    ) -> Result<Option<(RenditionRow, Arc<dyn lienthong_edxml::source::Source>)>, StoreError> {
        let Some(row) = self.rendition_row(doc_id, format).await? else {
            return Ok(None);
        };
        let what = || format!("{format} rendition of {doc_id}");
        let source = match &row.spliced {
            None => self.blob_source(&row.sha256, what).await?,
            Some(from) => self.spliced_source(&row, from, what).await?,
        };
        Ok(Some((row, source)))
    }

    /// A spliced rendition read through its package, checked against its SHA-256 (kept among
    /// the small blobs read, under its own, when it is one).
    async fn spliced_source(
        &self,
        row: &RenditionRow,
        from: &SplicedFrom,
        what: impl Fn() -> String,
    ) -> Result<Arc<dyn lienthong_edxml::source::Source>, StoreError> {
        if let Some(bytes) = self.small_blobs.get(&row.sha256) {
            return Ok(bytes);
        }
        let base = self
            .blob_source(&from.base_sha256, || {
                format!("the package under the {}", what())
            })
            .await?;
        let spliced = Spliced::new(base, &from.edits)
            .ok_or_else(|| StoreError::Corrupt(format!("{}: its edits do not fit", what())))?;
        if lienthong_edxml::source::Source::len(&spliced) <= self.inline_blob_bytes {
            let bytes = Arc::new(checked(spliced.to_vec()?, &row.sha256, what)?);
            self.small_blobs.put(&row.sha256, &bytes);
            return Ok(bytes);
        }
        let source: Arc<dyn lienthong_edxml::source::Source> = Arc::new(spliced);
        Self::check_source(Arc::clone(&source), &row.sha256, what).await?;
        Ok(source)
    }

    /// Whether a body's bytes go in the database with its row: always for the `db` blob store,
    /// and when held in memory within `store.inline_blob_bytes` for the others.
    fn stores_inline(&self, body: &Body) -> bool {
        self.blobs.is_db()
            || matches!(body, Body::Bytes(b) if b.len() as u64 <= self.inline_blob_bytes)
    }

    /// Writes a body to the blob store outside the database, durably.
    async fn put_outside(&self, digest: &str, body: &Body) -> Result<(), StoreError> {
        match body {
            Body::Bytes(bytes) => self.blobs.put_file(digest, bytes).await,
            Body::Spooled(spooled) => self.blobs.adopt(digest, spooled.path()).await,
        }
    }

    async fn insert_blob(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        digest: &str,
        body: &Body,
    ) -> Result<(), StoreError> {
        let bytes = match body {
            Body::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
            Body::Spooled(_) => std::borrow::Cow::Owned(body.read().await?),
        };
        sqlx::query(
            "INSERT INTO blobs (blob_key, data) VALUES ($1, $2) ON CONFLICT (blob_key) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes.as_ref())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Blob bytes kept in the database, if these are.
    async fn blob_in_db(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.groups.blobs.call(key.to_owned()).await
    }

    /// Blob bytes as a source, checked against their SHA-256 a chunk at a time. Small blobs are
    /// in the database (read whole); the others in the blob store, read in place.
    async fn blob_source(
        &self,
        key: &str,
        what: impl Fn() -> String,
    ) -> Result<Arc<dyn lienthong_edxml::source::Source>, StoreError> {
        if let Some(bytes) = self.small_blobs.get(key) {
            return Ok(bytes);
        }
        if let Some(bytes) = self.blob_in_db(key).await? {
            let bytes = Arc::new(checked(bytes, key, what)?);
            self.small_blobs.put(key, &bytes);
            return Ok(bytes);
        }
        let Some(source) = self.blobs.source(key).await? else {
            return Err(StoreError::Corrupt(format!("{} is missing", what())));
        };
        Self::check_source(Arc::clone(&source), key, what).await?;
        Ok(source)
    }

    /// Reads a source through, checking it against its SHA-256 (off the async threads).
    async fn check_source(
        check: Arc<dyn lienthong_edxml::source::Source>,
        key: &str,
        what: impl Fn() -> String,
    ) -> Result<(), StoreError> {
        let digest = tokio::task::spawn_blocking(move || {
            let mut context = ring::digest::Context::new(&ring::digest::SHA256);
            lienthong_edxml::source::Range {
                len: check.len(),
                source: check,
                offset: 0,
            }
            .for_each_chunk(|chunk| context.update(chunk))
            .map(|()| hex::encode(context.finish()))
        })
        .await
        .map_err(|e| StoreError::Blob(std::io::Error::other(e)))??;
        if digest != key {
            return Err(StoreError::Corrupt(format!(
                "{} does not match its SHA-256",
                what()
            )));
        }
        Ok(())
    }

    /// Blob bytes by their SHA-256, checked against it.
    async fn blob(&self, key: &str, what: impl Fn() -> String) -> Result<Vec<u8>, StoreError> {
        let bytes = match self.blob_in_db(key).await? {
            Some(bytes) => Some(bytes),
            None => self.blobs.read_file(key).await?,
        };
        let bytes = bytes.ok_or_else(|| StoreError::Corrupt(format!("{} is missing", what())))?;
        checked(bytes, key, what)
    }

    /// Stores a document's rendition in a format; storing the same format again keeps the first
    /// (a redelivered translation produces the same content but for its trace time).
    pub async fn put_rendition(
        &self,
        doc_id: &str,
        format: Format,
        body: &Body,
    ) -> Result<RenditionRow, StoreError> {
        let row = RenditionRow {
            doc_id: doc_id.to_owned(),
            format,
            size: i64::try_from(body.len()).unwrap_or(i64::MAX),
            sha256: body.sha256(),
            created_ms: now_ms(),
            spliced: None,
        };
        let inline = self.stores_inline(body);
        if inline && let Body::Bytes(bytes) = body {
            return self.put_grouped_rendition(row, Some(bytes.to_vec())).await;
        }
        if let Some(existing) = self.rendition_row(doc_id, format).await? {
            return Ok(existing);
        }
        if !inline {
            self.put_outside(&row.sha256, body).await?;
        }
        let mut tx = self.begin().await?;
        if inline {
            Self::insert_blob(&mut tx, &row.sha256, body).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO renditions (doc_id, format, size, sha256, created_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (doc_id, format) DO NOTHING",
        )
        .bind(doc_id)
        .bind(format.as_str())
        .bind(row.size)
        .bind(&row.sha256)
        .bind(row.created_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        if inserted {
            return Ok(row);
        }
        // Another translator stored it first: theirs stands.
        self.rendition_row(doc_id, format)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("rendition {format} of {doc_id} vanished")))
    }

    /// Stores a document's rendition made of its package and a few edits
    /// (`lienthong_edxml::splice`), with the SHA-256 and size of the bytes they make; as
    /// [`Store::put_rendition`], storing the same format again keeps the first. No bytes are
    /// written but the edits.
    pub async fn put_spliced_rendition(
        &self,
        doc: &DocumentRow,
        format: Format,
        edits: Vec<Edit>,
        sha256: String,
        size: u64,
    ) -> Result<RenditionRow, StoreError> {
        let row = RenditionRow {
            doc_id: doc.doc_id.clone(),
            format,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
            created_ms: now_ms(),
            spliced: Some(SplicedFrom {
                base_sha256: doc.sha256.clone(),
                edits,
            }),
        };
        self.put_grouped_rendition(row, None).await
    }

    /// A rendition, and its bytes unless spliced, written with the stages' other writes.
    async fn put_grouped_rendition(
        &self,
        row: RenditionRow,
        bytes: Option<Vec<u8>>,
    ) -> Result<RenditionRow, StoreError> {
        let put = RenditionPut { row, bytes };
        match self.groups.writes.call(StageWrite::Rendition(put)).await? {
            StageWritten::Stored(row) => Ok(row),
            _ => Err(StoreError::Corrupt(
                "a rendition's write answered another kind".into(),
            )),
        }
    }

    pub async fn rendition_row(
        &self,
        doc_id: &str,
        format: Format,
    ) -> Result<Option<RenditionRow>, StoreError> {
        self.groups
            .renditions
            .call((doc_id.to_owned(), format))
            .await
    }

    /// A document's rendition in a format, with its bytes.
    pub async fn rendition(
        &self,
        doc_id: &str,
        format: Format,
    ) -> Result<Option<(RenditionRow, Vec<u8>)>, StoreError> {
        let Some(row) = self.rendition_row(doc_id, format).await? else {
            return Ok(None);
        };
        let what = || format!("{format} rendition of {doc_id}");
        let bytes = match &row.spliced {
            None => self.blob(&row.sha256, what).await?,
            Some(from) => {
                let source = self.spliced_source(&row, from, what).await?;
                let mut bytes =
                    vec![0; usize::try_from(source.len()).map_err(std::io::Error::other)?];
                let n = source.read_at(0, &mut bytes)?;
                bytes.truncate(n);
                bytes
            }
        };
        Ok(Some((row, bytes)))
    }

    pub async fn legs(&self, doc_id: &str) -> Result<Vec<Leg>, StoreError> {
        self.groups.legs.call(doc_id.to_owned()).await
    }

    /// Moves a leg from one delivery state to the next; false if it was not in `from` (already
    /// moved by an earlier delivery of the same message, or failed).
    pub async fn advance_leg(
        &self,
        doc_id: &str,
        recipient: &str,
        from: DeliveryState,
        to: DeliveryState,
    ) -> Result<bool, StoreError> {
        let advance = (doc_id.to_owned(), recipient.to_owned(), from, to);
        match self
            .groups
            .writes
            .call(StageWrite::Advance(advance))
            .await?
        {
            StageWritten::Advanced(moved) => Ok(moved),
            _ => Err(StoreError::Corrupt(
                "a leg's move answered another kind".into(),
            )),
        }
    }

    /// Routes a leg to another bus: `accepted` to `routed`, remembering the bus; false when the
    /// leg was not `accepted`.
    pub async fn forward_leg(
        &self,
        doc_id: &str,
        recipient: &str,
        bus: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE legs SET delivery = 'routed', bus = $1, updated_ms = $2
             WHERE doc_id = $3 AND recipient = $4 AND delivery = 'accepted'",
        )
        .bind(bus)
        .bind(now_ms())
        .bind(doc_id)
        .bind(recipient)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Documents matching `q`, newest first. Every search walks an index in document-id order
    /// (ids are UUIDv7, in acceptance order, so a date range is a range of ids), and a page
    /// costs about the same with ten documents or ten million.
    pub async fn search_documents(
        &self,
        q: &DocumentSearch,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let limit = q.limit.clamp(1, 1000);
        let mut p = Params::default();
        let mut conds = p.range(q, "d");
        if let Some(id) = &q.doc_id {
            conds.push(format!("d.doc_id = {}", p.text(id)));
        }
        if let Some(id) = &q.document_id {
            conds.push(format!("d.document_id = {}", p.text(id)));
        }
        if let Some(agency) = &q.agency {
            // The newest `limit` it sent and the newest `limit` it received, each from its own
            // index; the newest `limit` of both below.
            let mut sent = p.range(q, "s");
            sent.push(format!("s.sender = {}", p.text(agency)));
            let mut received = p.range(q, "l");
            received.push(format!("l.recipient = {}", p.text(agency)));
            conds.push(format!(
                "d.doc_id IN (SELECT doc_id FROM (SELECT s.doc_id FROM documents s WHERE {} ORDER BY s.doc_id DESC LIMIT {limit}) a
                              UNION SELECT doc_id FROM (SELECT l.doc_id FROM legs l WHERE {} ORDER BY l.doc_id DESC LIMIT {limit}) b)",
                sent.join(" AND "),
                received.join(" AND ")
            ));
        }
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let mut query = sqlx::query(sql(format!(
            "SELECT {DOC_COLUMNS} FROM documents d {where_clause} ORDER BY d.doc_id DESC LIMIT {limit}"
        )));
        for param in p.0 {
            query = match param {
                Param::Text(t) => query.bind(t),
                Param::Int(n) => query.bind(n),
            };
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(document_from_row)
            .collect()
    }

    /// The copies that failed, newest first, with their documents (what operators look into).
    pub async fn failed_legs(&self, limit: i64) -> Result<Vec<InboxEntry>, StoreError> {
        sqlx::query(sql(format!(
            "SELECT {DOC_COLUMNS}, {LEG_COLUMNS} FROM legs l JOIN documents d ON d.doc_id = l.doc_id
             WHERE l.delivery = 'failed' ORDER BY l.updated_ms DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
    }

    /// Gives a failed copy another chance once its cause is mended (an agency unlocked, a link
    /// configured): `failed` back to `accepted`, its reason kept in the ledger only. False when
    /// the copy is not failed.
    pub async fn retry_leg(&self, doc_id: &str, recipient: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE legs SET delivery = 'accepted', transport = 'initial', reason = NULL, bus = NULL,
                             updated_ms = $1
             WHERE doc_id = $2 AND recipient = $3 AND delivery = 'failed'",
        )
        .bind(now_ms())
        .bind(doc_id)
        .bind(recipient)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a leg that will not be delivered; false if it was already delivered or failed.
    pub async fn fail_leg(
        &self,
        doc_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE legs SET delivery = 'failed', transport = 'fail', reason = $1, updated_ms = $2
             WHERE doc_id = $3 AND recipient = $4 AND delivery IN ('accepted', 'routed')",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(doc_id)
        .bind(recipient)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Delivered copies for any of `organs`, newest first.
    pub async fn inbox(
        &self,
        organs: &[String],
        message_type: MessageType,
        filter: &InboxFilter,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        if organs.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql_text = format!(
            "SELECT {DOC_COLUMNS}, {LEG_COLUMNS} FROM legs l JOIN documents d ON d.doc_id = l.doc_id
             WHERE l.delivery = 'delivered' AND d.message_type = $1 AND l.recipient IN ({})",
            placeholders(2, organs.len())
        );
        let mut next = 2 + organs.len();
        if filter.from_ms.is_some() {
            sql_text.push_str(&format!(" AND l.created_ms >= ${next}"));
            next += 1;
        }
        if filter.to_ms.is_some() {
            sql_text.push_str(&format!(" AND l.created_ms < ${next}"));
            next += 1;
        }
        if filter.transport.is_empty() {
            sql_text.push_str(" AND l.transport <> 'done'");
        } else {
            sql_text.push_str(&format!(
                " AND l.transport IN ({})",
                placeholders(next, filter.transport.len())
            ));
            next += filter.transport.len();
        }
        sql_text.push_str(&format!(
            " ORDER BY l.created_ms DESC, l.doc_id LIMIT ${next}"
        ));

        let mut q = sqlx::query(sql(sql_text)).bind(message_type.as_str());
        for o in organs {
            q = q.bind(o);
        }
        if let Some(f) = filter.from_ms {
            q = q.bind(f);
        }
        if let Some(t) = filter.to_ms {
            q = q.bind(t);
        }
        for t in &filter.transport {
            q = q.bind(t.as_str());
        }
        q = q.bind(filter.limit.unwrap_or(1000));
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// Documents sent by any of `senders`, newest first.
    pub async fn sent_documents(
        &self,
        senders: &[String],
        message_type: MessageType,
        filter: &InboxFilter,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        if senders.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql_text = format!(
            "SELECT {DOC_COLUMNS} FROM documents d WHERE d.message_type = $1 AND d.sender IN ({})",
            placeholders(2, senders.len())
        );
        let mut next = 2 + senders.len();
        if filter.from_ms.is_some() {
            sql_text.push_str(&format!(" AND d.created_ms >= ${next}"));
            next += 1;
        }
        if filter.to_ms.is_some() {
            sql_text.push_str(&format!(" AND d.created_ms < ${next}"));
            next += 1;
        }
        sql_text.push_str(&format!(
            " ORDER BY d.created_ms DESC, d.doc_id LIMIT ${next}"
        ));
        let mut q = sqlx::query(sql(sql_text)).bind(message_type.as_str());
        for s in senders {
            q = q.bind(s);
        }
        if let Some(f) = filter.from_ms {
            q = q.bind(f);
        }
        if let Some(t) = filter.to_ms {
            q = q.bind(t);
        }
        q.bind(filter.limit.unwrap_or(100))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(document_from_row)
            .collect()
    }

    /// Sets the transport status of one copy and queues the events announcing it, atomically.
    pub async fn set_transport(
        &self,
        doc_id: &str,
        recipient: &str,
        status: TransportStatus,
        outbox: &[OutboxMessage],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT transport, delivery FROM legs WHERE doc_id = $1 AND recipient = $2",
        )
        .bind(doc_id)
        .bind(recipient)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| RuleError::NoSuchLeg(recipient.to_owned(), doc_id.to_owned()))?;
        let current: TransportStatus = parse_col(&row, "transport")?;
        let delivery: DeliveryState = parse_col(&row, "delivery")?;
        if delivery != DeliveryState::Delivered {
            return Err(RuleError::NoSuchLeg(recipient.to_owned(), doc_id.to_owned()).into());
        }
        if !current.may_become(status) {
            return Err(RuleError::IllegalTransition(format!(
                "transport status cannot go from `{current}` to `{status}`: `done` is final"
            ))
            .into());
        }
        sqlx::query(
            "UPDATE legs SET transport = $1, updated_ms = $2 WHERE doc_id = $3 AND recipient = $4",
        )
        .bind(status.as_str())
        .bind(now_ms())
        .bind(doc_id)
        .bind(recipient)
        .execute(&mut *tx)
        .await?;
        let rows = Self::insert_outbox(&mut tx, outbox).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Applies a business status to legs inside the acceptance transaction, checking the rules
/// against the state read in the same transaction.
async fn apply_status(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    update: &StatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    for recipient in &update.legs {
        let row = sqlx::query(sql(format!(
            "SELECT {LEG_COLUMNS} FROM legs l WHERE l.doc_id = $1 AND l.recipient = $2"
        )))
        .bind(&update.doc_id)
        .bind(recipient)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| RuleError::NoSuchLeg(recipient.clone(), update.doc_id.clone()))?;
        let leg = leg_from_row(&row)?;
        let next = if update.merge {
            match leg.copy_status().merge(update.code) {
                Some(next) => next,
                None => continue,
            }
        } else {
            leg.copy_status()
                .apply(update.code)
                .map_err(|e| RuleError::IllegalTransition(format!("{recipient}: {e}")))?
        };
        // Conditional on the state we read, so a concurrent update cannot be overwritten.
        let done = sqlx::query(
            "UPDATE legs SET business = $1, recall = $2, business_desc = $3, updated_ms = $4
             WHERE doc_id = $5 AND recipient = $6 AND COALESCE(business, '') = $7 AND COALESCE(recall, '') = $8",
        )
        .bind(next.business.map(|c| c.code().to_owned()))
        .bind(next.recall.map(|c| c.code().to_owned()))
        .bind(&update.description)
        .bind(now)
        .bind(&update.doc_id)
        .bind(recipient)
        .bind(leg.business.map_or("", StatusCode::code))
        .bind(leg.recall.map_or("", StatusCode::code))
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(RuleError::IllegalTransition(format!(
                "{recipient}: the status changed concurrently; send it again"
            ))
            .into());
        }
    }
    Ok(())
}

/// The bytes, if they match the SHA-256 they are stored under.
fn checked(bytes: Vec<u8>, key: &str, what: impl Fn() -> String) -> Result<Vec<u8>, StoreError> {
    if sha256_hex(&bytes) != key {
        return Err(StoreError::Corrupt(format!(
            "{} does not match its SHA-256",
            what()
        )));
    }
    Ok(bytes)
}

/// A document of a group of acceptances: the document, the bytes of its package (held in
/// memory, kept in the database) and its outbox messages.
type Grouped<'a> = (&'a NewDocument, &'a [u8], &'a [OutboxMessage]);

/// The columns of a new document's row, in the order [`document_values`] gives them.
const DOCUMENT_COLUMNS: &str = "doc_id, idem_key, message_type, sender, sender_system, document_id, \
     subject, status_code, response_for, size, sha256, created_ms, format, peer, peer_doc, via, trace";
const DOCUMENT_VALUES: usize = 17;

/// The statements of [`Store::accept_group`], in the write `w` has open: each document's row
/// ([`DOCUMENT_COLUMNS`], with its package's digest, accepted at `now`) and its outbox.
async fn store_group(
    w: &mut Writing<'_>,
    group: &[Grouped<'_>],
    digests: &[String],
    now: i64,
) -> Result<Vec<Option<Vec<OutboxRow>>>, StoreError> {
    let text = format!(
        "INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES {} ON CONFLICT (idem_key) DO NOTHING RETURNING doc_id",
        value_rows(group.len(), DOCUMENT_VALUES)
    );
    let mut values = Vec::with_capacity(group.len() * DOCUMENT_VALUES);
    for ((doc, _, _), digest) in group.iter().zip(digests) {
        values.extend(document_values(doc, digest, now));
    }
    // Only the rows inserted come back: a key taken before (or earlier in this group) is
    // skipped, with no error.
    let inserted: std::collections::HashSet<String> = w
        .rows(&text, &values, |r| r.text("doc_id"))
        .await?
        .into_iter()
        .collect();
    let new: Vec<usize> = (0..group.len())
        .filter(|&i| inserted.contains(&group[i].0.doc_id))
        .collect();

    let mut blobs: Vec<(&str, &[u8])> = Vec::new();
    for &i in &new {
        if !blobs.iter().any(|(d, _)| *d == digests[i]) {
            blobs.push((&digests[i], group[i].1));
        }
    }
    if !blobs.is_empty() {
        let text = format!(
            "INSERT INTO blobs (blob_key, data) VALUES {} ON CONFLICT (blob_key) DO NOTHING",
            value_rows(blobs.len(), 2)
        );
        let mut values = Vec::with_capacity(2 * blobs.len());
        for (digest, bytes) in &blobs {
            values.extend([Value::Text(digest), Value::Bytes(bytes)]);
        }
        w.execute(&text, &values).await?;
    }

    let legs: Vec<(&str, &str)> = new
        .iter()
        .flat_map(|&i| {
            let doc = group[i].0;
            doc.recipients
                .iter()
                .map(move |r| (doc.doc_id.as_str(), r.as_str()))
        })
        .collect();
    if !legs.is_empty() {
        let text = format!(
            "INSERT INTO legs (doc_id, recipient, delivery, transport, created_ms, updated_ms) VALUES {}",
            (0..legs.len())
                .map(|k| format!(
                    "(${}, ${}, 'accepted', 'initial', ${}, ${})",
                    3 * k + 1,
                    3 * k + 2,
                    3 * k + 3,
                    3 * k + 3
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut values = Vec::with_capacity(3 * legs.len());
        for (doc_id, recipient) in &legs {
            values.extend([Value::Text(doc_id), Value::Text(recipient), Value::Int(now)]);
        }
        w.execute(&text, &values).await?;
    }

    let messages: Vec<&OutboxMessage> = new.iter().flat_map(|&i| group[i].2).collect();
    let mut rows = Store::insert_outbox_many(w, &messages).await?.into_iter();

    // The rows come in the order of the messages, so each document takes as many as it gave.
    let mut stored: Vec<Option<Vec<OutboxRow>>> = vec![None; group.len()];
    for &i in &new {
        stored[i] = Some(rows.by_ref().take(group[i].2.len()).collect());
    }
    Ok(stored)
}

/// A document's row for `INSERT INTO documents ({DOCUMENT_COLUMNS})`, in order.
fn document_values<'a>(
    doc: &'a NewDocument,
    digest: &'a str,
    now: i64,
) -> [Value<'a>; DOCUMENT_VALUES] {
    let arrival = doc.arrival.as_ref();
    [
        Value::Text(&doc.doc_id),
        Value::Text(&doc.idem_key),
        Value::Text(doc.message_type.as_str()),
        Value::Text(&doc.sender),
        Value::Text(&doc.sender_system),
        Value::Text(&doc.document_id),
        Value::OptText(doc.subject.as_deref()),
        Value::OptText(doc.status_code.map(|c| c.code())),
        Value::OptText(doc.response_for.as_deref()),
        Value::Int(i64::try_from(doc.body.len()).unwrap_or(i64::MAX)),
        Value::Text(digest),
        Value::Int(now),
        Value::Text(doc.format.as_str()),
        Value::OptText(arrival.map(|a| a.peer.as_str())),
        Value::OptText(arrival.map(|a| a.peer_doc.as_str())),
        Value::Made(arrival.map(|a| a.via.join(","))),
        Value::Made(arrival.map(|a| serde_json::to_string(&a.trace).unwrap_or_default())),
    ]
}
