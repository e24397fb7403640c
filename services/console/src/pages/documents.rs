//! Documents: search by docId, DocumentId, agency or dates, a page at a time, newest first; and
//! any document's trace, every hop and status with its time, across buses. A viewer searches
//! only among its own agencies and sees only their documents.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{layout, when};
use crate::gateway::{As, GatewayError};
use crate::users::Role;
use crate::{AppState, PageError, Session};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    doc_id: Option<String>,
    document_id: Option<String>,
    agency: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    before: Option<String>,
}

fn filled(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether a viewer may see a document (its sender or a recipient is one of its agencies).
fn visible(s: &Session, doc: &Value) -> bool {
    s.user.sees(doc["from"].as_str().unwrap_or_default())
        || doc["copies"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| s.user.sees(c["to"].as_str().unwrap_or_default()))
        })
}

pub async fn search(
    State(state): State<AppState>,
    s: Session,
    Query(p): Query<SearchParams>,
) -> Result<Markup, PageError> {
    s.require(&[Role::Operator, Role::Viewer])?;
    let l = s.lang;
    let mut agency = filled(&p.agency);
    if s.user.role == Role::Viewer {
        // A viewer's search is always within one of its agencies.
        agency = Some(
            agency
                .filter(|a| s.user.sees(a))
                .unwrap_or_else(|| s.user.agencies[0].clone()),
        );
    }
    let mut query: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("docId", filled(&p.doc_id)),
        ("documentId", filled(&p.document_id)),
        ("agency", agency.clone()),
        ("fromDate", filled(&p.from_date)),
        ("toDate", filled(&p.to_date)),
        ("before", filled(&p.before)),
    ] {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    let answer = state
        .gateway
        .get(As::Operator, &s.user.name, "/admin/documents", &query)
        .await;
    let (rows, next, error) = match &answer {
        Ok(v) => (
            v["data"]
                .as_array()
                .map(|d| d.iter().filter(|d| visible(&s, d)).cloned().collect())
                .unwrap_or_default(),
            v["next"].as_str().map(str::to_owned),
            None,
        ),
        Err(GatewayError::Refused { message, .. }) => (Vec::new(), None, Some(message.clone())),
        Err(e) => return Err(PageError::gateway(l, e)),
    };
    let next_link = next.map(|n| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(k, _)| *k != "before") {
            q.append_pair(k, v);
        }
        q.append_pair("before", &n);
        format!("/documents?{}", q.finish())
    });
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        form.search #search method="get" action="/documents" {
            label { (l.t("doc_id")) input name="docId" value=(value(&p.doc_id)); }
            label { (l.t("document_id")) input name="documentId" value=(value(&p.document_id)); }
            label { (l.t("agency"))
                @if s.user.role == Role::Viewer {
                    select name="agency" {
                        @for a in &s.user.agencies {
                            option value=(a) selected[agency.as_deref() == Some(a.as_str())] { (a) }
                        }
                    }
                } @else {
                    input name="agency" value=(value(&p.agency)) placeholder="000.00.00.H00";
                }
            }
            label { (l.t("from_date")) input name="fromDate" value=(value(&p.from_date)) placeholder=(l.t("date_hint")); }
            label { (l.t("to_date")) input name="toDate" value=(value(&p.to_date)) placeholder=(l.t("date_hint")); }
            button #search-button type="submit" { (l.t("search")) }
        }
        @if let Some(e) = &error { p.error #error { (e) } }
        table #documents {
            thead { tr {
                th { (l.t("created")) } th { (l.t("doc_id")) } th { (l.t("document_id")) }
                th { (l.t("type")) } th { (l.t("sender")) } th { (l.t("subject")) } th { (l.t("copies")) }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="7" { (l.t("none")) } } }
                @for d in &rows {
                    @let id = d["docId"].as_str().unwrap_or_default();
                    tr {
                        td { (when(d["createdMs"].as_i64().unwrap_or_default())) }
                        td { a.doc href={ "/documents/" (id) } { (id) } }
                        td { (d["documentId"].as_str().unwrap_or_default()) }
                        td { (d["messageType"].as_str().unwrap_or_default()) }
                        td { (d["from"].as_str().unwrap_or_default()) }
                        td { (d["subject"].as_str().unwrap_or_default()) }
                        td { @for c in d["copies"].as_array().into_iter().flatten() {
                            span class={ "copy " (c["delivery"].as_str().unwrap_or_default()) } {
                                (c["to"].as_str().unwrap_or_default()) ": " (c["delivery"].as_str().unwrap_or_default())
                            } " "
                        } }
                    }
                }
            }
        }
        @if let Some(href) = next_link { p { a #next href=(href) { (l.t("next_page")) " →" } } }
    };
    Ok(layout(&s, "documents", l.t("documents"), body))
}

