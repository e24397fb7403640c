//! The live overview: the console reads every configured `/metrics` every few seconds, keeps
//! the last minutes of readings in memory, and turns them into the figures of the overview page
//! (documents in and out per second, error rates, delivery time percentiles, queues).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::gateway::Gateway;
use crate::metrics::{Snapshot, increase, quantile};

/// Readings kept: at one every 2 s, ten minutes.
const KEEP: usize = 300;
/// The window of the "now" figures.
const NOW_WINDOW_MS: i64 = 30_000;
/// The window of the latency percentiles.
const LATENCY_WINDOW_MS: i64 = 300_000;

#[derive(Debug, Default)]
pub struct Readings {
    samples: VecDeque<(i64, Snapshot)>,
    errors: Vec<String>,
}

pub type SharedReadings = Arc<Mutex<Readings>>;

impl Readings {
    pub fn push(&mut self, at_ms: i64, snapshot: Snapshot, errors: Vec<String>) {
        self.samples.push_back((at_ms, snapshot));
        while self.samples.len() > KEEP {
            self.samples.pop_front();
        }
        self.errors = errors;
    }

    /// The figures of the overview from the readings so far.
    pub fn figures(&self) -> Figures {
        let mut f = Figures {
            errors: self.errors.clone(),
            ..Figures::default()
        };
        let Some((last_at, last)) = self.samples.back() else {
            return f;
        };
        f.at_ms = *last_at;
        let rates = |a: &Snapshot, b: &Snapshot, secs: f64| Point {
            t: 0,
            r#in: increase(accepted(a), accepted(b)) / secs,
            out: increase(delivered(a), delivered(b)) / secs,
            errors: increase(stage_failures(a), stage_failures(b)) / secs,
        };
        for pair in self.samples.iter().collect::<Vec<_>>().windows(2) {
            let ((t0, a), (t1, b)) = (pair[0], pair[1]);
            let secs = ((t1 - t0) as f64 / 1000.0).max(0.001);
            f.series.push(Point {
                t: *t1,
                ..rates(a, b, secs)
            });
        }
        let oldest_within = |window: i64| {
            self.samples
                .iter()
                .find(|(t, _)| last_at - t <= window)
                .filter(|(t, _)| t < last_at)
        };
        if let Some((t0, first)) = oldest_within(NOW_WINDOW_MS) {
            let secs = ((last_at - t0) as f64 / 1000.0).max(0.001);
            let now = rates(first, last, secs);
            f.in_per_sec = now.r#in;
            f.out_per_sec = now.out;
            let handled = increase(handled(first), handled(last));
            f.stage_error_rate = (handled > 0.0)
                .then(|| increase(stage_failures(first), stage_failures(last)) / handled);
            let answered = increase(requests(first, |_| true), requests(last, |_| true));
            let server_errors = increase(requests(first, is_5xx), requests(last, is_5xx));
            f.http_error_rate = (answered > 0.0).then(|| server_errors / answered);
        }
        if let Some((_, first)) = oldest_within(LATENCY_WINDOW_MS) {
            let name = "lienthong_delivery_latency_seconds";
            let (a, b) = (first.buckets(name), last.buckets(name));
            f.latency = [0.5, 0.95, 0.99].map(|q| quantile(q, &a, &b));
        }
        let consumers: std::collections::BTreeMap<&str, f64> = last
            .each("lienthong_queue_consumers")
            .filter_map(|(s, v)| Some((s.label("queue")?, v)))
            .collect();
        f.queues = last
            .each("lienthong_queue_messages")
            .filter_map(|(s, v)| {
                let q = s.label("queue")?;
                Some(QueueFigure {
                    queue: q.to_owned(),
                    messages: v,
                    consumers: consumers.get(q).copied().unwrap_or(0.0),
                })
            })
            .collect();
        f
    }
}

fn accepted(s: &Snapshot) -> f64 {
    s.sum("lienthong_documents_accepted_total", |_| true)
}
fn delivered(s: &Snapshot) -> f64 {
    s.sum("lienthong_events_total", |x| {
        x.label("kind") == Some("delivered")
    })
}
fn handled(s: &Snapshot) -> f64 {
    s.sum("lienthong_messages_total", |_| true)
}
fn stage_failures(s: &Snapshot) -> f64 {
    s.sum("lienthong_messages_total", |x| {
        matches!(x.label("outcome"), Some("retry" | "poison"))
    })
}
fn requests(s: &Snapshot, keep: impl Fn(&crate::metrics::Series) -> bool) -> f64 {
    s.sum("lienthong_http_requests_total", keep)
}
fn is_5xx(s: &crate::metrics::Series) -> bool {
    s.label("status").is_some_and(|c| c.starts_with('5'))
}

