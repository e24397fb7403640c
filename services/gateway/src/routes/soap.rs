//! The legacy SOAP 1.1 interface of the pre-2016 e-doc.vn hubs (`POST /soap/v1`), for agency
//! systems that were never rebuilt: `SendDocument`, `GetPendingDocumentIds`, `GetDocument`,
//! `ConfirmReceived`, `GetTraces`, `UpdateTraces`, `GetOrganizations`.
//!
//! Packages are e-doc.vn packages: SOAP with attachments (`multipart/related`, or a bare
//! envelope when there is no attachment), agency codes of 9 characters mapped through the
//! registry. The operation is the first element of the SOAP body (a package, whose SOAP header
//! holds a `MessageHeader` or a `Status`, is `SendDocument`). The caller authenticates with the
//! HTTP header `Token: <systemId>:<secret>` (the credentials of `/v1`, and the same client
//! certificates bound to systems). Errors are SOAP faults
//! (HTTP 500, as SOAP 1.1 says) whose detail lists each broken rule as `N.` (missing), `R.` (out
//! of range), `M.` (malformed) or `T.` (wrong type) followed by the element path.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_edxml::legacy::{EDOCVN_NS, SOAP_NS};
use lienthong_edxml::source::{Range, Source};
use lienthong_edxml::{CodeMap, Format, MessageType, OrganId};
use lienthong_https::PeerCertificate;
use lienthong_store::{Body, InboxFilter, System, TransportStatus};
use lienthong_translate::edocvn;
use quick_xml::escape::escape;

use super::get_edoc::{record_fetch, rendition_in};
use super::send::spool_body;
use super::stream::{self, Piece};
use super::update_status::set_transport;
use super::{own_copies, visible_document};
use crate::AppState;
use crate::accept::accept_in;
use crate::error::{ApiError, ErrorCode};
use crate::time_fmt::format_ms;

/// `POST /soap/v1`.
pub async fn soap(
    State(state): State<AppState>,
    certificate: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let certificate = certificate.map(|Extension(c)| c);
    match handle(&state, &headers, certificate.as_ref(), body).await {
        Ok(resp) => resp,
        Err(e) => fault(&e),
    }
}

/// A SOAP message larger than this is a package (an operation is a few hundred bytes).
const MAX_OPERATION: u64 = 16 * 1024 * 1024;

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    certificate: Option<&PeerCertificate>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(state, headers, certificate).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/xml")
        .to_owned();
    let multipart = content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/");
    // The message goes to a spool file as it arrives: a package may be large. A multipart one is
    // stored as a whole MIME entity, its Content-Type first.
    let head = format!("MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n");
    let spooled = spool_body(state, body, multipart.then_some(head.as_bytes())).await?;
    if multipart || spooled.len() > MAX_OPERATION {
        return send_document(state, &caller, spooled).await;
    }
    let body = spooled
        .read()
        .await
        .map_err(|e| ApiError::platform("the message could not be read back", e))?;
    let root = lienthong_edxml::dom::read(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidFile,
            format!("the request is not a readable SOAP message: {e}"),
        )
    })?;
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_NS) {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            format!("the request must be a SOAP 1.1 Envelope ({SOAP_NS})"),
        )
        .with_violations(&[violation("Envelope", "is not a SOAP 1.1 Envelope")]));
    }
    let in_header = |name: &str| {
        root.child("Header")
            .and_then(|h| h.child(name))
            .is_some_and(|e| e.namespace.as_deref() == Some(EDOCVN_NS))
    };
    if in_header("MessageHeader") || in_header("Status") {
        return send_document(state, &caller, spooled).await;
    }
    let Some(operation) = root.child("Body").and_then(|b| b.elements().next()) else {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            "Body: the SOAP body names no operation",
        )
        .with_violations(&[violation("Body", "is required but missing")]));
    };
    let arg = |name: &str| -> Result<String, ApiError> {
        operation
            .child_text(name)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                let path = format!("Body/{}/{name}", operation.name);
                ApiError::new(ErrorCode::InvalidFile, format!("{path}: is required"))
                    .with_violations(&[violation(&path, "is required but missing")])
            })
    };
    match operation.name.as_str() {
        "GetPendingDocumentIds" => pending(state, &caller).await,
        "GetDocument" => get_document(state, &caller, &arg("DocId")?).await,
        "ConfirmReceived" => {
            let doc_id = arg("DocId")?;
            set_transport(state, &caller, &doc_id, None, TransportStatus::Done).await?;
            Ok(answer(&format!(
                "<ConfirmReceivedResponse xmlns=\"{EDOCVN_NS}\"><DocId>{}</DocId><Status>done</Status></ConfirmReceivedResponse>",
                escape(&doc_id)
            )))
        }
        "UpdateTraces" => {
            let doc_id = arg("DocId")?;
            let text = arg("Status")?;
            let status = match text.parse::<TransportStatus>() {
                Ok(s) if s != TransportStatus::Initial => s,
                _ => {
                    let path = "Body/UpdateTraces/Status";
                    return Err(ApiError::new(
                        ErrorCode::InvalidFile,
                        format!("{path}: `{text}` is not processing, done or fail"),
                    )
                    .with_violations(&[violation(path, "is not processing, done or fail")]));
                }
            };
            set_transport(state, &caller, &doc_id, None, status).await?;
            Ok(answer(&format!(
                "<UpdateTracesResponse xmlns=\"{EDOCVN_NS}\"><DocId>{}</DocId><Status>{}</Status></UpdateTracesResponse>",
                escape(&doc_id),
                status.as_str()
            )))
        }
        "GetTraces" => traces(state, &caller, &arg("DocId")?).await,
        "GetOrganizations" => organizations(state).await,
        other => Err(ApiError::new(
            ErrorCode::InvalidFile,
            format!("Body/{other}: no such operation (SendDocument, GetPendingDocumentIds, GetDocument, ConfirmReceived, GetTraces, UpdateTraces, GetOrganizations)"),
        )
        .with_violations(&[violation(&format!("Body/{other}"), "is not an operation of this interface")])),
    }
}

