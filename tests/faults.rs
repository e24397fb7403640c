//! One long run with every fault in turn, under sustained load. Two buses run as `lienthong`
//! processes on a RabbitMQ node and a PostgreSQL server of the test's own: province A's bus
//! (PostgreSQL; a gateway, a worker running every document stage chained, a ledger and a
//! forwarder, each a process) and the national bus (SQLite, one `lienthong up` process). The
//! province keeps sending documents to a commune on its own bus and to a ministry on the
//! national bus, and both recipients answer every document with a status. Meanwhile, in turn:
//!
//! 1. SIGKILL of each of A's processes, each started again half a second later;
//! 2. the national bus goes away (SIGKILL) for four seconds, then comes back;
//! 3. the RabbitMQ node is killed and started again on the same data;
//! 4. PostgreSQL crashes (an immediate stop, no checkpoint) and starts again with recovery.
//!
//! Afterwards every document is in both recipients' inboxes exactly once and both statuses
//! reached the sender exactly once, counted per document and printed as a table; the ledger's
//! chain is intact and nothing was dead-lettered. The broker and the database are the test's
//! own, so it runs in a binary of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lienthong_client::Client;
use lienthong_edxml::{
    MessageType, NewEdoc, OrganId, Organization, StatusCode, Timestamp, write, write_edoc,
    write_status,
};
use lienthong_store::{Agency, InboxFilter, Level, Store};
use lienthong_tests::servers::{Cluster, Postgres, Processes};
use lienthong_tests::*;
use tokio::sync::Mutex;

/// A's processes: the roles each runs.
const PROVINCE_PROCESSES: [(&str, &[&str]); 4] = [
    ("gateway", &["gateway"]),
    ("worker", &["verifier", "translator", "router", "delivery"]),
    ("ledger", &["ledger"]),
    ("forwarder", &["forwarder"]),
];

fn agency(code: &str, level: Level, bus: &str) -> Agency {
    Agency {
        bus: Some(bus.to_owned()),
        ..Agency::new(code, &format!("Cơ quan {code}"), level)
    }
}

/// The documents (edoc or status) in `organ`'s inbox: their edXML DocumentIds, repeated as often
/// as they are there.
async fn inbox_of(store: &Store, organ: &str, message_type: MessageType) -> Vec<String> {
    store
        .inbox(
            &[organ.to_owned()],
            message_type,
            &InboxFilter {
                limit: Some(100_000),
                ..Default::default()
            },
        )
        .await
        .map(|rows| rows.into_iter().map(|e| e.document.document_id).collect())
        .unwrap_or_default()
}

