//! Sends the outcome of each copy of a document that came from another bus back to that bus.

use std::sync::Arc;

use lienthong_bus::messages::EventMessage;
use lienthong_bus::{BusError, Handler, Incoming, Outcome, Publisher};
use lienthong_federation::{FederationConfig, LinkOrder, Outcome as Copy, Receipt};
use lienthong_store::Store;

pub struct ReceiptRelay {
    store: Store,
    publisher: Publisher,
    federation: Arc<FederationConfig>,
}

impl ReceiptRelay {
    pub fn new(store: Store, publisher: Publisher, federation: Arc<FederationConfig>) -> Self {
        Self {
            store,
            publisher,
            federation,
        }
    }

    async fn relay(&self, event: EventMessage) -> Result<(), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let Some(recipient) = event.organ else {
            return Ok(());
        };
        let outcome = match event.kind.as_str() {
            "delivered" => Copy::Delivered,
            "failed" => Copy::Failed,
            // The copy's transport status as it is now (events may come in any order).
            "transport" => {
                let legs = self
                    .store
                    .legs(&event.doc_id)
                    .await
                    .map_err(|e| retry(&e))?;
                match legs.iter().find(|l| l.recipient == recipient) {
                    Some(leg) => Copy::Transport(leg.transport),
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        let Some(doc) = self
            .store
            .document(&event.doc_id)
            .await
            .map_err(|e| retry(&e))?
        else {
            return Ok(());
        };
        let Some(arrival) = doc.arrival else {
            // Sent from here: the sender reads the outcome here.
            return Ok(());
        };
        let order = LinkOrder::Receipt(Receipt {
            from_bus: self.federation.bus.clone(),
            doc_id: arrival.peer_doc,
            recipient,
            outcome,
            detail: event.detail,
            at_ms: event.at_ms,
        });
        match self
            .publisher
            .publish(order.to_outgoing(self.publisher.topology(), &arrival.peer))
            .await
        {
            Ok(()) => Ok(()),
            Err(BusError::Unroutable { .. }) => Err(Outcome::Poison(format!(
                "document {} came from bus {}, which has no link queue here (not among federation.peers)",
                event.doc_id, arrival.peer
            ))),
            Err(e) => Err(retry(&e)),
        }
    }
}

impl Handler for ReceiptRelay {
    async fn handle(&self, message: Incoming) -> Outcome {
        // One event, or several published together (the other kinds among them are ignored).
        let events = match EventMessage::read_all(&message.payload) {
            Ok(events) => events,
            Err(e) => return Outcome::Poison(format!("not an event: {e}")),
        };
        for event in events {
            if let Err(outcome) = self.relay(event).await {
                return outcome;
            }
        }
        Outcome::Done
    }
}
