use axum::Json;
use axum::extract::{Query, State};
use lienthong_edxml::MessageType;
use lienthong_store::{InboxFilter, Leg};
use serde::Deserialize;
use serde_json::{Value, json};

use super::no_such_document;
use super::received::transport_desc;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::time_fmt::{date_range, format_ms};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    doc_id: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/getSentEdocList?docId=`: per-recipient delivery, transport and business status of
/// something the caller sent. Without `docId`, the caller's recent documents, each with its rows.
pub async fn get_sent_edoc_list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let docs = match p.doc_id.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(doc_id) => {
            let doc = state
                .store
                .document(doc_id)
                .await?
                .ok_or_else(|| no_such_document(doc_id))?;
            if !caller.acts_for(&doc.sender) {
                return Err(no_such_document(doc_id));
            }
            vec![doc]
        }
        None => {
            let (from_ms, to_ms) = date_range(p.from_date.as_deref(), p.to_date.as_deref())?;
            let filter = InboxFilter {
                from_ms,
                to_ms,
                transport: Vec::new(),
                limit: Some(p.limit.unwrap_or(100).clamp(1, 1000)),
            };
            state
                .store
                .sent_documents(&caller.organs, MessageType::Edoc, &filter)
                .await?
        }
    };
    let mut data = Vec::new();
    for doc in &docs {
        for leg in state.store.legs(&doc.doc_id).await? {
            data.push(row(&doc.doc_id, &doc.document_id, &leg));
        }
    }
    Ok(Json(
        json!({ "success": true, "count": data.len(), "data": data }),
    ))
}

fn row(doc_id: &str, document_id: &str, leg: &Leg) -> Value {
    json!({
        "docId": doc_id,
        "documentId": document_id,
        "to": leg.recipient,
        "delivery": leg.delivery.as_str(),
        "status": leg.transport.as_str(),
        "statusDesc": transport_desc(leg.transport),
        "businessStatus": leg.business.map(|c| c.code()),
        "businessStatusDesc": leg.business.map(|c| c.describe()),
        "businessNote": leg.business_desc,
        "recallStatus": leg.recall.map(|c| c.code()),
        "reason": leg.reason,
        "createdTime": format_ms(leg.created_ms),
        "updatedTime": format_ms(leg.updated_ms),
    })
}