fn violation(path: &str, rule: &str) -> lienthong_edxml::Violation {
    lienthong_edxml::Violation {
        path: path.to_owned(),
        rule: rule.to_owned(),
    }
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    certificate: Option<&PeerCertificate>,
) -> Result<System, ApiError> {
    let token = headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let Some((id, secret)) = token.split_once(':') else {
        return Err(ApiError::new(
            ErrorCode::BadCredentials,
            "the HTTP header Token: <systemId>:<secret> is required",
        ));
    };
    crate::auth::check(
        state,
        "system id or secret in Token",
        id,
        secret,
        certificate,
    )
    .await
}

async fn send_document(
    state: &AppState,
    caller: &System,
    package: Body,
) -> Result<Response, ApiError> {
    let accepted = accept_in(state, caller, Format::Edocvn, None, package).await?;
    Ok(answer(&format!(
        "<SendDocumentResponse xmlns=\"{EDOCVN_NS}\"><DocId>{}</DocId><Duplicate>{}</Duplicate></SendDocumentResponse>",
        escape(&accepted.doc_id),
        accepted.duplicate
    )))
}

/// The caller's copies not yet confirmed, documents and statuses alike.
async fn pending(state: &AppState, caller: &System) -> Result<Response, ApiError> {
    let filter = InboxFilter {
        limit: Some(10_000),
        ..InboxFilter::default()
    };
    let mut ids = String::new();
    for kind in [MessageType::Edoc, MessageType::Status] {
        for row in state.store.inbox(&caller.organs, kind, &filter).await? {
            ids.push_str(&format!("<DocId>{}</DocId>", escape(&row.document.doc_id)));
        }
    }
    Ok(answer(&format!(
        "<GetPendingDocumentIdsResponse xmlns=\"{EDOCVN_NS}\">{ids}</GetPendingDocumentIdsResponse>"
    )))
}