pub async fn trace(
    State(state): State<AppState>,
    s: Session,
    Path(doc_id): Path<String>,
) -> Result<Markup, PageError> {
    s.require(&[Role::Operator, Role::Viewer])?;
    let l = s.lang;
    let found = state
        .gateway
        .get(
            As::Operator,
            &s.user.name,
            "/admin/documents",
            &[("docId", doc_id.clone())],
        )
        .await
        .map_err(|e| PageError::gateway(l, &e))?;
    let Some(doc) = found["data"]
        .as_array()
        .and_then(|d| d.first())
        .filter(|d| visible(&s, d))
        .cloned()
    else {
        // Not there, or not this viewer's: the same answer.
        return Err(PageError::not_found(l, &doc_id));
    };
    let events = state
        .gateway
        .get(
            As::Operator,
            &s.user.name,
            &format!("/admin/documents/{doc_id}/trace"),
            &[],
        )
        .await
        .map_err(|e| match &e {
            GatewayError::Refused { status: 404, .. } => {
                PageError::new(StatusCode::NOT_FOUND, e.to_string(), l)
            }
            _ => PageError::gateway(l, &e),
        })?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let body = html! {
        dl.facts {
            dt { (l.t("doc_id")) } dd #doc-id { (doc_id) }
            dt { (l.t("document_id")) } dd { (text(&doc["documentId"])) }
            dt { (l.t("type")) } dd { (text(&doc["messageType"])) " · " (text(&doc["format"])) }
            dt { (l.t("sender")) } dd { (text(&doc["from"])) @if let Some(p) = doc["cameFrom"].as_str() { " (" (l.t("bus")) " " (p) ")" } }
            dt { (l.t("subject")) } dd { (text(&doc["subject"])) }
            dt { (l.t("created")) } dd { (when(doc["createdMs"].as_i64().unwrap_or_default())) }
        }
        h2 { (l.t("copies")) }
        table #copies {
            thead { tr { th { (l.t("recipient")) } th { (l.t("delivery")) } th { (l.t("transport")) } th { (l.t("status")) } th { (l.t("bus")) } th { (l.t("reason")) } } }
            tbody {
                @for c in doc["copies"].as_array().into_iter().flatten() {
                    tr {
                        td { (text(&c["to"])) }
                        td class=(text(&c["delivery"])) { (text(&c["delivery"])) }
                        td { (text(&c["transport"])) }
                        td { (c["businessStatus"].as_str().map(str::to_owned).unwrap_or_default()) }
                        td { (text(&c["bus"])) }
                        td { (text(&c["reason"])) }
                    }
                }
            }
        }
        h2 { (l.t("trace")) }
        ol.timeline #trace {
            @for e in events["data"].as_array().into_iter().flatten() {
                li class=(text(&e["kind"])) {
                    time { (when(e["at_ms"].as_i64().unwrap_or_default())) }
                    strong { (text(&e["kind"])) }
                    @if let Some(o) = e["organ"].as_str() { " · " (o) }
                    @if let Some(d) = e["detail"].as_str() { span.detail { (d) } }
                }
            }
        }
    };
    Ok(layout(
        &s,
        "documents",
        &format!("{} {doc_id}", l.t("trace")),
        body,
    ))
}
