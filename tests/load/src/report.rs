//! The figures of a run, as a table for people and as JSON for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::ceiling::Ceiling;
use crate::prom::{Snapshot, increase, label_values};
use crate::threads::{Cost, total};

/// The process name `--watch` gives the broker.
pub const BROKER: &str = "broker";

/// The most copies one `getReceivedEdocList` answers (its `limit`).
pub const INBOX_LIST_MOST: usize = 10_000;

/// Mean time of one kind of work over the run, from the bus's own histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub count: f64,
    pub mean_ms: f64,
}

impl Stage {
    /// Every consumer queue, the `/v1/sendEdoc` handler and the confirmed publishes.
    pub fn from_scrapes(before: &Snapshot, after: &Snapshot) -> Vec<Stage> {
        let mut rows = Vec::new();
        let mut row = |name: String, metric: &str, filter: &[(&str, &str)]| {
            let count = increase(before, after, &format!("{metric}_count"), filter);
            let sum = increase(before, after, &format!("{metric}_sum"), filter);
            if count > 0.0 {
                rows.push(Stage {
                    name,
                    count,
                    mean_ms: sum / count * 1000.0,
                });
            }
        };
        row(
            "POST /v1/sendEdoc".into(),
            "lienthong_http_request_seconds",
            &[("route", "/v1/sendEdoc")],
        );
        for queue in label_values(after, "lienthong_message_handling_seconds_count", "queue") {
            row(
                format!("queue {queue}"),
                "lienthong_message_handling_seconds",
                &[("queue", &queue)],
            );
        }
        // Each stage's own work, chained or not (its queue's time includes the stages after it
        // in the chain).
        for stage in label_values(after, "lienthong_stage_seconds_count", "stage") {
            row(
                format!("  stage {stage}"),
                "lienthong_stage_seconds",
                &[("stage", &stage)],
            );
        }
        row(
            "publish + confirm (a batch)".into(),
            "lienthong_publish_seconds",
            &[],
        );
        // SQLite: the writes made in place, and those that found the lock held elsewhere and
        // went through sqlx's writer instead (the time here is the attempt).
        row(
            "store write in place (SQLite)".into(),
            "lienthong_store_in_place_write_seconds",
            &[("outcome", "made")],
        );
        // Each kind of write made in place is a commit of its own.
        for kind in label_values(
            after,
            "lienthong_store_in_place_write_seconds_count",
            "kind",
        ) {
            row(
                format!("  {kind}"),
                "lienthong_store_in_place_write_seconds",
                &[("outcome", "made"), ("kind", &kind)],
            );
        }
        // Tries that found the lock held elsewhere (each then tried again a millisecond later;
        // `lienthong_store_in_place_gave_up_total` counts the writes sent through sqlx).
        row(
            "  lock held elsewhere: tried again".into(),
            "lienthong_store_in_place_write_seconds",
            &[("outcome", "lock_held")],
        );
        rows
    }
}

/// The first line of `lienthong-load --timeline`'s CSV.
pub const TIMELINE_HEADER: &str = "due_ms,accept_ms,inbox_ms,due_unix_ms\n";

/// One submission's line of the timeline: when it was due (from the start), how long its
/// acceptance took, how long until it was in every recipient's inbox (empty if never), all in
/// ms, and when it was due by the wall clock (Unix ms; `started_unix` is the start's).
pub fn timeline_line(
    due: Duration,
    accept: Duration,
    inbox: Option<Duration>,
    started_unix: Duration,
) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.3},{:.3},{},{}\n",
        ms(due),
        ms(accept),
        inbox.map_or(String::new(), |d| format!("{:.3}", ms(d))),
        (started_unix + due).as_millis()
    )
}

/// Store calls of one kind made together (`lienthong_store_group_calls`): how many groups,
/// and how many calls each held on average.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouped {
    pub kind: String,
    pub groups: f64,
    pub calls_per_group: f64,
}

