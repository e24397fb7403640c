//! `GET /admin/links` for operators: each link to another bus, with what waits for it (the
//! length of its link queue) and whether a link forwarder is consuming it. A peer bus that is
//! down shows as a growing `waiting` count; it drains by itself when the peer returns.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::registry::operator;
use crate::AppState;
use crate::error::ApiError;

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let t = state.publisher.topology();
    let mut links = Vec::new();
    for bus in &state.publisher.config().links {
        let queue = t.link_queue(bus);
        let (waiting, consumers) = state
            .publisher
            .queue_depth(&queue)
            .await
            .map_err(|e| ApiError::platform("the broker did not answer", e))?;
        links.push(json!({
            "bus": bus,
            "queue": queue,
            "waiting": waiting,
            "forwarders": consumers,
        }));
    }
    Ok(Json(json!({ "success": true, "data": links })))
}
