//! What operators' monitoring reads from every process: metrics in the Prometheus text format
//! (`/metrics`), liveness (`/healthz`) and readiness (`/readyz`). The gateway serves them on its
//! own port; any process may also serve them on `[telemetry] listen`.
//!
//! Metrics are recorded with the `metrics` macros where things happen (the consumer loop, the
//! publisher, the gateway, delivery, the ledger, the verifier, the forwarder); `docs/observability.md`
//! lists every name, and the Grafana dashboard and alert rules in `deploy/monitoring/` use them.

mod traces;

pub use traces::{TraceGuard, continue_trace, current_context_headers, init, otlp_endpoint};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Buckets of every `*_seconds` histogram: from 1 ms (a stage's work) to 2 min (a document that
/// waited for a peer bus).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs this process's metrics recorder (once; later calls find it). Without it the macros
/// record nothing, so every entry point calls this first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    metrics::gauge!("lienthong_build_info", "version" => env!("CARGO_PKG_VERSION"))
                        .set(1.0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics now, in the Prometheus text format.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// `GET /metrics`.
pub async fn metrics_endpoint() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

/// What readiness checks: each part's name and whether it answers.
pub type ReadyCheck = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Vec<(&'static str, Result<(), String>)>> + Send>>
        + Send
        + Sync,
>;

/// `/metrics`, `/healthz` and `/readyz` for a process, `ready` saying whether its store and broker
/// answer.
pub fn ops_router(ready: ReadyCheck) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(move || {
                let ready = Arc::clone(&ready);
                async move {
                    let parts = ready().await;
                    let ok = parts.iter().all(|(_, r)| r.is_ok());
                    let mut body = serde_json::Map::new();
                    body.insert(
                        "status".into(),
                        json!(if ok { "ready" } else { "not ready" }),
                    );
                    for (name, r) in parts {
                        body.insert(name.into(), json!(r.err().unwrap_or_else(|| "ok".into())));
                    }
                    let code = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(serde_json::Value::Object(body)))
                }
            }),
        )
}

/// Serves [`ops_router`] until `shutdown`.
pub async fn serve_ops(
    listener: TcpListener,
    ready: ReadyCheck,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    install();
    axum::serve(listener, ops_router(ready))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_metrics_render_in_the_prometheus_format_with_buckets() {
        install();
        metrics::counter!("lienthong_test_total", "queue" => "q").increment(2);
        metrics::histogram!("lienthong_test_seconds").record(0.003);
        let text = render();
        assert!(
            text.contains("lienthong_test_total{queue=\"q\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("lienthong_test_seconds_bucket{le=\"0.005\"} 1"),
            "histograms have buckets: {text}"
        );
        assert!(text.contains("lienthong_build_info{version="), "{text}");
    }
}
