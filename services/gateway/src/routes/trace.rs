use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{require_doc_id, visible_document};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::time_fmt::format_ms;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    doc_id: Option<String>,
}

/// `GET /v1/getTrace?docId=` (extension): every lifecycle event of a document and of the status
/// packages answering it, for its sender and its recipients.
pub async fn get_trace(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let doc_id = require_doc_id(p.doc_id.as_deref())?;
    let (doc, _) = visible_document(&state, &caller, doc_id).await?;
    let events: Vec<Value> = state
        .store
        .trace(doc_id)
        .await?
        .iter()
        .map(|e| {
            json!({
                "docId": e.doc_id,
                "event": e.kind,
                "organId": e.organ,
                "detail": e.detail,
                "time": format_ms(e.at_ms),
                "timeMs": e.at_ms,
            })
        })
        .collect();
    Ok(Json(
        json!({ "success": true, "docId": doc_id, "documentId": doc.document_id, "count": events.len(), "data": events }),
    ))
}
