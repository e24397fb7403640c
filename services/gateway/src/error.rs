//! Errors as agency systems expect them: `{"success":false,"data":{"errorCode":N,"errorDesc":..}}`
//! with the codes of the provincial axes, and an HTTP status that matches.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The error codes of the REST interface (and two of ours, 24 and 25, for what the axes leave
/// unnamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidFile = 10,
    BadCredentials = 15,
    RecipientMissing = 18,
    SenderNotRegistered = 19,
    Platform = 20,
    FileProcessing = 21,
    NotConformant = 22,
    RecipientLocked = 23,
    NoSuchDocument = 24,
    IllegalTransition = 25,
    /// Extension: a DocumentId already accepted from this sender, sent again for other recipients.
    DocumentIdReused = 26,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub desc: String,
    pub http: StatusCode,
    /// Each broken rule at its path, when the package was read (the SOAP interface reports them
    /// one by one).
    pub violations: Vec<lienthong_edxml::Violation>,
}

impl ApiError {
    pub fn new(code: ErrorCode, desc: impl Into<String>) -> Self {
        let http = match code {
            ErrorCode::InvalidFile => StatusCode::BAD_REQUEST,
            ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::SenderNotRegistered => StatusCode::FORBIDDEN,
            ErrorCode::RecipientMissing | ErrorCode::NotConformant | ErrorCode::RecipientLocked => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::Platform => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::FileProcessing => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::NoSuchDocument => StatusCode::NOT_FOUND,
            ErrorCode::IllegalTransition | ErrorCode::DocumentIdReused => StatusCode::CONFLICT,
        };
        Self {
            code,
            desc: desc.into(),
            http,
            violations: Vec::new(),
        }
    }

    pub fn with_violations(mut self, violations: &[lienthong_edxml::Violation]) -> Self {
        self.violations = violations.to_vec();
        self
    }

    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    /// A platform fault: logged in full, reported to the caller as retryable.
    pub fn platform(what: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{what}");
        Self::new(
            ErrorCode::Platform,
            format!("{what}; the platform is temporarily unavailable, retry later"),
        )
    }
}

impl From<lienthong_store::StoreError> for ApiError {
    fn from(e: lienthong_store::StoreError) -> Self {
        use lienthong_store::{RuleError, StoreError};
        match e {
            StoreError::Rule(RuleError::IllegalTransition(m)) => {
                Self::new(ErrorCode::IllegalTransition, m)
            }
            StoreError::Rule(r @ (RuleError::NoSuchDocument(_) | RuleError::NoSuchLeg(..))) => {
                Self::new(ErrorCode::NoSuchDocument, r.to_string())
            }
            other if other.is_transient() => Self::platform("the store failed", other),
            other => {
                tracing::error!(error = %other, "store error");
                Self::new(
                    ErrorCode::FileProcessing,
                    "the stored package could not be processed",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "data": { "errorCode": self.code as u16, "errorDesc": self.desc },
        });
        let mut resp = (self.http, Json(body)).into_response();
        if self.code == ErrorCode::Platform {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}
