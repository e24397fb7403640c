//! The gateway: the REST interface agency systems already speak (`/v1/...`), authentication of
//! connected systems, synchronous validation, and durable acceptance.
//!
//! A package is accepted in one store transaction (bytes, document, legs, business status, outbox
//! messages), then its outbox messages are published with confirms, and only then does the caller
//! get `success:true`. If the broker is away the caller gets error 20 with `Retry-After`; the
//! package stays accepted, the relay publishes it when the broker returns, and a resubmission
//! returns the same `docId` without delivering anything twice.

mod accept;
mod auth;
mod error;
mod routes;
mod time_fmt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use lienthong_bus::{BusConfig, Outgoing, Publisher, Route};
use lienthong_store::{OutboxMessage, OutboxRow, Store, now_ms};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::{ApiError, ErrorCode};

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
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub publisher: Publisher,
    pub config: Arc<GatewayConfig>,
}

impl AppState {
    /// Publishes stored outbox messages with confirms and marks them published.
    pub(crate) async fn publish_outbox(
        &self,
        rows: &[OutboxRow],
    ) -> Result<(), lienthong_bus::BusError> {
        let messages: Vec<Outgoing> = rows.iter().map(|r| outgoing(&r.message)).collect();
        self.publisher.publish_all(&messages).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        if let Err(e) = self.store.mark_published(&ids).await {
            // Published but not marked: the relay publishes again, consumers deduplicate.
            tracing::warn!(error = %e, "could not mark outbox messages published");
        }
        Ok(())
    }
}

/// The outbox form of a message (every outbox message is an internal hop, so routing is mandatory).
pub(crate) fn outbox_message(o: &Outgoing) -> OutboxMessage {
    OutboxMessage {
        doc_id: o.doc_id.clone(),
        exchange: o.route.exchange.clone(),
        routing_key: o.route.routing_key.clone(),
        message_id: o.message_id.clone(),
        payload: String::from_utf8_lossy(&o.payload).into_owned(),
    }
}

fn outgoing(m: &OutboxMessage) -> Outgoing {
    Outgoing {
        route: Route {
            exchange: m.exchange.clone(),
            routing_key: m.routing_key.clone(),
            mandatory: true,
        },
        payload: m.payload.clone().into_bytes(),
        message_id: m.message_id.clone(),
        doc_id: m.doc_id.clone(),
    }
}

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    // Multipart framing and the messageType field come on top of the package itself.
    let body_limit = state.config.max_package_bytes + 64 * 1024;
    routes::router()
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
    let publisher = Publisher::new(&bus, "lienthong-gateway");
    if let Err(e) = publisher.ensure_connected().await {
        tracing::warn!(error = %e, "broker not reachable yet; packages will be refused with error 20 until it is");
    }
    let state = AppState {
        store,
        publisher,
        config: Arc::new(config),
    };
    let relay = tokio::spawn(relay(state.clone(), shutdown.clone()));
    let mut stop = shutdown.clone();
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    let _ = relay.await;
    result
}

/// Publishes what acceptance stored but could not publish (a crash, or the broker away).
async fn relay(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let age = i64::try_from(state.config.relay_after_ms).unwrap_or(i64::MAX);
    let mut last_prune = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match state.store.pending_outbox(now_ms() - age, 500).await {
            Ok(rows) if !rows.is_empty() => match state.publish_outbox(&rows).await {
                Ok(()) => tracing::info!(count = rows.len(), "relayed outbox messages"),
                Err(e) => {
                    tracing::warn!(error = %e, pending = rows.len(), "outbox relay could not publish")
                }
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay could not read the store"),
        }
        if now_ms() - last_prune > 3_600_000 {
            last_prune = now_ms();
            if let Err(e) = state.store.prune_outbox(now_ms() - 86_400_000).await {
                tracing::warn!(error = %e, "could not prune the outbox");
            }
        }
    }
}
