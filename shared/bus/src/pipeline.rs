//! The document stages a process runs, run back to back on one message.
//!
//! Each stage (verifier, translator, router, delivery) does its store work and returns what it
//! leaves to publish: the message for the next stage, deliveries, inbox notices, events. When the
//! next stage runs in the same process, the pipeline hands it the message in place instead of
//! through the broker (`bus.chain_stages`, on by default), and everything the stages left is
//! published once, all confirmed, before the message that started the chain is acked. The
//! chain's lifecycle events travel as one message to the ledger, or, when the process runs the
//! ledger too, are handed to it in place and committed before the ack (`bus.chain_ledger`).
//!
//! Nothing about delivery changes: the message is acked only after the last stage's output is
//! confirmed, so a crash anywhere in the chain hands the message to another consumer, which runs
//! the stages again (each is idempotent, as with separate hops). A stage in the chain that cannot
//! handle its message (poison, or a panic) gets it on its own queue instead, where its consumer
//! dead-letters it as it would without the chain. A stage in another process gets its message through the
//! broker, as before: processes can run any set of stages.
//!
//! A stage may also leave the stage after it something it would otherwise work out again (the
//! verifier's parse of a package, for the translator): kept in the pipeline, for a stage that
//! runs in this process and takes its messages from the chain, and let go, oldest first, past a
//! bound. Only ever a saving: a stage that finds nothing left does the work itself.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::FutureExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::messages::{EventMessage, StageMessage, events_outgoing};
use crate::{BusConfig, Handler, Incoming, Outcome, Outgoing, Publisher, Topology};

/// What a stage leaves to publish once its work on a message is done.
#[derive(Debug, Default)]
pub struct Onward {
    /// For other stages and other consumers: the next stage on the slip, deliveries, inbox
    /// notices, link orders.
    pub messages: Vec<Outgoing>,
    /// Lifecycle events for the ledger.
    pub events: Vec<EventMessage>,
}

impl Onward {
    /// `events`, then the message for the stage after `msg`'s on its slip, if any.
    pub fn forward(msg: &StageMessage, events: Vec<EventMessage>, t: &Topology) -> Self {
        Self {
            messages: msg
                .forward()
                .map(|m| m.to_outgoing(t))
                .into_iter()
                .collect(),
            events,
        }
    }
}

/// The future a stage returns.
pub type StageFuture<'a> = Pin<Box<dyn Future<Output = Result<Onward, Outcome>> + Send + 'a>>;

/// A stage's work on one message from its queue (bound to the pipeline exchange with the stage's
/// name as routing key). Stages must be idempotent: a message may arrive twice, and a chain that
/// failed part-way runs again from its first stage.
pub trait Stage: Send + Sync + 'static {
    /// The stage's name: its routing key and queue.
    fn name(&self) -> &'static str;
    fn run<'a>(&'a self, payload: &'a [u8]) -> StageFuture<'a>;
}

/// A stage of the document pipeline: it takes the `StageMessage`s whose routing slip starts with
/// its name. Anything else on its queue is poison.
pub trait DocumentStage: Send + Sync + 'static {
    const STAGE: &'static str;
    fn process(&self, msg: StageMessage) -> impl Future<Output = Result<Onward, Outcome>> + Send;
}

/// A [`DocumentStage`] as a [`Stage`].
pub struct Document<S>(pub Arc<S>);

impl<S: DocumentStage> Stage for Document<S> {
    fn name(&self) -> &'static str {
        S::STAGE
    }
    fn run<'a>(&'a self, payload: &'a [u8]) -> StageFuture<'a> {
        Box::pin(async move {
            let mut msg = StageMessage::for_stage(payload, S::STAGE)?;
            let carried = std::mem::take(&mut msg.events);
            let mut onward = self.0.process(msg).await?;
            // What the sender left for this stage to publish comes first, as it happened first.
            onward.events.splice(0..0, carried);
            Ok(onward)
        })
    }
}

/// The future an [`EventSink`] returns: `Err` with the reason when the events are not recorded.
pub type RecordFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where a process records lifecycle events itself: the ledger, when it runs in the same
/// process as the stages.
pub trait EventSink: Send + Sync + 'static {
    /// Records `events` (idempotently: they may come again) and returns once they are committed.
    fn record(&self, events: Vec<EventMessage>) -> RecordFuture<'_>;
}