impl Grouped {
    /// Every kind the bus's processes grouped between the scrapes.
    pub fn from_scrapes(before: &Snapshot, after: &Snapshot) -> Vec<Grouped> {
        label_values(after, "lienthong_store_group_calls_count", "kind")
            .into_iter()
            .filter_map(|kind| {
                let filter = [("kind", kind.as_str())];
                let groups = increase(before, after, "lienthong_store_group_calls_count", &filter);
                let calls = increase(before, after, "lienthong_store_group_calls_sum", &filter);
                (groups > 0.0).then(|| Grouped {
                    kind,
                    groups,
                    calls_per_group: calls / groups,
                })
            })
            .collect()
    }

    /// Groups per document, over `documents`.
    pub fn per_document(&self, documents: usize) -> f64 {
        self.groups / documents.max(1) as f64
    }
}

#[derive(Debug)]
pub struct Report {
    pub documents: usize,
    pub size: usize,
    pub signed: bool,
    pub recipients: usize,
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub ceiling: Option<Ceiling>,
    /// Documents the gateway accepted (a docId came back).
    pub accepted: usize,
    /// Documents in every recipient's inbox.
    pub delivered: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    /// Submissions asked again after a 503.
    pub retried: usize,
    pub repeated_notices: usize,
    pub all_in: bool,
    /// None: the bus has no ledger to wait for (`--no-ledger`, the floor).
    pub ledger_caught_up: Option<bool>,
    pub submitted_for: Duration,
    /// From the first submission to the last copy in an inbox (or the ledger caught up, if
    /// later).
    pub elapsed: Duration,
    /// Submission (or its scheduled moment) to the last recipient's inbox.
    pub latencies: Vec<Duration>,
    /// Submission (or its scheduled moment) to the gateway's answer.
    pub accept: Vec<Duration>,
    pub published: f64,
    pub published_by_exchange: Vec<(String, f64)>,
    /// Frames the bus's consumers sent to settle their deliveries (`lienthong_acks_sent_total`),
    /// and the deliveries they handled (`lienthong_messages_total`).
    pub acks_sent: f64,
    pub handled: f64,
    pub stages: Vec<Stage>,
    /// The store's calls made together, by kind.
    pub groups: Vec<Grouped>,
    /// SQLite writes that waited for the lock longer than the store waits in place and went
    /// through sqlx instead (`lienthong_store_in_place_gave_up_total`).
    pub in_place_gave_up: f64,
    /// Per recipient system checked over /v1: documents of the run in its inbox exactly once
    /// (`None`: more documents than one list answers, not read).
    pub inbox_check: Vec<(String, Option<usize>)>,
    /// The watched processes' threads over the measured documents.
    pub threads: Vec<Cost>,
    /// The same over the ceiling's messages.
    pub ceiling_threads: Vec<Cost>,
}

/// p50, p90, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(samples: &[Duration]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    // Microseconds, 1 µs to an hour, three significant figures.
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
    for s in samples {
        h.saturating_record(u64::try_from(s.as_micros()).unwrap_or(u64::MAX).max(1));
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Some(Percentiles {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    })
}

