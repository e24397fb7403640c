//! `X-SystemId` / `X-SecretKey` authentication: which connected system is calling, and so which
//! agencies it may send as and receive for.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lienthong_store::{AuthError, System};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub System);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (Some(id), Some(secret)) = (header("x-systemid"), header("x-secretkey")) else {
            return Err(ApiError::new(
                ErrorCode::BadCredentials,
                "headers X-SystemId and X-SecretKey are required",
            ));
        };
        match state.store.authenticate(id, secret).await? {
            Ok(system) => Ok(Caller(system)),
            Err(AuthError::BadCredentials) => Err(ApiError::new(
                ErrorCode::BadCredentials,
                "wrong X-SystemId or X-SecretKey",
            )),
            Err(AuthError::Locked) => Err(ApiError::new(
                ErrorCode::BadCredentials,
                format!("system {id} is locked; ask the bus operator"),
            )),
        }
    }
}
