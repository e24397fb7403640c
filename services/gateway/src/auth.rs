//! `X-SystemId` / `X-SecretKey` authentication: which connected system is calling, and so which
//! agencies it may send as and receive for. A system with client certificates bound to it is
//! admitted only over a connection presenting one of them, and a bound certificate admits no
//! other system.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lienthong_https::PeerCertificate;
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
        let certificate = parts.extensions.get::<PeerCertificate>();
        check(state, "X-SystemId or X-SecretKey", id, secret, certificate)
            .await
            .map(Caller)
    }
}

/// Checks a system's credentials and the connection's client certificate, with errors that say
/// which rule refused it (`credentials` names where the id and secret came from).
pub async fn check(
    state: &AppState,
    credentials: &str,
    id: &str,
    secret: &str,
    certificate: Option<&PeerCertificate>,
) -> Result<System, ApiError> {
    let certificate = certificate.map(|c| c.sha256.as_str());
    let refused = |message: String| Err(ApiError::new(ErrorCode::BadCredentials, message));
    match state.store.authenticate(id, secret, certificate).await? {
        Ok(system) => Ok(system),
        Err(AuthError::BadCredentials) => refused(format!("wrong {credentials}")),
        Err(AuthError::Locked) => refused(format!("system {id} is locked; ask the bus operator")),
        Err(AuthError::CertificateRequired) => refused(format!(
            "system {id} is bound to client certificates: connect over HTTPS presenting one of \
             them"
        )),
        Err(AuthError::CertificateNotBound) => refused(format!(
            "the connection's client certificate (SHA-256 {}) is not one bound to system {id}",
            certificate.unwrap_or_default()
        )),
        Err(AuthError::CertificateOfAnotherSystem { .. }) => refused(format!(
            "the connection's client certificate (SHA-256 {}) is bound to another system, not \
             {id}",
            certificate.unwrap_or_default()
        )),
    }
}
