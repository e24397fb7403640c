//! The web console: a service of its own that operators, security officers and agency clerks
//! use from a browser. It keeps no document data: every page is read from the gateway's `/admin`
//! API (with the console's operator or security token, naming the signed-in person so the audit
//! log records who acted) and the live overview from the services' `/metrics`.
//!
//! Pages are rendered on the server (HTML that works without script); the overview's charts are
//! redrawn by a small script every few seconds. Labels are Vietnamese or English.

pub mod gateway;
pub mod i18n;
pub mod metrics;
pub mod overview;
mod pages;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Gateway;
use crate::i18n::Lang;
pub use crate::users::{ITERATIONS, Role, User, hash_password};

/// `[console]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where the console listens, e.g. `127.0.0.1:8090`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The gateway whose `/admin` API the console uses; absent: the gateway of this process
    /// (`gateway.listen`).
    pub gateway_url: Option<String>,
    /// The operator token the console presents (its SHA-256 must be in
    /// `gateway.operator_tokens_sha256`); absent when the gateway runs in the same process: a
    /// token is made at start. Environment: `LIENTHONG_CONSOLE_OPERATOR_TOKEN`.
    pub operator_token: Option<String>,
    /// The same for the security officer's pages (`gateway.security_tokens_sha256`).
    /// Environment: `LIENTHONG_CONSOLE_SECURITY_TOKEN`.
    pub security_token: Option<String>,
    /// The `/metrics` of every process of this bus, summed for the overview; empty: the
    /// gateway's.
    #[serde(default)]
    pub metrics_urls: Vec<String>,
    /// How often the overview reads them.
    #[serde(default = "default_sample_secs")]
    pub sample_secs: u64,
    /// A file holding the key sessions are signed with (32 bytes or more); absent: a key made at
    /// start, so sessions end when the console restarts. Give every console behind one load
    /// balancer the same file.
    pub session_key_file: Option<PathBuf>,
    /// How long a sign-in lasts.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// Cookies only over HTTPS (set it when the console is served behind TLS; always so with
    /// `[console.tls]`).
    #[serde(default)]
    pub secure_cookies: bool,
    /// HTTPS on the console's own port (`[console.tls]`: `cert_file`, `key_file`, and
    /// `client_ca_file` with `client_certificates` to admit only machines holding a
    /// certificate from that CA). Absent: plain HTTP, for a console behind a TLS proxy or on
    /// loopback.
    #[serde(default)]
    pub tls: Option<lienthong_https::HttpsConfig>,
    /// The CA that issued the gateway's certificate, when the gateway serves HTTPS itself
    /// (`gateway.tls`); added to the system's roots.
    #[serde(default)]
    pub gateway_ca_file: Option<PathBuf>,
    /// The console's client certificate and key (PEM) for a gateway that asks for one.
    #[serde(default)]
    pub gateway_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub gateway_key_file: Option<PathBuf>,
    /// Warn this many days before a certificate expires or a CRL falls due.
    #[serde(default = "default_warn_days")]
    pub warn_days: i64,
    #[serde(default)]
    pub users: Vec<User>,
    /// The verifier's trust files, for expiry warnings; filled from `[verifier]`.
    #[serde(skip)]
    pub trust: Option<TrustFiles>,
}

/// Where the verifier reads what it trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustFiles {
    pub trust_dir: PathBuf,
    pub intermediates_dir: Option<PathBuf>,
    pub crl_files: Vec<PathBuf>,
    /// The revocation fetcher's cache of CRLs.
    pub crl_cache_dir: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}
fn default_sample_secs() -> u64 {
    2
}
fn default_session_minutes() -> u64 {
    8 * 60
}
fn default_warn_days() -> i64 {
    30
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            gateway_url: None,
            operator_token: None,
            security_token: None,
            metrics_urls: Vec::new(),
            sample_secs: default_sample_secs(),
            session_key_file: None,
            session_minutes: default_session_minutes(),
            secure_cookies: false,
            tls: None,
            gateway_ca_file: None,
            gateway_cert_file: None,
            gateway_key_file: None,
            warn_days: default_warn_days(),
            users: Vec::new(),
            trust: None,
        }
    }
}

impl ConsoleConfig {
    /// What a TOML schema cannot say, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        users::check_users(&self.users)?;
        if self.sample_secs == 0 {
            return Err("console.sample_secs: must be at least 1".into());
        }
        for u in &self.metrics_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("console.metrics_urls: `{u}` is not an http(s) URL"));
            }
        }
        if self.gateway_cert_file.is_some() != self.gateway_key_file.is_some() {
            return Err(
                "console.gateway_cert_file and console.gateway_key_file go together".into(),
            );
        }
        if let Some(tls) = &self.tls {
            tls.acceptor("console.tls")?;
        }
        Ok(())
    }

    /// How the console reaches the gateway's `/admin` API: over HTTPS with the configured CA
    /// and client certificate, when there are any.
    fn gateway_http(&self) -> Result<lienthong_client::Tls, String> {
        Ok(lienthong_client::Tls {
            ca_file: self.gateway_ca_file.clone(),
            identity: self
                .gateway_cert_file
                .clone()
                .zip(self.gateway_key_file.clone()),
        })
    }

    /// Cookies only over HTTPS: when asked, and whenever the console serves HTTPS itself.
    pub(crate) fn secure(&self) -> bool {
        self.secure_cookies || self.tls.is_some()
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ConsoleConfig>,
    pub gateway: Gateway,
    pub sessions: users::Sessions,
    pub readings: overview::SharedReadings,
}

