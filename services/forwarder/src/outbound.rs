//! Sends what the link queue of one peer holds to that peer's broker, confirmed before the ack.

use std::sync::Arc;

use lienthong_bus::messages::EventMessage;
use lienthong_bus::{Handler, Incoming, Outcome, Publisher};
use lienthong_federation::{FederationConfig, LinkOrder, Transfer};
use lienthong_store::{DeliveryState, Hop, Store, now_ms};

pub struct LinkForwarder {
    store: Store,
    local: Publisher,
    peer: Publisher,
    /// The peer's name.
    bus: String,
    federation: Arc<FederationConfig>,
    organ_id: String,
}

impl LinkForwarder {
    pub fn new(
        store: Store,
        local: Publisher,
        peer: Publisher,
        bus: String,
        federation: Arc<FederationConfig>,
        organ_id: String,
    ) -> Self {
        Self {
            store,
            local,
            peer,
            bus,
            federation,
            organ_id,
        }
    }

    async fn send_package(&self, doc_id: &str, recipients: Vec<String>) -> Result<(), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let doc = self
            .store
            .document(doc_id)
            .await
            .map_err(|e| retry(&e))?
            .ok_or_else(|| Outcome::Poison(format!("no document {doc_id}")))?;
        // Only the copies still on their way there (one may have been recalled or failed since).
        let legs = self.store.legs(doc_id).await.map_err(|e| retry(&e))?;
        let recipients: Vec<String> = recipients
            .into_iter()
            .filter(|r| {
                legs.iter()
                    .any(|l| l.recipient == *r && l.delivery == DeliveryState::Routed)
            })
            .collect();
        if recipients.is_empty() {
            return Ok(());
        }
        let t = self.local.topology();
        let bus = &self.bus;
        let limit = self.federation.max_transfer_bytes;
        if u64::try_from(doc.size).unwrap_or(u64::MAX) > limit {
            let reason = format!(
                "the package is {} bytes and links to other buses carry at most {limit} (federation.max_transfer_bytes)",
                doc.size
            );
            let mut out = Vec::new();
            for r in &recipients {
                if self
                    .store
                    .fail_leg(doc_id, r, &reason)
                    .await
                    .map_err(|e| retry(&e))?
                {
                    out.push(
                        EventMessage::about(doc_id, "failed", r, Some(reason.clone()), now_ms())
                            .to_outgoing(t),
                    );
                }
            }
            return self.local.publish_all(&out).await.map_err(|e| retry(&e));
        }
        let package = self.store.package(&doc).await.map_err(|e| retry(&e))?;
        let (mut via, mut trace) = doc
            .arrival
            .as_ref()
            .map(|a| (a.via.clone(), a.trace.clone()))
            .unwrap_or_default();
        via.push(self.federation.bus.clone());
        trace.push(Hop {
            organ_id: self.organ_id.clone(),
            timestamp: lienthong_edxml::Timestamp::from_unix_ms(now_ms()).to_string(),
        });
        let transfer = Transfer {
            from_bus: self.federation.bus.clone(),
            doc_id: doc_id.to_owned(),
            recipients: recipients.clone(),
            format: doc.format,
            sha256: doc.sha256.clone(),
            via,
            trace,
            package,
        };
        self.peer
            .publish(transfer.to_peer(self.peer.topology()))
            .await
            .map_err(|e| Outcome::Retry(format!("bus {bus} did not confirm: {e}")))?;
        metrics::counter!("lienthong_link_transfers_total", "bus" => bus.clone(), "kind" => "package")
            .increment(1);
        let out: Vec<_> = recipients
            .iter()
            .map(|r| {
                EventMessage::about(
                    doc_id,
                    &format!("forwarded:{bus}"),
                    r,
                    Some(format!("sent to bus {bus}; sha256 {}", doc.sha256)),
                    now_ms(),
                )
                .to_outgoing(t)
            })
            .collect();
        self.local.publish_all(&out).await.map_err(|e| retry(&e))
    }
}

impl Handler for LinkForwarder {
    async fn handle(&self, message: Incoming) -> Outcome {
        let order: LinkOrder = match serde_json::from_slice(&message.payload) {
            Ok(o) => o,
            Err(e) => return Outcome::Poison(format!("not a link order: {e}")),
        };
        let result = match order {
            LinkOrder::Package { doc_id, recipients } => {
                self.send_package(&doc_id, recipients).await
            }
            LinkOrder::Receipt(receipt) => self
                .peer
                .publish(receipt.to_peer(self.peer.topology()))
                .await
                .map(|()| {
                    metrics::counter!("lienthong_link_transfers_total", "bus" => self.bus.clone(), "kind" => "receipt")
                        .increment(1);
                })
                .map_err(|e| Outcome::Retry(format!("bus {} did not confirm: {e}", self.bus))),
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}
