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
    let verifier = format!("queue=\"{}\"", t.stage_queue("verifier"));
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
            // A poll taken before the router's consumer started shows none: wait for the
            // next one. The copy is delivered inside the verifier's message, which is counted
            // once its handler returns: its timing, recorded after its count, says both are in.
            (metric_sample(&text, "lienthong_events_total", &["kind=\"delivered\""]).is_some()
                && metric_sample(&text, "lienthong_queue_consumers", &[&router]) == Some(1.0)
                && metric_sample(
                    &text,
                    "lienthong_message_handling_seconds_count",
                    &[&verifier],
                )
                .is_some())
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
    // The stages run back to back: the verifier's queue is the hop, the router a stage in it.
    at_least_one("lienthong_messages_total", &[&verifier, "outcome=\"done\""]);
    at_least_one("lienthong_message_handling_seconds_count", &[&verifier]);
    at_least_one("lienthong_stage_seconds_count", &["stage=\"router\""]);
    at_least_one("lienthong_stage_seconds_count", &["stage=\"delivery\""]);
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

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool(args: &[&str], dir: &std::path::Path) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (deploy/local/ensure-services --promtool installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every `lienthong_*` metric name in `text`, without the `_bucket`/`_count`/`_sum` a histogram
/// adds.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("lienthong_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The source files of the services and shared crates, read whole.
fn sources() -> String {
    let mut text = String::new();
    let mut dirs = vec![repo().join("services"), repo().join("shared")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&path).expect("source"));
            }
        }
    }
    text
}

#[test]
fn the_alerts_fire_when_they_should_and_the_dashboard_and_alerts_use_real_metrics() {
    let monitoring = repo().join("deploy/monitoring");
    promtool(&["check", "rules", "alerts.yml"], &monitoring);
    let tested = promtool(&["test", "rules", "alerts.test.yml"], &monitoring);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Every dashboard expression is valid PromQL: checked as recording rules.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring.join("grafana/lienthong.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(exprs.len() >= 14, "{exprs:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:panel_{i}\n        expr: '{}'\n",
            e.replace('\'', "''")
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules).expect("rules");
    promtool(&["check", "rules", "dashboard.yml"], dir.path());

    // ... and names only metrics the code records and the documentation explains.
    let alerts = std::fs::read_to_string(monitoring.join("alerts.yml")).expect("alerts");
    let mut used = metric_names(&alerts);
    used.extend(metric_names(&exprs.join("\n")));
    let code = sources();
    let docs = std::fs::read_to_string(repo().join("docs/observability.md")).expect("docs");
    for name in &used {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "{name} is recorded nowhere"
        );
        assert!(
            docs.contains(&format!("`{name}`")),
            "{name} is not in docs/observability.md"
        );
    }
    // And every metric the code records is documented.
    for name in metric_names(&code) {
        if code.contains(&format!("\"{name}\"")) && !name.starts_with("lienthong_test") {
            assert!(
                docs.contains(&format!("`{name}`")),
                "{name} is not in docs/observability.md"
            );
        }
    }
}
