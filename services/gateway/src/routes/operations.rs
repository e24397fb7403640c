//! What operators do when something is stuck (operator token): the dead-letter queue (look,
//! replay, discard) and failed copies (look, try again once the cause is mended). Every replay,
//! discard and retry is recorded in the ledger under the pseudo document `operations`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use lienthong_bus::{DeadAction, DeadLetter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::registry::{operator, record};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<usize>,
}

/// `GET /admin/dead[?limit=]`: the dead letters, oldest first.
pub async fn dead(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let letters = state
        .publisher
        .dead_letters(
            DeadAction::Keep,
            None,
            p.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await
        .map_err(|e| ApiError::platform("the broker did not answer", e))?;
    Ok(Json(
        json!({ "success": true, "count": letters.len(), "data": letters }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeadBody {
    /// The message ids to act on; `all: true` instead acts on every one (up to `limit`).
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
    limit: Option<usize>,
}

async fn settle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Json<DeadBody>, axum::extract::rejection::JsonRejection>,
    action: DeadAction,
) -> Result<Json<Value>, ApiError> {
    let who = operator(state, headers)?;
    let body = super::json_body(body)?;
    if body.ids.is_empty() != body.all {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            "ids: name the messages (their messageId), or say \"all\": true, not both",
        ));
    }
    let ids = (!body.all).then_some(body.ids.as_slice());
    let done: Vec<DeadLetter> = state
        .publisher
        .dead_letters(action, ids, body.limit.unwrap_or(1000).clamp(1, 10_000))
        .await
        .map_err(|e| ApiError::platform("the broker did not answer", e))?;
    let verb = if action == DeadAction::Replay {
        "replayed"
    } else {
        "discarded"
    };
    for letter in &done {
        record(
            state,
            &who,
            "operations",
            letter.doc_id.as_deref().unwrap_or("-"),
            format!(
                "dead letter {} {verb} (died in {}: {})",
                letter.message_id.as_deref().unwrap_or("?"),
                letter.queue,
                letter.reason
            ),
        )
        .await;
    }
    Ok(Json(
        json!({ "success": true, "count": done.len(), "data": done }),
    ))
}

/// `POST /admin/dead/replay`: publishes the named dead letters again where they were published
/// (after the cause was mended), confirmed, then removes them.
pub async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<DeadBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    settle(&state, &headers, body, DeadAction::Replay).await
}

/// `POST /admin/dead/discard`: removes the named dead letters.
pub async fn discard(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<DeadBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    settle(&state, &headers, body, DeadAction::Discard).await
}

/// `GET /admin/failed[?limit=]`: failed copies, newest first, with the reason.
pub async fn failed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let limit = i64::try_from(p.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
    let rows: Vec<Value> = state
        .store
        .failed_legs(limit)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "docId": e.document.doc_id,
                "documentId": e.document.document_id,
                "messageType": e.document.message_type.as_str(),
                "from": e.document.sender,
                "to": e.leg.recipient,
                "reason": e.leg.reason,
                "failedMs": e.leg.updated_ms,
            })
        })
        .collect();
    Ok(Json(
        json!({ "success": true, "count": rows.len(), "data": rows }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBody {
    doc_id: String,
    to: String,
}

/// `POST /admin/failed/retry` `{"docId", "to"}`: the copy goes back to the router, which
/// routes it with the registry and links as they are now.
pub async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RetryBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    lienthong_router::retry_copy(&state.store, &state.publisher, &body.doc_id, &body.to)
        .await
        .map_err(|e| match e {
            lienthong_router::RetryError::NotFailed { .. } => {
                ApiError::new(ErrorCode::NoSuchDocument, e.to_string())
            }
            other => ApiError::platform("the retry did not complete", other),
        })?;
    record(
        &state,
        &who,
        "operations",
        &body.to,
        format!(
            "failed copy {} / {} sent to the router again",
            body.doc_id, body.to
        ),
    )
    .await;
    Ok(Json(
        json!({ "success": true, "docId": body.doc_id, "to": body.to }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    doc_id: Option<String>,
    document_id: Option<String>,
    /// Sender or recipient (OrganId).
    agency: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    /// The last docId of the previous page.
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/documents?docId=&documentId=&agency=&fromDate=&toDate=&before=&limit=`: any
/// document on this bus, newest first, a page at a time (the next page: `before` = the last
/// docId). Each row has its copies.
pub async fn documents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let (from_ms, to_ms) =
        crate::time_fmt::date_range(p.from_date.as_deref(), p.to_date.as_deref())?;
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let search = lienthong_store::DocumentSearch {
        doc_id: nonempty(p.doc_id),
        document_id: nonempty(p.document_id),
        agency: nonempty(p.agency),
        from_ms,
        to_ms,
        before: nonempty(p.before),
        limit: p.limit.unwrap_or(50).clamp(1, 500),
    };
    let docs = state.store.search_documents(&search).await?;
    let mut rows = Vec::with_capacity(docs.len());
    for d in &docs {
        let legs = state.store.legs(&d.doc_id).await?;
        rows.push(json!({
            "docId": d.doc_id,
            "documentId": d.document_id,
            "messageType": d.message_type.as_str(),
            "from": d.sender,
            "subject": d.subject,
            "statusCode": d.status_code,
            "format": d.format.as_str(),
            "createdMs": d.created_ms,
            "cameFrom": d.arrival.as_ref().map(|a| a.peer.clone()),
            "copies": legs.iter().map(|l| json!({
                "to": l.recipient,
                "delivery": l.delivery.as_str(),
                "transport": l.transport.as_str(),
                "businessStatus": l.business.map(|c| c.code()),
                "bus": l.bus,
                "reason": l.reason,
            })).collect::<Vec<_>>(),
        }));
    }
    let next = docs.last().map(|d| d.doc_id.clone());
    Ok(Json(json!({
        "success": true,
        "count": rows.len(),
        "data": rows,
        "next": if docs.len() as i64 == search.limit { next } else { None },
    })))
}

/// `GET /admin/documents/{docId}/trace`: every hop and status of any document, with times.
pub async fn trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(doc_id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let events = state.store.trace(&doc_id).await?;
    if events.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoSuchDocument,
            format!("docId {doc_id}: no such document on this bus"),
        ));
    }
    Ok(Json(
        json!({ "success": true, "docId": doc_id, "data": events }),
    ))
}

/// `GET /admin/audit[?limit=]` (operator or security officer token): administrative actions,
/// newest first, each naming who acted.
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    if operator(&state, &headers).is_err() {
        super::verdicts::authorize_bearer(
            &state.config.security_tokens_sha256,
            "gateway.security_tokens_sha256",
            "operator or security officer",
            &headers,
        )?;
    }
    let limit = i64::try_from(p.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
    let events = state.store.audit_log(limit).await?;
    Ok(Json(
        json!({ "success": true, "count": events.len(), "data": events }),
    ))
}
