//! The console's pages: one module per area, sharing the layout, the sign-in, the language
//! switch and the static assets.

mod audit;
mod documents;
mod operations;
mod overview;
mod registry;
mod trust;
mod verdicts;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::users::{Role, password_matches};
use crate::{AppState, LANG_COOKIE, PageError, SESSION_COOKIE, Session, lang_of, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(set_lang))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/healthz", get(|| async { "ok" }))
        .route("/overview", get(overview::page))
        .route("/api/overview", get(overview::figures))
        .route("/documents", get(documents::search))
        .route("/documents/{doc_id}", get(documents::trace))
        .route("/failed", get(operations::failed))
        .route("/failed/retry", post(operations::retry))
        .route("/dead", get(operations::dead))
        .route("/dead/settle", post(operations::settle))
        .route("/registry", get(registry::page))
        .route("/registry/import", post(registry::import))
        .route("/registry/agency-state", post(registry::agency_state))
        .route("/registry/system-lock", post(registry::system_lock))
        .route(
            "/registry/system-certificate",
            post(registry::system_certificate),
        )
        .route("/registry/adapter-account", post(registry::adapter_account))
        .route("/certificates", get(trust::page))
        .route("/verdicts", get(verdicts::page))
        .route("/verdicts.csv", get(verdicts::export))
        .route("/audit", get(audit::page))
}

/// Who sees which pages, in the order of the menu.
const MENU: &[(&str, &str, &[Role])] = &[
    ("/overview", "overview", &[Role::Operator]),
    ("/documents", "documents", &[Role::Operator, Role::Viewer]),
    ("/failed", "failed", &[Role::Operator]),
    ("/dead", "dead", &[Role::Operator]),
    ("/registry", "registry", &[Role::Operator]),
    ("/verdicts", "verdicts", &[Role::Security]),
    (
        "/certificates",
        "certificates",
        &[Role::Operator, Role::Security],
    ),
    ("/audit", "audit", &[Role::Operator, Role::Security]),
];

/// The page a role starts on.
fn start_page(role: Role) -> &'static str {
    MENU.iter()
        .find(|(_, _, roles)| roles.contains(&role))
        .map_or("/documents", |(path, _, _)| path)
}

/// A whole page: the header with the menu of the user's role, then `body`.
pub(crate) fn layout(s: &Session, active: &str, title: &str, body: Markup) -> Markup {
    let l = s.lang;
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lienthong" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "lienthong" span { (l.t("app")) } }
                    nav {
                        @for (path, key, roles) in MENU {
                            @if roles.contains(&s.user.role) {
                                a href=(path) class=[(active == *key).then_some("active")] { (l.t(key)) }
                            }
                        }
                    }
                    div.who {
                        span #user { (s.user.name) " · " (l.t(&format!("role_{}", s.user.role.as_str()))) }
                        a #lang href={ "/lang/" (other(l).code()) "?next=/" (active) } { (l.t("language")) }
                        form method="post" action="/logout" {
                            input type="hidden" name="form" value=(s.form_token);
                            button #logout type="submit" { (l.t("logout")) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn other(l: Lang) -> Lang {
    match l {
        Lang::Vi => Lang::En,
        Lang::En => Lang::Vi,
    }
}

pub(crate) fn error_page(e: &PageError) -> Markup {
    let l = e.lang;
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                title { (e.status.as_u16()) " · lienthong" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body.bare {
                main {
                    p.error #error { (e.message) }
                    p { a href="/" { "lienthong" } }
                }
            }
        }
    }
}

/// A form as posted (`application/x-www-form-urlencoded`): fields may repeat (checkboxes).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &Bytes) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Checks the session's form token, then gives the form.
    pub(crate) fn checked(s: &Session, state: &AppState, body: &Bytes) -> Result<Self, PageError> {
        let form = Self::parse(body);
        s.check_form(state, form.get("form").unwrap_or_default())?;
        Ok(form)
    }
}

/// A hidden field with the session's form token.
pub(crate) fn form_token(s: &Session) -> Markup {
    html! { input type="hidden" name="form" value=(s.form_token); }
}

/// Epoch milliseconds as Vietnam time, `yyyy/MM/dd HH:mm:ss`, as the REST interface writes times.
pub(crate) fn when(ms: i64) -> String {
    lienthong_edxml::Timestamp::from_unix_ms(ms).to_string()
}

/// A notice after an action (`?done=...`), or an error (`?error=...`).
#[derive(Debug, Deserialize, Default)]
pub(crate) struct Notice {
    pub done: Option<String>,
    pub error: Option<String>,
}

