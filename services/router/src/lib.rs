//! The router: turns an accepted document into one delivery per recipient leg.
//!
//! It consults the agency registry at routing time (an agency locked or retired after acceptance
//! gets a failed leg with the reason), moves each leg to `routed`, and publishes one
//! `DeliverLeg` per routed leg plus the ledger events, all confirmed before the input is acked.
//! A redelivered message re-publishes the deliveries of legs already routed, so a crash between
//! the two steps loses nothing; delivery deduplicates.

use std::sync::Arc;

use lienthong_bus::messages::{DeliverLeg, EventMessage, StageMessage};
use lienthong_bus::{BusConfig, Handler, Incoming, Outcome, Publisher};
use lienthong_store::{AgencyState, DeliveryState, Store, now_ms};
use tokio::sync::watch;

pub const STAGE: &str = "router";

pub struct Router {
    store: Store,
    publisher: Publisher,
}

impl Router {
    pub fn new(store: Store, publisher: Publisher) -> Self {
        Self { store, publisher }
    }

    async fn route(&self, msg: StageMessage) -> Result<(), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        if self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
            .is_none()
        {
            return Err(Outcome::Poison(format!("no document {}", msg.doc_id)));
        }
        let legs = self.store.legs(&msg.doc_id).await.map_err(|e| retry(&e))?;
        let codes: Vec<&str> = legs.iter().map(|l| l.recipient.as_str()).collect();
        let agencies = self
            .store
            .agencies_in(&codes)
            .await
            .map_err(|e| retry(&e))?;
        let t = self.publisher.topology();
        let mut out = Vec::new();
        for leg in &legs {
            let mut state = leg.delivery;
            if state == DeliveryState::Accepted {
                let agency = agencies.iter().find(|a| a.code == leg.recipient);
                let refusal = match agency.map(|a| a.state) {
                    Some(AgencyState::Active) => None,
                    Some(AgencyState::Locked) => Some("recipient is locked in the registry"),
                    Some(AgencyState::Retired) => Some("recipient is retired in the registry"),
                    None => Some("recipient is not in the registry"),
                };
                match refusal {
                    None => {
                        self.store
                            .advance_leg(
                                &leg.doc_id,
                                &leg.recipient,
                                DeliveryState::Accepted,
                                DeliveryState::Routed,
                            )
                            .await
                            .map_err(|e| retry(&e))?;
                        state = DeliveryState::Routed;
                    }
                    Some(reason) => {
                        self.store
                            .fail_leg(&leg.doc_id, &leg.recipient, reason)
                            .await
                            .map_err(|e| retry(&e))?;
                        out.push(
                            event(
                                &msg.doc_id,
                                "failed",
                                &leg.recipient,
                                Some(reason.to_owned()),
                            )
                            .to_outgoing(t),
                        );
                        continue;
                    }
                }
            }
            if state == DeliveryState::Routed {
                out.push(
                    DeliverLeg {
                        doc_id: msg.doc_id.clone(),
                        recipient: leg.recipient.clone(),
                    }
                    .to_outgoing(t),
                );
                out.push(event(&msg.doc_id, "routed", &leg.recipient, None).to_outgoing(t));
            }
        }
        if let Some(next) = msg.forward() {
            out.push(next.to_outgoing(t));
        }
        self.publisher
            .publish_all(&out)
            .await
            .map_err(|e| retry(&e))
    }
}

fn event(doc_id: &str, kind: &str, organ: &str, detail: Option<String>) -> EventMessage {
    EventMessage {
        event_id: format!("{doc_id}:{kind}:{organ}"),
        doc_id: doc_id.to_owned(),
        kind: kind.to_owned(),
        organ: Some(organ.to_owned()),
        detail,
        at_ms: now_ms(),
    }
}

impl Handler for Router {
    async fn handle(&self, message: Incoming) -> Outcome {
        let msg: StageMessage = match serde_json::from_slice(&message.payload) {
            Ok(m) => m,
            Err(e) => return Outcome::Poison(format!("not a stage message: {e}")),
        };
        if msg.slip.first().map(String::as_str) != Some(STAGE) {
            return Outcome::Poison(format!(
                "routing slip {:?} does not start with {STAGE}",
                msg.slip
            ));
        }
        match self.route(msg).await {
            Ok(()) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}

/// Runs the router until `shutdown`.
pub async fn run(store: Store, bus: BusConfig, shutdown: watch::Receiver<bool>) {
    let publisher = Publisher::new(&bus, "lienthong-router");
    let queue = publisher.topology().stage_queue(STAGE);
    let handler = Arc::new(Router::new(store, publisher));
    lienthong_bus::consume(bus, queue, "router".into(), handler, shutdown).await;
}
