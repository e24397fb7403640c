//! The store calls made for every document, each kind made for many callers at once (see
//! [`crate::together`]): the gateway's look-ups of an idempotency key and of agencies; the
//! stages' reads of a document's row, legs, verdict, renditions, recipients' agencies and small
//! blobs, and their writes that move a leg on, record a verdict and store a small rendition.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::AnyPool;

use crate::columns::Columns;
use crate::documents::{
    DOC_COLUMNS, LEG_COLUMNS, document_from_row, edits_json, leg_from_row, rendition_from_row,
};
use crate::in_place::InPlace;
use crate::ledger::{LedgerEvent, chain_events};
use crate::registry::{AGENCY_COLUMNS, agency_from_row};
use crate::together::{Group, Together, first_of_each};
use crate::verdicts::{VERDICT_COLUMNS, verdict_from_row};
use crate::writing::{Value, Writing, at_once};
use crate::{
    Agency, Backend, BoxFuture, DeliveryState, DocumentRow, Leg, RenditionRow, StoreError,
    VerdictRow, now_ms, placeholders, read_rows, value_rows,
};
use lienthong_edxml::Format;

/// The database, as the groups' tasks hold it.
#[derive(Clone)]
pub(crate) struct Db {
    /// Reads.
    pub(crate) pool: AnyPool,
    /// Writes (on SQLite one connection; see `Store::writer`).
    pub(crate) writer: AnyPool,
    pub(crate) backend: Backend,
    /// On a SQLite file, the reads made on the asking thread (`in_place.rs`); else through
    /// `pool`.
    pub(crate) in_place: Option<Arc<InPlace>>,
}

impl Db {
    /// A write transaction, as `Store::begin` starts one.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        crate::begin_write(&self.writer, self.backend).await
    }
}

/// One task per kind of call.
pub(crate) struct Groups {
    pub(crate) keys: Together<Keys>,
    pub(crate) documents: Together<Documents>,
    pub(crate) legs: Together<Legs>,
    pub(crate) verdicts: Together<Verdicts>,
    pub(crate) renditions: Together<Renditions>,
    pub(crate) agencies: Together<Agencies>,
    pub(crate) blobs: Together<Blobs>,
    pub(crate) writes: Together<StageWrites>,
}

impl Groups {
    pub(crate) fn spawn(db: &Db) -> Self {
        Self {
            keys: Together::spawn(Keys(db.clone())),
            documents: Together::spawn(Documents(db.clone())),
            legs: Together::spawn(Legs(db.clone())),
            verdicts: Together::spawn(Verdicts(db.clone())),
            renditions: Together::spawn(Renditions(db.clone())),
            agencies: Together::spawn(Agencies(db.clone())),
            blobs: Together::spawn(Blobs(db.clone())),
            writes: Together::spawn(StageWrites(db.clone())),
        }
    }
}

