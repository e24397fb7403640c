//! Logs and traces. Every process logs to stderr (text, or JSON lines) and keeps an OpenTelemetry
//! span per HTTP request and per message handled; the W3C `traceparent` travels in every AMQP
//! message's headers (and across links to other buses), so one document is one trace from the
//! sender's request to the last inbox. Spans are exported over OTLP/HTTP when an endpoint is
//! configured.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes the spans still buffered when the process ends.
#[must_use = "spans are flushed when the guard is dropped"]
pub struct TraceGuard {
    provider: SdkTracerProvider,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

impl std::fmt::Debug for TraceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TraceGuard")
    }
}

/// The OTLP/HTTP traces endpoint: `telemetry.otlp_endpoint`, else the standard
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
pub fn otlp_endpoint(configured: Option<String>) -> Option<String> {
    configured
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").ok())
        .or_else(|| {
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
        })
        .filter(|e| !e.is_empty())
}

/// Installs logging (`RUST_LOG`, `LIENTHONG_LOG_FORMAT=json`) and tracing for this process.
/// `service` names the process in traces (e.g. `lienthong tinh-a`).
pub fn init(service: &str, otlp: Option<String>) -> TraceGuard {
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service.to_owned())
            .build(),
    );
    let mut export_error = None;
    if let Some(endpoint) = &otlp {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(endpoint.clone())
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => export_error = Some(format!("OTLP exporter to {endpoint}: {e}")),
        }
    }
    let provider = builder.build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // Without an exporter the spans still carry the trace from message to message (the
    // `traceparent` of what this process publishes), but nothing reads their attributes: the
    // time each span spent busy and idle (taken at every poll of every instrumented future),
    // the thread and the code location are kept only for an exporter.
    let exporting = otlp.is_some() && export_error.is_none();
    let otel = tracing_opentelemetry::layer()
        .with_tracked_inactivity(exporting)
        .with_threads(exporting)
        .with_location(exporting)
        .with_tracer(provider.tracer("lienthong"));

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = std::env::var("LIENTHONG_LOG_FORMAT").as_deref() == Ok("json");
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi && !json)
        .with_writer(std::io::stderr);
    let installed = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    if installed.is_ok() {
        if let Some(e) = export_error {
            tracing::warn!(error = %e, "traces are not exported");
        } else if let Some(endpoint) = otlp {
            tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
        }
    }
    TraceGuard { provider }
}

/// The current span's context as W3C trace-context headers (`traceparent`, `tracestate`), for
/// a message leaving this process.
pub fn current_context_headers() -> HashMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut headers);
    headers
}

/// Makes `span` a child of the context carried by an incoming message's headers, if any.
pub fn continue_trace(span: &tracing::Span, headers: &HashMap<String, String>) {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(headers);
        let _ = span.set_parent(cx);
    }
}
