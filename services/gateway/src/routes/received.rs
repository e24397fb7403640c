use axum::Json;
use axum::extract::{Query, State};
use lienthong_edxml::MessageType;
use lienthong_store::{InboxFilter, TransportStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::time_fmt::{date_range, format_ms};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    message_type: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    /// Extension: `initial`, `processing`, `done`, `fail` (comma-separated) or `all`; by default
    /// every copy not yet `done`.
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/getReceivedEdocList`: the caller's inbox.
pub async fn get_received_edoc_list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let message_type = match p.message_type.as_deref() {
        None | Some("") => MessageType::Edoc,
        Some(t) => t
            .parse::<MessageType>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("messageType: {}", e.0)))?,
    };
    let transport = match p.status.as_deref() {
        None | Some("") => Vec::new(),
        Some("all") => vec![
            TransportStatus::Initial,
            TransportStatus::Processing,
            TransportStatus::Done,
            TransportStatus::Fail,
        ],
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<TransportStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("status: {e}")))?,
    };
    let (from_ms, to_ms) = date_range(p.from_date.as_deref(), p.to_date.as_deref())?;
    let filter = InboxFilter {
        from_ms,
        to_ms,
        transport,
        limit: Some(p.limit.unwrap_or(1000).clamp(1, 10_000)),
    };
    let rows = state
        .store
        .inbox(&caller.organs, message_type, &filter)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "docId": r.document.doc_id,
                "from": r.document.sender,
                "to": r.leg.recipient,
                "status": r.leg.transport.as_str(),
                "statusDesc": transport_desc(r.leg.transport),
                "serviceType": "eDoc",
                "messageType": r.document.message_type.as_str(),
                "documentId": r.document.document_id,
                "subject": r.document.subject,
                "statusCode": r.document.status_code,
                "createdTime": format_ms(r.leg.created_ms),
                "updatedTime": format_ms(r.leg.updated_ms),
            })
        })
        .collect();
    Ok(Json(
        json!({ "success": true, "count": data.len(), "data": data }),
    ))
}

pub(crate) fn transport_desc(t: TransportStatus) -> &'static str {
    match t {
        TransportStatus::Initial => "delivered, not yet fetched",
        TransportStatus::Processing => "being fetched by the recipient's system",
        TransportStatus::Done => "stored by the recipient's system",
        TransportStatus::Fail => "the recipient's system failed to store it",
    }
}