impl Report {
    pub fn documents_per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The pipeline's documents/s over the broker's messages/s.
    pub fn fraction_of_ceiling(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|c| self.documents_per_second() / c.per_second())
    }

    pub fn messages_per_document(&self) -> f64 {
        self.published / self.documents.max(1) as f64
    }

    /// The broker's CPU per measured document and per ceiling message, in milliseconds.
    pub fn broker_cpu_ms(&self) -> Option<(f64, f64)> {
        let c = self.ceiling.as_ref()?;
        let per_doc =
            total(&self.threads, Some(BROKER)).run_ns as f64 / 1e6 / self.documents as f64;
        let per_message = total(&self.ceiling_threads, Some(BROKER)).run_ns as f64
            / 1e6
            / c.total_messages() as f64;
        (per_doc > 0.0 && per_message > 0.0).then_some((per_doc, per_message))
    }

    /// Every document accepted, in every inbox exactly once, nothing left behind.
    pub fn complete(&self) -> bool {
        self.failed == 0
            && self.accepted == self.documents
            && self.delivered == self.documents
            && self.all_in
            && self
                .inbox_check
                .iter()
                .all(|(_, n)| n.is_none_or(|n| n == self.documents))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "\nlienthong load: {} documents of {} bytes{}, {} recipient{}, {}",
            self.documents,
            self.size,
            if self.signed {
                ", signed"
            } else {
                ", unsigned"
            },
            self.recipients,
            if self.recipients == 1 { "" } else { "s" },
            match self.rate {
                Some(r) => format!("scheduled at {r:.1}/s"),
                None => format!("{} submissions in flight", self.concurrency),
            }
        );
        if let Some(c) = &self.ceiling {
            let _ = writeln!(w, "{}", c.describe(self.size));
        }
        let _ = write!(
            w,
            "  pipeline              {:>9.1} documents/s",
            self.documents_per_second()
        );
        match self.fraction_of_ceiling() {
            Some(f) => {
                let _ = writeln!(w, "  = {f:.3} x the broker ceiling");
            }
            None => {
                let _ = writeln!(w);
            }
        }
        let _ = writeln!(
            w,
            "  submitted in          {:>9.2} s, every copy in its inbox after {:.2} s{}",
            self.submitted_for.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            match self.ledger_caught_up {
                Some(true) => ", ledger caught up",
                Some(false) => ", ledger NOT caught up",
                None => "",
            }
        );
        let line = |w: &mut String, what: &str, p: Option<Percentiles>| {
            if let Some(p) = p {
                let _ = writeln!(
                    w,
                    "  {what:<21} p50 {:>7.1} ms   p90 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms",
                    p.p50, p.p90, p.p99, p.max
                );
            }
        };
        line(w, "accepted (HTTP)", percentiles(&self.accept));
        line(w, "submit -> every inbox", percentiles(&self.latencies));
        let by: Vec<String> = self
            .published_by_exchange
            .iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(x, n)| format!("{x} {:.2}", n / self.documents.max(1) as f64))
            .collect();
        let _ = writeln!(
            w,
            "  broker messages       {:>9.2} per document ({})",
            self.messages_per_document(),
            by.join(", ")
        );
        if self.acks_sent > 0.0 {
            let _ = writeln!(
                w,
                "  acks sent             {:>9.2} per document ({:.1} deliveries settled a frame)",
                self.acks_sent / self.documents.max(1) as f64,
                self.handled / self.acks_sent
            );
        }
        if !self.stages.is_empty() {
            let _ = writeln!(
                w,
                "  where the time goes (mean per message, the bus's metrics):"
            );
            for s in &self.stages {
                let _ = writeln!(
                    w,
                    "    {:<40} {:>8.0} x {:>7.2} ms",
                    s.name, s.count, s.mean_ms
                );
            }
            // On SQLite (a bus whose writes are made in place): the writes that waited too long.
            if self
                .stages
                .iter()
                .any(|s| s.name.starts_with("store write in place"))
            {
                let _ = writeln!(
                    w,
                    "    {:<40} {:>8.0}",
                    "  gave up waiting: through sqlx", self.in_place_gave_up
                );
            }
        }
        if !self.groups.is_empty() {
            let _ = writeln!(
                w,
                "  store calls made together (the bus's metrics): groups per document, calls per group"
            );
            for g in &self.groups {
                let _ = writeln!(
                    w,
                    "    {:<40} {:>8.2}   {:>7.2}",
                    g.kind,
                    g.per_document(self.documents),
                    g.calls_per_group
                );
            }
        }
        if !self.threads.is_empty() {
            let n = self.documents.max(1) as f64;
            let _ = writeln!(
                w,
                "  per document, by process and kind of thread (/proc): ms on a CPU, ms runnable but waiting for one, context switches, minor page faults"
            );
            let row = |w: &mut String,
                       process: &str,
                       kind: &str,
                       threads: String,
                       c: crate::threads::Counters| {
                let _ = writeln!(
                    w,
                    "    {process:<10} {kind:<22} {threads:>3} {:>8.2} {:>8.2} {:>9.1} {:>9.1}",
                    c.run_ns as f64 / 1e6 / n,
                    c.wait_ns as f64 / 1e6 / n,
                    c.switches() as f64 / n,
                    c.minor_faults as f64 / n
                );
            };
            for c in self
                .threads
                .iter()
                .filter(|c| c.process != crate::threads::CLIENT)
            {
                row(w, &c.process, &c.kind, c.threads.to_string(), c.counters);
            }
            row(w, "all", "", String::new(), total(&self.threads, None));
            let client = total(&self.threads, Some(crate::threads::CLIENT));
            if client != crate::threads::Counters::default() {
                row(
                    w,
                    crate::threads::CLIENT,
                    "(the load generator)",
                    String::new(),
                    client,
                );
            }
            if let Some((per_doc, per_message)) = self.broker_cpu_ms() {
                let _ = writeln!(
                    w,
                    "  the broker: {per_doc:.2} ms of CPU per document, {per_message:.3} ms per ceiling message: a document costs it {:.1} ceiling messages, so {:.3} x the ceiling is the most the pipeline could reach with the broker's CPU alone",
                    per_doc / per_message,
                    per_message / per_doc
                );
            }
        }
        let _ = writeln!(
            w,
            "  accepted {} of {}, in every inbox {}, refused {}, asked again after 503 {}, notices repeated {}",
            self.accepted,
            self.documents,
            self.delivered,
            self.failed,
            self.retried,
            self.repeated_notices
        );
        if let Some(f) = &self.first_failure {
            let _ = writeln!(w, "  first refusal: {f}");
        }
        for (system, n) in &self.inbox_check {
            let _ = match n {
                Some(n) => writeln!(
                    w,
                    "  inbox of {system} over /v1: {n} of {} documents exactly once",
                    self.documents
                ),
                None => writeln!(
                    w,
                    "  inbox of {system} over /v1: not read ({} documents; a list answers {} at most)",
                    self.documents, INBOX_LIST_MOST
                ),
            };
        }
        let _ = writeln!(
            w,
            "  {}",
            if self.complete() {
                "COMPLETE: every document in every inbox exactly once"
            } else {
                "INCOMPLETE: see the counts above"
            }
        );
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let p = |v: &[Duration]| {
            percentiles(v).map(
                |p| serde_json::json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max}),
            )
        };
        serde_json::json!({
            "documents": self.documents,
            "size": self.size,
            "signed": self.signed,
            "recipients": self.recipients,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "ceilingPerSecond": self.ceiling.as_ref().map(|c| c.per_second()),
            "ceilingMeasurements": self.ceiling.as_ref().map(|c| c.rates()),
            "documentsPerSecond": self.documents_per_second(),
            "fractionOfCeiling": self.fraction_of_ceiling(),
            "latencyMs": p(&self.latencies),
            "acceptMs": p(&self.accept),
            "messagesPerDocument": self.messages_per_document(),
            "cpuMsPerDocument": (!self.threads.is_empty()).then(|| total(&self.threads, None).run_ns as f64 / 1e6 / self.documents.max(1) as f64),
            "brokerCpuMsPerDocument": self.broker_cpu_ms().map(|b| b.0),
            "brokerCpuMsPerCeilingMessage": self.broker_cpu_ms().map(|b| b.1),
            "inPlaceGaveUp": self.in_place_gave_up,
            "storeGroups": self.groups.iter().map(|g| (g.kind.clone(), serde_json::json!({
                "groupsPerDocument": g.per_document(self.documents),
                "callsPerGroup": g.calls_per_group,
            }))).collect::<serde_json::Map<_, _>>(),
            "complete": self.complete(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies: Vec<Duration>) -> Report {
        Report {
            documents: latencies.len(),
            size: 20_000,
            signed: true,
            recipients: 1,
            rate: None,
            concurrency: 8,
            ceiling: Some(Ceiling {
                messages: 1000,
                seconds: vec![1.0],
                ack_every: 1,
            }),
            accepted: latencies.len(),
            delivered: latencies.len(),
            failed: 0,
            first_failure: None,
            retried: 0,
            repeated_notices: 0,
            all_in: true,
            ledger_caught_up: Some(true),
            submitted_for: Duration::from_secs(1),
            elapsed: Duration::from_secs(2),
            accept: latencies.clone(),
            latencies,
            published: 900.0,
            published_by_exchange: vec![("pipeline".into(), 400.0), ("events".into(), 500.0)],
            acks_sent: 25.0,
            handled: 100.0,
            stages: vec![],
            groups: vec![],
            in_place_gave_up: 0.0,
            inbox_check: vec![("vpcp".into(), Some(100))],
            threads: vec![],
            ceiling_threads: vec![],
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&samples).expect("some");
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn rates_fractions_and_completeness() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let r = report(samples);
        assert!((r.documents_per_second() - 50.0).abs() < 1e-9);
        assert_eq!(r.fraction_of_ceiling(), Some(0.05));
        assert!((r.messages_per_document() - 9.0).abs() < 1e-9);
        assert!(r.complete());
        let text = r.render();
        assert!(text.contains("0.050 x the broker ceiling"), "{text}");
        assert!(text.contains("pipeline 4.00, events 5.00"), "{text}");
        assert!(
            text.contains(
                "acks sent                  0.25 per document (4.0 deliveries settled a frame)"
            ),
            "{text}"
        );
        assert!(text.contains("COMPLETE"), "{text}");

        let mut missing = report((1..=100).map(Duration::from_millis).collect());
        missing.inbox_check = vec![("vpcp".into(), Some(99))];
        assert!(!missing.complete());
        assert!(missing.render().contains("INCOMPLETE"));
        assert_eq!(missing.json()["complete"], false);

        // An inbox too long for one list is not read; the rest of the counts decide.
        let mut unread = report((1..=100).map(Duration::from_millis).collect());
        unread.inbox_check = vec![("vpcp".into(), None)];
        assert!(unread.complete());
        assert!(
            unread
                .render()
                .contains("not read (100 documents; a list answers 10000 at most)")
        );
    }

    #[test]
    fn what_a_document_costs_the_broker_against_a_ceiling_message() {
        let cost = |process: &str, kind: &str, run_ms: u64| Cost {
            process: process.into(),
            kind: kind.into(),
            threads: 2,
            counters: crate::threads::Counters {
                run_ns: run_ms * 1_000_000,
                wait_ns: 0,
                voluntary: 100,
                involuntary: 0,
                minor_faults: 0,
            },
        };
        let mut r = report((1..=100).map(Duration::from_millis).collect());
        // 100 documents: the broker 150 ms, the worker 200 ms; 1000 ceiling messages: 250 ms.
        r.threads = vec![
            cost(BROKER, "scheduler", 150),
            cost("worker1", "tokio-rt-worker", 200),
        ];
        r.ceiling_threads = vec![cost(BROKER, "scheduler", 250)];
        let (per_doc, per_message) = r.broker_cpu_ms().expect("both");
        assert!((per_doc - 1.5).abs() < 1e-9 && (per_message - 0.25).abs() < 1e-9);
        let text = r.render();
        assert!(
            text.contains("a document costs it 6.0 ceiling messages"),
            "{text}"
        );
        assert!(text.contains("0.167 x the ceiling"), "{text}");
        assert!(text.contains("worker1    tokio-rt-worker"), "{text}");
        assert_eq!(r.json()["cpuMsPerDocument"], 3.5);
    }

    #[test]
    fn a_timeline_line_gives_times_in_ms_and_leaves_a_copy_never_in_empty() {
        let start = Duration::from_millis(1_765_000_000_000);
        let line = timeline_line(
            Duration::from_micros(2_500),
            Duration::from_micros(4_250),
            Some(Duration::from_millis(12)),
            start,
        );
        assert_eq!(line, "2.500,4.250,12.000,1765000000002\n");
        let never = timeline_line(Duration::from_secs(1), Duration::ZERO, None, start);
        assert_eq!(never, "1000.000,0.000,,1765000001000\n");
        assert_eq!(TIMELINE_HEADER.trim_end().split(',').count(), 4);
    }

    #[test]
    fn where_the_time_goes_from_two_scrapes() {
        let before = Snapshot::parse(
            "lienthong_message_handling_seconds_sum{queue=\"b.stage.router\"} 1\n\
             lienthong_message_handling_seconds_count{queue=\"b.stage.router\"} 10\n",
        )
        .expect("parse");
        let after = Snapshot::parse(
            "lienthong_message_handling_seconds_sum{queue=\"b.stage.router\"} 3\n\
             lienthong_message_handling_seconds_count{queue=\"b.stage.router\"} 110\n\
             lienthong_http_request_seconds_sum{route=\"/v1/sendEdoc\"} 0.5\n\
             lienthong_http_request_seconds_count{route=\"/v1/sendEdoc\"} 100\n\
             lienthong_stage_seconds_sum{stage=\"delivery\"} 0.2\n\
             lienthong_stage_seconds_count{stage=\"delivery\"} 100\n\
             lienthong_store_in_place_write_seconds_sum{outcome=\"made\",kind=\"acceptance\"} 0.025\n\
             lienthong_store_in_place_write_seconds_count{outcome=\"made\",kind=\"acceptance\"} 100\n\
             lienthong_store_in_place_write_seconds_sum{outcome=\"made\",kind=\"stage_write\"} 0.075\n\
             lienthong_store_in_place_write_seconds_count{outcome=\"made\",kind=\"stage_write\"} 300\n\
             lienthong_store_in_place_write_seconds_sum{outcome=\"lock_held\",kind=\"ledger\"} 0.0005\n\
             lienthong_store_in_place_write_seconds_count{outcome=\"lock_held\",kind=\"ledger\"} 10\n",
        )
        .expect("parse");
        let stages = Stage::from_scrapes(&before, &after);
        let grouped = Snapshot::parse(
            "lienthong_store_group_calls_sum{kind=\"stage_write\"} 300\n\
             lienthong_store_group_calls_count{kind=\"stage_write\"} 100\n\
             lienthong_store_group_calls_sum{kind=\"blob\"} 0\n\
             lienthong_store_group_calls_count{kind=\"blob\"} 0\n",
        )
        .expect("parse");
        assert_eq!(
            Grouped::from_scrapes(&before, &grouped),
            [Grouped {
                kind: "stage_write".into(),
                groups: 100.0,
                calls_per_group: 3.0
            }]
        );
        let mut r = report(vec![Duration::from_millis(1); 50]);
        r.groups = Grouped::from_scrapes(&before, &grouped);
        assert!(!r.render().contains("gave up waiting"));
        r.stages = stages.clone();
        r.in_place_gave_up = 2.0;
        let text = r.render();
        assert!(
            text.contains("      gave up waiting: through sqlx                 2\n"),
            "{text}"
        );
        assert_eq!(r.json()["inPlaceGaveUp"], 2.0);
        assert!(
            text.contains("stage_write                                  2.00      3.00"),
            "{text}"
        );
        assert_eq!(
            r.json()["storeGroups"]["stage_write"]["groupsPerDocument"],
            2.0
        );
        assert_eq!(
            stages,
            [
                Stage {
                    name: "POST /v1/sendEdoc".into(),
                    count: 100.0,
                    mean_ms: 5.0
                },
                Stage {
                    name: "queue b.stage.router".into(),
                    count: 100.0,
                    mean_ms: 20.0
                },
                Stage {
                    name: "  stage delivery".into(),
                    count: 100.0,
                    mean_ms: 2.0
                },
                Stage {
                    name: "store write in place (SQLite)".into(),
                    count: 400.0,
                    mean_ms: 0.25
                },
                // Per kind, each a commit; the ledger's only write found the lock held.
                Stage {
                    name: "  acceptance".into(),
                    count: 100.0,
                    mean_ms: 0.25
                },
                Stage {
                    name: "  stage_write".into(),
                    count: 300.0,
                    mean_ms: 0.25
                },
                Stage {
                    name: "  lock held elsewhere: tried again".into(),
                    count: 10.0,
                    mean_ms: 0.05
                },
            ]
        );
    }
}
