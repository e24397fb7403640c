//! The router: turns an accepted document into one delivery per recipient leg.
//!
//! It consults the agency registry at routing time (an agency locked or retired after acceptance
//! gets a failed leg with the reason), moves each leg to `routed`, and publishes one
//! `DeliverLeg` per routed leg plus the ledger events, all confirmed before the input is acked.
//! A redelivered message publishes again what an earlier attempt may have left unpublished (the
//! deliveries of legs already routed, and every leg's event), so a crash between the store update
//! and the confirms loses nothing; delivery and the ledger deduplicate.

use std::sync::Arc;

use lienthong_bus::messages::{DeliverLeg, EventMessage, StageMessage};
use lienthong_bus::{BusConfig, DocumentStage, Outcome, Publisher};
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
        let day = lienthong_store::today();
        let mut out = Vec::new();
        for leg in &legs {
            match leg.delivery {
                DeliveryState::Accepted => {
                    let agency = agencies.iter().find(|a| a.code == leg.recipient);
                    match refusal(agency, &day) {
                        None => {
                            let moved = self
                                .store
                                .advance_leg(
                                    &leg.doc_id,
                                    &leg.recipient,
                                    DeliveryState::Accepted,
                                    DeliveryState::Routed,
                                )
                                .await
                                .map_err(|e| retry(&e))?;
                            if !moved {
                                return Err(changed_meanwhile(leg));
                            }
                            out.push(deliver(&msg.doc_id, &leg.recipient).to_outgoing(t));
                            out.push(
                                EventMessage::about(
                                    &msg.doc_id,
                                    "routed",
                                    &leg.recipient,
                                    None,
                                    now_ms(),
                                )
                                .to_outgoing(t),
                            );
                        }
                        Some(reason) => {
                            let failed = self
                                .store
                                .fail_leg(&leg.doc_id, &leg.recipient, &reason)
                                .await
                                .map_err(|e| retry(&e))?;
                            if !failed {
                                return Err(changed_meanwhile(leg));
                            }
                            let detail = Some(reason);
                            out.push(
                                EventMessage::about(
                                    &msg.doc_id,
                                    "failed",
                                    &leg.recipient,
                                    detail,
                                    now_ms(),
                                )
                                .to_outgoing(t),
                            );
                        }
                    }
                }
                // Handled before, by an attempt that may have died before publishing everything:
                // publish again what that attempt published (consumers and the ledger deduplicate),
                // dated when the leg changed.
                DeliveryState::Routed | DeliveryState::Delivered => {
                    if leg.delivery == DeliveryState::Routed {
                        out.push(deliver(&msg.doc_id, &leg.recipient).to_outgoing(t));
                    }
                    out.push(
                        EventMessage::about(
                            &msg.doc_id,
                            "routed",
                            &leg.recipient,
                            None,
                            leg.updated_ms,
                        )
                        .to_outgoing(t),
                    );
                }
                DeliveryState::Failed => {
                    let detail = leg.reason.clone();
                    out.push(
                        EventMessage::about(
                            &msg.doc_id,
                            "failed",
                            &leg.recipient,
                            detail,
                            leg.updated_ms,
                        )
                        .to_outgoing(t),
                    );
                }
            }
        }
        self.publisher
            .publish_and_forward(&msg, out)
            .await
            .map_err(|e| retry(&e))
    }
}

/// Another consumer moved the leg between our read and our write (a duplicate message handled
/// twice at once): try again, and act on what the store says then.
fn changed_meanwhile(leg: &lienthong_store::Leg) -> Outcome {
    Outcome::Retry(format!(
        "leg {}/{} changed meanwhile",
        leg.doc_id, leg.recipient
    ))
}

/// Why a recipient cannot be routed to, from its registry entry on `day`.
fn refusal(agency: Option<&lienthong_store::Agency>, day: &str) -> Option<String> {
    let Some(a) = agency else {
        return Some("recipient is not in the registry".into());
    };
    match (a.state_on(day), &a.successor) {
        (AgencyState::Active, _) => None,
        (AgencyState::Locked, _) => Some("recipient is locked in the registry".into()),
        (AgencyState::Retired, Some(s)) => Some(format!(
            "recipient is retired in the registry; its successor is {s}: send the document to {s}"
        )),
        (AgencyState::Retired, None) => Some("recipient is retired in the registry".into()),
    }
}

fn deliver(doc_id: &str, recipient: &str) -> DeliverLeg {
    DeliverLeg {
        doc_id: doc_id.to_owned(),
        recipient: recipient.to_owned(),
    }
}

impl DocumentStage for Router {
    const STAGE: &'static str = STAGE;
    async fn process(&self, msg: StageMessage) -> Result<(), Outcome> {
        self.route(msg).await
    }
}

/// Runs the router until `shutdown`.
pub async fn run(store: Store, bus: BusConfig, shutdown: watch::Receiver<bool>) {
    let publisher = Publisher::new(&bus, "lienthong-router");
    let queue = publisher.topology().stage_queue(STAGE);
    let handler = Arc::new(Router::new(store, publisher));
    lienthong_bus::consume(bus, queue, "router".into(), handler, shutdown).await;
}