pub const SESSION_COOKIE: &str = "lt_console";
pub const LANG_COOKIE: &str = "lt_lang";

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The page's language: the cookie, else the browser's first choice among ours, else Vietnamese.
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .filter(|first| first.trim().starts_with("en"))
        .map_or(Lang::Vi, |_| Lang::En)
}

/// The signed-in person of a request.
#[derive(Clone)]
pub struct Session {
    pub user: User,
    pub lang: Lang,
    /// The token this session's forms carry.
    pub form_token: String,
    cookie: String,
}

impl Session {
    /// Refuses a page the role may not see.
    pub fn require(&self, roles: &[Role]) -> Result<(), PageError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(PageError::forbidden(self.lang))
        }
    }

    /// Checks a form's token (the form came from this console, in this session).
    pub fn check_form(&self, state: &AppState, token: &str) -> Result<(), PageError> {
        if state.sessions.form_token_matches(&self.cookie, token) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                self.lang.t("bad_form").to_owned(),
                self.lang,
            ))
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let query: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Redirect::to(&format!("/login?next={query}")).into_response()
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let Some(name) = state.sessions.check(value, now_ms()) else {
            return Err(to_login());
        };
        // The user as configured now: one removed from the configuration is signed out.
        let Some(user) = state.config.users.iter().find(|u| u.name == name) else {
            return Err(to_login());
        };
        Ok(Session {
            user: user.clone(),
            lang: lang_of(&parts.headers),
            form_token: state.sessions.form_token(value),
            cookie: value.to_owned(),
        })
    }
}

/// A page that could not be shown, with why, in the page's language.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub lang: Lang,
}

impl PageError {
    pub fn new(status: StatusCode, message: String, lang: Lang) -> Self {
        Self {
            status,
            message,
            lang,
        }
    }

    pub fn forbidden(lang: Lang) -> Self {
        Self::new(StatusCode::FORBIDDEN, lang.t("forbidden").to_owned(), lang)
    }

    pub fn not_found(lang: Lang, what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{}: {what}", lang.t("not_found")),
            lang,
        )
    }

    pub fn gateway(lang: Lang, e: &gateway::GatewayError) -> Self {
        Self::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY),
            format!("{}: {e}", lang.t("gateway_error")),
            lang,
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.status, pages::error_page(&self)).into_response()
    }
}

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    pages::router()
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Every answer: no framing by other sites, no sniffing, scripts and styles from the console
/// only, nothing cached.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, axum::http::HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    response
}

/// The session key: the configured file's bytes, or a new random key.
fn session_key(config: &ConsoleConfig) -> std::io::Result<users::Sessions> {
    match &config.session_key_file {
        Some(path) => {
            let key = std::fs::read(path).map_err(|e| {
                std::io::Error::other(format!("console.session_key_file {}: {e}", path.display()))
            })?;
            if key.len() < 32 {
                return Err(std::io::Error::other(format!(
                    "console.session_key_file {}: 32 bytes or more are required",
                    path.display()
                )));
            }
            Ok(users::Sessions::new(&key))
        }
        None => users::Sessions::random().map_err(std::io::Error::other),
    }
}

/// Binds the listener (port 0 picks a free port, for tests).
pub async fn bind(config: &ConsoleConfig) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves until `shutdown`, reading the metrics beside it. `gateway_url` is where the gateway
/// answers (the configured one, or this process's).
pub async fn serve(
    listener: TcpListener,
    config: ConsoleConfig,
    gateway_url: String,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    config.check().map_err(std::io::Error::other)?;
    if config.users.is_empty() {
        tracing::warn!(
            "console: no [[console.users]]; nobody can sign in (lienthong admin console-user makes one)"
        );
    }
    let http = config
        .gateway_http()
        .and_then(|tls| {
            tls.http_client()
                .map_err(|e| format!("console.gateway_*_file: {e}"))
        })
        .map_err(std::io::Error::other)?;
    let gateway = Gateway::new(
        &gateway_url,
        http,
        config.operator_token.clone(),
        config.security_token.clone(),
    );
    // Unreadable certificates stop the console at start, naming the key.
    let acceptor = config
        .tls
        .as_ref()
        .map(|tls| tls.acceptor("console.tls"))
        .transpose()
        .map_err(std::io::Error::other)?;
    let sources = if config.metrics_urls.is_empty() {
        vec![format!("{}/metrics", gateway.base())]
    } else {
        config.metrics_urls.clone()
    };
    let state = AppState {
        sessions: session_key(&config)?,
        gateway: gateway.clone(),
        readings: Arc::default(),
        config: Arc::new(config),
    };
    let sampler = tokio::spawn(overview::sample(
        gateway,
        sources,
        Duration::from_secs(state.config.sample_secs),
        state.readings.clone(),
        shutdown.clone(),
    ));
    let result = match acceptor {
        Some(acceptor) => lienthong_https::serve(listener, acceptor, app(state), shutdown).await,
        None => {
            let mut stop = shutdown.clone();
            axum::serve(listener, app(state))
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }
    };
    let _ = sampler.await;
    result
}