/// The distinct values of `keys`, in their first order.
fn distinct<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for k in keys {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// `items` with the last repeated up to the next power of two: groups of 5 to 8 then run one
/// statement text, prepared once and kept in the connection's statement cache, where each size
/// would be a statement of its own, parsed again when the cache let it go (SQLite's parser
/// takes time for each parameter in proportion to the parameters before it). Repeating a key
/// or a row changes nothing: an `IN` list, an `OR` of conditions, and an `INSERT ... ON
/// CONFLICT DO NOTHING` of a row already in the statement each take it once.
pub(crate) fn padded<T: Clone>(mut items: Vec<T>) -> Vec<T> {
    if let Some(last) = items.last().cloned() {
        items.resize(items.len().next_power_of_two(), last);
    }
    items
}

/// `SELECT {columns} ... WHERE {key} IN (...)` over the distinct `keys`, every row decoded.
async fn rows_where_in<T>(
    db: &Db,
    (head, key, tail): (&str, &str, &str),
    keys: &[&str],
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let keys = padded(keys.to_vec());
    let text = format!(
        "{head} WHERE {key} IN ({}){tail}",
        placeholders(1, keys.len())
    );
    read_rows(db.in_place.as_deref(), &db.pool, text, &keys, decode).await
}

/// The rows for the distinct `calls` (`head ... WHERE key IN (...) tail`), each decoded to its
/// key and value, by key.
async fn found_by_key<T>(
    db: &Db,
    query: (&str, &str, &str),
    calls: &[String],
    decode: impl Fn(&dyn Columns) -> Result<(String, T), StoreError>,
) -> Result<HashMap<String, Vec<T>>, StoreError> {
    let keys = distinct(calls.iter().map(String::as_str));
    let mut found: HashMap<String, Vec<T>> = HashMap::new();
    for (k, v) in rows_where_in(db, query, &keys, decode).await? {
        found.entry(k).or_default().push(v);
    }
    Ok(found)
}

/// Each call's row, where the key names at most one.
fn the_one<T: Clone>(calls: &[String], found: &HashMap<String, Vec<T>>) -> Vec<Option<T>> {
    calls
        .iter()
        .map(|k| found.get(k).and_then(|rows| rows.first()).cloned())
        .collect()
}

/// The document accepted under an idempotency key (`Store::doc_id_for_key`).
pub(crate) struct Keys(Db);

impl Group for Keys {
    type Call = String;
    type Answer = Option<String>;
    const KIND: &'static str = "idempotency_key";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let head = "SELECT idem_key, doc_id FROM documents";
            let found = found_by_key(&self.0, (head, "idem_key", ""), calls, |row| {
                Ok((row.text("idem_key")?, row.text("doc_id")?))
            })
            .await?;
            Ok(the_one(calls, &found))
        })
    }
}

/// Documents' rows (`Store::document`, when this process has not read them yet).
pub(crate) struct Documents(Db);

impl Group for Documents {
    type Call = String;
    type Answer = Option<DocumentRow>;
    const KIND: &'static str = "document";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let head = format!("SELECT {DOC_COLUMNS} FROM documents d");
            let found = found_by_key(&self.0, (&head, "d.doc_id", ""), calls, |row| {
                let doc = document_from_row(row)?;
                Ok((doc.doc_id.clone(), doc))
            })
            .await?;
            Ok(the_one(calls, &found))
        })
    }
}

/// A document's legs, by recipient (`Store::legs`).
pub(crate) struct Legs(Db);

impl Group for Legs {
    type Call = String;
    type Answer = Vec<Leg>;
    const KIND: &'static str = "legs";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let head = format!("SELECT {LEG_COLUMNS} FROM legs l");
            let tail = " ORDER BY l.doc_id, l.recipient";
            let found = found_by_key(&self.0, (&head, "l.doc_id", tail), calls, |row| {
                let leg = leg_from_row(row)?;
                Ok((leg.doc_id.clone(), leg))
            })
            .await?;
            Ok(calls
                .iter()
                .map(|id| found.get(id).cloned().unwrap_or_default())
                .collect())
        })
    }
}

/// A document's signature verdict (`Store::verdict`).
pub(crate) struct Verdicts(Db);

impl Group for Verdicts {
    type Call = String;
    type Answer = Option<VerdictRow>;
    const KIND: &'static str = "verdict";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let head = format!("SELECT {VERDICT_COLUMNS} FROM verdicts");
            let found = found_by_key(&self.0, (&head, "doc_id", ""), calls, |row| {
                let verdict = verdict_from_row(row)?;
                Ok((verdict.doc_id.clone(), verdict))
            })
            .await?;
            Ok(the_one(calls, &found))
        })
    }
}

const RENDITION_COLUMNS: &str = "doc_id, format, size, sha256, created_ms, base_sha256, edits";

/// The renditions of `doc_ids`, by document and format, read in a write.
async fn renditions_of(
    w: &mut Writing<'_>,
    doc_ids: &[&str],
) -> Result<HashMap<(String, Format), RenditionRow>, StoreError> {
    let text = format!(
        "SELECT {RENDITION_COLUMNS} FROM renditions WHERE doc_id IN ({})",
        placeholders(1, doc_ids.len().next_power_of_two())
    );
    let values: Vec<Value> = padded(doc_ids.to_vec())
        .into_iter()
        .map(Value::Text)
        .collect();
    let rows = w
        .rows(&text, &values, |row| {
            let r = rendition_from_row(row)?;
            Ok(((r.doc_id.clone(), r.format), r))
        })
        .await?;
    Ok(rows.into_iter().collect())
}

