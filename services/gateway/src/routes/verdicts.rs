use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_store::VerdictFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::time_fmt::{date_range, format_ms};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    outcome: Option<String>,
    signer: Option<String>,
    issuer: Option<String>,
    sender: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    limit: Option<i64>,
}

/// A bearer token, checked against the configured SHA-256 digests of a role's tokens (`setting`
/// names them in errors); returns the digest's first characters, which name the token in the
/// audit log without revealing it.
pub(crate) fn authorize_bearer(
    tokens: &[String],
    setting: &str,
    role: &str,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    if tokens.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadCredentials,
            format!("this API is disabled ({setting} is empty)"),
        )
        .with_http(StatusCode::FORBIDDEN));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| lienthong_store::sha256_hex(t.trim().as_bytes()));
    match given {
        Some(digest) if tokens.iter().any(|t| t.eq_ignore_ascii_case(&digest)) => {
            Ok(digest[..12].to_owned())
        }
        _ => Err(ApiError::new(
            ErrorCode::BadCredentials,
            format!("Authorization: Bearer <{role} token> is required"),
        )),
    }
}

/// `GET /admin/verdicts`: signature verdicts, filtered, as JSON or CSV.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    authorize_bearer(
        &state.config.security_tokens_sha256,
        "gateway.security_tokens_sha256",
        "security officer",
        &headers,
    )?;
    if let Some(o) = p.outcome.as_deref()
        && !["valid", "invalid", "unsigned"].contains(&o)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            format!("outcome: `{o}` is not valid, invalid or unsigned"),
        ));
    }
    let (from_ms, to_ms) = date_range(p.from_date.as_deref(), p.to_date.as_deref())?;
    let filter = VerdictFilter {
        outcome: p.outcome,
        signer: p.signer,
        issuer: p.issuer,
        sender: p.sender,
        from_ms,
        to_ms,
        limit: Some(p.limit.unwrap_or(1000).clamp(1, 100_000)),
    };
    let rows = state.store.verdicts(&filter).await?;
    match p.format.as_deref() {
        None | Some("json") => {
            let data: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "docId": r.doc_id,
                        "verifiedTime": format_ms(r.verified_ms),
                        "sender": r.sender,
                        "senderSystem": r.sender_system,
                        "outcome": r.outcome,
                        "reasonCode": r.reason_code,
                        "reason": r.reason,
                        "signer": r.signer,
                        "issuer": r.issuer,
                        "serial": r.serial,
                        "signatureMethod": r.signature_method,
                        "verdict": serde_json::from_str::<Value>(&r.verdict).unwrap_or(Value::Null),
                    })
                })
                .collect();
            Ok(Json(json!({ "success": true, "count": data.len(), "data": data })).into_response())
        }
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"verdicts.csv\"",
                ),
            ],
            crate::verdicts_csv(&rows),
        )
            .into_response()),
        Some(other) => Err(ApiError::new(
            ErrorCode::InvalidFile,
            format!("format: `{other}` is not json or csv"),
        )),
    }
}
