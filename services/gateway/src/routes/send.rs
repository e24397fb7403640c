use axum::Json;
use axum::extract::{Multipart, State};
use lienthong_edxml::{Format, MessageType};
use lienthong_store::{Body, SpoolError};
use serde_json::{Value, json};

use crate::AppState;
use crate::accept::{Broadcast, accept_to};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};

/// `POST /v1/sendEdoc`, multipart: `edocFile` (the package) and `messageType` (`edoc` | `status`).
pub async fn send_edoc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    mut form: Multipart,
) -> Result<Json<Value>, ApiError> {
    let limit = state.config.max_package_bytes;
    let mut file: Option<Body> = None;
    let mut message_type: Option<String> = None;
    let mut format: Option<String> = None;
    let mut broadcast: Option<String> = None;
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, limit)),
        };
        match field.name() {
            Some("edocFile") => {
                // Held while small, written to a spool file as it arrives once it is large: a
                // large package is never held whole.
                let mut spool = state.store.spool(limit as u64).await?;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_error(e, limit))?
                {
                    spool
                        .write(&chunk)
                        .await
                        .map_err(|e| spool_error(e, limit))?;
                }
                file = Some(spool.finish().await.map_err(|e| spool_error(e, limit))?);
            }
            Some("messageType") => {
                message_type = Some(field.text().await.map_err(|e| multipart_error(e, limit))?);
            }
            Some("format") => {
                format = Some(field.text().await.map_err(|e| multipart_error(e, limit))?);
            }
            Some("broadcast") => {
                broadcast = Some(field.text().await.map_err(|e| multipart_error(e, limit))?);
            }
            _ => {}
        }
    }
    let message_type = match message_type.as_deref().map(str::trim) {
        None | Some("") => MessageType::Edoc,
        Some(t) => t
            .parse::<MessageType>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("messageType: {}", e.0)))?,
    };
    let body = file.filter(|f| !f.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidFile,
            "edocFile: the multipart field is required and must not be empty",
        )
    })?;
    // Extension: `format` says which XML generation edocFile is in (edxml by default, or govn).
    let format = match format.as_deref().map(str::trim) {
        None | Some("") => Format::Edxml,
        Some(f) => f
            .parse::<Format>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("format: {e}")))?,
    };
    // Extension: `broadcast` = `CODE:level` sends a copy to every agency at that level under CODE.
    let broadcast = match broadcast.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(b) => Some(parse_broadcast(b)?),
    };
    let accepted = accept_to(&state, &caller, format, Some(message_type), body, broadcast).await?;
    let message = if accepted.duplicate {
        "already accepted: this package was sent before, nothing is delivered twice"
    } else {
        "accepted"
    };
    Ok(Json(
        json!({ "success": true, "message": message, "docId": accepted.doc_id }),
    ))
}

/// `CODE:level`, e.g. `000.00.00.H49:commune`.
fn parse_broadcast(text: &str) -> Result<Broadcast, ApiError> {
    let bad = |why: String| ApiError::new(ErrorCode::InvalidFile, format!("broadcast: {why}"));
    let (under, level) = text
        .split_once(':')
        .ok_or_else(|| bad(format!("`{text}` is not CODE:level")))?;
    lienthong_edxml::OrganId::parse(under).map_err(|e| bad(e.0))?;
    Ok(Broadcast {
        under: under.to_owned(),
        level: level.parse().map_err(bad)?,
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidFile,
        format!("edocFile: the package is larger than the {limit} bytes this bus accepts"),
    )
    .with_http(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
}

/// Takes a request body as it arrives (after `head`, when given), within the size limit: held
/// while small, spooled to a file once large, so a large package is never held whole.
pub(crate) async fn spool_body(
    state: &AppState,
    body: axum::body::Body,
    head: Option<&[u8]>,
) -> Result<Body, ApiError> {
    let limit = state.config.max_package_bytes;
    let extra = head.map_or(0, |h| h.len() as u64);
    let mut spool = state.store.spool(limit as u64 + extra).await?;
    if let Some(head) = head {
        spool.write(head).await.map_err(|e| spool_error(e, limit))?;
    }
    let mut stream = body.into_data_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidFile,
                format!("the request body could not be read: {e}"),
            )
        })?;
        spool
            .write(&chunk)
            .await
            .map_err(|e| spool_error(e, limit))?;
    }
    spool.finish().await.map_err(|e| spool_error(e, limit))
}

pub(crate) fn spool_error(e: SpoolError, limit: usize) -> ApiError {
    match e {
        SpoolError::TooLarge(_) => too_large(limit),
        SpoolError::Io(e) => ApiError::platform("the package could not be spooled", e),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(
            ErrorCode::InvalidFile,
            format!(
                "the request is not a readable multipart form: {}",
                e.body_text()
            ),
        )
    }
}
