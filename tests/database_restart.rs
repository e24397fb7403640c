//! The database goes down under load and comes back: a PostgreSQL server of the test's own
//! (its own data directory and port, on loopback), restarted with `pg_ctl restart -m immediate`
//! (no shutdown checkpoint: what a crash does, with recovery at start) while documents are sent,
//! and once more while their recipient sends statuses back. The gateway refuses what it cannot
//! store (the client sends the same package again), the stages and the ledger retry, and in the
//! end every document is in its recipient's inbox exactly once, every status has reached its
//! sender exactly once, and every trace is whole; the count per document is printed as a table.
//! A server of its own, so the shared one never restarts: a binary of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lienthong_edxml::{StatusCode, write_edoc};
use lienthong_tests::servers::Postgres;
use lienthong_tests::*;

/// Sends until the bus answers with a docId, counting refusals: during the outage the gateway
/// refuses, and the client sends the same package again, byte for byte. An acceptance whose
/// answer was lost (the database crashed between committing and answering) is found again by
/// its idempotency key; a package built anew would be a second status, refused by the rules.
async fn until_accepted<F, Fut>(refusals: &AtomicUsize, mut send: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, lienthong_client::ClientError>>,
{
    let limit = Duration::from_secs(120);
    let start = std::time::Instant::now();
    loop {
        match send().await {
            Ok(doc_id) => return doc_id,
            Err(e) => {
                refusals.fetch_add(1, Ordering::SeqCst);
                assert!(
                    start.elapsed() < limit,
                    "the bus still refused after {limit:?}; its last answer: {e}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Crashes the database once `accepted` reaches `at`, while the sender goes on sending; returns
/// how many had been accepted when it was back.
async fn crash_when(pg: &Arc<Postgres>, accepted: &AtomicUsize, at: usize) -> usize {
    while accepted.load(Ordering::SeqCst) < at {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pg = Arc::clone(pg);
    tokio::task::spawn_blocking(move || pg.crash_and_restart())
        .await
        .expect("restart");
    accepted.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_under_load_loses_and_repeats_nothing() {
    logs();
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .expect("postgres");
    let env = Env::on_postgres(&pg.url()).await;
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    let ministry = bus.client("ministry");
    let total = 60;
    let crash_at = total / 3;

    let pg = Arc::new(pg);
    let refusals = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let sending = async {
        let mut sent = Vec::new();
        for _ in 0..total {
            let letter = edoc(PROVINCE, &[MINISTRY], unique_number());
            let package = write_edoc(&letter);
            let doc_id = until_accepted(&refusals, || province.send(package.clone(), "edoc")).await;
            accepted.fetch_add(1, Ordering::SeqCst);
            sent.push((doc_id, letter));
        }
        sent
    };
    let (sent, back_at) = tokio::join!(sending, crash_when(&pg, &accepted, crash_at));
    let refused_documents = refusals.swap(0, Ordering::SeqCst);
    for (doc_id, _) in &sent {
        env.all_delivered(doc_id).await;
    }

    // The recipient answers each document; the database crashes again a third of the way.
    accepted.store(0, Ordering::SeqCst);
    let answering = async {
        for (_, letter) in &sent {
            let status = status_package(letter, MINISTRY, StatusCode::Accepted);
            until_accepted(&refusals, || ministry.send(status.clone(), "status")).await;
            accepted.fetch_add(1, Ordering::SeqCst);
        }
    };
    let ((), answers_back_at) = tokio::join!(answering, crash_when(&pg, &accepted, crash_at));
    let refused_statuses = refusals.load(Ordering::SeqCst);
    eprintln!(
        "refused while the database was down: {refused_documents} documents, {refused_statuses} statuses (each sent again until accepted)"
    );

    // Per document: copies in the recipient's inbox, the status as the sender sees it, and
    // status packages in the sender's inbox.
    let statuses = eventually(
        "every status back at the sender",
        Duration::from_secs(120),
        || async {
            let rows = province.inbox("status", &[]).await.ok()?;
            (rows.len() >= total).then_some(rows)
        },
    )
    .await;
    let copies = ministry.inbox("edoc", &[]).await.expect("inbox");
    let count = |rows: &[serde_json::Value], field: &str, doc_id: &str| {
        rows.iter().filter(|r| r[field] == doc_id).count()
    };
    eprintln!(
        "{:<38} {:>6} {:>8} {:>14}",
        "document", "copies", "status", "status notes"
    );
    let mut wrong = Vec::new();
    for (doc_id, _) in &sent {
        let in_inbox = count(&copies, "docId", doc_id);
        let business = eventually("the sender's view", Duration::from_secs(60), || async {
            let rows = province.sent(Some(doc_id)).await.ok()?;
            rows.iter()
                .find(|r| r["to"] == MINISTRY)
                .and_then(|r| r["businessStatus"].as_str().map(str::to_owned))
                .filter(|s| s == "03")
        })
        .await;
        // A status package names the document it answers by the edXML DocumentId.
        let document_id = env
            .store
            .document(doc_id)
            .await
            .expect("document")
            .expect("stored")
            .document_id;
        let notes = count(&statuses, "documentId", &document_id);
        if notes != 1 {
            wrong.push(format!("{doc_id}: {notes} status packages at the sender"));
        }
        eprintln!("{doc_id:<38} {in_inbox:>6} {business:>8} {notes:>14}");
        if in_inbox != 1 {
            wrong.push(format!("{doc_id}: {in_inbox} copies"));
        }
        // The trace also holds the events of the status answering the document: its own.
        let trace = env.store.trace(doc_id).await.expect("trace");
        for kind in ["accepted", "verified", "routed", "delivered"] {
            let n = trace
                .iter()
                .filter(|e| e.kind == kind && e.doc_id == *doc_id)
                .count();
            if n != 1 {
                wrong.push(format!("{doc_id}: {n} `{kind}` events"));
            }
        }
    }
    assert_eq!(copies.len(), total, "no copy beyond the documents sent");
    assert_eq!(statuses.len(), total, "each status reached the sender once");
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Both crashes happened under load: sending had begun, and went on once the database was
    // back.
    assert!(
        back_at < total && answers_back_at < total,
        "the database was back after {back_at} documents and {answers_back_at} statuses of {total}"
    );
    assert_eq!(env.dead_letters().await, 0, "nothing was dead-lettered");
    bus.stop().await;
    env.teardown().await;
    let pg = Arc::try_unwrap(pg)
        .ok()
        .expect("nobody else holds the server");
    tokio::task::spawn_blocking(move || drop(pg))
        .await
        .expect("postgres stopped");
}
