//! Delivery: puts each routed leg in its recipient's inbox (the store), records the `delivered`
//! event, and tells AMQP adapters listening on `{prefix}.inbox` (routing key: the recipient's
//! OrganId). Idempotent: a leg already delivered is acknowledged again without a second copy.

use std::sync::Arc;

use lienthong_bus::messages::{DeliverLeg, EventMessage, InboxNotice};
use lienthong_bus::{Onward, Outcome, Pipeline, Stage, StageFuture, Topology};
use lienthong_store::{DeliveryState, Leg, Store, now_ms};
use tokio::sync::watch;

pub const STAGE: &str = "delivery";

/// What became of a copy.
enum Copy {
    /// In its recipient's inbox now, by this delivery.
    DeliveredNow,
    /// In its recipient's inbox before (a message delivered again).
    DeliveredBefore,
    /// Failed before it could be delivered: nothing to do.
    Failed,
}

pub struct Delivery {
    store: Store,
    /// Where its notices and events go (the pipeline publishes them).
    topology: Topology,
    /// Where the router may have left the copies it routed, when it ran in this process just
    /// before.
    pipeline: Option<Pipeline>,
}

impl Delivery {
    pub fn new(store: Store, topology: Topology) -> Self {
        Self {
            store,
            topology,
            pipeline: None,
        }
    }

    /// Takes what the router left about a copy it routed in `pipeline`'s process just before.
    pub fn chained_in(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Moves the copy from `routed` to `delivered`; false when it was not `routed`.
    async fn move_on(&self, msg: &DeliverLeg) -> Result<bool, Outcome> {
        self.store
            .advance_leg(
                &msg.doc_id,
                &msg.recipient,
                DeliveryState::Routed,
                DeliveryState::Delivered,
            )
            .await
            .map_err(|e| Outcome::Retry(e.to_string()))
    }

    /// What became of the copy: delivered now, delivered before, or failed; a copy not routed
    /// yet is a message for later.
    async fn moved(&self, msg: &DeliverLeg) -> Result<Copy, Outcome> {
        // The router routed the copy just now, in this process: move it on without reading
        // the legs again. A copy moved meanwhile is looked at as below.
        let routed_here = self
            .pipeline
            .as_ref()
            .and_then(|p| p.take_left::<Leg>(STAGE, &msg.key()))
            .is_some();
        if routed_here && self.move_on(msg).await? {
            return Ok(Copy::DeliveredNow);
        }
        let legs = self
            .store
            .legs(&msg.doc_id)
            .await
            .map_err(|e| Outcome::Retry(e.to_string()))?;
        let leg = legs
            .iter()
            .find(|l| l.recipient == msg.recipient)
            .ok_or_else(|| {
                Outcome::Poison(format!("{} has no leg for {}", msg.doc_id, msg.recipient))
            })?;
        match leg.delivery {
            DeliveryState::Routed => Ok(if self.move_on(msg).await? {
                Copy::DeliveredNow
            } else {
                Copy::DeliveredBefore
            }),
            DeliveryState::Delivered => Ok(Copy::DeliveredBefore),
            DeliveryState::Failed => Ok(Copy::Failed),
            DeliveryState::Accepted => Err(Outcome::Retry(format!(
                "{}/{} is not routed yet",
                msg.doc_id, msg.recipient
            ))),
        }
    }

    async fn deliver(&self, msg: DeliverLeg) -> Result<Onward, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let document = self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
            .ok_or_else(|| Outcome::Poison(format!("no document {}", msg.doc_id)))?;
        match self.moved(&msg).await? {
            Copy::DeliveredNow => {
                // From acceptance on this bus to the recipient's inbox.
                let from = if document.arrival.is_some() {
                    "peer"
                } else {
                    "system"
                };
                metrics::histogram!("lienthong_delivery_latency_seconds", "from" => from)
                    .record((now_ms() - document.created_ms).max(0) as f64 / 1000.0);
            }
            // Delivered before: its event and notice are published again (consumers and the
            // ledger deduplicate).
            Copy::DeliveredBefore => {}
            Copy::Failed => return Ok(Onward::default()),
        }
        let t = &self.topology;
        let event = EventMessage::about(
            &msg.doc_id,
            "delivered",
            &msg.recipient,
            Some(format!("sha256 {}", document.sha256)),
            now_ms(),
        );
        let notice = InboxNotice {
            doc_id: msg.doc_id.clone(),
            recipient: msg.recipient.clone(),
            sender: document.sender.clone(),
            message_type: document.message_type.as_str().to_owned(),
        };
        Ok(Onward {
            messages: vec![notice.to_outgoing(t)],
            events: vec![event],
        })
    }
}

impl Stage for Delivery {
    fn name(&self) -> &'static str {
        STAGE
    }
    fn run<'a>(&'a self, payload: &'a [u8]) -> StageFuture<'a> {
        Box::pin(async move {
            let msg: DeliverLeg = serde_json::from_slice(payload)
                .map_err(|e| Outcome::Poison(format!("not a delivery message: {e}")))?;
            self.deliver(msg).await
        })
    }
}

/// Runs delivery in `pipeline` until `shutdown`.
pub async fn run(store: Store, pipeline: Pipeline, shutdown: watch::Receiver<bool>) {
    let delivery =
        Delivery::new(store, pipeline.publisher().topology().clone()).chained_in(pipeline.clone());
    pipeline.serve(Arc::new(delivery), shutdown).await;
}
