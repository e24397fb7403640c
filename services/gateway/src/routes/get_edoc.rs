use axum::Json;
use axum::extract::{Query, State};
use base64::Engine;
use lienthong_bus::messages::EventMessage;
use lienthong_edxml::{Format, Package};
use lienthong_store::{DocumentRow, Leg, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

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
/// trace.
pub async fn get_edoc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let doc_id = require_doc_id(p.doc_id.as_deref())?;
    let (doc, legs) = visible_document(&state, &caller, doc_id).await?;
    let copies = own_copies(&caller, &legs);
    let bytes = state.store.package(&doc).await?;
    let signature = signature(&state, doc_id).await?;
    let rendition = match copies.first() {
        Some(leg) => {
            let r = rendition_for(&state, &doc, &bytes, &leg.recipient).await?;
            Some(json!({
                "format": r.format,
                "size": r.bytes.len(),
                "sha256": r.sha256,
                "content": base64::engine::general_purpose::STANDARD.encode(&r.bytes),
            }))
        }
        None => None,
    };

    let attachments: Vec<Value> = if doc.format == Format::Edxml {
        // Sizes come from the base64 text: nothing is decoded.
        match lienthong_edxml::parse(&bytes) {
            Ok(Package::Edoc(e)) => e
                .attachments
                .iter()
                .map(|a| json!({"contentId": a.content_id, "name": a.attachment_name, "contentType": a.content_type, "size": a.size}))
                .collect(),
            _ => Vec::new(),
        }
    } else {
        let codes = codes_for(&state, &[doc.format]).await?;
        match lienthong_translate::decode(doc.format, &bytes, &codes) {
            Ok(lienthong_translate::Message::Edoc(e)) => e
                .attachments
                .iter()
                .enumerate()
                .map(|(i, a)| json!({"contentId": a.content_id_at(i), "name": a.attachment_name, "contentType": a.content_type, "size": a.data.len()}))
                .collect(),
            _ => Vec::new(),
        }
    };
    record_fetch(&state, &doc, &copies).await;

    let mut data = summary(&doc, &copies);
    data["size"] = doc.size.into();
    data["sha256"] = doc.sha256.clone().into();
    data["format"] = doc.format.as_str().into();
    data["attachments"] = attachments.into();
    data["signature"] = signature.into();
    data["edxml"] = base64::engine::general_purpose::STANDARD
        .encode(&bytes)
        .into();
    data["rendition"] = rendition.into();
    Ok(Json(json!({ "success": true, "data": data })))
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
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// The package in the format `recipient` receives.
pub(crate) async fn rendition_for(
    state: &AppState,
    doc: &DocumentRow,
    original: &[u8],
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
/// says) the original when the formats agree, or a translation made now.
pub(crate) async fn rendition_in(
    state: &AppState,
    doc: &DocumentRow,
    original: &[u8],
    format: Format,
) -> Result<Rendition, ApiError> {
    if let Some((row, bytes)) = state.store.rendition(&doc.doc_id, format).await? {
        return Ok(Rendition {
            format,
            bytes,
            sha256: row.sha256,
        });
    }
    if format == doc.format {
        return Ok(Rendition {
            format,
            bytes: original.to_vec(),
            sha256: doc.sha256.clone(),
        });
    }
    let codes = codes_for(state, &[doc.format, format]).await?;
    let message = lienthong_translate::decode(doc.format, original, &codes).map_err(|e| {
        tracing::error!(doc_id = %doc.doc_id, error = %e, "an accepted package no longer reads");
        ApiError::new(
            ErrorCode::FileProcessing,
            format!("the stored package cannot be translated to {format}"),
        )
    })?;
    let bytes = lienthong_translate::encode(format, &message, &codes).map_err(|e| {
        ApiError::new(
            ErrorCode::FileProcessing,
            format!("the package cannot be translated to {format}: {e}"),
        )
    })?;
    Ok(Rendition {
        format,
        sha256: lienthong_store::sha256_hex(&bytes),
        bytes,
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
