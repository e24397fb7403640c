//! Signature verdicts (security officers): filter by signer, issuer, sender, outcome and dates;
//! a chart of outcomes; export of the same filter as CSV.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{bars, layout};
use crate::gateway::{As, GatewayError};
use crate::users::Role;
use crate::{AppState, PageError, Session};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    outcome: Option<String>,
    signer: Option<String>,
    issuer: Option<String>,
    sender: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
}

impl Filter {
    fn query(&self) -> Vec<(&'static str, String)> {
        [
            ("outcome", &self.outcome),
            ("signer", &self.signer),
            ("issuer", &self.issuer),
            ("sender", &self.sender),
            ("fromDate", &self.from_date),
            ("toDate", &self.to_date),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| (k, v))
        })
        .collect()
    }
}

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    Query(f): Query<Filter>,
) -> Result<Markup, PageError> {
    s.require(&[Role::Security])?;
    let l = s.lang;
    let mut query = f.query();
    query.push(("limit", "500".into()));
    let (rows, error) = match state
        .gateway
        .get(As::Security, &s.user.name, "/admin/verdicts", &query)
        .await
    {
        Ok(v) => (v["data"].as_array().cloned().unwrap_or_default(), None),
        Err(GatewayError::Refused {
            status: 400,
            message,
        }) => (Vec::new(), Some(message)),
        Err(e) => return Err(PageError::gateway(l, &e)),
    };
    let count = |o: &str| rows.iter().filter(|r| r["outcome"] == o).count() as f64;
    let export: String = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in f.query() {
            q.append_pair(k, &v);
        }
        format!("/verdicts.csv?{}", q.finish())
    };
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let body = html! {
        form.search #filter method="get" action="/verdicts" {
            label { (l.t("outcome"))
                select name="outcome" {
                    option value="" { (l.t("any")) }
                    @for o in ["valid", "invalid", "unsigned"] {
                        option value=(o) selected[f.outcome.as_deref() == Some(o)] { (l.t(o)) }
                    }
                }
            }
            label { (l.t("signer")) input name="signer" value=(value(&f.signer)); }
            label { (l.t("issuer")) input name="issuer" value=(value(&f.issuer)); }
            label { (l.t("sender")) input name="sender" value=(value(&f.sender)); }
            label { (l.t("from_date")) input name="fromDate" value=(value(&f.from_date)) placeholder=(l.t("date_hint")); }
            label { (l.t("to_date")) input name="toDate" value=(value(&f.to_date)) placeholder=(l.t("date_hint")); }
            button #filter-button type="submit" { (l.t("filter")) }
            a.button #export href=(export) { (l.t("export_csv")) }
        }
        @if let Some(e) = &error { p.error #error { (e) } }
        h2 { (l.t("by_outcome")) }
        (bars("outcome-chart", &[
            (l.t("valid").to_owned(), count("valid"), "valid"),
            (l.t("invalid").to_owned(), count("invalid"), "invalid"),
            (l.t("unsigned").to_owned(), count("unsigned"), "unsigned"),
        ]))
        table #verdicts {
            thead { tr {
                th { (l.t("verified")) } th { (l.t("doc_id")) } th { (l.t("sender")) } th { (l.t("outcome")) }
                th { (l.t("signer")) } th { (l.t("issuer")) } th { (l.t("reason")) }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="7" { (l.t("none")) } } }
                @for r in &rows {
                    tr class=(text(&r["outcome"])) {
                        td { (text(&r["verifiedTime"])) }
                        td { (text(&r["docId"])) }
                        td { (text(&r["sender"])) }
                        td.outcome { (text(&r["outcome"])) }
                        td { (text(&r["signer"])) }
                        td { (text(&r["issuer"])) }
                        td { (text(&r["reason"])) }
                    }
                }
            }
        }
    };
    Ok(layout(&s, "verdicts", l.t("verdicts"), body))
}

/// The filtered verdicts as CSV, as the gateway exports them.
pub async fn export(
    State(state): State<AppState>,
    s: Session,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    s.require(&[Role::Security])?;
    let mut query = f.query();
    query.push(("format", "csv".into()));
    query.push(("limit", "100000".into()));
    let csv = state
        .gateway
        .get_bytes(As::Security, &s.user.name, "/admin/verdicts", &query)
        .await
        .map_err(|e| PageError::gateway(s.lang, &e))?;
    tracing::info!(user = %s.user.name, filter = ?f.query(), "console: verdicts exported");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"verdicts.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}
