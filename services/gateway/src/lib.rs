//! The gateway: the REST interface agency systems already speak (`/v1/...`), authentication of
//! connected systems, synchronous validation, and durable acceptance.
//!
//! A package is accepted in one store transaction (bytes, document, legs, business status, outbox
//! messages), then its outbox messages are published with confirms, and only then does the caller
//! get `success:true`. If the broker is away the caller gets error 20 with `Retry-After`; the
//! package stays accepted, the relay publishes it when the broker returns, and a resubmission
//! returns the same `docId` without delivering anything twice.

mod accept;
mod acceptances;
mod auth;
mod error;
mod export;
mod routes;
mod time_fmt;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use lienthong_bus::{BusConfig, Publisher};
use lienthong_store::{OutboxRow, Store};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use accept::{Accepted, accept_forwarded};
pub use error::{ApiError, ErrorCode};
pub use export::verdicts_csv;
pub use lienthong_https::ClientCertificates;
pub use time_fmt::date_range;
/// `[gateway.tls]`: HTTPS on the gateway's port.
pub type GatewayTls = lienthong_https::HttpsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where to listen, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest package accepted, in bytes.
    #[serde(default = "default_max_package")]
    pub max_package_bytes: usize,
    /// The document stages every package passes, in order; the router is always last.
    #[serde(default = "default_stages")]
    pub document_stages: Vec<String>,
    /// How old an unpublished outbox message must be before the relay publishes it.
    #[serde(default = "default_relay_age")]
    pub relay_after_ms: u64,
    /// SHA-256 (hex) of the bearer tokens security officers use for `/admin/verdicts`; empty
    /// disables the endpoint. `lienthong admin token` makes one.
    #[serde(default)]
    pub security_tokens_sha256: Vec<String>,
    /// SHA-256 (hex) of the bearer tokens operators use for `/admin/registry`; empty disables
    /// it. `lienthong admin token` makes one.
    #[serde(default)]
    pub operator_tokens_sha256: Vec<String>,
    /// The parent bus, when there is one (`[federation]`): a recipient this bus's registry does
    /// not know is accepted and goes there, whose registry knows more. Filled from
    /// `[federation]`.
    #[serde(skip)]
    pub parent_bus: Option<String>,
    /// HTTPS on `listen`, with client certificates when `client_ca_file` is set; absent: plain
    /// HTTP (for TLS ended in front of the gateway).
    #[serde(default)]
    pub tls: Option<GatewayTls>,
    /// RabbitMQ's management API for the AMQP adapters' accounts (`/admin/systems/{id}/
    /// adapter-account`). Filled from `[amqp_adapters]`.
    #[serde(skip)]
    pub adapters: Option<lienthong_bus::adapters::Management>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_package() -> usize {
    64 * 1024 * 1024
}
fn default_stages() -> Vec<String> {
    vec!["router".into()]
}
fn default_relay_age() -> u64 {
    3_000
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_package_bytes: default_max_package(),
            document_stages: default_stages(),
            relay_after_ms: default_relay_age(),
            security_tokens_sha256: Vec::new(),
            operator_tokens_sha256: Vec::new(),
            parent_bus: None,
            tls: None,
            adapters: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub publisher: Publisher,
    pub config: Arc<GatewayConfig>,
    marks: lienthong_outbox::Marks,
    /// Documents accepted at the same moment are stored together.
    acceptances: acceptances::Acceptances,
}

impl AppState {
    /// The state of a gateway (or of the forwarder's arrivals, which accept as a gateway does);
    /// starts the tasks that store acceptances in groups and mark outbox rows published, on the
    /// current runtime.
    pub fn new(store: Store, publisher: Publisher, config: GatewayConfig) -> Self {
        Self {
            marks: lienthong_outbox::Marks::start(store.clone()),
            acceptances: acceptances::Acceptances::start(store.clone()),
            store,
            publisher,
            config: Arc::new(config),
        }
    }

    /// Publishes stored outbox messages with confirms; they are marked published just after,
    /// in a group, off the request's path.
    pub(crate) async fn publish_outbox(
        &self,
        rows: &[OutboxRow],
    ) -> Result<(), lienthong_bus::BusError> {
        lienthong_outbox::publish_then_mark(&self.publisher, &self.marks, rows).await
    }
}

pub(crate) use lienthong_outbox::to_outbox as outbox_message;

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    // Multipart framing and the messageType field come on top of the package itself.
    let body_limit = state.config.max_package_bytes + 64 * 1024;
    routes::router()
        .route(
            "/metrics",
            axum::routing::get(lienthong_telemetry::metrics_endpoint),
        )
        .layer(axum::middleware::from_fn(http_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Counts every request by route (the matched pattern, never the raw path) and status, and
/// times it; runs it in a span that continues the caller's trace (`traceparent`) when it sends
/// one, so everything the request causes, on this bus and beyond, is one trace.
async fn http_metrics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("http", method = %request.method(), route = %route);
    let caller: std::collections::HashMap<String, String> = ["traceparent", "tracestate"]
        .iter()
        .filter_map(|k| {
            let v = request.headers().get(*k)?.to_str().ok()?;
            Some(((*k).to_owned(), v.to_owned()))
        })
        .collect();
    lienthong_telemetry::continue_trace(&span, &caller);
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span).await;
    metrics::histogram!("lienthong_http_request_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "lienthong_http_requests_total",
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// How often the gateway reads the depth of every queue for `lienthong_queue_messages`.
const QUEUE_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps `lienthong_queue_messages` and `lienthong_queue_consumers` current for every queue of
/// the bus (the stages, the ledger, the dead letters, the links).
async fn poll_queues(publisher: Publisher, mut shutdown: watch::Receiver<bool>) {
    let queues = publisher.topology().queues(&publisher.config().links);
    loop {
        match publisher.queue_depths(&queues).await {
            Ok(depths) => {
                for (queue, (messages, consumers)) in depths {
                    metrics::gauge!("lienthong_queue_messages", "queue" => queue.clone())
                        .set(f64::from(messages));
                    metrics::gauge!("lienthong_queue_consumers", "queue" => queue)
                        .set(f64::from(consumers));
                }
            }
            Err(e) => tracing::debug!(error = %e, "queue depths not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(QUEUE_POLL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Binds the listener (port 0 picks a free port, for tests) and returns it with its address.
pub async fn bind(config: &GatewayConfig) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves until `shutdown`, with the outbox relay beside it.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    bus: BusConfig,
    config: GatewayConfig,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Unreadable certificates stop the gateway at start, naming the key.
    let acceptor = config
        .tls
        .as_ref()
        .map(|tls| tls.acceptor("gateway.tls"))
        .transpose()
        .map_err(std::io::Error::other)?;
    let publisher = Publisher::new(&bus, "lienthong-gateway");
    if let Err(e) = publisher.ensure_connected().await {
        tracing::warn!(error = %e, "broker not reachable yet; packages will be refused with error 20 until it is");
    }
    let state = AppState::new(store, publisher, config);
    lienthong_telemetry::install();
    let poller = tokio::spawn(poll_queues(state.publisher.clone(), shutdown.clone()));
    let relay = tokio::spawn(lienthong_outbox::relay(
        state.store.clone(),
        state.publisher.clone(),
        state.config.relay_after_ms,
        shutdown.clone(),
    ));
    let mut stop = shutdown.clone();
    let result = match acceptor {
        Some(acceptor) => {
            lienthong_https::serve(listener, acceptor, app(state), shutdown.clone()).await
        }
        None => {
            axum::serve(listener, app(state))
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }
    };
    let _ = relay.await;
    let _ = poller.await;
    result
}