/// The stages of one process on one bus, and the publisher they share. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    publisher: Publisher,
    local: RwLock<BTreeMap<&'static str, Arc<dyn Stage>>>,
    /// The ledger of this process, when it runs one and may take the chain's events in place.
    ledger: RwLock<Option<Arc<dyn EventSink>>>,
    /// What stages left for the stages after them, oldest first.
    left: Mutex<Left>,
    /// How many were left, taken and let go untaken, since the pipeline began.
    handoffs: HandoffCounts,
}

#[derive(Default)]
struct HandoffCounts {
    left: AtomicU64,
    taken: AtomicU64,
    let_go: AtomicU64,
}

/// What stages of a pipeline left for the stages after them ([`Pipeline::leave_for`]), since it
/// began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoffs {
    pub left: u64,
    pub taken: u64,
    /// Let go untaken, past the bound.
    pub let_go: u64,
}

/// Everything left at most: as many as the chains that can be under way at once, twice over, and
/// this many bytes of the packages they stand for.
const LEFT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct Left {
    items: VecDeque<LeftItem>,
    bytes: u64,
}

struct LeftItem {
    stage: &'static str,
    doc_id: String,
    bytes: u64,
    value: Box<dyn Any + Send>,
}

impl Pipeline {
    pub fn new(config: &BusConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                publisher: Publisher::new(config, "lienthong-stages"),
                local: RwLock::new(BTreeMap::new()),
                ledger: RwLock::new(None),
                left: Mutex::new(Left::default()),
                handoffs: Default::default(),
            }),
        }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// Consumes `stage`'s queue until `shutdown`; while it runs, the other stages of this
    /// pipeline hand it their messages in place.
    pub async fn serve(&self, stage: Arc<dyn Stage>, shutdown: watch::Receiver<bool>) {
        let name = stage.name();
        if let Ok(mut local) = self.inner.local.write() {
            local.insert(name, Arc::clone(&stage));
        }
        let queue = self.inner.publisher.topology().stage_queue(name);
        let entry = Arc::new(Entry {
            pipeline: self.clone(),
            stage,
        });
        crate::consume(
            self.inner.config.clone(),
            queue,
            name.into(),
            entry,
            shutdown,
        )
        .await;
        if let Ok(mut local) = self.inner.local.write() {
            local.remove(name);
        }
    }

    /// Lets the ledger of this process record the chain's events in place, with no message on
    /// `{p}.events`, while it runs (`None` when it stops). Only with `bus.chain_stages` and
    /// `bus.chain_ledger`, and only on a bus without federation links: there the receipts relay
    /// reads `delivered` and `failed` events from the exchange.
    pub fn record_events_in_place(&self, ledger: Option<Arc<dyn EventSink>>) {
        let config = &self.inner.config;
        let allowed = config.chain_stages && config.chain_ledger && config.links.is_empty();
        if ledger.is_some() {
            if allowed {
                tracing::info!("the ledger records the events of this process's stages in place");
            } else {
                tracing::info!(
                    chain_stages = config.chain_stages,
                    chain_ledger = config.chain_ledger,
                    federation_links = config.links.len(),
                    "the stages of this process publish their events on the events exchange"
                );
            }
        }
        if let Ok(mut slot) = self.inner.ledger.write() {
            *slot = ledger.filter(|_| allowed);
        }
    }

    /// Leaves `value` for `stage`'s run on document `doc_id`: something it would otherwise work
    /// out again (a package `bytes` long, parsed). Kept only while `stage` runs in this process
    /// and takes its messages from the chain (`bus.chain_stages`); the oldest is let go first past
    /// twice `bus.prefetch` items or 64 MiB of packages. Returns whether it was kept.
    pub fn leave_for(
        &self,
        stage: &'static str,
        doc_id: &str,
        bytes: u64,
        value: Box<dyn Any + Send>,
    ) -> bool {
        let chained = self.inner.config.chain_stages
            && self
                .inner
                .local
                .read()
                .is_ok_and(|local| local.contains_key(stage));
        if !chained || bytes > LEFT_BYTES {
            return false;
        }
        let most = usize::from(self.inner.config.prefetch).max(1) * 2;
        let mut gone = Vec::new();
        {
            let Ok(mut left) = self.inner.left.lock() else {
                return false;
            };
            left.bytes += bytes;
            left.items.push_back(LeftItem {
                stage,
                doc_id: doc_id.to_owned(),
                bytes,
                value,
            });
            while left.items.len() > most || left.bytes > LEFT_BYTES {
                let Some(oldest) = left.items.pop_front() else {
                    break;
                };
                left.bytes -= oldest.bytes;
                gone.push(oldest);
            }
        }
        let counts = &self.inner.handoffs;
        counts.left.fetch_add(1, Ordering::Relaxed);
        counts
            .let_go
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        // Let go (and dropped) outside the lock.
        for item in gone {
            metrics::counter!("lienthong_stage_handoffs_total", "stage" => item.stage, "outcome" => "let_go")
                .increment(1);
        }
        true
    }

    /// What a stage before left for `stage` about document `doc_id`, taken (see
    /// [`Pipeline::leave_for`]): `None` when nothing of type `T` was left, or it was let go.
    /// When a chain run again left it something more than once (the first run stopped before
    /// this stage took it), the last is taken and the others are let go.
    pub fn take_left<T: Any>(&self, stage: &'static str, doc_id: &str) -> Option<T> {
        let (item, older) = {
            let mut left = self.inner.left.lock().ok()?;
            let at = left
                .items
                .iter()
                .rposition(|i| i.stage == stage && i.doc_id == doc_id)?;
            let item = left.items.remove(at)?;
            let mut older = Vec::new();
            while let Some(at) = left
                .items
                .iter()
                .position(|i| i.stage == stage && i.doc_id == doc_id)
            {
                older.extend(left.items.remove(at));
            }
            left.bytes -= item.bytes + older.iter().map(|i| i.bytes).sum::<u64>();
            (item, older)
        };
        if !older.is_empty() {
            self.inner
                .handoffs
                .let_go
                .fetch_add(older.len() as u64, Ordering::Relaxed);
            metrics::counter!("lienthong_stage_handoffs_total", "stage" => stage, "outcome" => "let_go")
                .increment(older.len() as u64);
            // Dropped outside the lock.
            drop(older);
        }
        let value = item.value.downcast::<T>().ok()?;
        self.inner.handoffs.taken.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("lienthong_stage_handoffs_total", "stage" => stage, "outcome" => "taken")
            .increment(1);
        Some(*value)
    }

    /// How many things stages left for the stages after them, took, and let go untaken.
    pub fn handoffs(&self) -> Handoffs {
        let counts = &self.inner.handoffs;
        Handoffs {
            left: counts.left.load(Ordering::Relaxed),
            taken: counts.taken.load(Ordering::Relaxed),
            let_go: counts.let_go.load(Ordering::Relaxed),
        }
    }

    /// The ledger that takes this process's events in place, if any.
    fn ledger(&self) -> Option<Arc<dyn EventSink>> {
        self.inner.ledger.read().ok()?.clone()
    }

    /// Publishes `messages` and hands `events` to the ledger: in place when it runs here,
    /// otherwise as messages on the events exchange. Returns once all are confirmed or
    /// committed.
    async fn settle(&self, mut messages: Vec<Outgoing>, events: Vec<EventMessage>) -> Outcome {
        let t = self.inner.publisher.topology();
        let ledger = if events.is_empty() {
            None
        } else {
            self.ledger()
        };
        let settled = match ledger {
            Some(ledger) => {
                let (published, recorded) = tokio::join!(
                    self.inner.publisher.publish_all(&messages),
                    ledger.record(events)
                );
                published.map_err(|e| e.to_string()).and(recorded)
            }
            None => {
                messages.extend(if self.inner.config.chain_stages {
                    events_outgoing(&events, t)
                } else {
                    events.iter().map(|e| e.to_outgoing(t)).collect()
                });
                self.inner
                    .publisher
                    .publish_all(&messages)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match settled {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry(e),
        }
    }

    /// The stage of this process that takes `message`, when chaining is on.
    fn local_for(&self, message: &Outgoing) -> Option<Arc<dyn Stage>> {
        if !self.inner.config.chain_stages
            || message.route.exchange != self.inner.publisher.topology().pipeline()
        {
            return None;
        }
        self.inner
            .local
            .read()
            .ok()?
            .get(message.route.routing_key.as_str())
            .cloned()
    }

    /// Runs `first` on `payload`, then every stage of this process its output is for, and
    /// publishes what is left.
    async fn chain(&self, first: &Arc<dyn Stage>, payload: &[u8]) -> Outcome {
        let mut work: VecDeque<(Arc<dyn Stage>, Outgoing)> = VecDeque::new();
        let mut publish = Vec::new();
        let mut events = Vec::new();
        let mut onward = match run_stage(first, payload).await {
            Ok(onward) => onward,
            Err(Outcome::Poison(reason)) => {
                // Dead-lettered, but what the sender recorded (its `accepted`) still reaches
                // the ledger first; if it cannot, the message is tried again.
                let carried = StageMessage::carried_events(payload);
                if carried.is_empty() {
                    return Outcome::Poison(reason);
                }
                return match self.settle(Vec::new(), carried).await {
                    Outcome::Done => Outcome::Poison(reason),
                    other => other,
                };
            }
            Err(outcome) => return outcome,
        };
        loop {
            events.append(&mut onward.events);
            for message in onward.messages {
                match self.local_for(&message) {
                    Some(stage) => work.push_back((stage, message)),
                    None => publish.push(message),
                }
            }
            let Some((stage, message)) = work.pop_front() else {
                break;
            };
            onward = match run_stage(&stage, &message.payload).await {
                Ok(onward) => onward,
                Err(Outcome::Poison(reason)) => {
                    // Its own consumer dead-letters it, with the reason, on its own queue.
                    tracing::warn!(stage = stage.name(), %reason, "a chained stage cannot handle its message; sending it to the stage's queue");
                    publish.push(message);
                    Onward::default()
                }
                // The whole chain again, later: every stage is idempotent.
                Err(other) => return other,
            };
        }
        self.settle(publish, events).await
    }
}

/// One stage's work, timed and in a span of its own. A stage that panics is poison for that
/// stage: in a chain its message goes to its own queue, as for any poison, and the stages before
/// it keep their work.
async fn run_stage(stage: &Arc<dyn Stage>, payload: &[u8]) -> Result<Onward, Outcome> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!("stage", stage = stage.name());
    let result = std::panic::AssertUnwindSafe(stage.run(payload))
        .catch_unwind()
        .instrument(span)
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Outcome::Poison(format!(
                "stage {} panicked: {what}",
                stage.name()
            )))
        });
    metrics::histogram!("lienthong_stage_seconds", "stage" => stage.name())
        .record(started.elapsed().as_secs_f64());
    result
}

