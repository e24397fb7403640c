//! Three buses on this machine, each on its own RabbitMQ virtual host with its own store: the
//! national bus (quoc-gia) and the buses of provinces A (tinh-a) and B (tinh-b). Province A
//! reaches the national bus over TLS with a client certificate; the national bus reaches both
//! provinces. A commune in A writes to a ministry (served by the national bus) and to a commune
//! in B (which A's registry does not know); statuses and a recall come back; the national bus is
//! stopped and its link cut mid-run, and nothing is lost or duplicated.

use std::collections::BTreeMap;
use std::time::Duration;

use lienthong_bus::{Publisher, TlsConfig};
use lienthong_edxml::{StatusCode, write_edoc};
use lienthong_federation::{FederationConfig, PeerConfig};
use lienthong_store::{Agency, DeliveryState, Level};
use lienthong_tests::links::{Pki, TlsTerminator, Vhost};
use lienthong_tests::*;

const COMMUNE_B: &str = "000.31.07.H50";
/// The agency operating province B's bus (its TraceHeader).
const OPERATOR_B: &str = "000.00.05.H50";
/// National thinks tinh-a serves it; tinh-a does not know it: a loop, caught.
const ASTRAY: &str = "000.77.05.H49";

fn agency(code: &str, level: Level, bus: Option<&str>) -> Agency {
    Agency {
        bus: bus.map(str::to_owned),
        ..Agency::new(code, &format!("Cơ quan {code}"), level)
    }
}

/// Adds agencies to a bus's registry.
async fn knows(env: &Env, agencies: &[Agency]) {
    env.store.upsert_agencies(agencies).await.expect("registry");
}

fn peer(bus: &str, env: &Env, url: String, parent: bool) -> PeerConfig {
    PeerConfig {
        bus: bus.into(),
        url,
        prefix: env.bus.prefix.clone(),
        parent,
        reaches: Vec::new(),
        tls: None,
    }
}

fn federation(bus: &str, organ: &str, peers: Vec<PeerConfig>) -> FederationConfig {
    let mut f = FederationConfig::new(bus);
    f.organ_id = Some(organ.into());
    f.peers = peers;
    f.check().expect("valid federation");
    f
}

/// An environment on its own virtual host.
async fn env_on(vhost: &Vhost) -> Env {
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.url = vhost.url();
    env
}

async fn legs_by_state(
    env: &Env,
    doc_id: &str,
) -> BTreeMap<String, (DeliveryState, Option<String>)> {
    env.store
        .legs(doc_id)
        .await
        .expect("legs")
        .into_iter()
        .map(|l| (l.recipient, (l.delivery, l.reason)))
        .collect()
}

async fn all_final(env: &Env, doc_id: &str) {
    eventually(
        "every copy delivered or failed",
        Duration::from_secs(60),
        || async {
            let legs = env.store.legs(doc_id).await.expect("legs");
            legs.iter()
                .all(|l| matches!(l.delivery, DeliveryState::Delivered | DeliveryState::Failed))
                .then_some(())
        },
    )
    .await;
}

