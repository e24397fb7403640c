//! The live overview (operators): figures and charts redrawn every few seconds from
//! `/api/overview`, which joins the metrics readings with the links' backlog.

use axum::Json;
use axum::extract::State;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout;
use crate::gateway::As;
use crate::users::Role;
use crate::{AppState, PageError, Session};

pub async fn page(s: Session) -> Result<Markup, PageError> {
    s.require(&[Role::Operator])?;
    let l = s.lang;
    let body = html! {
        section.tiles {
            div.tile { h2 { (l.t("in_per_s")) } p.figure #in-per-s { "–" } }
            div.tile { h2 { (l.t("out_per_s")) } p.figure #out-per-s { "–" } }
            div.tile { h2 { (l.t("error_rate")) } p.figure #error-rate { "–" } }
            div.tile { h2 { (l.t("latency")) } p.figure #latency { "–" } }
        }
        section {
            h2 { (l.t("throughput")) }
            svg.chart #throughput viewBox="0 0 600 160" width="600" height="160" role="img"
                data-in=(l.t("in")) data-out=(l.t("out")) {}
        }
        section {
            h2 { (l.t("queues")) }
            table #queues {
                thead { tr { th { (l.t("queue")) } th { (l.t("messages")) } th { (l.t("consumers")) } } }
                tbody { tr { td colspan="3" { (l.t("waiting_data")) } } }
            }
        }
        section {
            h2 { (l.t("peers")) }
            table #peers data-none=(l.t("no_peers")) {
                thead { tr { th { (l.t("bus")) } th { (l.t("backlog")) } th { (l.t("forwarders")) } } }
                tbody { tr { td colspan="3" { (l.t("waiting_data")) } } }
            }
        }
        p.muted #sources {}
    };
    Ok(layout(&s, "overview", l.t("overview"), body))
}

/// `GET /api/overview`: what the page draws.
pub async fn figures(State(state): State<AppState>, s: Session) -> Result<Json<Value>, PageError> {
    s.require(&[Role::Operator])?;
    let figures = state
        .readings
        .lock()
        .map(|r| r.figures())
        .unwrap_or_default();
    let peers = match state
        .gateway
        .get(As::Operator, &s.user.name, "/admin/links", &[])
        .await
    {
        Ok(v) => v["data"].clone(),
        Err(e) => json!({ "error": e.to_string() }),
    };
    Ok(Json(json!({ "figures": figures, "peers": peers })))
}
