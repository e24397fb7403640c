//! Acceptance of a package: every synchronous check (sender, recipients, the document a status
//! answers, the status rules), then one store transaction, then confirmed publishing.

use lienthong_bus::messages::{EventMessage, StageMessage};
use lienthong_edxml::{
    CodeMap, Format, MessageHeader, MessageType, Package, PackageError, StatusCode, StatusPackage,
};
use lienthong_store::{
    Acceptance, AgencyState, Body, DeliveryState, Level, NewDocument, Resolution, StatusUpdate,
    System, now_ms,
};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::outbox_message;

/// Outcome of `sendEdoc`.
#[derive(Debug)]
pub struct Accepted {
    pub doc_id: String,
    pub duplicate: bool,
}

/// Reads a package in its format and checks every edXML rule: an edXML package as it is, any
/// other format through its edXML rendering, with errors named at the paths of the format sent.
fn read_package(
    format: Format,
    expected: Option<MessageType>,
    bytes: &[u8],
    codes: &CodeMap,
) -> Result<Package, ApiError> {
    let rendered;
    let edxml: &[u8] = match format {
        Format::Edxml => bytes,
        other => {
            let message = lienthong_translate::decode(other, bytes, codes)
                .map_err(|e| decode_error(other, &e))?;
            rendered = lienthong_translate::to_edxml(&message);
            &rendered
        }
    };
    let parsed = match expected {
        Some(mt) => lienthong_edxml::parse_as(edxml, mt),
        None => lienthong_edxml::parse(edxml),
    };
    parsed.map_err(package_error)
}

/// A package not readable in its format (10), or readable but breaking rules (22).
fn decode_error(format: Format, e: &lienthong_translate::DecodeError) -> ApiError {
    let code = if e.is_unreadable() {
        ErrorCode::InvalidFile
    } else {
        ErrorCode::NotConformant
    };
    ApiError::new(code, format!("{format} package: {e}")).with_violations(e.violations())
}

fn package_error(e: PackageError) -> ApiError {
    match e {
        PackageError::Parse(p) => ApiError::new(
            ErrorCode::InvalidFile,
            format!("edocFile is not a readable XML package: {p}"),
        ),
        invalid @ PackageError::Invalid(_) => {
            ApiError::new(ErrorCode::NotConformant, invalid.to_string())
                .with_violations(invalid.violations())
        }
    }
}

/// What acceptance needs of a package: an edoc's header, or a status.
enum Read {
    Edoc(Box<MessageHeader>),
    Status(Box<StatusPackage>),
}

impl From<Package> for Read {
    fn from(p: Package) -> Self {
        match p {
            Package::Edoc(e) => Self::Edoc(Box::new(e.header)),
            Package::Status(s) => Self::Status(s),
        }
    }
}

/// Reads a package from its body: a package spooled to a file (a large one) is read from the
/// file, its large attachments checked a piece at a time and never held; one held in memory (a
/// small one) is read there.
async fn read_body(
    state: &AppState,
    format: Format,
    expected: Option<MessageType>,
    body: &Body,
) -> Result<Read, ApiError> {
    let spooled = match (format, body) {
        (_, Body::Spooled(s)) => s,
        (_, body) => {
            let codes = crate::routes::codes_for(state, &[format]).await?;
            let bytes = body
                .read()
                .await
                .map_err(|e| ApiError::platform("the spooled package could not be read", e))?;
            return read_package(format, expected, &bytes, &codes).map(Read::from);
        }
    };
    let source = lienthong_edxml::source::FileSource::open(spooled.path())
        .map_err(|e| ApiError::platform("the spooled package could not be read", e))?;
    let threshold = state.store.large_attachment_bytes();
    let codes = crate::routes::codes_for(state, &[format]).await?;
    tokio::task::spawn_blocking(move || {
        let source: std::sync::Arc<dyn lienthong_edxml::source::Source> =
            std::sync::Arc::new(source);
        if format == Format::Json {
            return lienthong_translate::json::from_json_source(source, threshold)
                .map(|whole| match whole {
                    lienthong_edxml::Whole::Edoc(e) => Read::Edoc(Box::new(e.header)),
                    lienthong_edxml::Whole::Status(s) => Read::Status(s),
                })
                .map_err(|e| decode_error(format, &e.into()));
        }
        if format == Format::Edocvn {
            return lienthong_translate::edocvn::from_edocvn_source(source, threshold, &codes)
                .map(|whole| match whole {
                    lienthong_edxml::Whole::Edoc(e) => Read::Edoc(Box::new(e.header)),
                    lienthong_edxml::Whole::Status(s) => Read::Status(s),
                })
                .map_err(|e| decode_error(format, &e.into()));
        }
        if format == Format::Govn {
            let read = match lienthong_edxml::read_govn_source(source, threshold)
                .map_err(package_error)?
            {
                lienthong_edxml::Whole::Edoc(e) => Read::Edoc(Box::new(e.header)),
                lienthong_edxml::Whole::Status(s) => Read::Status(s),
            };
            return of_kind(read, expected, "edXMLHeader").map_err(package_error);
        }
        let package = lienthong_edxml::parse_source(source, threshold).map_err(package_error)?;
        of_kind(Read::from(package), expected, "edXMLEnvelope/edXMLHeader").map_err(package_error)
    })
    .await
    .map_err(|e| ApiError::platform("reading the package failed", e))?
}

