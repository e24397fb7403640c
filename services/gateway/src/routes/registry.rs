//! The registry API for operators (`/admin/registry`): read it (JSON or CSV), import agencies,
//! set an agency's state, merge agencies; connected systems (lock, bind client certificates).
//! Changes apply to the next package, with no restart,
//! and each is recorded in the ledger (the audit log) under `registry`, naming the operator's
//! token by its digest.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use lienthong_bus::messages::EventMessage;
use lienthong_https::PeerCertificate;
use lienthong_store::{AgencyState, BindError, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use super::verdicts::authorize_bearer;
use crate::error::{ApiError, ErrorCode};
use crate::{AppState, outbox_message};

/// Checks the operator token; returns who acts, as the audit log names them: the token by its
/// digest's first characters, and the person when a console acts for one (`X-Lienthong-Actor`,
/// believed only from a holder of an operator token).
pub(super) fn operator(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = authorize_bearer(
        &state.config.operator_tokens_sha256,
        "gateway.operator_tokens_sha256",
        "operator",
        headers,
    )?;
    match headers.get(ACTOR_HEADER) {
        None => Ok(format!("operator token {token}…")),
        Some(v) => {
            let actor = v.to_str().ok().filter(|a| valid_actor(a)).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidFile,
                    "X-Lienthong-Actor: 1 to 64 letters, digits or . _ @ -",
                )
            })?;
            Ok(format!("{actor} via the console, operator token {token}…"))
        }
    }
}

/// The person a console acts for.
pub const ACTOR_HEADER: &str = "x-lienthong-actor";

fn valid_actor(a: &str) -> bool {
    (1..=64).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// Records a change to the registry in the ledger.
async fn audit(state: &AppState, who: &str, organ: &str, detail: String) {
    record(state, who, "registry", organ, detail).await;
}

/// Records an administrative action in the ledger under the pseudo document `area` (kind
/// `area`). The change is made already: a ledger that cannot take the record now gets it from
/// the relay.
pub(super) async fn record(state: &AppState, who: &str, area: &str, organ: &str, detail: String) {
    let event = EventMessage::about(
        area,
        &format!("{area}:{}", uuid::Uuid::now_v7()),
        organ,
        Some(format!("{detail} ({who})")),
        now_ms(),
    );
    let row = outbox_message(&event.to_outgoing(state.publisher.topology()));
    match state.store.enqueue(&[row]).await {
        Ok(rows) => {
            if let Err(e) = state.publish_outbox(&rows).await {
                tracing::warn!(error = %e, "registry audit event left for the relay");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not record a registry change in the ledger"),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// `GET /admin/registry[?format=csv]`.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<ExportParams>,
) -> Result<Response, ApiError> {
    operator(&state, &headers)?;
    let agencies = state.store.agencies().await?;
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(
            json!({ "success": true, "count": agencies.len(), "data": agencies }),
        )
        .into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            lienthong_store::registry_csv(&agencies),
        )
            .into_response()),
        Some(other) => Err(ApiError::new(
            ErrorCode::InvalidFile,
            format!("format: `{other}` is not json or csv"),
        )),
    }
}

/// `POST /admin/registry`: agencies to add or replace, as JSON (the `getAgenciesList` shape) or
/// CSV (`Content-Type: text/csv`). Nothing changes unless every record is valid.
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidFile, "body: not UTF-8 text"))?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/csv"));
    let agencies = if csv {
        lienthong_store::registry_from_csv(text)
    } else {
        lienthong_store::registry_from_json(text)
    }
    .map_err(|e| ApiError::new(ErrorCode::NotConformant, format!("registry: {e}")))?;
    state.store.upsert_agencies(&agencies).await?;
    for a in &agencies {
        audit(
            &state,
            &who,
            &a.code,
            format!("{} added or replaced", a.code),
        )
        .await;
    }
    Ok(Json(json!({ "success": true, "imported": agencies.len() })))
}

#[derive(Debug, Deserialize)]
pub struct StateBody {
    state: String,
}

/// `POST /admin/registry/{code}/state` `{"state": "active" | "locked" | "retired"}`.
pub async fn set_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: Result<Json<StateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    let new: AgencyState = body
        .state
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("state: {e}")))?;
    if !state.store.set_agency_state(&code, new).await? {
        return Err(ApiError::new(
            ErrorCode::RecipientMissing,
            format!("{code}: no such agency in the registry"),
        ));
    }
    audit(&state, &who, &code, format!("{code} set {new}")).await;
    Ok(Json(json!({ "success": true, "code": code, "state": new })))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    codes: Vec<String>,
    into: String,
    /// The last day in service of the agencies merged away (default: today).
    on: Option<String>,
}

