use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store and the broker both answer.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.store.ping().await.map_err(|e| e.to_string());
    let broker = state
        .publisher
        .ensure_connected()
        .await
        .map_err(|e| e.to_string());
    let ok = store.is_ok() && broker.is_ok();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": if ok { "ready" } else { "not ready" },
            "store": store.err().unwrap_or_else(|| "ok".into()),
            "broker": broker.err().unwrap_or_else(|| "ok".into()),
        })),
    )
}
