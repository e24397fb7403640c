//! Searching at national scale: the operator's searches (by docId, DocumentId, agency, date,
//! a page after another, failed copies, a document's trace) on a store of 10 million documents,
//! each with a copy and two ledger events, against the same searches on the same store when it
//! held 100,000 (the baseline, measured in the same run), and against the straightforward query
//! an index-less design would run (`OR` over sender and recipient, sorted by time).
//!
//! `cargo bench -p lienthong-store --bench search [-- DOCUMENTS]` (default 10,000,000; SQLite in
//! `target/bench-search/`, about 9 GB at 10 million; `LIENTHONG_BENCH_STORE=postgres://...` for
//! PostgreSQL; `LIENTHONG_BENCH_SQLITE_PAGE_SIZE=4096` for SQLite pages of another size than
//! `store.sqlite_page_size`'s default). Prints milliseconds, the median of 7 runs of each search.

use std::time::Instant;

use lienthong_store::{DocumentSearch, Store, StoreConfig};
use sqlx::Connection;

/// Agencies in the synthetic registry; every document goes from one to another.
const AGENCIES: i64 = 10_000;
/// One document every 3 s from `START_MS`: 10 million span about a year.
const START_MS: i64 = 1_767_225_600_000; // 2026-01-01
const STEP_MS: i64 = 3_000;

fn agency(i: i64) -> String {
    format!("A{:05}", i % AGENCIES)
}

/// Adds documents `from..to`, with one copy each and two ledger events, in SQL (what a year of
/// traffic would have left; the bytes themselves are not needed to search).
async fn seed(url: &str, from: i64, to: i64) {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let pg = url.starts_with("postgres");
    let series = if pg {
        format!("SELECT generate_series({from}::bigint, {to}::bigint - 1) AS i")
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to} - 1) SELECT i FROM n"
        )
    };
    // UUIDv7-shaped ids whose first 48 bits are the acceptance time, as the gateway makes them.
    let (hex8, hex4, hex12, cat) = if pg {
        (
            "lpad(to_hex(t >> 16), 8, '0')",
            "lpad(to_hex(t & 65535), 4, '0')",
            "lpad(to_hex(i), 12, '0')",
            "||",
        )
    } else {
        (
            "printf('%08x', t >> 16)",
            "printf('%04x', t & 65535)",
            "printf('%012x', i)",
            "||",
        )
    };
    let doc_id = format!("{hex8} {cat} '-' {cat} {hex4} {cat} '-7000-8000-' {cat} {hex12}");
    let sender = if pg {
        format!("'A' || lpad(((i % {AGENCIES}))::text, 5, '0')")
    } else {
        format!("printf('A%05d', i % {AGENCIES})")
    };
    let recipient = if pg {
        format!("'A' || lpad((((i * 7 + 1) % {AGENCIES}))::text, 5, '0')")
    } else {
        format!("printf('A%05d', (i * 7 + 1) % {AGENCIES})")
    };
    let rows = format!(
        "SELECT i, t, {doc_id} AS doc_id, {sender} AS sender, {recipient} AS recipient
         FROM (SELECT i, {START_MS} + i * {STEP_MS} AS t FROM ({series}) s) x"
    );
    let statements = [
        format!(
            "INSERT INTO documents (doc_id, idem_key, message_type, sender, sender_system, document_id, subject,
                                    size, sha256, created_ms, format)
             SELECT doc_id, 'k' {cat} i, 'edoc', sender, 'sys', sender {cat} ',2026/01/01,' {cat} i {cat} '/UBND',
                    'Công văn ' {cat} i, 20000, 'x', t, 'edxml' FROM ({rows}) r"
        ),
        // One copy in 1,000 failed.
        format!(
            "INSERT INTO legs (doc_id, recipient, delivery, transport, reason, created_ms, updated_ms)
             SELECT doc_id, recipient,
                    CASE WHEN i % 1000 = 0 THEN 'failed' ELSE 'delivered' END,
                    CASE WHEN i % 1000 = 0 THEN 'fail' ELSE 'done' END,
                    CASE WHEN i % 1000 = 0 THEN 'recipient is locked in the registry' END,
                    t, t + 40 FROM ({rows}) r"
        ),
        format!(
            "INSERT INTO events (event_id, doc_id, kind, organ, detail, at_ms)
             SELECT doc_id {cat} ':accepted', doc_id, 'accepted', sender, 'sha256 x', t FROM ({rows}) r"
        ),
        format!(
            "INSERT INTO events (event_id, doc_id, kind, organ, detail, at_ms)
             SELECT doc_id {cat} ':delivered:' {cat} recipient, doc_id, 'delivered', recipient, 'sha256 x', t + 40 FROM ({rows}) r"
        ),
    ];
    // The planner's statistics, as autovacuum (PostgreSQL) or `ANALYZE` would keep them.
    for s in statements.into_iter().chain(["ANALYZE".to_owned()]) {
        sqlx::query(sqlx::AssertSqlSafe(s))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("seeding: {e}"));
    }
    let _ = conn.close().await;
}