/// `POST /admin/registry/merge` `{"codes": [...], "into": "...", "on": "yyyy/MM/dd"}`.
pub async fn merge(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<MergeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    let day = match body.on {
        Some(d) => lienthong_edxml::EdxmlDate::parse(&d)
            .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("on: {e}")))?
            .to_string(),
        None => lienthong_store::today(),
    };
    let codes: Vec<&str> = body.codes.iter().map(String::as_str).collect();
    if codes.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidFile, "codes: none given"));
    }
    if let Err(why) = state.store.merge_agencies(&codes, &body.into, &day).await? {
        return Err(ApiError::new(ErrorCode::RecipientMissing, why));
    }
    for code in &codes {
        audit(
            &state,
            &who,
            code,
            format!("{code} merged into {} (last day {day})", body.into),
        )
        .await;
    }
    Ok(Json(
        json!({ "success": true, "merged": codes, "into": body.into, "lastDay": day }),
    ))
}

/// `GET /admin/systems`: the connected systems, the agencies each acts for, and whether it is
/// locked (never their secrets, which the bus does not keep).
pub async fn systems(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let systems = state.store.systems().await?;
    Ok(Json(
        json!({ "success": true, "count": systems.len(), "data": systems }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct LockBody {
    locked: bool,
}

/// `POST /admin/systems/{systemId}/lock` `{"locked": true | false}`: a locked system is refused
/// at once (error 11), its inbox kept for when it is unlocked.
pub async fn lock_system(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system_id): Path<String>,
    body: Result<Json<LockBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    if !state
        .store
        .set_system_locked(&system_id, body.locked)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::BadCredentials,
            format!("{system_id}: no such connected system"),
        )
        .with_http(axum::http::StatusCode::NOT_FOUND));
    }
    let verb = if body.locked { "locked" } else { "unlocked" };
    record(
        &state,
        &who,
        "registry",
        &system_id,
        format!("system {system_id} {verb}"),
    )
    .await;
    Ok(Json(
        json!({ "success": true, "systemId": system_id, "locked": body.locked }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateBody {
    /// The certificate's SHA-256 fingerprint (64 hex digits, colons allowed).
    #[serde(default)]
    sha256: Option<String>,
    /// Or the certificate itself, PEM.
    #[serde(default)]
    certificate_pem: Option<String>,
}

/// `POST /admin/systems/{systemId}/certificates` `{"certificatePem": "..."}` or
/// `{"sha256": "..."}`: binds a client certificate to the system. From then on the system is
/// admitted only over HTTPS presenting one of its bound certificates, and the certificate admits
/// no other system.
pub async fn bind_certificate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system_id): Path<String>,
    body: Result<Json<CertificateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    let invalid =
        |field: &str, e: String| ApiError::new(ErrorCode::InvalidFile, format!("{field}: {e}"));
    let certificate = match (&body.certificate_pem, &body.sha256) {
        (Some(pem), None) => {
            PeerCertificate::from_pem(pem.as_bytes()).map_err(|e| invalid("certificatePem", e))?
        }
        (None, Some(h)) => PeerCertificate::from_sha256(h).map_err(|e| invalid("sha256", e))?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidFile,
                "body: give exactly one of certificatePem and sha256",
            ));
        }
    };
    match state
        .store
        .bind_certificate(&system_id, &certificate.sha256)
        .await?
    {
        Ok(()) => {}
        Err(e @ BindError::UnknownSystem(_)) => {
            return Err(ApiError::new(ErrorCode::BadCredentials, e.to_string())
                .with_http(axum::http::StatusCode::NOT_FOUND));
        }
        Err(e @ BindError::BoundToAnother(_)) => {
            return Err(ApiError::new(ErrorCode::IllegalTransition, e.to_string()));
        }
    }
    Ok(certificate_changed(&state, &who, &system_id, "bound to", &certificate).await)
}

/// `DELETE /admin/systems/{systemId}/certificates/{sha256}`: unbinds it; with none left the
/// system is admitted on its secret alone again.
pub async fn unbind_certificate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((system_id, sha256)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let certificate = PeerCertificate::from_sha256(&sha256)
        .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("path sha256: {e}")))?;
    if !state
        .store
        .unbind_certificate(&system_id, &certificate.sha256)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::NoSuchDocument,
            format!(
                "the certificate {} is not bound to system {system_id}",
                certificate.sha256
            ),
        ));
    }
    Ok(certificate_changed(&state, &who, &system_id, "unbound from", &certificate).await)
}

/// Records a binding's change in the audit log and answers it.
async fn certificate_changed(
    state: &AppState,
    who: &str,
    system_id: &str,
    verb: &str,
    certificate: &PeerCertificate,
) -> Json<Value> {
    let sha256 = &certificate.sha256;
    let detail = format!("system {system_id} {verb} the client certificate {sha256}");
    record(state, who, "registry", system_id, detail).await;
    Json(json!({ "success": true, "systemId": system_id, "sha256": sha256 }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_actor_is_a_plain_name_that_cannot_forge_an_audit_line() {
        assert!(super::valid_actor("an.nguyen@stttt-hue"));
        assert!(!super::valid_actor(""));
        assert!(!super::valid_actor("an) (operator token fake"));
        assert!(!super::valid_actor(&"a".repeat(65)));
    }
}

/// The management API of `[amqp_adapters]`, or why there is none.
fn adapters(state: &AppState) -> Result<&lienthong_bus::adapters::Management, ApiError> {
    state.config.adapters.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidFile,
            "this gateway manages no AMQP adapter accounts: its configuration has no [amqp_adapters]",
        )
        .with_http(axum::http::StatusCode::NOT_IMPLEMENTED)
    })
}