/// A stage's queue, read by the pipeline.
struct Entry {
    pipeline: Pipeline,
    stage: Arc<dyn Stage>,
}

impl Handler for Entry {
    async fn handle(&self, message: Incoming) -> Outcome {
        self.pipeline.chain(&self.stage, &message.payload).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sink;
    impl EventSink for Sink {
        fn record(&self, _events: Vec<EventMessage>) -> RecordFuture<'_> {
            Box::pin(async { Ok(()) })
        }
    }

    /// Whether a pipeline on `config` takes a ledger in place.
    fn takes_ledger(config: BusConfig) -> bool {
        let pipeline = Pipeline::new(&config);
        pipeline.record_events_in_place(Some(Arc::new(Sink)));
        let taken = pipeline.ledger().is_some();
        pipeline.record_events_in_place(None);
        assert!(pipeline.ledger().is_none(), "a stopped ledger is let go");
        taken
    }

    struct Nothing;
    impl Stage for Nothing {
        fn name(&self) -> &'static str {
            "translator"
        }
        fn run<'a>(&'a self, _payload: &'a [u8]) -> StageFuture<'a> {
            Box::pin(async { Ok(Onward::default()) })
        }
    }

    /// A pipeline on `config` where the translator runs (as `serve` has it while it consumes).
    fn with_translator(config: &BusConfig) -> Pipeline {
        let pipeline = Pipeline::new(config);
        pipeline
            .inner
            .local
            .write()
            .expect("the stages of a new pipeline")
            .insert("translator", Arc::new(Nothing));
        pipeline
    }

    #[test]
    fn what_a_stage_leaves_is_taken_once_by_the_stage_and_document_it_was_left_for() {
        let config = BusConfig::new("amqp://127.0.0.1:1/%2f");
        let pipeline = with_translator(&config);
        assert!(pipeline.leave_for("translator", "doc-1", 100, Box::new(String::from("tree 1"))));
        assert!(pipeline.leave_for("translator", "doc-2", 100, Box::new(String::from("tree 2"))));
        assert_eq!(pipeline.take_left::<String>("router", "doc-1"), None);
        assert_eq!(pipeline.take_left::<String>("translator", "doc-3"), None);
        assert_eq!(
            pipeline
                .take_left::<String>("translator", "doc-2")
                .as_deref(),
            Some("tree 2")
        );
        assert_eq!(
            pipeline.take_left::<String>("translator", "doc-2"),
            None,
            "taken once"
        );
        // Of another type than asked for: nothing, and it is gone.
        assert_eq!(pipeline.take_left::<u32>("translator", "doc-1"), None);
        assert_eq!(pipeline.take_left::<String>("translator", "doc-1"), None);
        assert_eq!(
            pipeline.handoffs(),
            Handoffs {
                left: 2,
                taken: 1,
                let_go: 0
            }
        );
    }

    #[test]
    fn nothing_is_left_for_a_stage_that_does_not_take_its_messages_from_this_chain() {
        let config = BusConfig::new("amqp://127.0.0.1:1/%2f");
        // The translator runs in another process.
        let elsewhere = Pipeline::new(&config);
        assert!(!elsewhere.leave_for("translator", "doc-1", 1, Box::new(1u8)));
        assert_eq!(elsewhere.take_left::<u8>("translator", "doc-1"), None);
        // It runs here, but its messages come through the broker.
        let mut unchained = config;
        unchained.chain_stages = false;
        let unchained = with_translator(&unchained);
        assert!(!unchained.leave_for("translator", "doc-1", 1, Box::new(1u8)));
        assert_eq!(unchained.handoffs().left, 0);
    }

    #[test]
    fn the_oldest_is_let_go_past_twice_the_prefetch_or_64_mib_of_packages() {
        let mut config = BusConfig::new("amqp://127.0.0.1:1/%2f");
        config.prefetch = 2;
        let pipeline = with_translator(&config);
        for n in 0..5u32 {
            assert!(pipeline.leave_for("translator", &format!("doc-{n}"), 10, Box::new(n)));
        }
        // Four kept: doc-0 was let go.
        assert_eq!(pipeline.take_left::<u32>("translator", "doc-0"), None);
        for n in 1..5u32 {
            assert_eq!(
                pipeline.take_left::<u32>("translator", &format!("doc-{n}")),
                Some(n)
            );
        }
        assert_eq!(pipeline.handoffs().let_go, 1);
        // A package of 40 MiB, then one of 30: the first is let go for the second.
        assert!(pipeline.leave_for("translator", "big-1", 40 << 20, Box::new(1u32)));
        assert!(pipeline.leave_for("translator", "big-2", 30 << 20, Box::new(2u32)));
        assert_eq!(pipeline.take_left::<u32>("translator", "big-1"), None);
        assert_eq!(pipeline.take_left::<u32>("translator", "big-2"), Some(2));
        // Larger than the bound alone: not kept at all.
        assert!(!pipeline.leave_for("translator", "huge", 65 << 20, Box::new(3u32)));
        assert_eq!(pipeline.take_left::<u32>("translator", "huge"), None);
        assert_eq!(pipeline.handoffs().let_go, 2);
    }

    #[test]
    fn what_a_chain_run_again_left_twice_is_taken_from_its_last_run() {
        let config = BusConfig::new("amqp://127.0.0.1:1/%2f");
        let pipeline = with_translator(&config);
        assert!(pipeline.leave_for("translator", "doc-1", 10, Box::new(1u32)));
        assert!(pipeline.leave_for("translator", "doc-2", 10, Box::new(7u32)));
        assert!(pipeline.leave_for("translator", "doc-1", 10, Box::new(2u32)));
        assert_eq!(pipeline.take_left::<u32>("translator", "doc-1"), Some(2));
        // The first run's is gone with it, the other document's stays.
        assert_eq!(pipeline.take_left::<u32>("translator", "doc-1"), None);
        assert_eq!(pipeline.take_left::<u32>("translator", "doc-2"), Some(7));
        assert_eq!(
            pipeline.handoffs(),
            Handoffs {
                left: 3,
                taken: 2,
                let_go: 1
            }
        );
    }

    #[test]
    fn the_chain_records_in_place_only_where_nothing_else_reads_the_events() {
        let config = BusConfig::new("amqp://127.0.0.1:1/%2f");
        assert!(takes_ledger(config.clone()));
        // A federation link: the receipts relay reads `delivered` and `failed` on the exchange.
        let mut linked = config.clone();
        linked.links = vec!["quoc-gia".into()];
        assert!(!takes_ledger(linked));
        let mut tapped = config.clone();
        tapped.chain_ledger = false;
        assert!(!takes_ledger(tapped));
        let mut unchained = config;
        unchained.chain_stages = false;
        assert!(!takes_ledger(unchained));
    }
}