fn doc_id(i: i64) -> String {
    let t = START_MS + i * STEP_MS;
    format!("{:08x}-{:04x}-7000-8000-{:012x}", t >> 16, t & 65535, i)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds, the median of 7 runs (after one unmeasured).
async fn time<F, Fut, T>(mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    f().await;
    let mut runs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        std::hint::black_box(f().await);
        runs.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    median(runs)
}

/// Every search an operator runs, timed, on a store of `n` documents.
async fn searches(store: &Store, url: &str, n: i64) -> Vec<(&'static str, f64)> {
    let mid = n / 2;
    let busy = agency(mid);
    let day_ms = 86_400_000;
    let t_mid = START_MS + mid * STEP_MS;
    let q = |f: fn(&mut DocumentSearch)| {
        let mut s = DocumentSearch {
            limit: 50,
            ..DocumentSearch::default()
        };
        f(&mut s);
        s
    };
    let by_agency = DocumentSearch {
        agency: Some(busy.clone()),
        limit: 50,
        ..DocumentSearch::default()
    };
    let first_page = store.search_documents(&by_agency).await.expect("search");
    let second = DocumentSearch {
        before: first_page.last().map(|d| d.doc_id.clone()),
        ..by_agency.clone()
    };
    let in_a_day = DocumentSearch {
        from_ms: Some(t_mid - day_ms / 2),
        to_ms: Some(t_mid + day_ms / 2),
        ..by_agency.clone()
    };
    let an_hour = DocumentSearch {
        from_ms: Some(t_mid),
        to_ms: Some(t_mid + 3_600_000),
        limit: 50,
        ..DocumentSearch::default()
    };
    let by_doc = DocumentSearch {
        doc_id: Some(doc_id(mid)),
        limit: 50,
        ..DocumentSearch::default()
    };
    let by_document_id = DocumentSearch {
        document_id: Some(format!("{},2026/01/01,{mid}/UBND", agency(mid))),
        limit: 50,
        ..DocumentSearch::default()
    };
    let newest = q(|_| {});
    let pool = sqlx::AnyPool::connect(url).await.expect("connect");
    let naive = format!(
        "SELECT d.doc_id FROM documents d WHERE d.sender = '{busy}'
            OR d.doc_id IN (SELECT doc_id FROM legs WHERE recipient = '{busy}')
         ORDER BY d.created_ms DESC LIMIT 50"
    );
    let trace_of = doc_id(mid);
    vec![
        ("by docId", time(|| store.search_documents(&by_doc)).await),
        (
            "by DocumentId",
            time(|| store.search_documents(&by_document_id)).await,
        ),
        (
            "by agency (sent or received), newest 50",
            time(|| store.search_documents(&by_agency)).await,
        ),
        (
            "by agency, the next page",
            time(|| store.search_documents(&second)).await,
        ),
        (
            "by agency within one day",
            time(|| store.search_documents(&in_a_day)).await,
        ),
        (
            "everything in one hour",
            time(|| store.search_documents(&an_hour)).await,
        ),
        (
            "newest 50 of all",
            time(|| store.search_documents(&newest)).await,
        ),
        (
            "failed copies, newest 100",
            time(|| store.failed_legs(100)).await,
        ),
        ("a document's trace", time(|| store.trace(&trace_of)).await),
        (
            "naive: agency with OR, sorted by time",
            time(|| sqlx::query(sqlx::AssertSqlSafe(naive.clone())).fetch_all(&pool)).await,
        ),
    ]
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() {
    let n: i64 = std::env::args()
        .filter(|a| a != "--bench")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let baseline_n = 100_000.min(n);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-search");
    let url = match std::env::var("LIENTHONG_BENCH_STORE") {
        Ok(u) => u,
        Err(_) => {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("bench dir");
            format!("sqlite://{}", dir.join("search.db").display())
        }
    };
    let config = StoreConfig {
        url: url.clone(),
        max_connections: None,
        large_attachment_bytes: 1 << 20,
        inline_blob_bytes: 256 * 1024,
        cached_documents: lienthong_store::CACHED_DOCUMENTS,
        cached_blob_bytes: lienthong_store::CACHED_BLOB_BYTES,
        checkpoint_ms: lienthong_store::CHECKPOINT_MS,
        sqlite_synchronous: Default::default(),
        sqlite_page_size: std::env::var("LIENTHONG_BENCH_SQLITE_PAGE_SIZE")
            .ok()
            .map(|v| {
                v.parse()
                    .expect("LIENTHONG_BENCH_SQLITE_PAGE_SIZE: a number of bytes")
            })
            .unwrap_or(lienthong_store::SQLITE_PAGE_SIZE),
        blobs: lienthong_store::BlobConfig::Files {
            dir: dir.join("blobs"),
        },
    };
    let store = Store::connect(&config).await.expect("store");
    let started = Instant::now();
    seed(&url, 0, baseline_n).await;
    println!(
        "seeded {baseline_n} documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let small = searches(&store, &url, baseline_n).await;
    let started = Instant::now();
    let chunk = 1_000_000;
    let mut at = baseline_n;
    while at < n {
        let to = (at + chunk).min(n);
        seed(&url, at, to).await;
        at = to;
    }
    println!(
        "seeded up to {n} documents ({} copies, {} ledger events) in {:.1} s",
        n,
        2 * n,
        started.elapsed().as_secs_f64()
    );
    let large = searches(&store, &url, n).await;
    println!("\nmedian of 7 runs, milliseconds");
    println!("{:<42} {:>12} {:>12}", "search", baseline_n, n);
    for ((label, a), (_, b)) in small.iter().zip(&large) {
        println!("{label:<42} {a:>12.2} {b:>12.2}");
    }
    store.close().await;
}