/// A document's rendition in a format (`Store::rendition_row`).
pub(crate) struct Renditions(Db);

impl Group for Renditions {
    type Call = (String, Format);
    type Answer = Option<RenditionRow>;
    const KIND: &'static str = "rendition";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [(String, Format)],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let keys = distinct(calls.iter().map(|(id, _)| id.as_str()));
            let head = format!("SELECT {RENDITION_COLUMNS} FROM renditions");
            let found: HashMap<(String, Format), RenditionRow> =
                rows_where_in(&self.0, (&head, "doc_id", ""), &keys, |row| {
                    let r = rendition_from_row(row)?;
                    Ok(((r.doc_id.clone(), r.format), r))
                })
                .await?
                .into_iter()
                .collect();
            Ok(calls.iter().map(|k| found.get(k).cloned()).collect())
        })
    }
}

/// The registry's agencies among some codes (`Store::agencies_in`).
pub(crate) struct Agencies(Db);

impl Group for Agencies {
    type Call = Vec<String>;
    type Answer = Vec<Agency>;
    const KIND: &'static str = "agencies";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [Vec<String>],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let keys = distinct(calls.iter().flatten().map(String::as_str));
            let found: Vec<Agency> = if keys.is_empty() {
                Vec::new()
            } else {
                let head = format!("SELECT {AGENCY_COLUMNS} FROM agencies");
                rows_where_in(&self.0, (&head, "code", " ORDER BY code"), &keys, |row| {
                    agency_from_row(row)
                })
                .await?
            };
            Ok(calls
                .iter()
                .map(|codes| {
                    found
                        .iter()
                        .filter(|a| codes.contains(&a.code))
                        .cloned()
                        .collect()
                })
                .collect())
        })
    }
}

/// Blob bytes kept in the database (`Store::blob_in_db`).
pub(crate) struct Blobs(Db);

impl Group for Blobs {
    type Call = String;
    type Answer = Option<Vec<u8>>;
    const KIND: &'static str = "blob";
    fn in_place(&self) -> bool {
        self.0.in_place.is_some()
    }
    fn run<'a>(
        &'a self,
        calls: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>> {
        Box::pin(async move {
            let head = "SELECT blob_key, data FROM blobs";
            let found = found_by_key(&self.0, (head, "blob_key", ""), calls, |row| {
                Ok((row.text("blob_key")?, row.bytes("data")?))
            })
            .await?;
            // A blob asked twice in one group is handed over twice.
            Ok(the_one(calls, &found))
        })
    }
}

/// A leg to move from one delivery state to the next (`Store::advance_leg`): which leg, from
/// which state, to which.
pub(crate) type Advance = (String, String, DeliveryState, DeliveryState);

/// Moves the legs of `calls` (no leg twice) with one statement per pair of states; the moved
/// legs.
async fn move_legs(
    w: &mut Writing<'_>,
    calls: &[&Advance],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut moved = Vec::new();
    let mut transitions: Vec<(DeliveryState, DeliveryState)> = Vec::new();
    for (_, _, from, to) in calls {
        if !transitions.contains(&(*from, *to)) {
            transitions.push((*from, *to));
        }
    }
    for (from, to) in transitions {
        let legs: Vec<&&Advance> = padded(
            calls
                .iter()
                .filter(|(_, _, f, t)| (*f, *t) == (from, to))
                .collect(),
        );
        let which = (0..legs.len())
            .map(|i| format!("(doc_id = ${} AND recipient = ${})", 2 + 2 * i, 3 + 2 * i))
            .collect::<Vec<_>>()
            .join(" OR ");
        // The states are written into the text (names of `DeliveryState`, never input), not
        // bound: whether the partial index `legs_failed` (`WHERE delivery = 'failed'`) serves
        // a statement depends on the state it names, so SQLite made the plan depend on a bound
        // state's value and prepared the statement again each time one was bound (3.5% of a
        // worker's CPU). One text per transition and group size, each kept prepared.
        let text = format!(
            "UPDATE legs SET delivery = '{}', updated_ms = $1 WHERE delivery = '{}' AND ({which})
                 RETURNING doc_id, recipient",
            to.as_str(),
            from.as_str()
        );
        let mut values = vec![Value::Int(now_ms())];
        for (doc_id, recipient, _, _) in &legs {
            values.push(Value::Text(doc_id));
            values.push(Value::Text(recipient));
        }
        moved.extend(
            w.rows(&text, &values, |row| {
                Ok((row.text("doc_id")?, row.text("recipient")?))
            })
            .await?,
        );
    }
    Ok(moved)
}

