//! What the monitoring stack reads: `/metrics` in the Prometheus format with the numbers an
//! operator watches (documents in and out, per-queue depth and consumers, stage outcomes and
//! timings, end-to-end latency, HTTP requests), and health and readiness.

use std::time::Duration;

use lienthong_tests::*;

#[tokio::test]
async fn metrics_show_documents_queues_stages_and_latency() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let doc_id = bus.send_edoc("province", PROVINCE, &[MINISTRY]).await;
    env.all_delivered(&doc_id).await;
    let t = env.topology();
    let router = format!("queue=\"{}\"", t.stage_queue("router"));
    let dead = format!("queue=\"{}\"", t.dead_queue());
    let http = reqwest::Client::new();
    let text = eventually(
        "the metrics of the flow",
        Duration::from_secs(30),
        || async {
            let text = http
                .get(format!("{}/metrics", bus.url))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            // The ledger records `delivered` after delivery; the queue poller runs every 5 s.
            (metric_sample(&text, "lienthong_events_total", &["kind=\"delivered\""]).is_some()
                && metric_sample(&text, "lienthong_queue_messages", &[&router]).is_some())
            .then_some(text)
        },
    )
    .await;
    let at_least_one = |metric: &str, labels: &[&str]| {
        let v = metric_sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("{metric} {labels:?} missing in:\n{text}"));
        assert!(v >= 1.0, "{metric} {labels:?} = {v}");
    };
    at_least_one(
        "lienthong_documents_accepted_total",
        &["message_type=\"edoc\"", "format=\"edxml\""],
    );
    at_least_one(
        "lienthong_http_requests_total",
        &["route=\"/v1/sendEdoc\"", "status=\"200\""],
    );
    at_least_one("lienthong_messages_total", &[&router, "outcome=\"done\""]);
    at_least_one("lienthong_message_handling_seconds_count", &[&router]);
    at_least_one(
        "lienthong_delivery_latency_seconds_count",
        &["from=\"system\""],
    );
    at_least_one("lienthong_events_total", &["kind=\"accepted\""]);
    at_least_one("lienthong_verdicts_total", &["outcome=\"unsigned\""]);
    at_least_one("lienthong_publish_seconds_count", &[]);
    // The router's queue is drained and has its consumer; nothing is dead.
    assert_eq!(
        metric_sample(&text, "lienthong_queue_messages", &[&router]),
        Some(0.0)
    );
    assert_eq!(
        metric_sample(&text, "lienthong_queue_consumers", &[&router]),
        Some(1.0)
    );
    assert_eq!(
        metric_sample(&text, "lienthong_queue_messages", &[&dead]),
        Some(0.0)
    );
    assert!(
        text.contains("lienthong_delivery_latency_seconds_bucket{from=\"system\",le=\"0.005\"}"),
        "latency is a histogram with buckets:\n{text}"
    );

    // Liveness and readiness.
    assert_ready(&bus.url).await;
    bus.stop().await;
    env.teardown().await;
}
