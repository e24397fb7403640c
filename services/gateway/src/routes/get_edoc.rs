use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lienthong_bus::messages::EventMessage;
use lienthong_edxml::source::{Range, Source};
use lienthong_edxml::{Format, Package};
use lienthong_store::{DocumentRow, Leg, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use super::stream::{self, Piece};
use super::{own_copies, require_doc_id, visible_document};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::time_fmt::format_ms;
use crate::{AppState, outbox_message};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    doc_id: Option<String>,
}

/// `GET /v1/getEdoc?docId=`: the package exactly as the sender sent it (base64), with a summary,
/// the verifier's verdict, and the recipient's rendition (in the format its registry entry
/// declares, with the bus's TraceHeader). The first fetch by each recipient is recorded in the
/// trace. The package and the rendition are streamed from the store, never held.
pub async fn get_edoc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let doc_id = require_doc_id(p.doc_id.as_deref())?;
    let (doc, legs) = visible_document(&state, &caller, doc_id).await?;
    let copies = own_copies(&caller, &legs);
    let original = state.store.package_source(&doc).await?;
    let signature = signature(&state, doc_id).await?;
    let rendition = match copies.first() {
        Some(leg) => Some(rendition_for(&state, &doc, &original, &leg.recipient).await?),
        None => None,
    };
    let attachments = attachments(&state, &doc, &original).await?;
    record_fetch(&state, &doc, &copies).await;

    let edxml = stream::placeholder("edxml");
    let content = stream::placeholder("rendition");
    let mut data = summary(&doc, &copies);
    data["size"] = doc.size.into();
    data["sha256"] = doc.sha256.clone().into();
    data["format"] = doc.format.as_str().into();
    data["attachments"] = attachments.into();
    data["signature"] = signature.into();
    data["edxml"] = edxml.clone().into();
    let mut large = vec![(edxml.as_str(), Piece::Base64(original))];
    data["rendition"] = match rendition {
        Some(r) => {
            large.push((content.as_str(), Piece::Base64(r.source)));
            json!({"format": r.format, "size": r.size, "sha256": r.sha256, "content": content})
        }
        None => Value::Null,
    };
    let body = stream::json(&json!({ "success": true, "data": data }), large);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileParams {
    doc_id: Option<String>,
    /// `true`: the caller's rendition instead of the original.
    rendition: Option<bool>,
}

/// `GET /v1/getEdocFile?docId=[&rendition=true]` (extension): the package itself, not wrapped in
/// JSON, streamed; for adapters fetching large packages. `X-Sha256` and `X-Format` say what it is.
pub async fn get_edoc_file(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<FileParams>,
) -> Result<Response, ApiError> {
    let doc_id = require_doc_id(p.doc_id.as_deref())?;
    let (doc, legs) = visible_document(&state, &caller, doc_id).await?;
    let copies = own_copies(&caller, &legs);
    let original = state.store.package_source(&doc).await?;
    let (format, source, sha256) = if p.rendition == Some(true) {
        let leg = copies.first().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoSuchDocument,
                format!("docId {doc_id}: you hold no copy of it, so no rendition"),
            )
        })?;
        let r = rendition_for(&state, &doc, &original, &leg.recipient).await?;
        (r.format, r.source, r.sha256)
    } else {
        (doc.format, original, doc.sha256.clone())
    };
    record_fetch(&state, &doc, &copies).await;
    let media = match format {
        // The stored e-doc.vn package is a whole MIME entity, headers included.
        Format::Edocvn => "application/octet-stream",
        other => other.media_type(),
    };
    let mut resp = (
        [(header::CONTENT_TYPE, media)],
        stream::body(vec![Piece::Raw(source)]),
    )
        .into_response();
    for (name, value) in [("x-sha256", sha256), ("x-format", format.to_string())] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

/// The attachments of a stored package: names, types and sizes (an edXML package read without
/// decoding or holding its attachments).
async fn attachments(
    state: &AppState,
    doc: &DocumentRow,
    original: &Arc<dyn Source>,
) -> Result<Vec<Value>, ApiError> {
    if doc.format == Format::Edxml {
        let source = Arc::clone(original);
        let threshold = state.store.large_attachment_bytes();
        let parsed =
            tokio::task::spawn_blocking(move || lienthong_edxml::parse_source(source, threshold))
                .await
                .map_err(|e| ApiError::platform("reading the package failed", e))?;
        return Ok(match parsed {
            Ok(Package::Edoc(e)) => e
                .attachments
                .iter()
                .map(|a| json!({"contentId": a.content_id, "name": a.attachment_name, "contentType": a.content_type, "size": a.size}))
                .collect(),
            _ => Vec::new(),
        });
    }
    let codes = codes_for(state, &[doc.format]).await?;
    let bytes = read_all(original)?;
    Ok(match lienthong_translate::decode(doc.format, &bytes, &codes) {
        Ok(lienthong_translate::Message::Edoc(e)) => e
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| json!({"contentId": a.content_id_at(i), "name": a.attachment_name, "contentType": a.content_type, "size": a.data.len()}))
            .collect(),
        _ => Vec::new(),
    })
}

/// A source's bytes, whole (formats read in memory).
pub(crate) fn read_all(source: &Arc<dyn Source>) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::with_capacity(usize::try_from(source.len()).unwrap_or(0));
    Range {
        source: Arc::clone(source),
        offset: 0,
        len: source.len(),
    }
    .for_each_chunk(|c| bytes.extend_from_slice(c))
    .map_err(|e| ApiError::platform("the stored package could not be read", e))?;
    Ok(bytes)
}