/// Moves each call's leg on, if it is still in the state it moves from.
async fn advance(w: &mut Writing<'_>, calls: &[&Advance]) -> Result<Vec<bool>, StoreError> {
    let keys: Vec<(&str, &str)> = calls
        .iter()
        .map(|(d, r, _, _)| (d.as_str(), r.as_str()))
        .collect();
    let (firsts, again) = first_of_each(&keys);
    let mut answers = vec![false; calls.len()];
    let together: Vec<&Advance> = firsts.iter().map(|&i| calls[i]).collect();
    let moved = move_legs(w, &together).await?;
    for &i in &firsts {
        let (doc_id, recipient, ..) = &calls[i];
        answers[i] = moved.iter().any(|(d, r)| d == doc_id && r == recipient);
    }
    // The same leg again: after the first, in the order asked.
    for i in again {
        answers[i] = !move_legs(w, &[calls[i]]).await?.is_empty();
    }
    Ok(answers)
}

const VERDICT_INSERT_COLUMNS: usize = 12;

/// Records each verdict, unless its document has one: whether it was recorded.
async fn record_verdicts(
    w: &mut Writing<'_>,
    calls: &[&VerdictRow],
) -> Result<Vec<bool>, StoreError> {
    let keys: Vec<&str> = calls.iter().map(|v| v.doc_id.as_str()).collect();
    // A second verdict for a document in the same group is not recorded: the first is.
    let (firsts, _) = first_of_each(&keys);
    let text = format!(
                "INSERT INTO verdicts (doc_id, sender, sender_system, outcome, reason_code, reason, signer, issuer,
                                       serial, signature_method, verified_ms, verdict)
                 VALUES {} ON CONFLICT (doc_id) DO NOTHING RETURNING doc_id",
                value_rows(firsts.len().next_power_of_two(), VERDICT_INSERT_COLUMNS)
            );
    let mut values = Vec::with_capacity(firsts.len().next_power_of_two() * VERDICT_INSERT_COLUMNS);
    for i in padded(firsts.clone()) {
        let v = &calls[i];
        values.extend([
            Value::Text(&v.doc_id),
            Value::Text(&v.sender),
            Value::Text(&v.sender_system),
            Value::Text(&v.outcome),
            Value::OptText(v.reason_code.as_deref()),
            Value::OptText(v.reason.as_deref()),
            Value::OptText(v.signer.as_deref()),
            Value::OptText(v.issuer.as_deref()),
            Value::OptText(v.serial.as_deref()),
            Value::OptText(v.signature_method.as_deref()),
            Value::Int(v.verified_ms),
            Value::Text(&v.verdict),
        ]);
    }
    let recorded: Vec<String> = w.rows(&text, &values, |r| r.text("doc_id")).await?;
    let mut answers = vec![false; calls.len()];
    for i in firsts {
        answers[i] = recorded.contains(&calls[i].doc_id);
    }
    Ok(answers)
}

/// A rendition to store, with its bytes (none for a spliced rendition, whose package is
/// stored).
pub(crate) struct RenditionPut {
    pub(crate) row: RenditionRow,
    pub(crate) bytes: Option<Vec<u8>>,
}

