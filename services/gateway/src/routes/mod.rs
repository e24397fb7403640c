//! One module per endpoint of the `/v1` interface, the JSON REST interface (`/json/v1`) and the
//! legacy SOAP interface (`/soap/v1`).

mod agencies;
mod get_edoc;
mod health;
mod json_api;
mod links;
mod operations;
mod received;
mod registry;
mod send;
mod sent;
mod soap;
mod stream;
mod trace;
mod update_status;
mod verdicts;

use axum::Router;
use axum::routing::{get, post};
use lienthong_store::{DeliveryState, DocumentRow, Leg, System};

pub(crate) use get_edoc::codes_for;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sendEdoc", post(send::send_edoc))
        .route(
            "/v1/getReceivedEdocList",
            get(received::get_received_edoc_list),
        )
        .route(
            "/v1/syncReceivedEdocList",
            get(received::get_received_edoc_list),
        )
        .route("/v1/getEdoc", get(get_edoc::get_edoc))
        .route("/v1/getEdocFile", get(get_edoc::get_edoc_file))
        .route("/v1/updateStatus", post(update_status::update_status))
        .route("/v1/getSentEdocList", get(sent::get_sent_edoc_list))
        .route("/v1/getAgenciesList", get(agencies::get_agencies_list))
        .route("/v1/getTrace", get(trace::get_trace))
        .route("/json/v1/packages", post(json_api::send))
        .route("/json/v1/packages/{doc_id}", get(json_api::get))
        .route("/json/v1/inbox", get(received::get_received_edoc_list))
        .route("/json/v1/sent", get(sent::get_sent_edoc_list))
        .route(
            "/json/v1/transportStatus",
            post(update_status::update_status),
        )
        .route("/json/v1/agencies", get(agencies::get_agencies_list))
        .route("/json/v1/trace", get(trace::get_trace))
        .route("/json/v1/openapi.json", get(json_api::openapi))
        .route(
            "/json/v1/package.schema.json",
            get(json_api::package_schema),
        )
        .route("/soap/v1", post(soap::soap))
        .route("/admin/verdicts", get(verdicts::list))
        .route(
            "/admin/registry",
            get(registry::export).post(registry::import),
        )
        .route("/admin/registry/merge", post(registry::merge))
        .route("/admin/links", get(links::list))
        .route("/admin/dead", get(operations::dead))
        .route("/admin/dead/replay", post(operations::replay))
        .route("/admin/dead/discard", post(operations::discard))
        .route("/admin/failed", get(operations::failed))
        .route("/admin/documents", get(operations::documents))
        .route("/admin/documents/{doc_id}/trace", get(operations::trace))
        .route("/admin/failed/retry", post(operations::retry))
        .route("/admin/registry/{code}/state", post(registry::set_state))
        .route("/admin/systems", get(registry::systems))
        .route("/admin/audit", get(operations::audit))
        .route(
            "/admin/systems/{system_id}/lock",
            post(registry::lock_system),
        )
        .route(
            "/admin/systems/{system_id}/certificates",
            post(registry::bind_certificate),
        )
        .route("/admin/adapter-accounts", get(registry::adapter_accounts))
        .route(
            "/admin/systems/{system_id}/adapter-account",
            get(registry::adapter_account)
                .put(registry::grant_adapter_account)
                .delete(registry::revoke_adapter_account),
        )
        .route(
            "/admin/systems/{system_id}/certificates/{sha256}",
            axum::routing::delete(registry::unbind_certificate),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
}

/// The caller's delivered copies of a document (what it may read as a recipient).
pub(crate) fn own_copies<'a>(caller: &System, legs: &'a [Leg]) -> Vec<&'a Leg> {
    legs.iter()
        .filter(|l| l.delivery == DeliveryState::Delivered && caller.acts_for(&l.recipient))
        .collect()
}

pub(crate) fn require_doc_id(doc_id: Option<&str>) -> Result<&str, ApiError> {
    doc_id
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidFile, "docId: the parameter is required"))
}

/// A document with its legs, if the caller sent it or holds a delivered copy of it.
pub(crate) async fn visible_document(
    state: &AppState,
    caller: &System,
    doc_id: &str,
) -> Result<(DocumentRow, Vec<Leg>), ApiError> {
    let doc = state
        .store
        .document(doc_id)
        .await?
        .ok_or_else(|| no_such_document(doc_id))?;
    let legs = state.store.legs(doc_id).await?;
    if caller.acts_for(&doc.sender) || !own_copies(caller, &legs).is_empty() {
        Ok((doc, legs))
    } else {
        Err(no_such_document(doc_id))
    }
}

/// Not found, or not the caller's to see: the same answer, so ids cannot be probed.
pub(crate) fn no_such_document(doc_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchDocument,
        format!("docId {doc_id}: no such document for this system"),
    )
}

/// A JSON request body, or error 10 naming what is wrong with it.
pub(crate) fn json_body<T>(
    body: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, crate::error::ApiError> {
    body.map(|axum::Json(b)| b).map_err(|e| {
        crate::error::ApiError::new(
            crate::error::ErrorCode::InvalidFile,
            format!("body: {}", e.body_text()),
        )
    })
}
