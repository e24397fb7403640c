//! The registry (operators): agencies and their state (lock, unlock), connected systems (lock,
//! unlock), import of agencies as CSV, export. Changes apply to the next package.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::json;

use super::{Form, Notice, back, form_token, layout, notice};
use crate::gateway::{As, Body};
use crate::users::Role;
use crate::{AppState, PageError, Session};

#[derive(Debug, serde::Deserialize)]
pub struct RegistryParams {
    #[serde(flatten)]
    notice: Notice,
    /// `csv`: the registry as a file.
    format: Option<String>,
    /// Agencies whose code or name contains this.
    q: Option<String>,
}

/// How long the registry page waits for the AMQP adapter accounts.
const ADAPTERS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    Query(p): Query<RegistryParams>,
) -> Result<Response, PageError> {
    s.require(&[Role::Operator])?;
    let l = s.lang;
    if p.format.as_deref() == Some("csv") {
        let csv = state
            .gateway
            .get_bytes(
                As::Operator,
                &s.user.name,
                "/admin/registry",
                &[("format", "csv".into())],
            )
            .await
            .map_err(|e| PageError::gateway(l, &e))?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"registry.csv\"",
                ),
            ],
            csv,
        )
            .into_response());
    }
    // The three reads run together. The systems' AMQP adapter accounts come from the broker's
    // management API through the gateway (501 when it manages none); the page does not wait
    // more than a few seconds for them, and says so when they cannot be read.
    let (agencies, systems, adapters) = tokio::join!(
        state
            .gateway
            .get(As::Operator, &s.user.name, "/admin/registry", &[]),
        state
            .gateway
            .get(As::Operator, &s.user.name, "/admin/systems", &[]),
        tokio::time::timeout(
            ADAPTERS_WAIT,
            state
                .gateway
                .get(As::Operator, &s.user.name, "/admin/adapter-accounts", &[]),
        ),
    );
    let agencies = agencies.map_err(|e| PageError::gateway(l, &e))?;
    let systems = systems.map_err(|e| PageError::gateway(l, &e))?;
    let adapters = match adapters {
        Ok(Ok(v)) => Some(Ok(v)),
        Ok(Err(e)) if e.status() == 501 => None,
        Ok(Err(e)) => Some(Err(e.to_string())),
        Err(_) => Some(Err(format!(
            "no answer within {} s",
            ADAPTERS_WAIT.as_secs()
        ))),
    };
    let account_of = |id: &str| -> Option<serde_json::Value> {
        let Some(Ok(v)) = &adapters else { return None };
        v["data"]
            .as_array()?
            .iter()
            .find(|a| a["systemId"] == id)
            .map(|a| a["account"].clone())
    };
    let q = p.q.clone().unwrap_or_default().trim().to_lowercase();
    let agencies: Vec<_> = agencies["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            q.is_empty()
                || a["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&q)
                || a["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&q)
        })
        .cloned()
        .collect();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let body = html! {
        (notice(l, &p.notice))
        h2 { (l.t("systems")) }
        @match &adapters {
            Some(Ok(v)) => p #adapter-url { (l.t("adapter_url")) ": " code { (text(&v["url"])) } },
            Some(Err(e)) => p.error #adapter-error { (l.t("adapter_unavailable")) ": " (e) },
            None => {},
        }
        table #systems {
            thead { tr {
                th { (l.t("system_id")) } th { (l.t("name")) } th { (l.t("acts_for")) } th { (l.t("client_certificates")) }
                @if adapters.is_some() { th { (l.t("amqp_adapter")) } }
                th { (l.t("state")) } th {}
            } }
            tbody {
                @for sys in systems["data"].as_array().into_iter().flatten() {
                    @let id = text(&sys["system_id"]);
                    @let locked = sys["locked"].as_bool().unwrap_or(false);
                    tr id={ "system-" (id) } {
                        td { (id) }
                        td { (text(&sys["name"])) }
                        td { @for o in sys["organs"].as_array().into_iter().flatten() { (text(o)) " " } }
                        td.certificates {
                            @for c in sys["certificates"].as_array().into_iter().flatten() {
                                @let c = text(c);
                                form.unbind method="post" action="/registry/system-certificate" {
                                    (form_token(&s))
                                    input type="hidden" name="systemId" value=(id);
                                    input type="hidden" name="action" value="unbind";
                                    input type="hidden" name="certificate" value=(c);
                                    code title=(c) { (c.get(..16).unwrap_or(&c)) "…" } " "
                                    button.unbind type="submit" { (l.t("unbind")) }
                                }
                            }
                            form.bind method="post" action="/registry/system-certificate" {
                                (form_token(&s))
                                input type="hidden" name="systemId" value=(id);
                                input type="hidden" name="action" value="bind";
                                textarea name="certificate" rows="2" placeholder=(l.t("certificate_hint")) {}
                                button.bind type="submit" { (l.t("bind")) }
                            }
                        }
                        @if let Some(Ok(_)) = &adapters {
                            @let account = account_of(&id);
                            td.adapter {
                                @if let Some(a) = &account {
                                    span.adapter-login { (l.t(if a["login"] == "certificate" { "login_certificate" } else { "login_password" })) }
                                    @if a["suspended"] == true { " · " span.locked { (l.t("suspended")) } }
                                    br;
                                    code.adapter-queue { (text(&a["queue"])) }
                                    form.adapter-remove method="post" action="/registry/adapter-account" {
                                        (form_token(&s))
                                        input type="hidden" name="systemId" value=(id);
                                        input type="hidden" name="action" value="remove";
                                        button.remove-adapter type="submit" { (l.t("adapter_remove")) }
                                    }
                                }
                                @if !locked {
                                    form.adapter-grant method="post" action="/registry/adapter-account" {
                                        (form_token(&s))
                                        input type="hidden" name="systemId" value=(id);
                                        input type="hidden" name="action" value="grant";
                                        select name="login" {
                                            option value="password" { (l.t("login_password")) }
                                            option value="certificate" { (l.t("login_certificate")) }
                                        }
                                        button.grant-adapter type="submit" { (l.t(if account.is_some() { "adapter_rekey" } else { "adapter_create" })) }
                                    }
                                }
                            }
                        } @else if adapters.is_some() {
                            td.adapter { "–" }
                        }
                        td class=[locked.then_some("locked")] { (if locked { l.t("locked") } else { l.t("active") }) }
                        td {
                            form method="post" action="/registry/system-lock" {
                                (form_token(&s))
                                input type="hidden" name="systemId" value=(id);
                                input type="hidden" name="locked" value=(if locked { "false" } else { "true" });
                                button.lock type="submit" { (if locked { l.t("unlock") } else { l.t("lock") }) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (l.t("agencies")) " (" (agencies.len()) ")" }
        form.search method="get" action="/registry" {
            input #filter name="q" value=(p.q.clone().unwrap_or_default()) placeholder={ (l.t("code")) " / " (l.t("name")) };
            button type="submit" { (l.t("filter")) }
            a.button href="/registry?format=csv" { (l.t("export_csv")) }
        }
        table #agencies {
            thead { tr { th { (l.t("code")) } th { (l.t("name")) } th { (l.t("level")) } th { (l.t("bus")) } th { (l.t("state")) } th {} } }
            tbody {
                @for a in agencies.iter().take(500) {
                    @let code = text(&a["code"]);
                    @let state_now = text(&a["state"]);
                    tr id={ "agency-" (code) } {
                        td { (code) }
                        td { (text(&a["name"])) }
                        td { (text(&a["level"])) }
                        td { (text(&a["bus"])) }
                        td class=(state_now) { (state_now) }
                        td {
                            form method="post" action="/registry/agency-state" {
                                (form_token(&s))
                                input type="hidden" name="code" value=(code);
                                @if state_now == "locked" {
                                    input type="hidden" name="state" value="active";
                                    button.lock type="submit" { (l.t("unlock")) }
                                } @else if state_now == "active" {
                                    input type="hidden" name="state" value="locked";
                                    button.lock type="submit" { (l.t("lock")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (l.t("import")) }
        form #import method="post" action="/registry/import" {
            (form_token(&s))
            textarea name="csv" rows="6" cols="100" placeholder=(l.t("import_hint")) {}
            button type="submit" { (l.t("import")) }
        }
    };
    Ok(layout(&s, "registry", l.t("registry"), body).into_response())
}

async fn act(
    state: &AppState,
    s: &Session,
    body: &Bytes,
    call: impl AsyncFnOnce(&Form) -> Result<String, String>,
) -> Response {
    let run = async {
        s.require(&[Role::Operator])?;
        let form = Form::checked(s, state, body)?;
        Ok::<_, PageError>(back("/registry", call(&form).await))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn agency_state(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    act(&state, &s, &body, async |form| {
        let code = form.get("code").ok_or("code: required")?;
        let new = form.get("state").ok_or("state: required")?;
        state
            .gateway
            .post(
                As::Operator,
                &s.user.name,
                &format!("/admin/registry/{code}/state"),
                Body::Json(json!({ "state": new })),
            )
            .await
            .map(|_| format!("{code}: {new}"))
            .map_err(|e| e.to_string())
    })
    .await
}

pub async fn system_lock(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    act(&state, &s, &body, async |form| {
        let id = form.get("systemId").ok_or("systemId: required")?;
        let locked = form.get("locked") == Some("true");
        state
            .gateway
            .post(
                As::Operator,
                &s.user.name,
                &format!("/admin/systems/{id}/lock"),
                Body::Json(json!({ "locked": locked })),
            )
            .await
            .map(|_| format!("{id}: {}", if locked { "locked" } else { "unlocked" }))
            .map_err(|e| e.to_string())
    })
    .await
}

/// Binds a client certificate to a system (pasted as PEM, or its SHA-256), or unbinds one.
pub async fn system_certificate(
    State(state): State<AppState>,
    s: Session,
    body: Bytes,
) -> Response {
    act(&state, &s, &body, async |form| {
        let id = form.get("systemId").ok_or("systemId: required")?;
        let certificate = form
            .get("certificate")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or("certificate: paste the certificate (PEM) or its SHA-256")?;
        let done = match form.get("action") {
            Some("bind") => {
                let body = if certificate.contains("-----BEGIN") {
                    json!({ "certificatePem": certificate })
                } else {
                    json!({ "sha256": certificate })
                };
                state
                    .gateway
                    .post(
                        As::Operator,
                        &s.user.name,
                        &format!("/admin/systems/{id}/certificates"),
                        Body::Json(body),
                    )
                    .await
            }
            Some("unbind") => {
                if !certificate
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':')
                {
                    return Err("certificate: a SHA-256 fingerprint, in hexadecimal".into());
                }
                state
                    .gateway
                    .delete(
                        As::Operator,
                        &s.user.name,
                        &format!("/admin/systems/{id}/certificates/{certificate}"),
                    )
                    .await
            }
            _ => return Err("action: bind or unbind".into()),
        };
        done.map(|v| {
            format!(
                "{id}: {} {}",
                form.get("action").unwrap_or_default(),
                v["sha256"].as_str().unwrap_or_default()
            )
        })
        .map_err(|e| e.to_string())
    })
    .await
}

/// Makes (or re-keys) a system's AMQP adapter account, or removes it. A generated password is
/// shown on the answer to this request only: it is never in a URL, and every answer of the
/// console is `Cache-Control: no-store`.
pub async fn adapter_account(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    let run = async {
        s.require(&[Role::Operator])?;
        let form = Form::checked(&s, &state, &body)?;
        let l = s.lang;
        let Some(id) = form.get("systemId").filter(|id| !id.is_empty()) else {
            return Ok(back("/registry", Err("systemId: required".into())));
        };
        let path = format!("/admin/systems/{id}/adapter-account");
        let answer = match form.get("action") {
            Some("grant") => {
                let login = match form.get("login") {
                    Some(login @ ("password" | "certificate")) => login,
                    _ => {
                        return Ok(back(
                            "/registry",
                            Err("login: password or certificate".into()),
                        ));
                    }
                };
                state
                    .gateway
                    .put(As::Operator, &s.user.name, &path, json!({ "login": login }))
                    .await
            }
            Some("remove") => {
                state
                    .gateway
                    .delete(As::Operator, &s.user.name, &path)
                    .await
            }
            _ => return Ok(back("/registry", Err("action: grant or remove".into()))),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return Ok(back("/registry", Err(format!("{id}: {e}")))),
        };
        let Some(password) = answer["password"].as_str() else {
            let what = match form.get("action") {
                Some("remove") => "adapter account removed".to_owned(),
                _ => format!(
                    "adapter account ({}), queue {}",
                    answer["login"].as_str().unwrap_or_default(),
                    answer["queue"].as_str().unwrap_or_default()
                ),
            };
            return Ok(back("/registry", Ok(format!("{id}: {what}"))));
        };
        let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
        let body = html! {
            p.done #done { (l.t("adapter_made")) " " strong { (id) } }
            table #adapter-account {
                tbody {
                    tr { th { "URL" } td { code #adapter-account-url { (text("url")) } } }
                    tr { th { (l.t("user_name")) } td { code #adapter-user { (id) } } }
                    tr { th { (l.t("login_password")) } td { code #adapter-password { (password) } } }
                    tr { th { (l.t("queue")) } td { code #adapter-queue { (text("queue")) } } }
                    tr { th { (l.t("acts_for")) } td {
                        @for o in answer["organs"].as_array().into_iter().flatten() { code { (o.as_str().unwrap_or_default()) } " " }
                    } }
                }
            }
            p.warning #password-once { (l.t("adapter_password_once")) }
            p { a.button #back href="/registry" { (l.t("back_to_registry")) } }
        };
        Ok::<_, PageError>(layout(&s, "registry", l.t("amqp_adapter"), body).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn import(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    act(&state, &s, &body, async |form| {
        let csv = form.get("csv").ok_or("csv: paste the agencies as CSV")?;
        state
            .gateway
            .post(
                As::Operator,
                &s.user.name,
                "/admin/registry",
                Body::Raw {
                    content_type: "text/csv",
                    bytes: csv.as_bytes().to_vec(),
                },
            )
            .await
            .map(|v| format!("{} agencies", v["imported"]))
            .map_err(|e| e.to_string())
    })
    .await
}
