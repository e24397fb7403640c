//! SIGKILL each service in turn, twice, while clients keep sending (half of the packages signed):
//! nothing is lost and nothing is delivered, verified or recorded twice. The services run as
//! separate `lienthong serve` processes on one SQLite file and one RabbitMQ, as they would on one
//! host, beside a worker process that runs every stage and the ledger (its chains record their
//! events in place) as a competing consumer, killed in turn too.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lienthong_bus::QueueType;
use lienthong_client::{Client, ClientError};
use lienthong_edxml::write_edoc;
use lienthong_store::DeliveryState;
use lienthong_tests::servers::Processes;
use lienthong_tests::*;
use tokio::sync::Mutex;

/// The processes, by name, and the roles each runs.
const PROCESSES: [(&str, &[&str]); 7] = [
    ("verifier", &["verifier"]),
    ("translator", &["translator"]),
    ("router", &["router"]),
    ("delivery", &["delivery"]),
    ("ledger", &["ledger"]),
    (
        "worker",
        &["verifier", "translator", "router", "delivery", "ledger"],
    ),
    ("gateway", &["gateway"]),
];

fn serve(roles: &[&'static str]) -> Vec<&'static str> {
    std::iter::once("serve")
        .chain(roles.iter().copied())
        .collect()
}

/// Sends until accepted, retrying through gateway kills and 503s with the same package.
async fn send_until_accepted(client: &Client, package: Vec<u8>) -> String {
    let mut attempts = 0;
    loop {
        match client.send(package.clone(), "edoc").await {
            Ok(doc_id) => return doc_id,
            Err(ClientError::Api { code, desc, .. }) if code != 20 => {
                panic!("business error {code}: {desc}")
            }
            Err(_) => {
                attempts += 1;
                assert!(attempts < 600, "gateway never came back");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_each_service_mid_stream_loses_and_duplicates_nothing() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.queue_type = QueueType::Quorum;
    let port = free_port();
    let blobs = env.blob_dir();
    let config = env.dir.path().join("lienthong.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\nblobs = {{ kind = \"files\", dir = \"{blobs}\" }}\n\n\
             [bus]\nurl = \"{}\"\nprefix = \"{}\"\nqueue_type = \"quorum\"\n\n\
             [gateway]\nlisten = \"127.0.0.1:{port}\"\nrelay_after_ms = 1000\n\
             document_stages = [\"verifier\", \"translator\", \"router\"]\n\n\
             [verifier]\ntrust_dir = \"{}\"\nbus_organ_id = \"{DEPARTMENT}\"\n\n\
             [translator]\nbus_organ_id = \"{DEPARTMENT}\"\n",
            env.store_config.url,
            env.bus.url,
            env.bus.prefix,
            env.verifier.trust_dir.display()
        ),
    )
    .expect("config");
    let mut procs = Processes::new(env.dir.path());
    for (name, roles) in PROCESSES {
        procs.start(name, &config, &serve(roles));
    }
    let url = format!("http://127.0.0.1:{port}");
    eventually(
        "the gateway to be ready",
        Duration::from_secs(30),
        || async {
            let r = reqwest::get(format!("{url}/readyz")).await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (stop, sent, url) = (Arc::clone(&stop), Arc::clone(&sent), url.clone());
        senders.push(tokio::spawn(async move {
            let client = Client::new(&url, "province", "secret-province");
            while !stop.load(Ordering::Relaxed) {
                let doc = edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number());
                let document_id = doc.header.document_id.to_string();
                let mut package = write_edoc(&doc);
                if document_id.len().is_multiple_of(2) {
                    package = signed(&package, "signer");
                }
                let doc_id = send_until_accepted(&client, package).await;
                sent.lock().await.push((document_id, doc_id));
            }
        }));
    }

    let procs = Arc::new(Mutex::new(procs));
    let mut kills = 0;
    for _round in 0..2 {
        for (name, roles) in PROCESSES {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let mut p = procs.lock().await;
            p.kill(name);
            kills += 1;
            drop(p);
            tokio::time::sleep(Duration::from_millis(400)).await;
            procs.lock().await.start(name, &config, &serve(roles));
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    let sent = sent.lock().await.clone();
    assert!(
        sent.len() > 20,
        "too little traffic to prove anything: {}",
        sent.len()
    );

    // Every package accepted once: one docId per DocumentId.
    let doc_ids: HashSet<&str> = sent.iter().map(|(_, d)| d.as_str()).collect();
    let document_ids: HashSet<&str> = sent.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        doc_ids.len(),
        document_ids.len(),
        "a resubmission created a second document"
    );

    // Every document reaches both recipients, and the ledger holds each event exactly once.
    let store = env.store.clone();
    let settled = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let mut pending = 0;
            for doc_id in &doc_ids {
                let legs = store.legs(doc_id).await.expect("legs");
                let trace = store.trace(doc_id).await.expect("trace");
                let delivered = legs
                    .iter()
                    .filter(|l| l.delivery == DeliveryState::Delivered)
                    .count();
                let events = |k: &str| trace.iter().filter(|e| e.kind == k).count();
                if delivered != 2
                    || events("accepted") != 1
                    || events("routed") != 2
                    || events("delivered") != 2
                {
                    pending += 1;
                }
            }
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    if settled.is_err() {
        panic!(
            "documents still undelivered after 90 s\n{}",
            procs.lock().await.tail_logs()
        );
    }
    let mut signed_count = 0;
    for doc_id in &doc_ids {
        let verdict = store
            .verdict(doc_id)
            .await
            .expect("verdict")
            .expect("every package verified");
        assert!(
            verdict.outcome == "valid" || verdict.outcome == "unsigned",
            "{verdict:?}"
        );
        signed_count += usize::from(verdict.outcome == "valid");
    }
    assert!(
        signed_count > 0 && signed_count < doc_ids.len(),
        "both signed and unsigned packages were sent"
    );
    for organ in [MINISTRY, COMMUNE] {
        let inbox = store
            .inbox(
                &[organ.to_owned()],
                lienthong_edxml::MessageType::Edoc,
                &lienthong_store::InboxFilter {
                    limit: Some(100_000),
                    ..Default::default()
                },
            )
            .await
            .expect("inbox");
        let ids: Vec<&str> = inbox.iter().map(|e| e.document.doc_id.as_str()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "{organ}: a document is in the inbox twice"
        );
        assert_eq!(unique, doc_ids, "{organ}: inbox differs from what was sent");
    }
    // The ledger's hash chain survived the kills intact.
    let chain = store.verify_chain().await.expect("verify chain");
    assert!(
        matches!(chain, lienthong_store::ChainCheck::Intact { .. }),
        "{chain:?}"
    );
    assert_eq!(
        env.dead_letters().await,
        0,
        "nothing should be dead-lettered\n{}",
        procs.lock().await.tail_logs()
    );
    println!(
        "{} documents sent through {kills} kills: each delivered exactly once to both recipients",
        sent.len()
    );
    drop(procs);
    env.teardown().await;
}
