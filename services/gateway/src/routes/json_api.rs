//! The JSON REST interface for modern adapters (`/json/v1`): packages are JSON documents of
//! `package.schema.json` instead of edXML files in multipart forms. Listing, transport status,
//! the registry and the trace answer as in `/v1`; `openapi.json` describes it all.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_edxml::Format;
use serde_json::{Value, json};

use super::get_edoc::{record_fetch, rendition_for, rendition_in, signature, summary};
use super::send::spool_body;
use super::stream::{self, Piece};
use super::{own_copies, visible_document};
use crate::AppState;
use crate::accept::accept_in;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};

const OPENAPI: &str = include_str!("../../openapi.json");

/// `POST /json/v1/packages`: an edoc or a status package as JSON. 201 with the `docId` when
/// accepted now, 200 with the same `docId` when the package was accepted before.
pub async fn send(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Spooled as it arrives: a package may be large.
    let body = spool_body(&state, body, None).await?;
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidFile,
            "body: a JSON package is required",
        ));
    }
    let accepted = accept_in(&state, &caller, Format::Json, None, body).await?;
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "success": true,
            "docId": accepted.doc_id,
            "duplicate": accepted.duplicate,
        })),
    ))
}

/// `GET /json/v1/packages/{docId}`: the package in the format the caller's agency receives
/// (`package` when that is JSON, base64 `content` otherwise), the sender's original as it was
/// signed, and the verifier's verdict. A sender reading what it sent gets its original.
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(doc_id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, legs) = visible_document(&state, &caller, &doc_id).await?;
    let copies = own_copies(&caller, &legs);
    let original = state.store.package_source(&doc).await?;
    let r = match copies.first() {
        Some(leg) => rendition_for(&state, &doc, &original, &leg.recipient).await?,
        None => rendition_in(&state, &doc, &original, doc.format).await?,
    };
    let (package, content) = (
        stream::placeholder("package"),
        stream::placeholder("original"),
    );
    let mut data = summary(&doc, &copies);
    data["format"] = r.format.as_str().into();
    data["size"] = r.size.into();
    data["sha256"] = r.sha256.into();
    data["original"] = json!({
        "format": doc.format,
        "size": doc.size,
        "sha256": doc.sha256,
        "content": content,
    });
    data["signature"] = signature(&state, &doc_id).await?.into();
    // Both streamed from the store: a JSON rendition goes in as the JSON it is.
    let mut large = vec![(content.as_str(), Piece::Base64(original))];
    if r.format == Format::Json {
        data["package"] = package.clone().into();
        large.push((package.as_str(), Piece::Raw(r.source)));
    } else {
        data["content"] = package.clone().into();
        large.push((package.as_str(), Piece::Base64(r.source)));
    }
    record_fetch(&state, &doc, &copies).await;
    let body = stream::json(&json!({ "success": true, "data": data }), large);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /json/v1/openapi.json`: this interface, described.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /json/v1/package.schema.json`: the JSON Schema of packages.
pub async fn package_schema() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        lienthong_translate::json::SCHEMA,
    )
}
