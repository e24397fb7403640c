//! Delivery: puts each routed leg in its recipient's inbox (the store), records the `delivered`
//! event, and tells AMQP adapters listening on `{prefix}.inbox` (routing key: the recipient's
//! OrganId). Idempotent: a leg already delivered is acknowledged again without a second copy.

use std::sync::Arc;

use lienthong_bus::messages::{DeliverLeg, EventMessage, InboxNotice};
use lienthong_bus::{Onward, Outcome, Pipeline, Stage, StageFuture, Topology};
use lienthong_store::{DeliveryState, Store, now_ms};
use tokio::sync::watch;

pub const STAGE: &str = "delivery";

pub struct Delivery {
    store: Store,
    /// Where its notices and events go (the pipeline publishes them).
    topology: Topology,
}

impl Delivery {
    pub fn new(store: Store, topology: Topology) -> Self {
        Self { store, topology }
    }

    async fn deliver(&self, msg: DeliverLeg) -> Result<Onward, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let document = self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
            .ok_or_else(|| Outcome::Poison(format!("no document {}", msg.doc_id)))?;
        let legs = self.store.legs(&msg.doc_id).await.map_err(|e| retry(&e))?;
        let leg = legs
            .iter()
            .find(|l| l.recipient == msg.recipient)
            .ok_or_else(|| {
                Outcome::Poison(format!("{} has no leg for {}", msg.doc_id, msg.recipient))
            })?;
        match leg.delivery {
            DeliveryState::Routed => {
                let moved = self
                    .store
                    .advance_leg(
                        &msg.doc_id,
                        &msg.recipient,
                        DeliveryState::Routed,
                        DeliveryState::Delivered,
                    )
                    .await
                    .map_err(|e| retry(&e))?;
                if moved {
                    // From acceptance on this bus to the recipient's inbox.
                    let from = if document.arrival.is_some() {
                        "peer"
                    } else {
                        "system"
                    };
                    metrics::histogram!("lienthong_delivery_latency_seconds", "from" => from)
                        .record((now_ms() - document.created_ms).max(0) as f64 / 1000.0);
                }
            }
            DeliveryState::Delivered => {}
            DeliveryState::Failed => return Ok(Onward::default()),
            DeliveryState::Accepted => {
                return Err(Outcome::Retry(format!(
                    "{}/{} is not routed yet",
                    msg.doc_id, msg.recipient
                )));
            }
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
    let delivery = Delivery::new(store, pipeline.publisher().topology().clone());
    pipeline.serve(Arc::new(delivery), shutdown).await;
}
