use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{no_such_document, own_copies, require_doc_id};
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
    let doc = state
        .store
        .document(doc_id)
        .await?
        .ok_or_else(|| no_such_document(doc_id))?;
    let legs = state.store.legs(doc_id).await?;
    if !caller.acts_for(&doc.sender) && own_copies(&caller, &legs).is_empty() {
        return Err(no_such_document(doc_id));
    }
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
