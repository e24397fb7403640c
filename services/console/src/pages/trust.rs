//! Certificates and CRLs (operators and security officers): when each trust anchor and
//! intermediate CA expires and each CRL falls due, soonest first, with a warning in time to
//! renew. Read from the verifier's own files, as it reads them.

use maud::{Markup, html};

use super::{layout, when};
use crate::users::Role;
use crate::{AppState, PageError, Session, TrustFiles, now_ms};
use axum::extract::State;
use lienthong_xmldsig::{Expiry, ExpiryKind, TrustStore};

/// What the verifier trusts now: its files, and the CRLs its fetcher keeps.
pub fn expiries(files: &TrustFiles) -> std::io::Result<Vec<Expiry>> {
    let crls: Vec<&std::path::Path> = files.crl_files.iter().map(|p| p.as_path()).collect();
    let mut trust = TrustStore::load(&files.trust_dir, &crls)?;
    if let Some(dir) = &files.intermediates_dir {
        trust.load_intermediates(dir)?;
    }
    if let Some(dir) = files.crl_cache_dir.as_ref().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "crl") {
                trust.add_crl(&std::fs::read(&path)?);
            }
        }
    }
    Ok(trust.expiries())
}

/// `expired`, `expiring` (within `warn_days`) or `ok`.
pub fn urgency(at: Option<i64>, now_secs: i64, warn_days: i64) -> &'static str {
    match at {
        Some(t) if t <= now_secs => "expired",
        Some(t) if t - now_secs <= warn_days * 86_400 => "expiring",
        _ => "ok",
    }
}

pub async fn page(State(state): State<AppState>, s: Session) -> Result<Markup, PageError> {
    s.require(&[Role::Operator, Role::Security])?;
    let l = s.lang;
    let now = now_ms() / 1000;
    let warn = state.config.warn_days;
    let body = match &state.config.trust {
        None => html! { p #no-trust { (l.t("no_trust")) } },
        Some(files) => {
            let files = files.clone();
            let list = tokio::task::spawn_blocking(move || expiries(&files))
                .await
                .map_err(|e| {
                    PageError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        e.to_string(),
                        l,
                    )
                })?
                .map_err(|e| {
                    PageError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        e.to_string(),
                        l,
                    )
                })?;
            let count = |u: &str| {
                list.iter()
                    .filter(|e| urgency(e.at, now, warn) == u)
                    .count()
            };
            html! {
                (super::bars("expiry-chart", &[
                    (l.t("expired").to_owned(), count("expired") as f64, "expired"),
                    (l.t("expiring").to_owned(), count("expiring") as f64, "expiring"),
                    (l.t("ok").to_owned(), count("ok") as f64, "ok"),
                ]))
                table #expiries {
                    thead { tr { th { (l.t("kind")) } th { (l.t("name")) } th { (l.t("issuer")) } th { (l.t("expires")) } th { (l.t("days_left")) } th { (l.t("state")) } } }
                    tbody {
                        @for e in &list {
                            @let u = urgency(e.at, now, warn);
                            tr class=(u) {
                                td { (match e.kind { ExpiryKind::Anchor => l.t("anchor"), ExpiryKind::Intermediate => l.t("intermediate"), ExpiryKind::Crl => l.t("crl") }) }
                                td { (e.name) }
                                td { (e.issuer) }
                                td { @if let Some(t) = e.at { (when(t * 1000)) } @else { "–" } }
                                td { @if let Some(t) = e.at { ((t - now).div_euclid(86_400)) } }
                                td.urgency { (l.t(u)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&s, "certificates", l.t("certificates"), body))
}

#[cfg(test)]
mod tests {
    use super::urgency;

    #[test]
    fn warnings_come_in_time_to_renew() {
        let day = 86_400;
        assert_eq!(urgency(Some(100 * day), 0, 30), "ok");
        assert_eq!(urgency(Some(30 * day), 0, 30), "expiring");
        assert_eq!(urgency(Some(0), 0, 30), "expired");
        assert_eq!(urgency(None, 0, 30), "ok", "a CRL with no next update");
    }
}
