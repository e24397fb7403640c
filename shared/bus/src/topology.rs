//! Names and declarations of every exchange and queue.
//!
//! ```text
//! gateway --(stage key)--> {p}.pipeline (direct) --> {p}.stage.<name>   one queue per stage
//! any service --(kind)---> {p}.events   (topic)  --> {p}.ledger         the ledger's queue
//! delivery --(OrganId)---> {p}.inbox    (topic)  --> {p}.adapter.{systemId} (adapters, optional)
//! rejected/poison -------> {p}.dlx      (fanout) --> {p}.dead           for operators
//!
//! with a [federation] section (links to other buses):
//! router, receipts --(bus)-> {p}.links  (direct) --> {p}.link.<bus>    one queue per peer bus
//! peer buses ---(package|receipt)-> {p}.federation (direct) --> {p}.arrivals
//! {p}.events (delivered, failed, transport) ----------------> {p}.receipts
//! ```

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::{BusConfig, BusError, QueueType};

/// Every pipeline stage the bus knows. A new stage adds a name here and a service that consumes
/// it; the others are untouched because each message carries its slip.
pub const STAGES: &[&str] = &["verifier", "translator", "router", "delivery"];

/// The names of the bus's exchanges and queues under one prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
    pub fn pipeline(&self) -> String {
        format!("{}.pipeline", self.prefix)
    }
    pub fn events(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn inbox(&self) -> String {
        format!("{}.inbox", self.prefix)
    }
    pub fn dlx(&self) -> String {
        format!("{}.dlx", self.prefix)
    }
    pub fn stage_queue(&self, stage: &str) -> String {
        format!("{}.stage.{stage}", self.prefix)
    }
    pub fn ledger_queue(&self) -> String {
        format!("{}.ledger", self.prefix)
    }
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    /// Where the router and the receipts relay put what goes to another bus.
    pub fn links(&self) -> String {
        format!("{}.links", self.prefix)
    }
    /// The queue of what waits for the peer bus `bus`: its length is the backlog.
    pub fn link_queue(&self, bus: &str) -> String {
        format!("{}.link.{bus}", self.prefix)
    }
    /// Where peer buses publish packages and receipts for this bus.
    pub fn federation(&self) -> String {
        format!("{}.federation", self.prefix)
    }
    pub fn arrivals_queue(&self) -> String {
        format!("{}.arrivals", self.prefix)
    }
    /// The `delivered` and `failed` events of documents that came from another bus go back
    /// there from this queue.
    pub fn receipts_queue(&self) -> String {
        format!("{}.receipts", self.prefix)
    }
    /// Every queue of a bus with these links, for monitoring.
    pub fn queues(&self, links: &[String]) -> Vec<String> {
        let mut queues: Vec<String> = STAGES.iter().map(|s| self.stage_queue(s)).collect();
        queues.extend([self.ledger_queue(), self.dead_queue()]);
        if !links.is_empty() {
            queues.extend(links.iter().map(|b| self.link_queue(b)));
            queues.extend([self.arrivals_queue(), self.receipts_queue()]);
        }
        queues
    }
    /// The exchange behind a logical name used in the outbox (`pipeline`, `events`, `inbox`).
    pub fn exchange(&self, logical: &str) -> String {
        format!("{}.{logical}", self.prefix)
    }
}

const DURABLE_EXCHANGE: ExchangeDeclareOptions = ExchangeDeclareOptions {
    passive: false,
    durable: true,
    auto_delete: false,
    internal: false,
    nowait: false,
};

const DURABLE_QUEUE: QueueDeclareOptions = QueueDeclareOptions {
    passive: false,
    durable: true,
    exclusive: false,
    auto_delete: false,
    nowait: false,
};

fn queue_args(config: &BusConfig, dlx: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    if config.queue_type == QueueType::Quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        if dlx.is_some() {
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(i32::try_from(config.delivery_limit).unwrap_or(i32::MAX)),
            );
        }
    }
    if let Some(dlx) = dlx {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
    }
    args
}

/// A queue's message and consumer counts, by a passive declare (which creates nothing, and
/// closes the channel when the queue does not exist).
pub(crate) async fn inspect(channel: &Channel, queue: &str) -> Result<lapin::Queue, lapin::Error> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares everything (idempotent; every service does it at start so start order never matters).
pub async fn declare(channel: &Channel, config: &BusConfig) -> Result<(), BusError> {
    let t = Topology::new(&config.prefix);
    let durable = DURABLE_EXCHANGE;
    for (name, kind) in [
        (t.pipeline(), ExchangeKind::Direct),
        (t.events(), ExchangeKind::Topic),
        (t.inbox(), ExchangeKind::Topic),
        (t.dlx(), ExchangeKind::Fanout),
    ] {
        channel
            .exchange_declare(name.as_str().into(), kind, durable, FieldTable::default())
            .await?;
    }
    let q = DURABLE_QUEUE;
    let dlx = t.dlx();
    channel
        .queue_declare(t.dead_queue().as_str().into(), q, queue_args(config, None))
        .await?;
    channel
        .queue_bind(
            t.dead_queue().as_str().into(),
            dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for stage in STAGES {
        let queue = t.stage_queue(stage);
        channel
            .queue_declare(queue.as_str().into(), q, queue_args(config, Some(&dlx)))
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                t.pipeline().as_str().into(),
                (*stage).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .queue_declare(
            t.ledger_queue().as_str().into(),
            q,
            queue_args(config, Some(&dlx)),
        )
        .await?;
    channel
        .queue_bind(
            t.ledger_queue().as_str().into(),
            t.events().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if !config.links.is_empty() {
        declare_federation(channel, config, &t).await?;
    }
    Ok(())
}

/// The links to other buses: only on a bus that has them, so no queue fills up unread.
async fn declare_federation(
    channel: &Channel,
    config: &BusConfig,
    t: &Topology,
) -> Result<(), BusError> {
    let dlx = t.dlx();
    for exchange in [t.links(), t.federation()] {
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Direct,
                DURABLE_EXCHANGE,
                FieldTable::default(),
            )
            .await?;
    }
    let mut bindings: Vec<(String, String, String)> = config
        .links
        .iter()
        .map(|bus| (t.link_queue(bus), t.links(), bus.clone()))
        .collect();
    for kind in ["package", "receipt"] {
        bindings.push((t.arrivals_queue(), t.federation(), kind.into()));
    }
    // Events published together carry every kind in their routing key.
    for kind in ["delivered", "failed", "transport"] {
        bindings.push((t.receipts_queue(), t.events(), format!("#.{kind}.#")));
    }
    for (queue, exchange, key) in bindings {
        channel
            .queue_declare(
                queue.as_str().into(),
                DURABLE_QUEUE,
                queue_args(config, Some(&dlx)),
            )
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
