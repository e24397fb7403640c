//! What operators mend: failed copies (look, retry once the cause is mended) and dead letters
//! (look, replay where they were published, discard). Each action goes through the gateway,
//! which records it in the audit log with the operator's name.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::json;

use super::{Form, Notice, back, form_token, layout, notice, when};
use crate::gateway::{As, Body};
use crate::users::Role;
use crate::{AppState, PageError, Session};

/// The first 200 rows of an operator's list.
async fn operator_list(
    state: &AppState,
    s: &Session,
    path: &str,
) -> Result<Vec<serde_json::Value>, PageError> {
    s.require(&[Role::Operator])?;
    let v = state
        .gateway
        .get(As::Operator, &s.user.name, path, &[("limit", "200".into())])
        .await
        .map_err(|e| PageError::gateway(s.lang, &e))?;
    Ok(v["data"].as_array().cloned().unwrap_or_default())
}

pub async fn failed(
    State(state): State<AppState>,
    s: Session,
    Query(n): Query<Notice>,
) -> Result<Markup, PageError> {
    let l = s.lang;
    let rows = operator_list(&state, &s, "/admin/failed").await?;
    let body = html! {
        (notice(l, &n))
        table #failed {
            thead { tr {
                th { (l.t("failed_at")) } th { (l.t("doc_id")) } th { (l.t("sender")) }
                th { (l.t("recipient")) } th { (l.t("reason")) } th {}
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="6" { (l.t("none")) } } }
                @for r in &rows {
                    @let id = r["docId"].as_str().unwrap_or_default();
                    @let to = r["to"].as_str().unwrap_or_default();
                    tr {
                        td { (when(r["failedMs"].as_i64().unwrap_or_default())) }
                        td { a href={ "/documents/" (id) } { (id) } }
                        td { (r["from"].as_str().unwrap_or_default()) }
                        td { (to) }
                        td.reason { (r["reason"].as_str().unwrap_or_default()) }
                        td {
                            form method="post" action="/failed/retry" {
                                (form_token(&s))
                                input type="hidden" name="docId" value=(id);
                                input type="hidden" name="to" value=(to);
                                button.retry type="submit" { (l.t("retry")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&s, "failed", l.t("failed_copies"), body))
}

pub async fn retry(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    let run = async {
        s.require(&[Role::Operator])?;
        let form = Form::checked(&s, &state, &body)?;
        let (doc_id, to) = (
            form.get("docId").unwrap_or_default().to_owned(),
            form.get("to").unwrap_or_default().to_owned(),
        );
        let result = state
            .gateway
            .post(
                As::Operator,
                &s.user.name,
                "/admin/failed/retry",
                Body::Json(json!({ "docId": doc_id, "to": to })),
            )
            .await
            .map(|_| format!("{doc_id} → {to}"))
            .map_err(|e| e.to_string());
        Ok::<_, PageError>(back("/failed", result))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn dead(
    State(state): State<AppState>,
    s: Session,
    Query(n): Query<Notice>,
) -> Result<Markup, PageError> {
    let l = s.lang;
    let rows = operator_list(&state, &s, "/admin/dead").await?;
    let body = html! {
        (notice(l, &n))
        form #dead-form method="post" action="/dead/settle" {
            (form_token(&s))
            table #dead {
                thead { tr {
                    th {} th { (l.t("time")) } th { (l.t("died_in")) } th { (l.t("reason")) }
                    th { (l.t("count")) } th { (l.t("doc_id")) } th { (l.t("detail")) }
                } }
                tbody {
                    @if rows.is_empty() { tr { td colspan="7" { (l.t("none")) } } }
                    @for r in &rows {
                        tr {
                            td { @if let Some(id) = r["messageId"].as_str() {
                                input type="checkbox" name="id" value=(id);
                            } }
                            td { @if let Some(t) = r["diedAt"].as_i64() { (when(t * 1000)) } }
                            td { (r["queue"].as_str().unwrap_or_default()) }
                            td { (r["reason"].as_str().unwrap_or_default()) }
                            td { (r["count"].as_i64().unwrap_or_default()) }
                            td { @if let Some(d) = r["docId"].as_str() { a href={ "/documents/" (d) } { (d) } } }
                            td.payload { code { (r["payload"].as_str().unwrap_or_default().chars().take(160).collect::<String>()) } }
                        }
                    }
                }
            }
            @if !rows.is_empty() {
                div.actions {
                    (l.t("selected")) ": "
                    button #replay type="submit" name="action" value="replay" { (l.t("replay")) }
                    button #discard type="submit" name="action" value="discard" { (l.t("discard")) }
                    " · "
                    button #replay-all type="submit" name="action" value="replay-all" { (l.t("replay_all")) }
                    button #discard-all type="submit" name="action" value="discard-all" { (l.t("discard_all")) }
                }
            }
        }
    };
    Ok(layout(&s, "dead", l.t("dead"), body))
}

pub async fn settle(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    let run = async {
        s.require(&[Role::Operator])?;
        let form = Form::checked(&s, &state, &body)?;
        let ids = form.all("id");
        let (path, request) = match form.get("action") {
            Some("replay") => ("/admin/dead/replay", json!({ "ids": ids })),
            Some("discard") => ("/admin/dead/discard", json!({ "ids": ids })),
            Some("replay-all") => ("/admin/dead/replay", json!({ "all": true })),
            Some("discard-all") => ("/admin/dead/discard", json!({ "all": true })),
            _ => return Ok(back("/dead", Err("action: replay or discard".into()))),
        };
        let result = state
            .gateway
            .post(As::Operator, &s.user.name, path, Body::Json(request))
            .await
            .map(|v| {
                format!(
                    "{} × {}",
                    form.get("action").unwrap_or_default(),
                    v["count"]
                )
            })
            .map_err(|e| e.to_string());
        Ok::<_, PageError>(back("/dead", result))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