/// Answers every document in `organ`'s inbox with a status 03, once each, until `stop`; a
/// refusal or an unreachable gateway is tried again (the bus recognises the same answer).
async fn answer(
    client: Client,
    store: Store,
    organ: &'static str,
    letters: Arc<Mutex<BTreeMap<String, NewEdoc>>>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut answered = BTreeSet::new();
    // Each answer is written once and sent as it is until accepted, so an acceptance whose
    // reply was lost is recognised when the same package comes again.
    let mut written: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let me = Organization::new(OrganId::parse(organ).expect("organ"), "x");
    loop {
        let last_round = stop.load(Ordering::SeqCst);
        for document_id in inbox_of(&store, organ, MessageType::Edoc).await {
            if answered.contains(&document_id) {
                continue;
            }
            let Some(letter) = letters.lock().await.get(&document_id).cloned() else {
                continue;
            };
            let package = written.entry(document_id.clone()).or_insert_with(|| {
                let mut st = write::status_reply(&letter.header, &me, StatusCode::Accepted, None);
                st.timestamp = Timestamp::from_unix_ms(lienthong_store::now_ms() + 3_000);
                write_status(&st)
            });
            if client.send(package.clone(), "status").await.is_ok() {
                answered.insert(document_id);
            }
        }
        if last_round && answered.len() == letters.lock().await.len() {
            return answered.len();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_in_turn_under_sustained_load_loses_and_repeats_nothing() {
    logs();
    let (rabbit, pg) = tokio::task::spawn_blocking(|| (Cluster::start(1), Postgres::start()))
        .await
        .expect("servers");
    let url = rabbit.url(0);
    let mut province = Env::on_postgres(&pg.url()).await;
    let mut national = Env::new(Backend::Sqlite).await;
    for env in [&mut province, &mut national] {
        env.bus.url = url.clone();
        env.bus.queue_type = lienthong_bus::QueueType::Quorum;
    }
    // The ministry is the national bus's; the province and its commune are A's.
    province
        .store
        .upsert_agencies(&[agency(MINISTRY, Level::Central, "quoc-gia")])
        .await
        .expect("registry");
    national
        .store
        .upsert_agencies(&[
            agency(PROVINCE, Level::Province, "tinh-a"),
            agency(COMMUNE, Level::Commune, "tinh-a"),
        ])
        .await
        .expect("registry");

    let (port_a, port_b) = (free_port(), free_port());
    let bus_section = |env: &Env| {
        format!(
            "[bus]\nurl = \"{url}\"\nprefix = \"{}\"\nqueue_type = \"quorum\"\n\
             connect_timeout_ms = 1000\nconfirm_timeout_ms = 3000\n\n",
            env.bus.prefix
        )
    };
    let config_a = province.dir.path().join("tinh-a.toml");
    std::fs::write(
        &config_a,
        format!(
            "[store]\nurl = \"{}\"\nblobs = {{ kind = \"db\" }}\n\n{}\
             [gateway]\nlisten = \"127.0.0.1:{port_a}\"\nrelay_after_ms = 1000\n\
             document_stages = [\"verifier\", \"translator\", \"router\"]\n\n\
             [verifier]\ntrust_dir = \"{}\"\nbus_organ_id = \"{DEPARTMENT}\"\n\n\
             [translator]\nbus_organ_id = \"{DEPARTMENT}\"\n\n\
             [federation]\nbus = \"tinh-a\"\norgan_id = \"{DEPARTMENT}\"\n\n\
             [[federation.peers]]\nbus = \"quoc-gia\"\nurl = \"{url}\"\nprefix = \"{}\"\nparent = true\n",
            province.store_config.url,
            bus_section(&province),
            province.verifier.trust_dir.display(),
            national.bus.prefix,
        ),
    )
    .expect("config");
    let config_b = national.dir.path().join("quoc-gia.toml");
    std::fs::write(
        &config_b,
        format!(
            "[store]\nurl = \"{}\"\nblobs = {{ kind = \"files\", dir = \"{}\" }}\n\n{}\
             [gateway]\nlisten = \"127.0.0.1:{port_b}\"\nrelay_after_ms = 1000\n\
             document_stages = [\"router\"]\n\n\
             [federation]\nbus = \"quoc-gia\"\norgan_id = \"{MINISTRY}\"\n\n\
             [[federation.peers]]\nbus = \"tinh-a\"\nurl = \"{url}\"\nprefix = \"{}\"\n",
            national.store_config.url,
            national.blob_dir(),
            bus_section(&national),
            province.bus.prefix,
        ),
    )
    .expect("config");

    let mut procs = Processes::new(province.dir.path());
    let start_province = |procs: &mut Processes, name: &'static str| {
        let roles = PROVINCE_PROCESSES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .expect("a process of A");
        let mut args = vec!["serve"];
        args.extend_from_slice(roles);
        procs.start(name, &config_a, &args);
    };
    for (name, _) in PROVINCE_PROCESSES {
        start_province(&mut procs, name);
    }
    procs.start("national", &config_b, &["up"]);
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    for base in [&url_a, &url_b] {
        eventually("a gateway to be ready", Duration::from_secs(60), || async {
            let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }

    // Sustained load: two senders, each package sent until accepted (the same package again
    // after a refusal or a lost answer), and both recipients answering.
    let stop = Arc::new(AtomicBool::new(false));
    let letters: Arc<Mutex<BTreeMap<String, NewEdoc>>> = Arc::default();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    // Attempts the bus refused or left unanswered (each package sent again until accepted).
    let refused = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..2 {
        let (stop, letters, sent, base, refused) = (
            Arc::clone(&stop),
            Arc::clone(&letters),
            Arc::clone(&sent),
            url_a.clone(),
            Arc::clone(&refused),
        );
        senders.push(tokio::spawn(async move {
            let client = Client::new(&base, "province", "secret-province");
            while !stop.load(Ordering::SeqCst) {
                let letter = edoc(PROVINCE, &[COMMUNE, MINISTRY], unique_number());
                let document_id = letter.header.document_id.to_string();
                let package = write_edoc(&letter);
                let doc_id = eventually("A to accept", Duration::from_secs(180), || async {
                    let answer = client.send(package.clone(), "edoc").await.ok();
                    if answer.is_none() {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    answer
                })
                .await;
                letters.lock().await.insert(document_id, letter);
                sent.lock().await.push(doc_id);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    let answer_stop = Arc::new(AtomicBool::new(false));
    let answerers = [
        tokio::spawn(answer(
            Client::new(&url_a, "commune", "secret-commune"),
            province.store.clone(),
            COMMUNE,
            Arc::clone(&letters),
            Arc::clone(&answer_stop),
        )),
        tokio::spawn(answer(
            Client::new(&url_b, "ministry", "secret-ministry"),
            national.store.clone(),
            MINISTRY,
            Arc::clone(&letters),
            Arc::clone(&answer_stop),
        )),
    ];

    let pause = || tokio::time::sleep(Duration::from_secs(2));
    let mut faults = Vec::new();
    pause().await;
    // 1. Each of A's processes killed in turn.
    for (name, _) in PROVINCE_PROCESSES {
        procs.kill(name);
        tokio::time::sleep(Duration::from_millis(500)).await;
        start_province(&mut procs, name);
        faults.push(format!(
            "SIGKILL {name} (at {} sent)",
            sent.lock().await.len()
        ));
        pause().await;
    }
    // 2. The peer bus goes away for a while.
    procs.kill("national");
    faults.push(format!(
        "national bus away 4 s (at {} sent)",
        sent.lock().await.len()
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    procs.start("national", &config_b, &["up"]);
    pause().await;
    // 3. The broker is killed and started again.
    faults.push(format!(
        "RabbitMQ killed and restarted (at {} sent)",
        sent.lock().await.len()
    ));
    let rabbit = Arc::new(rabbit);
    let node = Arc::clone(&rabbit);
    tokio::task::spawn_blocking(move || node.restart(0))
        .await
        .expect("broker restarted");
    pause().await;
    // 4. The database crashes and recovers.
    faults.push(format!(
        "PostgreSQL crashed and restarted (at {} sent)",
        sent.lock().await.len()
    ));
    let pg = Arc::new(pg);
    let server = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || server.crash_and_restart())
        .await
        .expect("database restarted");
    pause().await;
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }
    let total = sent.lock().await.len();
    let refused = refused.load(Ordering::SeqCst);
    eprintln!(
        "faults, in turn, while sending:\n  {}\nsubmissions refused or unanswered meanwhile, each sent again: {refused}",
        faults.join("\n  ")
    );
    assert!(total > 40, "too little traffic to prove anything: {total}");
    // The gateway's death and the broker's restart met submissions: the faults were felt.
    assert!(refused > 0, "no submission met a fault");

    // Every answer given; then every status back at the sender.
    answer_stop.store(true, Ordering::SeqCst);
    let settled = tokio::time::timeout(Duration::from_secs(240), async {
        for a in answerers {
            a.await.expect("answerer");
        }
        loop {
            let statuses = inbox_of(&province.store, PROVINCE, MessageType::Status).await;
            if statuses.len() >= 2 * total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    if settled.is_err() {
        panic!(
            "not settled after 240 s (statuses at the sender: {})\n{}",
            inbox_of(&province.store, PROVINCE, MessageType::Status)
                .await
                .len(),
            procs.tail_logs()
        );
    }
    // Anything late would be in by now.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let count = |list: &[String]| {
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for d in list {
            *by.entry(d.clone()).or_default() += 1;
        }
        by
    };
    let commune = count(&inbox_of(&province.store, COMMUNE, MessageType::Edoc).await);
    let ministry = count(&inbox_of(&national.store, MINISTRY, MessageType::Edoc).await);
    // A status package names the document it answers (its DocumentId is the original's).
    let statuses = province
        .store
        .inbox(
            &[PROVINCE.to_owned()],
            MessageType::Status,
            &InboxFilter {
                limit: Some(100_000),
                ..Default::default()
            },
        )
        .await
        .expect("the sender's inbox");
    let mut answers: BTreeMap<(String, String), usize> = BTreeMap::new();
    for s in &statuses {
        *answers
            .entry((s.document.document_id.clone(), s.document.sender.clone()))
            .or_default() += 1;
    }
    eprintln!(
        "{:<40} {:>7} {:>8} {:>14} {:>15}",
        "DocumentId", "commune", "ministry", "commune's 03", "ministry's 03"
    );
    let mut wrong = Vec::new();
    let documents: Vec<String> = letters.lock().await.keys().cloned().collect();
    for d in &documents {
        let row = [
            commune.get(d).copied().unwrap_or(0),
            ministry.get(d).copied().unwrap_or(0),
            answers
                .get(&(d.clone(), COMMUNE.to_owned()))
                .copied()
                .unwrap_or(0),
            answers
                .get(&(d.clone(), MINISTRY.to_owned()))
                .copied()
                .unwrap_or(0),
        ];
        eprintln!(
            "{d:<40} {:>7} {:>8} {:>14} {:>15}",
            row[0], row[1], row[2], row[3]
        );
        if row != [1, 1, 1, 1] {
            wrong.push(format!("{d}: {row:?}"));
        }
    }
    assert_eq!(documents.len(), total, "one document per package sent");
    assert_eq!(
        commune.len(),
        total,
        "nothing in the commune's inbox but what was sent"
    );
    assert_eq!(
        ministry.len(),
        total,
        "nothing in the ministry's inbox but what was sent"
    );
    assert!(
        wrong.is_empty(),
        "copies and statuses per document (commune, ministry, commune's 03, ministry's 03): {wrong:#?}\n{}",
        procs.tail_logs()
    );
    for (env, name) in [(&province, "A"), (&national, "national")] {
        let chain = env.store.verify_chain().await.expect("verify chain");
        assert!(
            matches!(chain, lienthong_store::ChainCheck::Intact { .. }),
            "{name}: {chain:?}"
        );
        assert_eq!(env.dead_letters().await, 0, "{name}: nothing dead-lettered");
    }
    eprintln!(
        "{total} documents through {} faults: each in both inboxes once, both statuses back once",
        faults.len()
    );
    drop(procs);
    province.teardown().await;
    national.teardown().await;
    let (rabbit, pg) = (
        Arc::try_unwrap(rabbit)
            .ok()
            .expect("the node's only holder"),
        Arc::try_unwrap(pg).ok().expect("the server's only holder"),
    );
    tokio::task::spawn_blocking(move || drop((rabbit, pg)))
        .await
        .expect("servers stopped");
}
