//! `lienthong-load`: drives a running bus the way agency systems do (`POST /v1/sendEdoc`), times
//! every document from its submission to its arrival in every recipient's inbox, and in the same
//! run measures what the broker alone sustains with messages of the same size, so the pipeline's
//! figure reads as a fraction of the ceiling on this machine. `deploy/bench/load.sh` starts a bus
//! and runs it; `docs/performance.md` keeps the figures.

mod ceiling;
mod observe;
mod packages;
mod prom;
mod report;
mod threads;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use lienthong_client::{Client, ClientError};
use lienthong_edxml::OrganId;

use crate::report::{Grouped, Report, Stage};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The sending system (X-SystemId) and its secret.
    #[arg(long, default_value = "ubnd-hue")]
    system: String,
    #[arg(long, default_value = "demo-secret-ubnd-hue")]
    secret: String,
    /// The sending agency.
    #[arg(long, default_value = "000.00.00.H49")]
    from: String,
    /// A recipient (repeat for several).
    #[arg(long = "to", default_values_t = ["000.00.00.G22".to_owned()])]
    to: Vec<String>,
    /// A recipient's system as ID:SECRET (repeat): its inbox is read over /v1 at the end to check
    /// that every document is there exactly once.
    #[arg(long = "check-inbox")]
    check_inbox: Vec<String>,
    /// The bus's broker and prefix: inbox notices are read there, and the ceiling measured.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp: String,
    #[arg(long, default_value = "lienthong")]
    prefix: String,
    /// The bus's queue type, for the ceiling's queue.
    #[arg(long, default_value = "quorum", value_parser = ["quorum", "classic"])]
    queue_type: String,
    /// Documents measured.
    #[arg(long, default_value_t = 2000)]
    documents: usize,
    /// Documents sent and delivered before the clock starts.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Package size in bytes, signature included.
    #[arg(long, default_value_t = 20_000)]
    size: usize,
    /// Sign every package with `<PREFIX>.key` and `<PREFIX>.pem` (PKCS#8 key, certificate).
    #[arg(long)]
    sign: Option<String>,
    /// Documents per second, sent on a fixed schedule (latency counts from the scheduled
    /// moment, so a slow bus cannot hide its queueing); without it, as fast as `--concurrency`
    /// submissions at a time allow.
    #[arg(long)]
    rate: Option<f64>,
    /// Submissions in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// A `/metrics` URL of the bus (repeat for every process): messages per document and where
    /// the time goes are read from there.
    #[arg(long = "metrics")]
    metrics: Vec<String>,
    /// Messages for the broker ceiling (0: skip it).
    #[arg(long, default_value_t = 5000)]
    ceiling_messages: usize,
    /// Ceiling measurements of `--ceiling-messages` each, one after the other; the ceiling is
    /// their median.
    #[arg(long, default_value_t = 3)]
    ceiling_repeats: usize,
    /// Confirms outstanding (and the consumer's prefetch) for the ceiling.
    #[arg(long, default_value_t = 64)]
    ceiling_window: usize,
    /// The ceiling's consumer acks every this many messages at once (`multiple`); 1, the
    /// default and the ceiling the targets are measured against, acks each one alone. More
    /// shows what an ack costs the broker (docs/performance.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    ceiling_ack_every: u16,
    /// How long to wait for the last copies after the last submission.
    #[arg(long, default_value_t = 300)]
    drain_secs: u64,
    /// A process to account for, as NAME=PID (repeat): its threads' CPU time, time waiting
    /// for a CPU and context switches per document are read from /proc. Name the broker's
    /// process `broker` to compare its CPU per document with its CPU per ceiling message.
    #[arg(long = "watch")]
    watch: Vec<threads::Watched>,
    /// The bus has no ledger whose queue to wait for (`lienthong-floor`).
    #[arg(long)]
    no_ledger: bool,
    /// Also write the figures as JSON here.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
    /// Measure the broker ceiling only, print it (and write it to `--summary`) and end: no bus
    /// is needed. `load.sh` measures one per round this way, with no bus running, so the builds
    /// of a round are divided by the same figure.
    #[arg(long)]
    ceiling_only: bool,
    /// Also write every measured submission here, one CSV line each: when it was due (ms from
    /// the start), its acceptance and its submit-to-inbox latency (ms; empty if it never came
    /// in), and when it was due by the wall clock (Unix ms, to line it up with the bus's logs).
    /// Shows whether a tail is spread out or comes in bursts, and at what.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.ceiling_only {
        return match ceiling_only(&args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    match run(&args).await {
        Ok(report) => {
            print!("{}", report.render());
            if let Some(path) = &args.summary
                && let Err(e) = std::fs::write(path, report.json().to_string())
            {
                eprintln!("error: writing {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
            if report.complete() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The broker ceiling as the options ask for it.
async fn measure_ceiling(args: &Args) -> anyhow::Result<ceiling::Ceiling> {
    ceiling::measure_repeated(
        &args.amqp,
        &args.queue_type,
        args.size,
        args.ceiling_messages,
        args.ceiling_window,
        args.ceiling_repeats,
        usize::from(args.ceiling_ack_every),
    )
    .await
}

/// `--ceiling-only`: the ceiling alone, printed and written to `--summary` as
/// `ceilingPerSecond` and `ceilingMeasurements`.
async fn ceiling_only(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.ceiling_messages > 0,
        "--ceiling-only needs --ceiling-messages above 0"
    );
    let ceiling = measure_ceiling(args).await?;
    println!("{}", ceiling.describe(args.size));
    if let Some(path) = &args.summary {
        let json = serde_json::json!({
            "ceilingPerSecond": ceiling.per_second(),
            "ceilingMeasurements": ceiling.rates(),
        });
        std::fs::write(path, json.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    anyhow::ensure!(args.documents > 0, "--documents must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number"
        );
    }
    let organ = |code: &str, option: &str| {
        OrganId::parse(code).map_err(|e| anyhow::anyhow!("{option} {code}: {e}"))
    };
    let shape = packages::Shape {
        from: organ(&args.from, "--from")?,
        to: args
            .to
            .iter()
            .map(|t| organ(t, "--to"))
            .collect::<anyhow::Result<_>>()?,
        size: args.size,
        signer: args
            .sign
            .as_deref()
            .map(packages::Signer::load)
            .transpose()?,
    };
    let inboxes = args
        .check_inbox
        .iter()
        .map(|s| {
            s.split_once(':')
                .map(|(id, secret)| (id.to_owned(), Client::new(&args.url, id, secret)))
                .with_context(|| format!("--check-inbox {s}: expected ID:SECRET"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Numbers unique to this run, so no package repeats one already accepted.
    let first = u64::from(uuid::Uuid::new_v4().as_u128() as u32) * 1_000;
    eprintln!(
        "making {} packages of {} bytes{}...",
        args.warmup + args.documents,
        args.size,
        if shape.signer.is_some() {
            ", signed"
        } else {
            ""
        }
    );
    let mut made = packages::make(&shape, first, args.warmup + args.documents).await?;
    let measured_packages = made.split_off(args.warmup);
    let warmup_packages = made;

    // The generator's own threads too, shown apart from the bus's: the whole machine's budget.
    let mut watch = args.watch.clone();
    watch.push(threads::Watched {
        name: threads::CLIENT.to_owned(),
        pid: std::process::id(),
    });
    let before_ceiling = threads::snapshot(&watch);
    let ceiling = if args.ceiling_messages > 0 {
        eprintln!(
            "broker ceiling: {} persistent messages of {} bytes, {} time(s)...",
            args.ceiling_messages, args.size, args.ceiling_repeats
        );
        Some(measure_ceiling(args).await?)
    } else {
        None
    };
    let ceiling_threads = threads::costs(&before_ceiling, &threads::snapshot(&watch));

    let recipients = args.to.len();
    let total = (args.warmup + args.documents) as u64;
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} documents in every inbox ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let (arrivals, _listener) = observe::listen(&args.amqp, &args.prefix, &args.to, move |_, n| {
        if n == recipients {
            progress.inc(1);
        }
    })
    .await?;

    let client = Client::new(&args.url, &args.system, &args.secret);
    let http = reqwest::Client::new();
    let counters = Arc::new(Counters::default());

    // Warm-up: connections, caches and the broker's queues settle; not measured.
    let warm = submit_all(&client, warmup_packages, None, args.concurrency, &counters).await;
    let warm_ids: Vec<String> = warm.into_iter().filter_map(|s| s.doc_id).collect();
    wait_for_copies(&arrivals, &warm_ids, recipients, args.drain_secs).await;
    let before = prom::fetch(&http, &args.metrics).await?;
    let threads_before = threads::snapshot(&watch);
    let failed_in_warmup = counters.failed.load(Ordering::Relaxed);

    bar.set_message(match args.rate {
        Some(r) => format!("at {r:.0}/s"),
        None => format!("{} in flight", args.concurrency),
    });
    let started = Instant::now();
    let submissions = submit_all(
        &client,
        measured_packages,
        args.rate,
        args.concurrency,
        &counters,
    )
    .await;
    let submitted_for = started.elapsed();
    let ids: Vec<String> = submissions
        .iter()
        .filter_map(|s| s.doc_id.clone())
        .collect();
    let all_in = wait_for_copies(&arrivals, &ids, recipients, args.drain_secs).await;
    let ledger_drained = if args.no_ledger {
        None
    } else {
        ledger_caught_up(
            &args.amqp,
            &args.prefix,
            Duration::from_secs(args.drain_secs),
        )
        .await
    };
    bar.finish();
    // Counters settle once the last acks are in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = prom::fetch(&http, &args.metrics).await?;
    let threads = threads::costs(&threads_before, &threads::snapshot(&watch));

    let mut inbox_check = Vec::new();
    for (system, c) in &inboxes {
        // A list answers 10,000 copies at most (`getReceivedEdocList`'s `limit`): past that the
        // inbox cannot be read whole, and the notices' count stands alone.
        if ids.len() > report::INBOX_LIST_MOST {
            inbox_check.push((system.clone(), None));
            continue;
        }
        let rows = c
            .inbox("edoc", &[("limit", &report::INBOX_LIST_MOST.to_string())])
            .await?;
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        for r in &rows {
            if let Some(d) = r["docId"].as_str() {
                *seen.entry(d).or_default() += 1;
            }
        }
        let once = ids
            .iter()
            .filter(|d| seen.get(d.as_str()) == Some(&1))
            .count();
        inbox_check.push((system.clone(), Some(once)));
    }

    let a = arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut latencies = Vec::with_capacity(submissions.len());
    let mut accept = Vec::with_capacity(submissions.len());
    let mut last = started;
    // Only when asked for (`--timeline`).
    let mut timeline = args
        .timeline
        .as_ref()
        .map(|_| String::from(report::TIMELINE_HEADER));
    // The wall clock at `started`, to line the timeline up with the processes' logs.
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(started.elapsed());
    for s in &submissions {
        accept.push(s.accepted - s.due);
        let inbox = s
            .doc_id
            .as_ref()
            .and_then(|doc| a.copies.get(doc))
            .filter(|copies| copies.len() >= recipients)
            .map(|copies| copies.iter().map(|(_, t)| *t).max().unwrap_or(s.due));
        if let Some(timeline) = &mut timeline {
            timeline.push_str(&report::timeline_line(
                s.due.saturating_duration_since(started),
                s.accepted - s.due,
                inbox.map(|done| done.saturating_duration_since(s.due)),
                started_unix,
            ));
        }
        let Some(done) = inbox else { continue };
        last = last.max(done);
        latencies.push(done.saturating_duration_since(s.due));
    }
    if let (Some(path), Some(timeline)) = (&args.timeline, timeline) {
        std::fs::write(path, timeline)
            .with_context(|| format!("writing the timeline to {}", path.display()))?;
    }
    let finished = match ledger_drained {
        Some(t) => last.max(t),
        None => last,
    };
    let stages = Stage::from_scrapes(&before, &after);
    let groups = Grouped::from_scrapes(&before, &after);
    Ok(Report {
        documents: args.documents,
        size: args.size,
        signed: shape.signer.is_some(),
        recipients,
        rate: args.rate,
        concurrency: args.concurrency,
        ceiling,
        accepted: ids.len(),
        delivered: latencies.len(),
        failed: counters.failed.load(Ordering::Relaxed) - failed_in_warmup,
        first_failure: counters
            .first_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        retried: counters.retried.load(Ordering::Relaxed),
        repeated_notices: a.repeated_notices,
        all_in,
        ledger_caught_up: (!args.no_ledger).then_some(ledger_drained.is_some()),
        submitted_for,
        elapsed: finished - started,
        latencies,
        accept,
        published: prom::increase(&before, &after, "lienthong_published_messages_total", &[]),
        published_by_exchange: prom::label_values(
            &after,
            "lienthong_published_messages_total",
            "exchange",
        )
        .into_iter()
        .map(|x| {
            let n = prom::increase(
                &before,
                &after,
                "lienthong_published_messages_total",
                &[("exchange", &x)],
            );
            (x, n)
        })
        .collect(),
        acks_sent: prom::increase(&before, &after, "lienthong_acks_sent_total", &[]),
        handled: prom::increase(&before, &after, "lienthong_messages_total", &[]),
        stages,
        groups,
        in_place_gave_up: prom::increase(
            &before,
            &after,
            "lienthong_store_in_place_gave_up_total",
            &[],
        ),
        inbox_check,
        threads,
        ceiling_threads,
    })
}

#[derive(Debug, Default)]
struct Counters {
    failed: AtomicUsize,
    retried: AtomicUsize,
    first_failure: std::sync::Mutex<Option<String>>,
}

/// One submission: when it was due (scheduled, or started), when the gateway answered, and the
/// docId it gave.
#[derive(Debug, Clone)]
struct Submission {
    due: Instant,
    accepted: Instant,
    doc_id: Option<String>,
}

/// Sends every package, at `rate` per second on a schedule or as fast as `concurrency` allows.
async fn submit_all(
    client: &Client,
    packages: Vec<Vec<u8>>,
    rate: Option<f64>,
    concurrency: usize,
    counters: &Arc<Counters>,
) -> Vec<Submission> {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, package) in packages.into_iter().enumerate() {
        let due = match rate {
            Some(r) => {
                let due = start + Duration::from_secs_f64(i as f64 / r);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let due = if rate.is_some() { due } else { Instant::now() };
        let client = client.clone();
        let counters = counters.clone();
        tasks.spawn(async move {
            let doc_id = send(&client, package, &counters).await;
            drop(permit);
            (
                i,
                Submission {
                    due,
                    accepted: Instant::now(),
                    doc_id,
                },
            )
        });
    }
    let mut done: Vec<(usize, Submission)> = tasks.join_all().await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, s)| s).collect()
}

/// One `sendEdoc`; a busy bus (HTTP 503, error 20) is asked again after a pause, as an adapter
/// would; any other refusal is counted and kept for the report.
async fn send(client: &Client, package: Vec<u8>, counters: &Counters) -> Option<String> {
    let mut pause = Duration::from_millis(50);
    loop {
        match client.send(package.clone(), "edoc").await {
            Ok(id) => return Some(id),
            Err(ClientError::Api { http: 503, .. }) | Err(ClientError::Transport(_))
                if pause < Duration::from_secs(30) =>
            {
                counters.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = counters
                    .first_failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert_with(|| e.to_string());
                return None;
            }
        }
    }
}

/// Waits until every document has a copy in each recipient's inbox; false if `limit` passed.
async fn wait_for_copies(
    arrivals: &observe::Shared,
    ids: &[String],
    recipients: usize,
    limit_secs: u64,
) -> bool {
    let limit = Instant::now() + Duration::from_secs(limit_secs);
    loop {
        let missing = {
            let a = arrivals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.iter()
                .filter(|d| a.copies.get(*d).is_none_or(|c| c.len() < recipients))
                .count()
        };
        if missing == 0 {
            return true;
        }
        if Instant::now() > limit {
            eprintln!("{missing} documents not in every inbox after {limit_secs} s");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// When the ledger's queue was first seen empty (its events recorded), or None after `limit`.
async fn ledger_caught_up(url: &str, prefix: &str, limit: Duration) -> Option<Instant> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .ok()?;
    let queue = format!("{prefix}.ledger");
    let until = Instant::now() + limit;
    let caught_up = loop {
        // A passive declare that fails closes its channel: one channel per look.
        let channel = conn.create_channel().await.ok()?;
        let q = channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = channel.close(200, "bye".into()).await;
        if q.message_count() == 0 {
            break Some(Instant::now());
        }
        if Instant::now() > until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = conn.close(200, "bye".into()).await;
    caught_up
}
