//! One document, one trace: the trace context travels in the headers of every AMQP message, from
//! the sender's request on province A's bus through its stages and the link to the national bus,
//! to the national bus's stages and the recipient's inbox. Both buses run as `lienthong up`
//! processes exporting their spans over OTLP/HTTP (JSON) to a collector this test stands up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lienthong_store::{DeliveryState, Level};
use lienthong_tests::links::Vhost;
use lienthong_tests::*;

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    attributes: BTreeMap<String, String>,
}

fn spans_of(body: &serde_json::Value) -> Vec<Span> {
    let attrs = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let value = &a["value"];
                let text = value["stringValue"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        value
                            .as_object()
                            .and_then(|o| o.values().next())
                            .map(|v| v.to_string())
                    })?;
                Some((a["key"].as_str()?.to_owned(), text))
            })
            .collect()
    };
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let service = attrs(&rs["resource"]["attributes"])
            .remove("service.name")
            .unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                out.push(Span {
                    service: service.clone(),
                    name: s["name"].as_str().unwrap_or_default().to_owned(),
                    trace_id: s["traceId"].as_str().unwrap_or_default().to_owned(),
                    attributes: attrs(&s["attributes"]),
                });
            }
        }
    }
    out
}

/// An OTLP/HTTP collector on loopback that keeps what it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = Arc::clone(&spans);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    kept.lock().expect("lock").extend(spans_of(&v));
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v1/traces"), spans)
}

fn bus_config(env: &Env, vhost: &Vhost, listen: u16, extra: &str) -> String {
    format!(
        "[store]\nurl = \"{}\"\nblobs = {{ kind = \"files\", dir = \"{}\" }}\n\n\
         [bus]\nurl = \"{}\"\nprefix = \"{}\"\nqueue_type = \"classic\"\n\n\
         [gateway]\nlisten = \"127.0.0.1:{listen}\"\n{extra}",
        env.store_config.url,
        env.blob_dir(),
        vhost.url(),
        env.bus.prefix,
    )
}

fn start(config: &std::path::Path, otlp: &str, log: &std::path::Path) -> Running {
    Running(
        std::process::Command::new(lienthong_bin())
            .args(["up", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp)
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("spawn lienthong up"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_one_trace_across_services_and_buses() {
    let (otlp, spans) = collector().await;
    let (v_nat, v_a) = (Vhost::create("national"), Vhost::create("tinh-a"));
    let national = Env::new(Backend::Sqlite).await;
    let tinh_a = Env::new(Backend::Sqlite).await;
    let mut ministry = lienthong_store::Agency::new(MINISTRY, "VPCP", Level::Central);
    ministry.bus = Some("quoc-gia".into());
    tinh_a
        .store
        .upsert_agencies(&[ministry])
        .await
        .expect("registry");

    let a_port = free_port();
    let a_config = tinh_a.dir.path().join("tinh-a.toml");
    std::fs::write(
        &a_config,
        bus_config(
            &tinh_a,
            &v_a,
            a_port,
            &format!(
                "document_stages = [\"verifier\", \"translator\", \"router\"]\n\n\
                 [verifier]\ntrust_dir = \"{}\"\nbus_organ_id = \"{DEPARTMENT}\"\n\n\
                 [translator]\nbus_organ_id = \"{DEPARTMENT}\"\n\n\
                 [federation]\nbus = \"tinh-a\"\n\n\
                 [[federation.peers]]\nbus = \"quoc-gia\"\nparent = true\nurl = \"{}\"\nprefix = \"{}\"\n",
                tinh_a.verifier.trust_dir.display(),
                v_nat.url(),
                national.bus.prefix
            ),
        ),
    )
    .expect("config");
    let n_config = national.dir.path().join("national.toml");
    std::fs::write(
        &n_config,
        bus_config(
            &national,
            &v_nat,
            free_port(),
            &format!(
                "document_stages = [\"router\"]\n\n\
                 [federation]\nbus = \"quoc-gia\"\norgan_id = \"{MINISTRY}\"\n\n\
                 [[federation.peers]]\nbus = \"tinh-a\"\nurl = \"{}\"\nprefix = \"{}\"\n",
                v_a.url(),
                tinh_a.bus.prefix
            ),
        ),
    )
    .expect("config");
    let mut processes = [
        start(&n_config, &otlp, &national.dir.path().join("national.log")),
        start(&a_config, &otlp, &tinh_a.dir.path().join("tinh-a.log")),
    ];
    let a_url = format!("http://127.0.0.1:{a_port}");
    eventually("province A's gateway", Duration::from_secs(30), || async {
        let r = reqwest::get(format!("{a_url}/readyz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let client = lienthong_client::Client::new(&a_url, "province", "secret-province");
    let doc = edoc(PROVINCE, &[MINISTRY], unique_number());
    let doc_id = client
        .send(lienthong_edxml::write_edoc(&doc), "edoc")
        .await
        .expect("accepted in A");
    eventually(
        "the receipt from the national bus",
        Duration::from_secs(60),
        || async {
            let legs = tinh_a.store.legs(&doc_id).await.expect("legs");
            (legs[0].delivery == DeliveryState::Delivered).then_some(())
        },
    )
    .await;

    let a = |q: &str| format!("{}.{q}", tinh_a.bus.prefix);
    let n = |q: &str| format!("{}.{q}", national.bus.prefix);
    // The queues the document went through (each bus runs its stages back to back, so only
    // the first stage's queue is a hop), and every stage, each in a span of its own.
    let wanted: BTreeSet<String> = [
        a("stage.verifier"),
        a("link.quoc-gia"),
        n("arrivals"),
        n("stage.router"),
    ]
    .into();
    let wanted_stages: BTreeSet<(String, String)> = [
        ("tinh-a", "verifier"),
        ("tinh-a", "translator"),
        ("tinh-a", "router"),
        ("quoc-gia", "router"),
        ("quoc-gia", "delivery"),
    ]
    .into_iter()
    .map(|(bus, stage)| (format!("lienthong {bus}"), stage.to_owned()))
    .collect();
    let (trace, services) = eventually(
        "the spans of the document",
        Duration::from_secs(30),
        || async {
            let spans = spans.lock().expect("lock").clone();
            let trace = spans
                .iter()
                .find(|s| {
                    s.name == "http"
                        && s.attributes.get("route").map(String::as_str) == Some("/v1/sendEdoc")
                })?
                .trace_id
                .clone();
            let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
            let queues: BTreeSet<String> = in_trace
                .iter()
                .filter_map(|s| s.attributes.get("queue").cloned())
                .collect();
            let stages: BTreeSet<(String, String)> = in_trace
                .iter()
                .filter(|s| s.name == "stage")
                .filter_map(|s| Some((s.service.clone(), s.attributes.get("stage")?.clone())))
                .collect();
            let services: BTreeSet<String> = in_trace.iter().map(|s| s.service.clone()).collect();
            (wanted.is_subset(&queues) && wanted_stages.is_subset(&stages))
                .then_some((trace, services))
        },
    )
    .await;
    assert_eq!(trace.len(), 32, "a W3C trace id: {trace}");
    assert_eq!(
        services,
        BTreeSet::from([
            "lienthong quoc-gia".to_owned(),
            "lienthong tinh-a".to_owned()
        ])
    );

    for p in &mut processes {
        p.kill();
    }
    national.teardown().await;
    tinh_a.teardown().await;
    v_nat.delete();
    v_a.delete();
}