pub(crate) fn notice(l: Lang, n: &Notice) -> Markup {
    html! {
        @if let Some(d) = &n.done { p.done #done { (l.t("done")) ": " (d) } }
        @if let Some(e) = &n.error { p.error #error { (e) } }
    }
}

/// Back to `path` with a notice of what was done or what went wrong.
pub(crate) fn back(path: &str, result: Result<String, String>) -> Response {
    let (k, v) = match result {
        Ok(d) => ("done", d),
        Err(e) => ("error", e),
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(k, &v)
        .finish();
    Redirect::to(&format!("{path}?{q}")).into_response()
}

async fn home(s: Session) -> Redirect {
    Redirect::to(start_page(s.user.role))
}

#[derive(Debug, Deserialize)]
struct LoginParams {
    next: Option<String>,
    failed: Option<String>,
}

/// Only a path of this console: never an address elsewhere.
fn local_path(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
        .to_owned()
}

async fn login_page(headers: HeaderMap, Query(p): Query<LoginParams>) -> Markup {
    let l = lang_of(&headers);
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                title { (l.t("login")) " · lienthong" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body.bare {
                main.login {
                    h1 { "lienthong" }
                    p { (l.t("app")) }
                    @if p.failed.is_some() { p.error #error { (l.t("bad_login")) } }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(local_path(p.next.as_deref()));
                        label { (l.t("user")) input #name name="name" autocomplete="username" required autofocus; }
                        label { (l.t("password")) input #password name="password" type="password" autocomplete="current-password" required; }
                        button #signin type="submit" { (l.t("login")) }
                    }
                    p { a href={ "/lang/" (other(l).code()) "?next=/login" } { (l.t("language")) } }
                }
            }
        }
    }
}

/// Hashes with this many iterations stand in for unknown users, so the answer takes as long.
const DUMMY_HASH: &str =
    "pbkdf2-sha256$600000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let name = form.get("name").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default().to_owned();
    let next = local_path(form.get("next"));
    let user = state.config.users.iter().find(|u| u.name == name).cloned();
    let stored = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password.clone());
    let matches = tokio::task::spawn_blocking(move || password_matches(&stored, &password))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        tracing::warn!(user = %name, "console: sign-in refused");
        metrics::counter!("lienthong_console_logins_total", "outcome" => "refused").increment(1);
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .append_pair("failed", "1")
            .finish();
        return Redirect::to(&format!("/login?{q}")).into_response();
    };
    tracing::info!(user = %user.name, role = user.role.as_str(), "console: signed in");
    metrics::counter!("lienthong_console_logins_total", "outcome" => "signed_in").increment(1);
    let minutes = i64::try_from(state.config.session_minutes).unwrap_or(480);
    let value = state
        .sessions
        .issue(&user.name, now_ms() + minutes * 60_000);
    let secure = if state.config.secure() {
        "; Secure"
    } else {
        ""
    };
    let target = if next == "/" {
        start_page(user.role).to_owned()
    } else {
        next
    };
    (
        [(
            header::SET_COOKIE,
            format!(
                "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                minutes * 60
            ),
        )],
        Redirect::to(&target),
    )
        .into_response()
}

async fn logout(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    if let Err(e) = Form::checked(&s, &state, &body) {
        return e.into_response();
    }
    tracing::info!(user = %s.user.name, "console: signed out");
    (
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

async fn set_lang(
    axum::extract::Path(code): axum::extract::Path<String>,
    Query(p): Query<Next>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    (
        [(
            header::SET_COOKIE,
            format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                lang.code()
            ),
        )],
        Redirect::to(&local_path(p.next.as_deref())),
    )
        .into_response()
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../assets/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../assets/console.js"),
    )
}

/// A bar chart (SVG) of labelled counts: where people would rather look than read.
pub(crate) fn bars(id: &str, items: &[(String, f64, &str)]) -> Markup {
    let max = items
        .iter()
        .map(|(_, v, _)| *v)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let row = 26.0;
    let height = row * items.len() as f64 + 4.0;
    html! {
        svg.chart id=(id) viewBox={ "0 0 600 " (height) } width="600" height=(height) role="img" {
            @for (i, (label, value, class)) in items.iter().enumerate() {
                @let y = i as f64 * row + 2.0;
                text x="0" y=(y + 16.0) { (label) }
                rect class=(class) x="200" y=(y + 2.0) width=(((value / max) * 330.0).max(1.0)) height=(row - 8.0) {}
                text x=(206.0 + (value / max) * 330.0) y=(y + 16.0) { (value) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_console_are_followed_after_sign_in() {
        assert_eq!(
            local_path(Some("/documents?agency=x")),
            "/documents?agency=x"
        );
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn times_are_shown_in_vietnam_time() {
        assert_eq!(when(0), "1970/01/01 07:00:00");
    }

    #[test]
    fn each_role_starts_on_a_page_it_may_see() {
        assert_eq!(start_page(Role::Operator), "/overview");
        assert_eq!(start_page(Role::Security), "/verdicts");
        assert_eq!(start_page(Role::Viewer), "/documents");
    }
}