/// The package as an e-doc.vn message (its parts first), then the sender's original exactly as
/// sent (`<original>`) and the verifier's verdict (`<verification>`), in one multipart/related,
/// streamed from the store.
async fn get_document(
    state: &AppState,
    caller: &System,
    doc_id: &str,
) -> Result<Response, ApiError> {
    let (doc, legs) = visible_document(state, caller, doc_id).await?;
    let copies = own_copies(caller, &legs);
    let original = state.store.package_source(&doc).await?;
    let rendition = rendition_in(state, &doc, &original, Format::Edocvn).await?;
    let unreadable = |e: std::io::Error| {
        tracing::error!(%doc_id, error = %e, "a stored e-doc.vn package does not read");
        ApiError::new(
            ErrorCode::FileProcessing,
            "the stored package could not be processed",
        )
    };
    let message = entity_of(&rendition.source).map_err(unreadable)?;
    let boundary = message.boundary.clone();
    let mut pieces = message.parts(&rendition.source);
    let original_part = match doc.format {
        Format::Edocvn => {
            let entity = entity_of(&original).map_err(unreadable)?;
            (entity.content_type.clone(), entity.body(&original))
        }
        other => (other.media_type().to_owned(), Piece::Raw(original)),
    };
    pieces.push(Piece::Bytes(part_head(
        &boundary,
        "original",
        &original_part.0,
    )));
    pieces.push(original_part.1);
    pieces.push(Piece::Bytes(b"\r\n".to_vec()));
    let verdict = state.store.verdict(doc_id).await?;
    let mut verification = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Verification xmlns=\"{EDOCVN_NS}\"><OriginalFormat>{}</OriginalFormat><OriginalSha256>{}</OriginalSha256>",
        doc.format, doc.sha256
    );
    if let Some(v) = verdict {
        for (name, value) in [
            ("Outcome", Some(v.outcome)),
            ("ReasonCode", v.reason_code),
            ("Reason", v.reason),
            ("Signer", v.signer),
            ("Issuer", v.issuer),
            ("Serial", v.serial),
            ("SignatureMethod", v.signature_method),
            ("VerifiedTime", Some(format_ms(v.verified_ms))),
        ] {
            if let Some(value) = value {
                verification.push_str(&format!("<{name}>{}</{name}>", escape(&value)));
            }
        }
    }
    verification.push_str("</Verification>");
    let mut tail = part_head(&boundary, "verification", "text/xml; charset=utf-8");
    tail.extend_from_slice(verification.as_bytes());
    tail.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    pieces.push(Piece::Bytes(tail));
    record_fetch(state, &doc, &copies).await;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, message.content_type)],
        stream::body(pieces),
    )
        .into_response())
}