/// Refuses a package of the other kind than `messageType` says.
fn of_kind(read: Read, expected: Option<MessageType>, path: &str) -> Result<Read, PackageError> {
    let found = match read {
        Read::Edoc(_) => MessageType::Edoc,
        Read::Status(_) => MessageType::Status,
    };
    match expected {
        Some(kind) if kind != found => {
            let (holds, wanted) = match kind {
                MessageType::Edoc => ("Status", "MessageHeader"),
                MessageType::Status => ("MessageHeader", "Status"),
            };
            Err(PackageError::Invalid(vec![lienthong_edxml::Violation {
                path: path.to_owned(),
                rule: format!(
                    "messageType is `{kind}` so the header must hold {wanted}, but it holds {holds}"
                ),
            }]))
        }
        _ => Ok(read),
    }
}

/// While the broker holds this bus's publishes back (a memory or disk alarm), nothing is
/// accepted: the caller is told at once to come back (HTTP 503, error 20, `Retry-After`) rather
/// than kept waiting for a confirm that comes only when the alarm clears.
pub(crate) fn refuse_while_blocked(state: &AppState) -> Result<(), ApiError> {
    if state.publisher.blocked() {
        metrics::counter!("lienthong_broker_blocked_refusals_total").increment(1);
        return Err(ApiError::new(
            ErrorCode::Platform,
            "the message broker is refusing new messages for now (a memory or disk alarm); \
             nothing was accepted: send it again later"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Accepts a package in any format the bus speaks; the bytes are stored as sent.
pub async fn accept_in(
    state: &AppState,
    caller: &System,
    format: Format,
    expected: Option<MessageType>,
    body: Body,
) -> Result<Accepted, ApiError> {
    accept_to(state, caller, format, expected, body, None).await
}

/// A broadcast: every agency at `level` under `under` (the registry's parent codes) receives a
/// copy, besides the package's own recipients.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub under: String,
    pub level: Level,
}

/// [`accept_in`], with a broadcast when given.
pub async fn accept_to(
    state: &AppState,
    caller: &System,
    format: Format,
    expected: Option<MessageType>,
    body: Body,
    broadcast: Option<Broadcast>,
) -> Result<Accepted, ApiError> {
    refuse_while_blocked(state)?;
    let package = read_body(state, format, expected, &body).await?;
    let mut doc = match package {
        Read::Edoc(header) => edoc_document(state, caller, &header, body).await?,
        Read::Status(st) => status_document(state, caller, &st, body).await?,
    };
    doc.format = format;
    // A resubmission gets the docId it was given, whatever changed in the registry since; but
    // the same DocumentId for other recipients is a different package, never silently dropped.
    let mut redirects = Vec::new();
    let mut broadcast_event = None;
    if doc.message_type == MessageType::Edoc {
        // A recipient merged into another (retired, with a successor) is served by the successor.
        let mut resolved = resolve_recipients(state, &doc.recipients).await;
        if let (Some(b), Ok(r)) = (&broadcast, resolved.as_mut()) {
            let day = lienthong_store::today();
            let reached = lienthong_store::descendants(
                &state.store.agencies().await?,
                &b.under,
                b.level,
                &day,
            );
            if reached.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::RecipientMissing,
                    format!(
                        "broadcast: no agency in service at level {} under {}",
                        b.level.as_str(),
                        b.under
                    ),
                ));
            }
            r.broadcast = reached.len();
            for code in reached {
                if !r.codes.contains(&code) {
                    r.codes.push(code);
                }
            }
        }
        match state.store.doc_id_for_key(&doc.idem_key).await? {
            None => {
                let resolved = resolved?;
                doc.recipients = resolved.codes;
                redirects = resolved.redirects;
                if let Some(b) = &broadcast {
                    broadcast_event = Some(format!(
                        "broadcast to the {} agencies at level {} under {}",
                        resolved.broadcast,
                        b.level.as_str(),
                        b.under
                    ));
                }
            }
            Some(existing) => {
                let mut before: Vec<String> = state
                    .store
                    .legs(&existing)
                    .await?
                    .into_iter()
                    .map(|l| l.recipient)
                    .collect();
                let mut now = resolved
                    .map(|r| r.codes)
                    .unwrap_or_else(|_| doc.recipients.clone());
                before.sort();
                now.sort();
                now.dedup();
                if before != now {
                    return Err(ApiError::new(
                        ErrorCode::DocumentIdReused,
                        format!(
                            "MessageHeader/DocumentId: {} was already accepted as docId {existing} for {}; this package is for {}. A package for other recipients needs its own DocumentId",
                            doc.document_id,
                            before.join(", "),
                            now.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    commit(state, doc, &redirects, broadcast_event).await
}

/// Where a document goes: its recipients, with each retired one replaced by its successor.
struct Resolved {
    codes: Vec<String>,
    /// (addressed, successor) pairs.
    redirects: Vec<(String, String)>,
    /// How many agencies a broadcast reached.
    broadcast: usize,
}

/// Every recipient must be in the registry (18) and active (retired without a successor: 18,
/// locked: 23); a retired one with a successor is served by the successor (followed through
/// later mergers). Registry dates count (`validFrom`, `validTo`).
async fn resolve_recipients(state: &AppState, recipients: &[String]) -> Result<Resolved, ApiError> {
    let day = lienthong_store::today();
    let mut resolved = Resolved {
        codes: Vec::new(),
        redirects: Vec::new(),
        broadcast: 0,
    };
    for (i, code) in recipients.iter().enumerate() {
        let path = format!("MessageHeader/To[{}]/OrganId", i + 1);
        let via = |chain: &[String]| match chain {
            [_] => String::new(),
            [_, rest @ ..] => format!(" (through its successor {})", rest.join(" -> ")),
            [] => String::new(),
        };
        match state.store.resolve_recipient(code, &day).await? {
            Resolution::Unknown { chain }
                if chain.len() == 1 && state.config.parent_bus.is_some() =>
            {
                // The parent bus's registry knows more; the router sends the copy there.
                if !resolved.codes.contains(code) {
                    resolved.codes.push(code.clone());
                }
            }
            Resolution::Unknown { chain } => {
                return Err(ApiError::new(
                    ErrorCode::RecipientMissing,
                    format!(
                        "{path}: recipient {} does not exist in the agency registry{}",
                        chain.last().unwrap_or(code),
                        via(&chain)
                    ),
                ));
            }
            Resolution::Found {
                chain,
                state: AgencyState::Retired,
            } => {
                return Err(ApiError::new(
                    ErrorCode::RecipientMissing,
                    format!(
                        "{path}: recipient {code} is retired in the agency registry{}, with no successor",
                        via(&chain)
                    ),
                ));
            }
            Resolution::Found {
                chain,
                state: AgencyState::Locked,
            } => {
                return Err(ApiError::new(
                    ErrorCode::RecipientLocked,
                    format!("{path}: recipient {code} is locked{}", via(&chain)),
                ));
            }
            Resolution::Found {
                chain,
                state: AgencyState::Active,
            } => {
                let served_by = chain.last().cloned().unwrap_or_else(|| code.clone());
                if served_by != *code {
                    resolved.redirects.push((code.clone(), served_by.clone()));
                }
                if !resolved.codes.contains(&served_by) {
                    resolved.codes.push(served_by);
                }
            }
        }
    }
    Ok(resolved)
}

/// Checks that the caller may send as `sender` and that the registry knows it.
async fn check_sender(
    state: &AppState,
    caller: &System,
    sender: &str,
    path: &str,
) -> Result<(), ApiError> {
    if !caller.acts_for(sender) {
        return Err(ApiError::new(
            ErrorCode::SenderNotRegistered,
            format!(
                "{path}: system {} is not registered to send as {sender}",
                caller.system_id
            ),
        ));
    }
    let day = lienthong_store::today();
    match state.store.agency(sender).await? {
        Some(a) if a.state_on(&day) == AgencyState::Active => Ok(()),
        Some(a) => Err(ApiError::new(
            ErrorCode::SenderNotRegistered,
            format!(
                "{path}: sender {sender} is {} in the registry{}",
                a.state_on(&day),
                a.successor
                    .map(|s| format!("; its successor is {s}"))
                    .unwrap_or_default()
            ),
        )),
        None => Err(ApiError::new(
            ErrorCode::SenderNotRegistered,
            format!("{path}: sender {sender} is not in the agency registry"),
        )),
    }
}

async fn edoc_document(
    state: &AppState,
    caller: &System,
    h: &MessageHeader,
    body: Body,
) -> Result<NewDocument, ApiError> {
    let sender = h.sender().as_str();
    check_sender(state, caller, sender, "MessageHeader/From/OrganId").await?;
    let codes: Vec<&str> = h.recipients().iter().map(|o| o.as_str()).collect();
    Ok(NewDocument {
        doc_id: uuid::Uuid::now_v7().to_string(),
        idem_key: format!("edoc|{sender}|{}", h.document_id),
        message_type: MessageType::Edoc,
        sender: sender.to_owned(),
        sender_system: caller.system_id.clone(),
        document_id: h.document_id.to_string(),
        subject: Some(h.subject.clone()),
        status_code: None,
        response_for: None,
        recipients: codes.iter().map(|c| (*c).to_owned()).collect(),
        format: Format::Edxml,
        body,
        status_update: None,
        arrival: None,
    })
}

async fn status_document(
    state: &AppState,
    caller: &System,
    st: &StatusPackage,
    body: Body,
) -> Result<NewDocument, ApiError> {
    let from = st.sender().as_str();
    check_sender(state, caller, from, "Status/From/OrganId").await?;
    let rf = &st.response_for;
    let original = state
        .store
        .find_edoc(rf.organ_id.as_str(), rf.document_id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoSuchDocument,
                format!(
                    "Status/ResponseFor: the bus carried no document {} from {}",
                    rf.document_id, rf.organ_id
                ),
            )
        })?;
    let legs = state.store.legs(&original.doc_id).await?;
    let code = st.status_code;
    let (recipients, update_legs) = if code.is_sent_by_original_sender() {
        if from != original.sender {
            return Err(ApiError::new(
                ErrorCode::IllegalTransition,
                format!(
                    "Status/StatusCode: only the sender {} may request a recall (13)",
                    original.sender
                ),
            ));
        }
        // The recall goes to every recipient that was not refused delivery.
        let open: Vec<String> = legs
            .iter()
            .filter(|l| {
                l.delivery != DeliveryState::Failed && l.business != Some(StatusCode::Refused)
            })
            .map(|l| l.recipient.clone())
            .collect();
        if open.is_empty() {
            return Err(ApiError::new(
                ErrorCode::IllegalTransition,
                "Status/StatusCode: no recipient copy is left to recall",
            ));
        }
        (open.clone(), open)
    } else {
        if !legs
            .iter()
            .any(|l| l.recipient == from && l.delivery == DeliveryState::Delivered)
        {
            return Err(ApiError::new(
                ErrorCode::NoSuchDocument,
                format!(
                    "Status/From/OrganId: {from} did not receive document {}",
                    rf.document_id
                ),
            ));
        }
        (vec![original.sender.clone()], vec![from.to_owned()])
    };
    Ok(NewDocument {
        doc_id: uuid::Uuid::now_v7().to_string(),
        // The same status package sent again is the same key; a new package with the same code
        // (a second recall request after a refusal) has a new timestamp and is a new status.
        idem_key: format!(
            "status|{from}|{}|{}|{}",
            original.doc_id,
            code.code(),
            st.timestamp
        ),
        message_type: MessageType::Status,
        sender: from.to_owned(),
        sender_system: caller.system_id.clone(),
        document_id: rf.document_id.to_string(),
        subject: st.description.clone(),
        status_code: Some(code),
        response_for: Some(original.doc_id.clone()),
        recipients,
        format: Format::Edxml,
        body,
        status_update: Some(StatusUpdate {
            doc_id: original.doc_id,
            legs: update_legs,
            code,
            description: st.description.clone(),
            merge: false,
        }),
        arrival: None,
    })
}

/// A package another bus forwarded here for `recipients` (the copies this bus is to route),
/// accepted once per (that bus, its docId there). The package is read and checked like a
/// system's, but the sender is not one of this bus's agencies: its signature is the verifier's
/// to check. A status updates the copy it answers when this bus carried the original too (a bus
/// on the way), and travels on regardless.
pub async fn accept_forwarded(
    state: &AppState,
    format: Format,
    body: Body,
    recipients: Vec<String>,
    arrival: lienthong_store::Arrival,
) -> Result<Accepted, ApiError> {
    let idem_key = format!("peer|{}|{}", arrival.peer, arrival.peer_doc);
    if let Some(doc_id) = state.store.doc_id_for_key(&idem_key).await? {
        // Seen before: publish whatever that attempt left unpublished.
        let rows = state.store.unpublished_for(&doc_id).await?;
        state
            .publish_outbox(&rows)
            .await
            .map_err(|e| ApiError::platform("the broker did not confirm", e))?;
        return Ok(Accepted {
            doc_id,
            duplicate: true,
        });
    }
    let sender_system = format!("bus:{}", arrival.peer);
    let mut doc = match read_body(state, format, None, &body).await? {
        Read::Edoc(h) => NewDocument {
            doc_id: uuid::Uuid::now_v7().to_string(),
            idem_key,
            message_type: MessageType::Edoc,
            sender: h.sender().as_str().to_owned(),
            sender_system,
            document_id: h.document_id.to_string(),
            subject: Some(h.subject.clone()),
            status_code: None,
            response_for: None,
            recipients,
            format,
            body,
            status_update: None,
            arrival: Some(arrival),
        },
        Read::Status(st) => {
            let from = st.sender().as_str().to_owned();
            let rf = &st.response_for;
            let code = st.status_code;
            let original = state
                .store
                .find_edoc(rf.organ_id.as_str(), rf.document_id.as_str())
                .await?;
            let mut update = None;
            if let Some(original) = &original {
                let legs = state.store.legs(&original.doc_id).await?;
                let open = |l: &&lienthong_store::Leg| l.delivery != DeliveryState::Failed;
                let touched: Vec<String> = if code.is_sent_by_original_sender() {
                    legs.iter()
                        .filter(open)
                        .filter(|l| recipients.contains(&l.recipient))
                        .map(|l| l.recipient.clone())
                        .collect()
                } else {
                    legs.iter()
                        .filter(open)
                        .filter(|l| l.recipient == from)
                        .map(|l| l.recipient.clone())
                        .collect()
                };
                if !touched.is_empty() {
                    update = Some(StatusUpdate {
                        doc_id: original.doc_id.clone(),
                        legs: touched,
                        code,
                        description: st.description.clone(),
                        // Checked on the recipient's bus; statuses may overtake each other
                        // on the way back, and the one furthest along is kept.
                        merge: true,
                    });
                }
            }
            NewDocument {
                doc_id: uuid::Uuid::now_v7().to_string(),
                idem_key,
                message_type: MessageType::Status,
                sender: from,
                sender_system,
                document_id: rf.document_id.to_string(),
                subject: st.description.clone(),
                status_code: Some(code),
                response_for: original.map(|o| o.doc_id),
                recipients,
                format,
                body,
                status_update: update,
                arrival: Some(arrival),
            }
        }
    };
    doc.format = format;
    commit(state, doc, &[], None).await
}

/// Stores the document with its outbox messages, then publishes them with confirms.
async fn commit(
    state: &AppState,
    doc: NewDocument,
    redirects: &[(String, String)],
    broadcast: Option<String>,
) -> Result<Accepted, ApiError> {
    let t = state.publisher.topology();
    let now = now_ms();
    let mut events = vec![EventMessage {
        event_id: format!("{}:accepted", doc.doc_id),
        doc_id: doc.doc_id.clone(),
        kind: "accepted".into(),
        organ: Some(doc.sender.clone()),
        detail: Some(format!(
            "{} from {} via {} for {}; sha256 {}",
            doc.message_type,
            doc.sender,
            doc.sender_system,
            doc.recipients.join(", "),
            doc.body.sha256()
        )),
        at_ms: now,
    }];
    if let Some(detail) = broadcast {
        events.push(EventMessage::about(
            &doc.doc_id,
            "broadcast",
            &doc.sender,
            Some(detail),
            now,
        ));
    }
    for (addressed, successor) in redirects {
        let detail = format!(
            "{addressed} is retired in the registry; its successor {successor} receives the document"
        );
        events.push(EventMessage::about(
            &doc.doc_id,
            "redirected",
            addressed,
            Some(detail),
            now,
        ));
    }
    if let (Some(update), Some(code)) = (&doc.status_update, doc.status_code) {
        // The receipt names the exact bytes it is about: the digest of the document delivered.
        let delivered = state
            .store
            .document(&update.doc_id)
            .await?
            .map(|d| d.sha256)
            .unwrap_or_default();
        events.push(EventMessage {
            event_id: format!("{}:status:{}", update.doc_id, doc.doc_id),
            doc_id: update.doc_id.clone(),
            kind: "status".into(),
            organ: Some(doc.sender.clone()),
            detail: Some(match &update.description {
                Some(d) => format!("{code}: {d}; sha256 {delivered}"),
                None => format!("{code}; sha256 {delivered}"),
            }),
            at_ms: now,
        });
    }
    let mut stage = StageMessage::new(&doc.doc_id, state.config.document_stages.clone());
    if state.publisher.config().chain_stages {
        // The first stage publishes them with its own (or records them in place): no message
        // of their own.
        stage.events = std::mem::take(&mut events);
    }
    let mut outgoing = vec![stage.to_outgoing(t)];
    outgoing.extend(events.iter().map(|e| e.to_outgoing(t)));
    let outbox: Vec<_> = outgoing.iter().map(outbox_message).collect();
    let (message_type, format) = (doc.message_type, doc.format);
    let acceptance = state
        .acceptances
        .accept(doc, outbox)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Platform, e.to_string()))??;
    let (doc_id, rows, duplicate) = match acceptance {
        Acceptance::New { doc_id, outbox } => {
            metrics::counter!(
                "lienthong_documents_accepted_total",
                "message_type" => message_type.as_str(),
                "format" => format.as_str()
            )
            .increment(1);
            (doc_id, outbox, false)
        }
        Acceptance::Existing { doc_id, outbox } => (doc_id, outbox, true),
    };
    if let Err(e) = state.publish_outbox(&rows).await {
        tracing::warn!(%doc_id, error = %e, "accepted but not yet published; the relay will retry");
        return Err(ApiError::new(
            ErrorCode::Platform,
            format!(
                "package stored as docId {doc_id} but the message broker did not confirm it ({e}); \
                 send the same package again later: it will not be delivered twice"
            ),
        ));
    }
    Ok(Accepted { doc_id, duplicate })
}