fn management_error(e: lienthong_bus::adapters::ManagementError) -> ApiError {
    match e {
        e @ lienthong_bus::adapters::ManagementError::ForeignUser(_) => {
            ApiError::new(ErrorCode::IllegalTransition, e.to_string())
        }
        other => ApiError::platform("RabbitMQ's management API failed", other),
    }
}

async fn known_system(
    state: &AppState,
    system_id: &str,
) -> Result<lienthong_store::System, ApiError> {
    state.store.system(system_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadCredentials,
            format!("{system_id}: no such connected system"),
        )
        .with_http(axum::http::StatusCode::NOT_FOUND)
    })
}

/// `GET /admin/adapter-accounts`: every system's broker account for its AMQP adapter, as
/// [`adapter_account`] gives one, with the URL adapters connect to.
pub async fn adapter_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let management = adapters(&state)?;
    let accounts = management.accounts().await.map_err(management_error)?;
    let data: Vec<Value> = accounts
        .into_iter()
        .map(|(system_id, account)| json!({ "systemId": system_id, "account": account }))
        .collect();
    Ok(Json(
        json!({ "success": true, "url": management.adapter_url(), "data": data }),
    ))
}

/// `GET /admin/systems/{systemId}/adapter-account`: the system's broker account for its AMQP
/// adapter: `login` (`password` or `certificate`), `suspended`, `queue`, `bindings`; 404 (24)
/// when it has none.
pub async fn adapter_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers)?;
    let management = adapters(&state)?;
    known_system(&state, &system_id).await?;
    match management
        .account(&system_id)
        .await
        .map_err(management_error)?
    {
        Some(account) => Ok(Json(
            json!({ "success": true, "systemId": system_id, "account": account }),
        )),
        None => Err(ApiError::new(
            ErrorCode::NoSuchDocument,
            format!("system {system_id} has no adapter account"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdapterAccountBody {
    /// `password` (the default) or `certificate` (EXTERNAL: a client certificate whose common
    /// name is the system id).
    #[serde(default)]
    login: Option<String>,
    /// For `password`: this one instead of a generated one.
    #[serde(default)]
    password: Option<String>,
}

/// `PUT /admin/systems/{systemId}/adapter-account` `{"login": "password" | "certificate"}`:
/// makes (or re-keys) the system's broker account. A generated password is in the answer, once.
pub async fn grant_adapter_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system_id): Path<String>,
    body: Result<Json<AdapterAccountBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    use lienthong_bus::adapters::Login;
    let who = operator(&state, &headers)?;
    let body = super::json_body(body)?;
    let management = adapters(&state)?;
    let system = known_system(&state, &system_id).await?;
    if system.locked {
        return Err(ApiError::new(
            ErrorCode::IllegalTransition,
            format!("system {system_id} is locked: unlock it first"),
        ));
    }
    let (login, generated) = match (body.login.as_deref().unwrap_or("password"), body.password) {
        ("certificate", None) => (Login::Certificate, None),
        ("certificate", Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidFile,
                "password: a certificate account has no password",
            ));
        }
        ("password", Some(p)) if p.len() < 16 => {
            return Err(ApiError::new(
                ErrorCode::InvalidFile,
                "password: at least 16 characters",
            ));
        }
        ("password", Some(p)) => (Login::Password(p), None),
        ("password", None) => {
            let p = lienthong_store::new_secret()
                .map_err(|e| ApiError::platform("no randomness for a password", e))?;
            (Login::Password(p.clone()), Some(p))
        }
        (other, _) => {
            return Err(ApiError::new(
                ErrorCode::InvalidFile,
                format!("login: `{other}` is neither password nor certificate"),
            ));
        }
    };
    management
        .grant(&system_id, &system.organs, &login)
        .await
        .map_err(management_error)?;
    let kind = if login == Login::Certificate {
        "client certificate"
    } else {
        "password"
    };
    record(
        &state,
        &who,
        "registry",
        &system_id,
        format!("broker account of system {system_id} set ({kind})"),
    )
    .await;
    let mut answer = json!({
        "success": true,
        "systemId": system_id,
        "login": if login == Login::Certificate { "certificate" } else { "password" },
        "url": management.adapter_url(),
        "queue": management.queue(&system_id),
        "organs": system.organs,
    });
    if let Some(p) = generated {
        answer["password"] = json!(p);
    }
    Ok(Json(answer))
}

/// `DELETE /admin/systems/{systemId}/adapter-account`: removes the account, its connections and
/// its queue.
pub async fn revoke_adapter_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = operator(&state, &headers)?;
    let management = adapters(&state)?;
    if !management
        .revoke(&system_id)
        .await
        .map_err(management_error)?
    {
        return Err(ApiError::new(
            ErrorCode::NoSuchDocument,
            format!("system {system_id} has no adapter account"),
        ));
    }
    record(
        &state,
        &who,
        "registry",
        &system_id,
        format!("broker account of system {system_id} removed"),
    )
    .await;
    Ok(Json(json!({ "success": true, "systemId": system_id })))
}
