use axum::Json;
use axum::extract::State;
use lienthong_bus::messages::EventMessage;
use lienthong_store::{System, TransportStatus, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{no_such_document, own_copies, require_doc_id, visible_document};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::{AppState, outbox_message};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    doc_id: Option<String>,
    status: Option<String>,
    /// Extension: which of the caller's agencies, when it received the document for several.
    organ_id: Option<String>,
}

/// `POST /v1/updateStatus {"docId","status"}`: the transport status of the caller's copy.
pub async fn update_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Result<Json<Body>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = super::json_body(body)?;
    let doc_id = require_doc_id(body.doc_id.as_deref())?;
    let status: TransportStatus = body
        .status
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidFile, "status: the field is required"))?
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("status: {e}")))?;
    if status == TransportStatus::Initial {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            "status: `initial` is set by the bus; use processing, done or fail",
        ));
    }
    set_transport(&state, &caller, doc_id, body.organ_id.as_deref(), status).await?;
    Ok(Json(
        json!({ "success": true, "message": format!("status set to {}", status.as_str()), "docId": doc_id }),
    ))
}

/// Sets the transport status of the caller's copies of a document (of the one for `organ` when
/// given) and records it in the trace.
pub(crate) async fn set_transport(
    state: &AppState,
    caller: &System,
    doc_id: &str,
    organ: Option<&str>,
    status: TransportStatus,
) -> Result<(), ApiError> {
    let (doc, legs) = visible_document(state, caller, doc_id).await?;
    let copies: Vec<_> = own_copies(caller, &legs)
        .into_iter()
        .filter(|l| organ.is_none_or(|o| o == l.recipient))
        .collect();
    if copies.is_empty() {
        return Err(no_such_document(doc_id));
    }
    let t = state.publisher.topology();
    for leg in &copies {
        let event = EventMessage {
            event_id: format!("{doc_id}:transport:{}:{}", leg.recipient, status.as_str()),
            doc_id: doc_id.to_owned(),
            kind: "transport".into(),
            organ: Some(leg.recipient.clone()),
            detail: Some(format!("{}; sha256 {}", status.as_str(), doc.sha256)),
            at_ms: now_ms(),
        };
        let rows = state
            .store
            .set_transport(
                doc_id,
                &leg.recipient,
                status,
                &[outbox_message(&event.to_outgoing(t))],
            )
            .await?;
        if let Err(e) = state.publish_outbox(&rows).await {
            tracing::warn!(%doc_id, error = %e, "transport event left for the relay");
        }
    }
    Ok(())
}