#[derive(Debug, Default, Serialize, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub r#in: f64,
    pub out: f64,
    pub errors: f64,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct QueueFigure {
    pub queue: String,
    pub messages: f64,
    pub consumers: f64,
}

#[derive(Debug, Default, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub at_ms: i64,
    pub in_per_sec: f64,
    pub out_per_sec: f64,
    /// Share of stage messages retried or dead-lettered (none handled: none).
    pub stage_error_rate: Option<f64>,
    /// Share of gateway requests answered 5xx.
    pub http_error_rate: Option<f64>,
    /// p50, p95, p99 of acceptance to inbox, in seconds, over the last five minutes.
    pub latency: [Option<f64>; 3],
    pub queues: Vec<QueueFigure>,
    pub series: Vec<Point>,
    /// Sources that could not be read at the last reading.
    pub errors: Vec<String>,
}

/// Reads every source each `every` until `shutdown`.
pub async fn sample(
    gateway: Gateway,
    sources: Vec<String>,
    every: Duration,
    readings: SharedReadings,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut total = Snapshot::default();
        let mut errors = Vec::new();
        for url in &sources {
            match gateway.metrics(url).await.and_then(|t| Snapshot::parse(&t)) {
                Ok(s) => total.add(s),
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        if let Ok(mut r) = readings.lock() {
            r.push(i64::try_from(now).unwrap_or(i64::MAX), total, errors);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(
        accepted: u32,
        delivered: u32,
        poison: u32,
        done: u32,
        buckets: [u32; 3],
    ) -> Snapshot {
        Snapshot::parse(&format!(
            "lienthong_documents_accepted_total{{message_type=\"edoc\"}} {accepted}\n\
             lienthong_events_total{{kind=\"delivered\"}} {delivered}\n\
             lienthong_events_total{{kind=\"accepted\"}} 999\n\
             lienthong_messages_total{{queue=\"q\",outcome=\"done\"}} {done}\n\
             lienthong_messages_total{{queue=\"q\",outcome=\"poison\"}} {poison}\n\
             lienthong_http_requests_total{{route=\"/v1/sendEdoc\",status=\"200\"}} {accepted}\n\
             lienthong_http_requests_total{{route=\"/v1/sendEdoc\",status=\"503\"}} {poison}\n\
             lienthong_delivery_latency_seconds_bucket{{from=\"system\",le=\"0.01\"}} {}\n\
             lienthong_delivery_latency_seconds_bucket{{from=\"system\",le=\"0.1\"}} {}\n\
             lienthong_delivery_latency_seconds_bucket{{from=\"system\",le=\"+Inf\"}} {}\n\
             lienthong_queue_messages{{queue=\"lt.stage.router\"}} 4\n\
             lienthong_queue_consumers{{queue=\"lt.stage.router\"}} 2\n",
            buckets[0], buckets[1], buckets[2]
        ))
        .expect("parse")
    }

    #[test]
    fn the_figures_are_rates_shares_and_percentiles_of_the_readings() {
        let mut r = Readings::default();
        assert_eq!(r.figures().in_per_sec, 0.0, "no reading yet");
        r.push(0, reading(0, 0, 0, 0, [0, 0, 0]), vec![]);
        r.push(10_000, reading(50, 100, 1, 99, [50, 100, 100]), vec![]);
        r.push(
            20_000,
            reading(100, 200, 2, 198, [100, 200, 200]),
            vec!["x: down".into()],
        );
        let f = r.figures();
        assert_eq!(f.at_ms, 20_000);
        assert_eq!(f.in_per_sec, 5.0);
        assert_eq!(f.out_per_sec, 10.0);
        assert_eq!(f.stage_error_rate, Some(0.01));
        assert_eq!(f.http_error_rate, Some(2.0 / 102.0));
        // Half of 200 within 10 ms: p50 is 10 ms; p95 in the (0.01, 0.1] bucket.
        let [p50, p95, p99] = f.latency;
        assert!((p50.expect("p50") - 0.01).abs() < 1e-9);
        assert!((p95.expect("p95") - 0.091).abs() < 1e-9, "{p95:?}");
        assert!(p99.expect("p99") <= 0.1);
        assert_eq!(f.series.len(), 2);
        assert_eq!(
            f.series[1],
            Point {
                t: 20_000,
                r#in: 5.0,
                out: 10.0,
                errors: 0.1
            }
        );
        assert_eq!(
            f.queues,
            vec![QueueFigure {
                queue: "lt.stage.router".into(),
                messages: 4.0,
                consumers: 2.0
            }]
        );
        assert_eq!(f.errors, ["x: down"]);
    }

    #[test]
    fn only_the_last_minutes_are_kept() {
        let mut r = Readings::default();
        for i in 0..(KEEP as i64 + 10) {
            r.push(i * 2000, Snapshot::default(), vec![]);
        }
        assert_eq!(r.samples.len(), KEEP);
    }
}