fn part_head(boundary: &str, id: &str, content_type: &str) -> Vec<u8> {
    format!(
        "--{boundary}\r\nContent-Type: {content_type}\r\nContent-ID: <{id}>\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    )
    .into_bytes()
}

/// Where the parts of a stored e-doc.vn package lie, read from its head only.
struct Entity {
    content_type: String,
    boundary: String,
    /// Offset of the body (after the headers).
    body_at: u64,
    /// Whether it is a bare SOAP envelope rather than a multipart entity.
    bare: bool,
}

/// Reads the head of a stored e-doc.vn package (a MIME entity with its headers, or a bare
/// envelope).
fn entity_of(source: &Arc<dyn Source>) -> std::io::Result<Entity> {
    let mut head = vec![0u8; 64 * 1024];
    let n = source.read_at(0, &mut head)?;
    head.truncate(n);
    let (content_type, body) = edocvn::split_entity(&head);
    let bare = !content_type.to_ascii_lowercase().starts_with("multipart/");
    let boundary = match edocvn::parameter(&content_type, "boundary") {
        Some(b) if !bare => b,
        _ => format!("lienthong-{}", uuid::Uuid::new_v4().simple()),
    };
    Ok(Entity {
        content_type: if bare {
            format!(
                "multipart/related; type=\"text/xml\"; start=\"<{}>\"; boundary=\"{boundary}\"",
                edocvn::ENVELOPE_ID
            )
        } else {
            content_type.clone()
        },
        boundary,
        body_at: (head.len() - body.len()) as u64,
        bare,
    })
}

impl Entity {
    /// The body of the entity, as it is.
    fn body(&self, source: &Arc<dyn Source>) -> Piece {
        Piece::Range(Range {
            source: Arc::clone(source),
            offset: self.body_at,
            len: source.len() - self.body_at,
        })
    }

    /// Its parts, without the closing delimiter, so more parts can follow.
    fn parts(&self, source: &Arc<dyn Source>) -> Vec<Piece> {
        if self.bare {
            return vec![
                Piece::Bytes(part_head(
                    &self.boundary,
                    edocvn::ENVELOPE_ID,
                    "text/xml; charset=utf-8",
                )),
                Piece::Raw(Arc::clone(source)),
                Piece::Bytes(b"\r\n".to_vec()),
            ];
        }
        // The body ends with `--boundary--` and a line break, which the writer put there.
        let close = format!("--{}--\r\n", self.boundary).len() as u64;
        vec![Piece::Range(Range {
            source: Arc::clone(source),
            offset: self.body_at,
            len: (source.len() - self.body_at).saturating_sub(close),
        })]
    }
}

/// A code as e-doc.vn systems know it: the 9-character one when the registry has it.
fn legacy(codes: &CodeMap, organ: &str) -> String {
    OrganId::parse(organ)
        .ok()
        .and_then(|o| codes.legacy(&o).map(str::to_owned))
        .unwrap_or_else(|| organ.to_owned())
}

async fn traces(state: &AppState, caller: &System, doc_id: &str) -> Result<Response, ApiError> {
    visible_document(state, caller, doc_id).await?;
    let codes = state.store.code_map().await?;
    let mut out = String::new();
    for e in state.store.trace(doc_id).await? {
        out.push_str(&format!(
            "<Trace><DocId>{}</DocId><Event>{}</Event><OrganId>{}</OrganId><Time>{}</Time><Detail>{}</Detail></Trace>",
            escape(&e.doc_id),
            escape(&e.kind),
            escape(e.organ.as_deref().map(|o| legacy(&codes, o)).unwrap_or_default()),
            format_ms(e.at_ms),
            escape(e.detail.as_deref().unwrap_or_default()),
        ));
    }
    Ok(answer(&format!(
        "<GetTracesResponse xmlns=\"{EDOCVN_NS}\">{out}</GetTracesResponse>"
    )))
}

async fn organizations(state: &AppState) -> Result<Response, ApiError> {
    let mut out = String::new();
    for a in state.store.agencies().await? {
        out.push_str(&format!(
            "<Organization><OrganId>{}</OrganId><OrganIdNew>{}</OrganIdNew><OrganName>{}</OrganName><ParentId>{}</ParentId><Level>{}</Level><State>{}</State></Organization>",
            escape(a.legacy_code.as_deref().unwrap_or(&a.code)),
            escape(&a.code),
            escape(&a.name),
            escape(a.pcode.as_deref().unwrap_or_default()),
            a.level.as_str(),
            a.state.as_str(),
        ));
    }
    Ok(answer(&format!(
        "<GetOrganizationsResponse xmlns=\"{EDOCVN_NS}\">{out}</GetOrganizationsResponse>"
    )))
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{SOAP_NS}\"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
}

fn answer(body: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        envelope(body),
    )
        .into_response()
}

/// A SOAP fault: `Client` for the caller's errors, `Server` for the platform's; the detail holds
/// the bus's error code and every broken rule with its legacy code.
fn fault(e: &ApiError) -> Response {
    let side = if matches!(e.code, ErrorCode::Platform | ErrorCode::FileProcessing) {
        "Server"
    } else {
        "Client"
    };
    let mut errors = String::new();
    for v in &e.violations {
        errors.push_str(&format!(
            "<Error><Code>{}</Code><Description>{}</Description></Error>",
            escape(edocvn::fault_code(v)),
            escape(&v.rule)
        ));
    }
    let body = format!(
        "<SOAP-ENV:Fault><faultcode>SOAP-ENV:{side}</faultcode><faultstring>{}</faultstring><detail><Errors xmlns=\"{EDOCVN_NS}\"><ErrorCode>{}</ErrorCode>{errors}</Errors></detail></SOAP-ENV:Fault>",
        escape(&e.desc),
        e.code as u16
    );
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        envelope(&body),
    )
        .into_response();
    if e.code == ErrorCode::Platform {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    resp
}
