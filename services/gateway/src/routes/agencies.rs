use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// `GET /v1/getAgenciesList`: the agency registry, in the shape `lienthong admin registry import`
/// reads.
pub async fn get_agencies_list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let agencies = state.store.agencies().await?;
    Ok(Json(
        json!({ "success": true, "count": agencies.len(), "data": agencies }),
    ))
}
