//! The ledger: records every lifecycle event published on `{prefix}.events` in the store, where
//! traces are read, the events handled together in one transaction (group commit), each message
//! acked after its commit. The stages chained in the same process hand it their events in place
//! (the same writer and group commit), and ack their message after the commit. Event ids are
//! deterministic, so redeliveries record nothing twice. The store chains events by hash; the
//! ledger anchors the chain's head every hour and logs it, so the head also lives outside the
//! database (in the log system) for `lienthong audit verify`.

use std::sync::Arc;

use lienthong_bus::messages::EventMessage;
use lienthong_bus::{EventSink, Handler, Incoming, Outcome, Pipeline, RecordFuture, Topology};
use lienthong_store::{LedgerEvent, Store};
use tokio::sync::{mpsc, oneshot, watch};

/// Events waiting for the writer, each with where to say whether it was recorded.
type Pending = (LedgerEvent, oneshot::Sender<Result<bool, String>>);

/// Most events recorded in one transaction.
const MAX_GROUP: usize = 256;

pub struct Ledger {
    queue: mpsc::Sender<Pending>,
}

impl Ledger {
    /// Starts the writer (on the current runtime): it records whatever events are waiting in
    /// one transaction (on SQLite, the one the stages' writes waiting meanwhile share), so the
    /// events handled together (up to the prefetch) cost one commit; each message is acked only
    /// after its event's commit.
    pub fn new(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_GROUP);
        tokio::spawn(write(store, waiting));
        Self { queue }
    }
}

/// Records the events that arrive, in groups, until every handler is gone.
async fn write(store: Store, mut waiting: mpsc::Receiver<Pending>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (events, replies): (Vec<LedgerEvent>, Vec<_>) = group.drain(..).unzip();
        metrics::histogram!("lienthong_ledger_group_events").record(events.len() as f64);
        match store.record_events(&events).await {
            Ok(recorded) => {
                for ((event, reply), new) in events.iter().zip(replies).zip(recorded) {
                    if new {
                        metrics::counter!("lienthong_events_total", "kind" => event.kind.clone())
                            .increment(1);
                    }
                    let _ = reply.send(Ok(new));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

impl Ledger {
    /// Records `events` in the writer's next group; returns once they are committed.
    async fn record_all(&self, events: Vec<EventMessage>) -> Result<(), String> {
        let mut waiting = Vec::with_capacity(events.len());
        for e in events {
            let event = LedgerEvent {
                event_id: e.event_id,
                doc_id: e.doc_id,
                kind: e.kind,
                organ: e.organ,
                detail: e.detail,
                at_ms: e.at_ms,
            };
            let (reply, recorded) = oneshot::channel();
            if self.queue.send((event, reply)).await.is_err() {
                return Err("the ledger's writer stopped".into());
            }
            waiting.push(recorded);
        }
        for recorded in waiting {
            match recorded.await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return Err(err),
                Err(_) => return Err("the ledger's writer stopped".into()),
            }
        }
        Ok(())
    }
}

impl Handler for Ledger {
    async fn handle(&self, message: Incoming) -> Outcome {
        // One event, or the events of a chain of stages published together.
        let events = match EventMessage::read_all(&message.payload) {
            Ok(events) => events,
            Err(err) => return Outcome::Poison(format!("not an event: {err}")),
        };
        // Acked once every event of the message is committed.
        match self.record_all(events).await {
            Ok(()) => Outcome::Done,
            Err(err) => Outcome::Retry(err),
        }
    }
}

/// The chain of stages in this process hands its events here instead of publishing them: the
/// same writer, the same group commit, and the chain's message is acked after the commit.
impl EventSink for Ledger {
    fn record(&self, events: Vec<EventMessage>) -> RecordFuture<'_> {
        Box::pin(self.record_all(events))
    }
}

/// How often the chain's head is anchored.
const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

async fn anchor(store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut last = -1;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ANCHOR_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match store.chain_head().await {
            Ok((seq, _)) if seq == last => {}
            Ok(_) => match store.anchor_chain().await {
                Ok((seq, hash)) => {
                    last = seq;
                    tracing::info!(seq, %hash, "audit chain anchored");
                }
                Err(e) => tracing::warn!(error = %e, "could not anchor the audit chain"),
            },
            Err(e) => tracing::warn!(error = %e, "could not read the audit chain head"),
        }
    }
}

/// Runs the ledger until `shutdown`: it consumes `{p}.ledger`, and records in place the events
/// of the stages `pipeline` runs in this process (see [`Pipeline::record_events_in_place`]).
pub async fn run(store: Store, pipeline: Pipeline, shutdown: watch::Receiver<bool>) {
    let bus = pipeline.config().clone();
    let queue = Topology::new(&bus.prefix).ledger_queue();
    let anchoring = tokio::spawn(anchor(store.clone(), shutdown.clone()));
    let handler = Arc::new(Ledger::new(store));
    pipeline.record_events_in_place(Some(Arc::clone(&handler) as Arc<dyn EventSink>));
    lienthong_bus::consume(bus, queue, "ledger".into(), handler, shutdown).await;
    // Chains still finishing publish their events for the next ledger to record.
    pipeline.record_events_in_place(None);
    let _ = anchoring.await;
}
