//! The audit log (operators and security officers): every administrative action, newest first,
//! with who did it (the console user, or the operator token used directly).

use axum::extract::State;
use maud::{Markup, html};

use super::{layout, when};
use crate::gateway::As;
use crate::users::Role;
use crate::{AppState, PageError, Session};

pub async fn page(State(state): State<AppState>, s: Session) -> Result<Markup, PageError> {
    s.require(&[Role::Operator, Role::Security])?;
    let l = s.lang;
    let who = if s.user.role == Role::Security {
        As::Security
    } else {
        As::Operator
    };
    let v = state
        .gateway
        .get(
            who,
            &s.user.name,
            "/admin/audit",
            &[("limit", "500".into())],
        )
        .await
        .map_err(|e| PageError::gateway(l, &e))?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let body = html! {
        table #audit {
            thead { tr { th { (l.t("time")) } th { (l.t("area")) } th { (l.t("agency")) } th { (l.t("who_did")) } } }
            tbody {
                @for e in v["data"].as_array().into_iter().flatten() {
                    tr {
                        td { (when(e["at_ms"].as_i64().unwrap_or_default())) }
                        td { (text(&e["kind"])) }
                        td { (text(&e["organ"])) }
                        td.detail { (text(&e["detail"])) }
                    }
                }
            }
        }
    };
    Ok(layout(&s, "audit", l.t("audit"), body))
}
