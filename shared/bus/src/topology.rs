//! Names and declarations of every exchange and queue.
//!
//! ```text
//! gateway --(stage key)--> {p}.pipeline (direct) --> {p}.stage.<name>   one queue per stage
//! any service --(kind)---> {p}.events   (topic)  --> {p}.ledger         the ledger's queue
//! delivery --(OrganId)---> {p}.inbox    (topic)  --> adapters' own queues (optional)
//! rejected/poison -------> {p}.dlx      (fanout) --> {p}.dead           for operators
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
    /// The exchange behind a logical name used in the outbox (`pipeline`, `events`, `inbox`).
    pub fn exchange(&self, logical: &str) -> String {
        format!("{}.{logical}", self.prefix)
    }
}

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

/// Declares everything (idempotent; every service does it at start so start order never matters).
pub async fn declare(channel: &Channel, config: &BusConfig) -> Result<(), BusError> {
    let t = Topology::new(&config.prefix);
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
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
    let q = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
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
    Ok(())
}