/// Stores each rendition and its bytes unless its document has one in that format: the
/// renditions as stored.
async fn put_renditions(
    w: &mut Writing<'_>,
    calls: &[&RenditionPut],
) -> Result<Vec<RenditionRow>, StoreError> {
    let doc_ids = distinct(calls.iter().map(|p| p.row.doc_id.as_str()));
    // Those stored already keep their first rendition, and no blob is written for them.
    let mut stored = renditions_of(w, &doc_ids).await?;
    let mut new: Vec<&RenditionRow> = Vec::new();
    let mut bytes: Vec<(&str, &[u8])> = Vec::new();
    for put in calls {
        let r = &put.row;
        if stored.contains_key(&(r.doc_id.clone(), r.format))
            || new
                .iter()
                .any(|n| (&n.doc_id, n.format) == (&r.doc_id, r.format))
        {
            continue;
        }
        new.push(r);
        if let Some(body) = &put.bytes
            && !bytes.iter().any(|(d, _)| *d == r.sha256)
        {
            bytes.push((r.sha256.as_str(), body.as_slice()));
        }
    }
    if !new.is_empty() {
        if !bytes.is_empty() {
            let text = format!(
                "INSERT INTO blobs (blob_key, data) VALUES {} ON CONFLICT (blob_key) DO NOTHING",
                value_rows(bytes.len().next_power_of_two(), 2)
            );
            let mut values = Vec::new();
            for (digest, data) in padded(bytes) {
                values.extend([Value::Text(digest), Value::Bytes(data)]);
            }
            w.execute(&text, &values).await?;
        }
        let text = format!(
            "INSERT INTO renditions ({RENDITION_COLUMNS}) VALUES {}
                     ON CONFLICT (doc_id, format) DO NOTHING RETURNING doc_id, format",
            value_rows(new.len().next_power_of_two(), 7)
        );
        let mut values = Vec::new();
        for r in padded(new.clone()) {
            let spliced = r.spliced.as_ref();
            let edits = spliced.map(|s| edits_json(&s.edits)).transpose()?;
            values.extend([
                Value::Text(&r.doc_id),
                Value::Text(r.format.as_str()),
                Value::Int(r.size),
                Value::Text(&r.sha256),
                Value::Int(r.created_ms),
                Value::OptText(spliced.map(|s| s.base_sha256.as_str())),
                Value::Made(edits),
            ]);
        }
        let inserted = w.rows(&text, &values, |_| Ok(())).await?.len();
        if inserted != new.len() {
            // Another process stored some meanwhile (PostgreSQL, where this statement
            // sees what committed before it began): theirs stand.
            stored = renditions_of(w, &doc_ids).await?;
            return answers(calls, &stored);
        }
    }
    stored.extend(
        new.into_iter()
            .map(|r| ((r.doc_id.clone(), r.format), r.clone())),
    );
    answers(calls, &stored)
}

/// Each put's rendition as stored.
fn answers(
    calls: &[&RenditionPut],
    stored: &HashMap<(String, Format), RenditionRow>,
) -> Result<Vec<RenditionRow>, StoreError> {
    calls
        .iter()
        .map(|RenditionPut { row, .. }| {
            let (doc_id, format) = (&row.doc_id, row.format);
            stored
                .get(&(doc_id.clone(), format))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("rendition {format} of {doc_id} vanished"))
                })
        })
        .collect()
}

/// A write the stages make for every document, whichever stage makes it.
pub(crate) enum StageWrite {
    /// A leg moved on, if still in the state it moves from (`Store::advance_leg`).
    Advance(Advance),
    /// A verdict recorded, unless its document has one (`Store::record_verdict`).
    Verdict(VerdictRow),
    /// A rendition small enough for the database stored with its bytes, unless its document
    /// has one in that format (`Store::put_rendition`).
    Rendition(RenditionPut),
    /// Lifecycle events chained at the end of the ledger, in order (`Store::record_events`, on
    /// SQLite: its one writer holds the chain's head for a transaction whatever else that
    /// transaction writes).
    Events(Vec<LedgerEvent>),
}

/// What a [`StageWrite`] did.
pub(crate) enum StageWritten {
    /// Whether the leg moved.
    Advanced(bool),
    /// Whether the verdict was recorded (false: the document had one).
    Recorded(bool),
    /// The rendition as stored: the first, when the document had one in that format already.
    Stored(RenditionRow),
    /// For each event, whether it was chained (false: recorded before, or earlier in the group).
    Chained(Vec<bool>),
}