/// The operator's view of the links of a bus.
async fn links(bus: &InProcessBus) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}/admin/links", bus.url))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("links")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_commune_reaches_a_ministry_and_another_province_and_hears_back() {
    logs();
    let (v_nat, v_a, v_b) = (
        Vhost::create("national"),
        Vhost::create("tinh-a"),
        Vhost::create("tinh-b"),
    );
    let mut national = env_on(&v_nat).await;
    let mut tinh_a = env_on(&v_a).await;
    let mut tinh_b = env_on(&v_b).await;
    let pki = Pki::make(tinh_a.dir.path());
    let terminator = TlsTerminator::start(&pki, 0).await;
    let tls_port = terminator.port;

    // The registries. National knows everyone and who serves them; A knows its own and the
    // ministry; B knows its own commune and the ministry.
    knows(
        &national,
        &[
            agency(COMMUNE, Level::Commune, Some("tinh-a")),
            agency(PROVINCE, Level::Province, Some("tinh-a")),
            agency(ASTRAY, Level::Commune, Some("tinh-a")),
            agency(COMMUNE_B, Level::Commune, Some("tinh-b")),
        ],
    )
    .await;
    knows(
        &tinh_a,
        &[agency(MINISTRY, Level::Central, Some("quoc-gia"))],
    )
    .await;
    knows(
        &tinh_b,
        &[
            agency(COMMUNE_B, Level::Commune, None),
            agency(MINISTRY, Level::Central, Some("quoc-gia")),
            agency(COMMUNE, Level::Commune, Some("tinh-a")),
        ],
    )
    .await;
    tinh_b
        .store
        .put_system(
            "commune-b",
            "UBND xã B",
            "secret-commune-b",
            &[COMMUNE_B.into()],
        )
        .await
        .expect("system");

    let national_url = v_nat.url();
    let mut a_to_national = peer(
        "quoc-gia",
        &national,
        format!("amqps://guest:guest@127.0.0.1:{tls_port}/{}", v_nat.name),
        true,
    );
    a_to_national.tls = Some(TlsConfig {
        ca_file: Some(pki.ca()),
        cert_file: Some(pki.client_cert()),
        key_file: Some(pki.client_key()),
    });
    tinh_a.federation = Some(federation(
        "tinh-a",
        DEPARTMENT,
        vec![a_to_national.clone()],
    ));
    tinh_b.federation = Some(federation(
        "tinh-b",
        OPERATOR_B,
        vec![peer("quoc-gia", &national, national_url, true)],
    ));
    national.federation = Some(federation(
        "quoc-gia",
        MINISTRY,
        vec![
            peer("tinh-a", &tinh_a, v_a.url(), false),
            peer("tinh-b", &tinh_b, v_b.url(), false),
        ],
    ));

    // A client certificate from another CA does not get through the TLS link.
    let mut stranger = a_to_national.clone();
    stranger.tls = Some(TlsConfig {
        ca_file: Some(pki.ca()),
        cert_file: Some(pki.stranger_cert()),
        key_file: Some(pki.stranger_key()),
    });
    let fed_a = tinh_a.federation.clone().expect("A");
    let refused = Publisher::to_peer(&fed_a.peer_bus_config(&stranger, &tinh_a.bus), "stranger")
        .ensure_connected()
        .await;
    assert!(refused.is_err(), "a certificate from another CA is refused");
    let mut no_cert = a_to_national.clone();
    no_cert.tls = Some(TlsConfig {
        ca_file: Some(pki.ca()),
        cert_file: None,
        key_file: None,
    });
    assert!(
        Publisher::to_peer(&fed_a.peer_bus_config(&no_cert, &tinh_a.bus), "anonymous")
            .ensure_connected()
            .await
            .is_err(),
        "no client certificate, no link"
    );

    let bus_nat = InProcessBus::start(&national).await;
    let bus_a = InProcessBus::start(&tinh_a).await;
    let bus_b = InProcessBus::start(&tinh_b).await;
    let commune = bus_a.client("commune");

    // A signed edoc from the commune in A to the ministry and to the commune in B.
    let doc = edoc(COMMUNE, &[MINISTRY, COMMUNE_B], unique_number());
    let package = signed(&write_edoc(&doc), "signer");
    let doc_id = commune
        .send(package.clone(), "edoc")
        .await
        .expect("accepted in A");
    all_final(&tinh_a, &doc_id).await;
    let legs = legs_by_state(&tinh_a, &doc_id).await;
    assert_eq!(legs[MINISTRY].0, DeliveryState::Delivered, "{legs:?}");
    assert_eq!(legs[COMMUNE_B].0, DeliveryState::Delivered, "{legs:?}");

    // The ministry (national) and the commune in B each have it once, byte for byte, verified
    // on their bus, with a TraceHeader for every bus it passed.
    let ministry = bus_nat.client("ministry");
    let commune_b = bus_b.client("commune-b");
    for (client, env, trace) in [
        (&ministry, &national, vec![DEPARTMENT, MINISTRY]),
        (&commune_b, &tinh_b, vec![DEPARTMENT, MINISTRY, OPERATOR_B]),
    ] {
        let rows = client.inbox("edoc", &[]).await.expect("inbox");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let their_id = rows[0]["docId"].as_str().expect("docId").to_owned();
        let fetched = client.fetch(&their_id).await.expect("fetch");
        assert_eq!(fetched.bytes, package, "the original, byte for byte");
        assert_eq!(
            fetched.summary["signature"]["outcome"], "valid",
            "{}",
            fetched.summary["signature"]
        );
        let rendition = b64(&fetched.summary["rendition"]["content"]);
        let text = String::from_utf8(rendition).expect("utf-8");
        let hops: Vec<&str> = text
            .match_indices("<TraceHeader>")
            .filter_map(|(i, _)| {
                let rest = &text[i..];
                let s = rest.find("<OrganId>")? + "<OrganId>".len();
                Some(&rest[s..s + 13])
            })
            .collect();
        assert_eq!(hops, trace, "TraceHeaders in {text}");
        let row = env
            .store
            .document(&their_id)
            .await
            .expect("doc")
            .expect("row");
        assert!(row.arrival.is_some(), "came from another bus");
    }
    let b_doc = tinh_b
        .store
        .document(
            commune_b.inbox("edoc", &[]).await.expect("inbox")[0]["docId"]
                .as_str()
                .expect("id"),
        )
        .await
        .expect("doc")
        .expect("row");
    assert_eq!(
        b_doc.arrival.as_ref().map(|a| a.via.clone()),
        Some(vec!["tinh-a".to_owned(), "quoc-gia".to_owned()])
    );

    // Statuses 01, 03, 06 from B and 03 from the ministry reach the sender in A.
    for code in [
        StatusCode::Arrived,
        StatusCode::Accepted,
        StatusCode::Completed,
    ] {
        send_status(&commune_b, &doc, COMMUNE_B, code)
            .await
            .expect("status from B");
    }
    send_status(&ministry, &doc, MINISTRY, StatusCode::Accepted)
        .await
        .expect("status from the ministry");
    eventually("statuses back in A", Duration::from_secs(60), || async {
        let rows = commune.sent(Some(&doc_id)).await.expect("sent");
        let business = |organ: &str| {
            rows.iter()
                .find(|r| r["to"] == organ)
                .and_then(|r| r["businessStatus"].as_str().map(str::to_owned))
        };
        (business(COMMUNE_B).as_deref() == Some("06")
            && business(MINISTRY).as_deref() == Some("03"))
        .then_some(())
    })
    .await;
    // Every status package is in the sender's status inbox, once.
    let expected = [
        (MINISTRY.to_owned(), "03".to_owned()),
        (COMMUNE_B.to_owned(), "01".to_owned()),
        (COMMUNE_B.to_owned(), "03".to_owned()),
        (COMMUNE_B.to_owned(), "06".to_owned()),
    ];
    let codes = eventually("status packages in A", Duration::from_secs(60), || async {
        let statuses = commune.inbox("status", &[]).await.expect("status inbox");
        let mut codes: Vec<(String, String)> = statuses
            .iter()
            .map(|r| {
                (
                    r["from"].as_str().unwrap_or("").to_owned(),
                    r["statusCode"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        codes.sort();
        (codes.len() >= expected.len()).then_some(codes)
    })
    .await;
    assert_eq!(codes, expected);

    // The commune's system in B stores its copy and says so: the sender in A sees `done`.
    let their_id = commune_b.inbox("edoc", &[]).await.expect("inbox")[0]["docId"]
        .as_str()
        .expect("docId")
        .to_owned();
    commune_b
        .update_status(&their_id, "done")
        .await
        .expect("done in B");
    eventually(
        "transport status back in A",
        Duration::from_secs(60),
        || async {
            let rows = commune.sent(Some(&doc_id)).await.expect("sent");
            rows.iter()
                .any(|r| r["to"] == COMMUNE_B && r["status"] == "done")
                .then_some(())
        },
    )
    .await;

    // A recall across buses: 13 from A reaches both recipients, 15 comes back from each.
    send_status(&commune, &doc, COMMUNE, StatusCode::RecallRequested)
        .await
        .expect("13");
    for (client, organ) in [(&commune_b, COMMUNE_B), (&ministry, MINISTRY)] {
        eventually(
            "recall request arrived",
            Duration::from_secs(60),
            || async {
                let rows = client.inbox("status", &[]).await.expect("inbox");
                rows.iter().any(|r| r["statusCode"] == "13").then_some(())
            },
        )
        .await;
        send_status(client, &doc, organ, StatusCode::RecallAgreed)
            .await
            .expect("15");
    }
    eventually(
        "recall answers back in A",
        Duration::from_secs(60),
        || async {
            let rows = commune.sent(Some(&doc_id)).await.expect("sent");
            rows.iter().all(|r| r["recallStatus"] == "15").then_some(())
        },
    )
    .await;

    // A copy the registries send round in a circle fails with the way it went.
    let astray = commune
        .send(
            write_edoc(&edoc(COMMUNE, &[ASTRAY], unique_number())),
            "edoc",
        )
        .await
        .expect("accepted: the parent may know it");
    all_final(&tinh_a, &astray).await;
    let legs = legs_by_state(&tinh_a, &astray).await;
    let (state, reason) = &legs[ASTRAY];
    assert_eq!(*state, DeliveryState::Failed);
    let reason = reason.clone().unwrap_or_default();
    assert!(
        reason.contains("bus quoc-gia")
            && reason.contains("routing loop: tinh-a -> quoc-gia -> tinh-a"),
        "{reason}"
    );

    // The national bus goes down and its link with it, mid-run: A keeps accepting, its
    // documents wait in the link queue (which the operator sees), and flow when it returns.
    let total = 12;
    let mut sent = Vec::new();
    let mut running = Some((bus_nat, terminator));
    for i in 0..total {
        if i == 4
            && let Some((bus, link)) = running.take()
        {
            bus.stop().await;
            link.stop();
        }
        let d = edoc(COMMUNE, &[COMMUNE_B], unique_number());
        let id = commune
            .send(write_edoc(&d), "edoc")
            .await
            .expect("accepted in A");
        sent.push((d, id));
    }
    let backlog = eventually("a backlog on the link", Duration::from_secs(30), || async {
        let view = links(&bus_a).await;
        let link = &view["data"][0];
        assert_eq!(link["bus"], "quoc-gia");
        let waiting = link["waiting"].as_u64().unwrap_or(0);
        (waiting > 0).then_some(waiting)
    })
    .await;
    println!("backlog on the link to quoc-gia while it was down: {backlog}");
    let terminator = TlsTerminator::start(&pki, tls_port).await;
    let bus_nat = InProcessBus::start(&national).await;
    for (_, id) in &sent {
        all_final(&tinh_a, id).await;
        let legs = legs_by_state(&tinh_a, id).await;
        assert_eq!(legs[COMMUNE_B].0, DeliveryState::Delivered, "{legs:?}");
    }
    // Exactly once in B: one copy per DocumentId, and every one of them there.
    let inbox = commune_b.inbox("edoc", &[]).await.expect("inbox");
    let mut per_document: BTreeMap<String, usize> = BTreeMap::new();
    for row in &inbox {
        let id = row["docId"].as_str().expect("docId");
        let d = tinh_b.store.document(id).await.expect("doc").expect("row");
        *per_document.entry(d.document_id).or_default() += 1;
    }
    for (d, _) in &sent {
        assert_eq!(
            per_document.get(&d.header.document_id.to_string()),
            Some(&1)
        );
    }
    // (The first document is not listed: its copy is `done`.)
    assert_eq!(per_document.len(), total, "{per_document:?}");
    assert!(per_document.values().all(|n| *n == 1), "{per_document:?}");
    let view = links(&bus_a).await;
    assert_eq!(view["data"][0]["waiting"], 0, "{view}");
    for env in [&national, &tinh_a, &tinh_b] {
        assert_eq!(env.dead_letters().await, 0);
    }

    bus_a.stop().await;
    bus_b.stop().await;
    bus_nat.stop().await;
    terminator.stop();
    for env in [national, tinh_a, tinh_b] {
        env.teardown().await;
    }
    for v in [v_nat, v_a, v_b] {
        v.delete();
    }
}

/// The national bus as a `lienthong up` process configured from TOML (so the binary's wiring of
/// `[federation]` is what runs), killed with SIGKILL twice while province A keeps sending to a
/// ministry: every document reaches the ministry exactly once and every receipt comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_bus_killed_mid_stream_loses_and_duplicates_nothing() {
    logs();
    let (v_nat, v_a) = (Vhost::create("national"), Vhost::create("tinh-a"));
    let national = env_on(&v_nat).await;
    let mut tinh_a = env_on(&v_a).await;
    knows(
        &national,
        &[agency(COMMUNE, Level::Commune, Some("tinh-a"))],
    )
    .await;
    knows(
        &tinh_a,
        &[agency(MINISTRY, Level::Central, Some("quoc-gia"))],
    )
    .await;
    tinh_a.federation = Some(federation(
        "tinh-a",
        DEPARTMENT,
        vec![peer("quoc-gia", &national, v_nat.url(), true)],
    ));
    let config = national.dir.path().join("national.toml");
    let ops_port = free_port();
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\nblobs = {{ kind = \"files\", dir = \"{}\" }}\n\n\
             [bus]\nurl = \"{}\"\nprefix = \"{}\"\nqueue_type = \"quorum\"\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\ndocument_stages = [\"router\"]\n\n\
             [telemetry]\nlisten = \"127.0.0.1:{ops_port}\"\n\n\
             [federation]\nbus = \"quoc-gia\"\norgan_id = \"{MINISTRY}\"\n\n\
             [[federation.peers]]\nbus = \"tinh-a\"\nurl = \"{}\"\nprefix = \"{}\"\n",
            national.store_config.url,
            national.blob_dir(),
            v_nat.url(),
            national.bus.prefix,
            v_a.url(),
            tinh_a.bus.prefix,
        ),
    )
    .expect("config");
    let log = national.dir.path().join("national.log");
    let start = || {
        Running(
            std::process::Command::new(lienthong_bin())
                .args(["up", "--config"])
                .arg(&config)
                .env("RUST_LOG", "info,sqlx=warn")
                .stdout(std::process::Stdio::null())
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .expect("log"),
                )
                .spawn()
                .expect("spawn lienthong up"),
        )
    };
    let mut process = start();
    let bus_a = InProcessBus::start(&tinh_a).await;
    let commune = bus_a.client("commune");

    let total = 30;
    let mut sent = Vec::new();
    for i in 0..total {
        if i == 10 || i == 20 {
            process.kill(); // SIGKILL, mid-stream
            tokio::time::sleep(Duration::from_millis(300)).await;
            process = start();
        }
        let d = edoc(COMMUNE, &[MINISTRY], unique_number());
        let id = commune
            .send(write_edoc(&d), "edoc")
            .await
            .expect("accepted in A");
        sent.push((d.header.document_id.to_string(), id));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for (_, id) in &sent {
        eventually("the receipt back in A", Duration::from_secs(90), || async {
            let legs = tinh_a.store.legs(id).await.expect("legs");
            (legs[0].delivery == DeliveryState::Delivered).then_some(())
        })
        .await;
    }
    // On the national bus: one document per DocumentId, delivered once, accepted once.
    let inbox = national
        .store
        .inbox(
            &[MINISTRY.to_owned()],
            lienthong_edxml::MessageType::Edoc,
            &Default::default(),
        )
        .await
        .expect("inbox");
    let mut per_document: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &inbox {
        *per_document
            .entry(entry.document.document_id.clone())
            .or_default() += 1;
        let accepted = national
            .store
            .trace(&entry.document.doc_id)
            .await
            .expect("trace")
            .iter()
            .filter(|e| e.kind == "accepted")
            .count();
        assert_eq!(accepted, 1);
    }
    assert_eq!(per_document.len(), total, "{per_document:?}");
    assert!(per_document.values().all(|n| *n == 1), "{per_document:?}");
    for (document_id, _) in &sent {
        assert!(
            per_document.contains_key(document_id),
            "{document_id} arrived"
        );
    }
    assert_eq!(national.dead_letters().await, 0);
    assert_eq!(tinh_a.dead_letters().await, 0);

    // The national process (no gateway port needed) serves its metrics on [telemetry] listen.
    let ops = format!("http://127.0.0.1:{ops_port}");
    let expected = [
        (
            "lienthong_arrivals_total",
            &["from=\"tinh-a\"", "result=\"accepted\""][..],
        ),
        (
            "lienthong_link_transfers_total",
            &["bus=\"tinh-a\"", "kind=\"receipt\""][..],
        ),
        ("lienthong_role_up", &["role=\"forwarder\""][..]),
    ];
    // A transfer is counted once its handler returns, which may be just after its effect is
    // seen: the last text fetched is the one judged.
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(t) = async {
                reqwest::get(format!("{ops}/metrics"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()
            }
            .await
            {
                text = t;
                if expected
                    .iter()
                    .all(|(metric, labels)| metric_sample(&text, metric, labels).is_some())
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    for (metric, labels) in expected {
        let v = metric_sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("{metric} {labels:?} missing in:\n{text}"));
        assert!(v >= 1.0, "{metric} {labels:?} = {v}");
    }
    assert_ready(&ops).await;

    process.kill();
    bus_a.stop().await;
    national.teardown().await;
    tinh_a.teardown().await;
    v_nat.delete();
    v_a.delete();
}
