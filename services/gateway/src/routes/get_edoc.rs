use axum::Json;
use axum::extract::{Query, State};
use base64::Engine;
use lienthong_bus::messages::EventMessage;
use lienthong_edxml::Package;
use lienthong_store::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{own_copies, require_doc_id, visible_document};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::time_fmt::format_ms;
use crate::{AppState, outbox_message};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    doc_id: Option<String>,
}

/// `GET /v1/getEdoc?docId=`: the package exactly as the sender sent it (base64), with a summary.
/// The first fetch by each recipient is recorded in the trace.
pub async fn get_edoc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let doc_id = require_doc_id(p.doc_id.as_deref())?;
    let (doc, legs) = visible_document(&state, &caller, doc_id).await?;
    let copies = own_copies(&caller, &legs);
    let bytes = state.store.package(&doc).await?;
    // The verifier's verdict travels with the package, so the recipient sees who signed it.
    let signature = state.store.verdict(doc_id).await?.map(|v| {
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
    });

    let attachments: Vec<Value> = match lienthong_edxml::parse(&bytes) {
        Ok(Package::Edoc(e)) => e
            .attachments
            .iter()
            .map(|a| json!({"contentId": a.content_id, "name": a.attachment_name, "contentType": a.content_type, "size": a.size}))
            .collect(),
        _ => Vec::new(),
    };

    let t = state.publisher.topology();
    let events: Vec<_> = copies
        .iter()
        .map(|leg| {
            outbox_message(
                &EventMessage {
                    event_id: format!("{doc_id}:fetched:{}", leg.recipient),
                    doc_id: doc_id.to_owned(),
                    kind: "fetched".into(),
                    organ: Some(leg.recipient.clone()),
                    detail: Some(format!("sha256 {}", doc.sha256)),
                    at_ms: now_ms(),
                }
                .to_outgoing(t),
            )
        })
        .collect();
    if !events.is_empty() {
        // The fetch succeeds even if the broker is away: the relay records it later.
        match state.store.enqueue(&events).await {
            Ok(rows) => {
                if let Err(e) = state.publish_outbox(&rows).await {
                    tracing::warn!(%doc_id, error = %e, "fetch event left for the relay");
                }
            }
            Err(e) => tracing::warn!(%doc_id, error = %e, "could not record the fetch"),
        }
    }

    Ok(Json(json!({
        "success": true,
        "data": {
            "docId": doc.doc_id,
            "messageType": doc.message_type.as_str(),
            "from": doc.sender,
            "to": copies.iter().map(|l| l.recipient.as_str()).collect::<Vec<_>>(),
            "documentId": doc.document_id,
            "subject": doc.subject,
            "statusCode": doc.status_code,
            "size": doc.size,
            "sha256": doc.sha256,
            "createdTime": format_ms(doc.created_ms),
            "attachments": attachments,
            "signature": signature,
            "edxml": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }
    })))
}