/// The stages' writes, of every kind, that wait together: one transaction for all of them.
/// Each stage of a chain writes once per document (the verifier a verdict, the translator a
/// rendition, the router and the delivery a leg's move), and a process holds many documents
/// at different stages, so the writes waiting at any moment are of every kind; a transaction
/// per kind was a commit, a write of the log and a new snapshot for every reader per kind.
/// On SQLite the ledger's events join them too: the ledger of a worker process records the
/// events of the chains that just ended while those behind them write their stages.
pub(crate) struct StageWrites(Db);

impl Group for StageWrites {
    type Call = StageWrite;
    type Answer = StageWritten;
    const KIND: &'static str = "stage_write";
    fn run<'a>(
        &'a self,
        calls: &'a [StageWrite],
    ) -> BoxFuture<'a, Result<Vec<StageWritten>, StoreError>> {
        Box::pin(async move {
            if let Some(in_place) = &self.0.in_place
                && let Some(done) = in_place
                    .write_soon("stage_write", |w| at_once(write_all(w, calls)))
                    .await
            {
                return done;
            }
            let mut tx = self.0.begin().await?;
            let written = write_all(&mut Writing::Tx(&mut tx), calls).await?;
            tx.commit().await?;
            Ok(written)
        })
    }
}

/// Makes `calls`, each kind in the statements of its own (in the order they came within
/// a kind; kinds write different tables), and answers each in order.
async fn write_all(
    w: &mut Writing<'_>,
    calls: &[StageWrite],
) -> Result<Vec<StageWritten>, StoreError> {
    let mut advances = Vec::new();
    let mut verdicts = Vec::new();
    let mut renditions = Vec::new();
    // Every call's events, in the order the calls came: one chain, one statement.
    let mut events: Vec<LedgerEvent> = Vec::new();
    for call in calls {
        match call {
            StageWrite::Advance(a) => advances.push(a),
            StageWrite::Verdict(v) => verdicts.push(v),
            StageWrite::Rendition(r) => renditions.push(r),
            StageWrite::Events(e) => events.extend_from_slice(e),
        }
    }
    for (kind, made) in [
        ("advance_leg", advances.len()),
        ("record_verdict", verdicts.len()),
        ("put_rendition", renditions.len()),
        ("record_events", events.len()),
    ] {
        if made > 0 {
            metrics::histogram!("lienthong_store_group_calls", "kind" => kind).record(made as f64);
        }
    }
    let mut advanced = if advances.is_empty() {
        Vec::new()
    } else {
        advance(w, &advances).await?
    }
    .into_iter();
    let mut recorded = if verdicts.is_empty() {
        Vec::new()
    } else {
        record_verdicts(w, &verdicts).await?
    }
    .into_iter();
    let mut stored = if renditions.is_empty() {
        Vec::new()
    } else {
        put_renditions(w, &renditions).await?
    }
    .into_iter();
    let mut chained = if events.is_empty() {
        Vec::new()
    } else {
        chain_events(w, &events).await?
    }
    .into_iter();
    calls
        .iter()
        .map(|call| {
            match call {
                StageWrite::Advance(_) => advanced.next().map(StageWritten::Advanced),
                StageWrite::Verdict(_) => recorded.next().map(StageWritten::Recorded),
                StageWrite::Rendition(_) => stored.next().map(StageWritten::Stored),
                StageWrite::Events(e) => {
                    let mine: Vec<bool> = chained.by_ref().take(e.len()).collect();
                    (mine.len() == e.len()).then_some(StageWritten::Chained(mine))
                }
            }
            .ok_or_else(|| StoreError::Corrupt("a stage write went unanswered".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn groups_are_padded_to_a_power_of_two_with_their_last_item() {
        assert_eq!(padded(Vec::<u8>::new()), Vec::<u8>::new());
        assert_eq!(padded(vec![1]), [1]);
        assert_eq!(padded(vec![1, 2, 3]), [1, 2, 3, 3]);
        assert_eq!(padded(vec![1, 2, 3, 4, 5]), [1, 2, 3, 4, 5, 5, 5, 5]);
        assert_eq!(padded((1..=64).collect::<Vec<u32>>()).len(), 64);
    }
}