/// What every interface says of a document: who sent it to which of the caller's agencies, and
/// what it is.
pub(crate) fn summary(doc: &DocumentRow, copies: &[&Leg]) -> Value {
    json!({
        "docId": doc.doc_id,
        "messageType": doc.message_type.as_str(),
        "from": doc.sender,
        "to": copies.iter().map(|l| l.recipient.as_str()).collect::<Vec<_>>(),
        "documentId": doc.document_id,
        "subject": doc.subject,
        "statusCode": doc.status_code,
        "createdTime": format_ms(doc.created_ms),
    })
}

/// The verifier's verdict, which travels with the package so the recipient sees who signed it.
pub(crate) async fn signature(state: &AppState, doc_id: &str) -> Result<Option<Value>, ApiError> {
    Ok(state.store.verdict(doc_id).await?.map(|v| {
        json!({
            "outcome": v.outcome,
            "reasonCode": v.reason_code,
            "reason": v.reason,
            "signer": v.signer,
            "issuer": v.issuer,
            "serial": v.serial,
            "signatureMethod": v.signature_method,
            "verifiedTime": format_ms(v.verified_ms),
        })
    }))
}

/// A package as one recipient receives it.
pub(crate) struct Rendition {
    pub format: Format,
    pub source: Arc<dyn Source>,
    pub sha256: String,
    pub size: u64,
}

/// The package in the format `recipient` receives.
pub(crate) async fn rendition_for(
    state: &AppState,
    doc: &DocumentRow,
    original: &Arc<dyn Source>,
    recipient: &str,
) -> Result<Rendition, ApiError> {
    let format = state
        .store
        .agency(recipient)
        .await?
        .map(|a| a.receive_format)
        .unwrap_or_default();
    rendition_in(state, doc, original, format).await
}

/// The package in `format`: the translator's rendition when there is one; otherwise (no
/// translator stage on this bus, or an interface that speaks one format whatever the registry
/// says) the original when the formats agree, or a translation made now, into a spool file.
pub(crate) async fn rendition_in(
    state: &AppState,
    doc: &DocumentRow,
    original: &Arc<dyn Source>,
    format: Format,
) -> Result<Rendition, ApiError> {
    if let Some((row, source)) = state.store.rendition_source(&doc.doc_id, format).await? {
        return Ok(Rendition {
            format,
            source,
            sha256: row.sha256,
            size: u64::try_from(row.size).unwrap_or(0),
        });
    }
    if format == doc.format {
        return Ok(Rendition {
            format,
            source: Arc::clone(original),
            sha256: doc.sha256.clone(),
            size: u64::try_from(doc.size).unwrap_or(0),
        });
    }
    let codes = codes_for(state, &[doc.format, format]).await?;
    let (from, source, threshold, store) = (
        doc.format,
        Arc::clone(original),
        state.store.large_attachment_bytes(),
        state.store.clone(),
    );
    let doc_id = doc.doc_id.clone();
    let written = tokio::task::spawn_blocking(move || {
        let message =
            lienthong_translate::decode_source(from, source, threshold, &codes).map_err(|e| {
                tracing::error!(%doc_id, error = %e, "an accepted package no longer reads");
                ApiError::new(
                    ErrorCode::FileProcessing,
                    format!("the stored package cannot be translated to {format}"),
                )
            })?;
        let written = lienthong_translate::encode(format, &message, &codes).map_err(|e| {
            ApiError::new(
                ErrorCode::FileProcessing,
                format!("the package cannot be translated to {format}: {e}"),
            )
        })?;
        let mut out = store.spool_sync()?;
        lienthong_translate::expand::expand(&written, &message, format, &mut out)
            .map_err(|e| ApiError::platform("the translation could not be written", e))?;
        out.finish()
            .map_err(|e| ApiError::platform("the translation could not be written", e))
    })
    .await
    .map_err(|e| ApiError::platform("translating the package failed", e))??;
    let (sha256, size) = (written.sha256(), written.len());
    // A spool file's name goes with `written`; the open file stays readable until the answer is
    // sent.
    let source: Arc<dyn Source> = written
        .into_source()
        .map_err(|e| ApiError::platform("the translation could not be read", e))?;
    Ok(Rendition {
        format,
        source,
        sha256,
        size,
    })
}

/// The registry's 9-character codes when one of `formats` is e-doc.vn (the others need none).
pub(crate) async fn codes_for(
    state: &AppState,
    formats: &[Format],
) -> Result<lienthong_translate::CodeMap, ApiError> {
    Ok(if formats.contains(&Format::Edocvn) {
        state.store.code_map().await?
    } else {
        lienthong_translate::CodeMap::default()
    })
}

/// Records the first fetch of each of the caller's copies in the trace. The fetch succeeds even
/// if the broker is away: the relay records it later.
pub(crate) async fn record_fetch(state: &AppState, doc: &DocumentRow, copies: &[&Leg]) {
    let doc_id = doc.doc_id.as_str();
    let t = state.publisher.topology();
    let events: Vec<_> = copies
        .iter()
        .map(|leg| {
            outbox_message(
                &EventMessage::about(
                    doc_id,
                    "fetched",
                    &leg.recipient,
                    Some(format!("sha256 {}", doc.sha256)),
                    now_ms(),
                )
                .to_outgoing(t),
            )
        })
        .collect();
    if events.is_empty() {
        return;
    }
    match state.store.enqueue(&events).await {
        Ok(rows) => {
            if let Err(e) = state.publish_outbox(&rows).await {
                tracing::warn!(%doc_id, error = %e, "fetch event left for the relay");
            }
        }
        Err(e) => tracing::warn!(%doc_id, error = %e, "could not record the fetch"),
    }
}
