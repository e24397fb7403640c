//! The router: turns an accepted document into one delivery per recipient leg.
//!
//! It consults the agency registry at routing time (an agency locked or retired after acceptance
//! gets a failed leg with the reason), moves each leg to `routed`, and publishes one
//! `DeliverLeg` per routed leg plus the ledger events, all confirmed before the input is acked.
//! A redelivered message publishes again what an earlier attempt may have left unpublished (the
//! deliveries of legs already routed or delivered, and every leg's event), so a crash between the
//! store update and the confirms loses nothing; delivery and the ledger deduplicate.
//!
//! With a `[federation]` section, a copy for an agency another bus serves is routed to that bus
//! instead: the leg remembers the bus, and one `LinkOrder` per bus goes to its link queue, where
//! the link forwarder sends the package on. A copy with no way (no link, a loop, the hop limit)
//! fails with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use lienthong_bus::messages::{DeliverLeg, EventMessage, StageMessage};
use lienthong_bus::{Document, DocumentStage, Onward, Outcome, Pipeline, Publisher};
use lienthong_federation::{FederationConfig, LinkOrder, Route};
use lienthong_store::{AgencyState, DeliveryState, Leg, LegsRead, Store, now_ms};
use tokio::sync::watch;

pub const STAGE: &str = "router";

pub struct Router {
    store: Store,
    publisher: Publisher,
    federation: Option<Arc<FederationConfig>>,
    /// Where the stage before may have left the legs it read, and where this stage leaves
    /// delivery the copies it routed here (when they run in this process, chained).
    pipeline: Option<Pipeline>,
}

/// The delivery's stage (`lienthong_delivery::STAGE`).
const DELIVERY: &str = "delivery";

impl Router {
    pub fn new(
        store: Store,
        publisher: Publisher,
        federation: Option<Arc<FederationConfig>>,
    ) -> Self {
        Self {
            store,
            publisher,
            federation,
            pipeline: None,
        }
    }

    /// Takes the legs the stage before read, when it ran in `pipeline`'s process just before and
    /// left them, and leaves delivery each copy routed here.
    pub fn chained_in(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Where a copy goes: here when the bus has no links.
    fn way(&self, agency: Option<&lienthong_store::Agency>, via: &[String]) -> Route {
        match &self.federation {
            None => Route::Here,
            Some(f) => f.route(agency, via),
        }
    }

    async fn route(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        // Taken first, whatever comes next, so that nothing left for this document stays behind.
        let left = self
            .pipeline
            .as_ref()
            .and_then(|p| p.take_left::<LegsRead>(STAGE, &msg.doc_id));
        let Some(document) = self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
        else {
            return Err(Outcome::Poison(format!("no document {}", msg.doc_id)));
        };
        let via = document.arrival.map(|a| a.via).unwrap_or_default();
        // The copies for each other bus, sent as one package per bus.
        let mut links: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (legs, agencies) = match left {
            Some(read) => (read.legs, read.agencies),
            None => {
                let legs = self.store.legs(&msg.doc_id).await.map_err(|e| retry(&e))?;
                let codes: Vec<&str> = legs.iter().map(|l| l.recipient.as_str()).collect();
                let agencies = self
                    .store
                    .agencies_in(&codes)
                    .await
                    .map_err(|e| retry(&e))?;
                (legs, agencies)
            }
        };
        let t = self.publisher.topology();
        let day = lienthong_store::today();
        let mut out = Onward::default();
        for leg in &legs {
            match leg.delivery {
                DeliveryState::Accepted => {
                    let agency = agencies.iter().find(|a| a.code == leg.recipient);
                    let refused = match self.way(agency, &via) {
                        Route::Here => refusal(agency, &day),
                        Route::Unroutable(reason) => Some(reason),
                        Route::Peer { bus, why } => {
                            let moved = self
                                .store
                                .forward_leg(&leg.doc_id, &leg.recipient, &bus)
                                .await
                                .map_err(|e| retry(&e))?;
                            if !moved {
                                return Err(changed_meanwhile(leg));
                            }
                            out.events.push(routed_to(
                                &msg.doc_id,
                                &leg.recipient,
                                &bus,
                                Some(&why),
                                now_ms(),
                            ));
                            links.entry(bus).or_default().push(leg.recipient.clone());
                            continue;
                        }
                    };
                    match refused {
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
                            here(&mut out, &msg.doc_id, &leg.recipient, now_ms(), t);
                            // Delivery, next and in this process, knows the copy is routed.
                            if let Some(pipeline) = &self.pipeline {
                                let routed = Leg {
                                    delivery: DeliveryState::Routed,
                                    ..leg.clone()
                                };
                                let key = deliver(&msg.doc_id, &leg.recipient).key();
                                pipeline.leave_for(DELIVERY, &key, 0, Box::new(routed));
                            }
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
                            out.events.push(EventMessage::about(
                                &msg.doc_id,
                                "failed",
                                &leg.recipient,
                                detail,
                                now_ms(),
                            ));
                        }
                    }
                }
                // Handled before, by an attempt that may have died before publishing everything:
                // publish again what that attempt published (consumers and the ledger deduplicate),
                // dated when the leg changed.
                DeliveryState::Routed | DeliveryState::Delivered if leg.bus.is_some() => {
                    let bus = leg.bus.clone().unwrap_or_default();
                    if leg.delivery == DeliveryState::Routed {
                        links
                            .entry(bus.clone())
                            .or_default()
                            .push(leg.recipient.clone());
                    }
                    out.events.push(routed_to(
                        &msg.doc_id,
                        &leg.recipient,
                        &bus,
                        None,
                        leg.updated_ms,
                    ));
                }
                DeliveryState::Routed | DeliveryState::Delivered => {
                    // A delivered copy too: the attempt that delivered it may have died before
                    // delivery's own event and notice were confirmed (stages chained in one
                    // process publish together, at the end), and delivery publishes them again.
                    here(&mut out, &msg.doc_id, &leg.recipient, leg.updated_ms, t);
                }
                DeliveryState::Failed => {
                    let detail = leg.reason.clone();
                    out.events.push(EventMessage::about(
                        &msg.doc_id,
                        "failed",
                        &leg.recipient,
                        detail,
                        leg.updated_ms,
                    ));
                }
            }
        }
        for (bus, recipients) in links {
            out.messages.push(
                LinkOrder::Package {
                    doc_id: msg.doc_id.clone(),
                    recipients,
                }
                .to_outgoing(t, &bus),
            );
        }
        if let Some(next) = msg.forward() {
            out.messages.push(next.to_outgoing(t));
        }
        Ok(out)
    }
}

/// The `routed` event of a copy for another bus: the same id as a local copy's, so a repeated
/// attempt records it once.
fn routed_to(
    doc_id: &str,
    recipient: &str,
    bus: &str,
    why: Option<&str>,
    at_ms: i64,
) -> EventMessage {
    let detail = match why {
        Some(why) => format!("to bus {bus} ({why})"),
        None => format!("to bus {bus}"),
    };
    EventMessage::about(doc_id, "routed", recipient, Some(detail), at_ms)
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

/// A copy routed to its recipient on this bus: its delivery, and its `routed` event dated `at_ms`.
fn here(out: &mut Onward, doc_id: &str, recipient: &str, at_ms: i64, t: &lienthong_bus::Topology) {
    out.messages.push(deliver(doc_id, recipient).to_outgoing(t));
    out.events.push(EventMessage::about(
        doc_id, "routed", recipient, None, at_ms,
    ));
}

fn deliver(doc_id: &str, recipient: &str) -> DeliverLeg {
    DeliverLeg {
        doc_id: doc_id.to_owned(),
        recipient: recipient.to_owned(),
    }
}

impl DocumentStage for Router {
    const STAGE: &'static str = STAGE;
    async fn process(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        self.route(msg).await
    }
}

/// Why a copy could not be sent to the router again.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("docId {doc_id} has no failed copy for {to}")]
    NotFailed { doc_id: String, to: String },
    #[error(transparent)]
    Store(#[from] lienthong_store::StoreError),
    #[error(
        "the copy is accepted again but the router was not told ({0}); retry it again when the broker answers"
    )]
    Bus(#[from] lienthong_bus::BusError),
}

/// Gives a failed copy another chance once its cause is mended (an agency unlocked, a link
/// configured): the copy goes back to `accepted` and the router routes it with the registry
/// and links as they are now. A copy left `accepted` by a retry whose message the broker did
/// not confirm is sent again.
pub async fn retry_copy(
    store: &Store,
    publisher: &Publisher,
    doc_id: &str,
    to: &str,
) -> Result<(), RetryError> {
    let leg = store
        .legs(doc_id)
        .await?
        .into_iter()
        .find(|l| l.recipient == to);
    match leg.map(|l| l.delivery) {
        Some(DeliveryState::Failed) => {
            store.retry_leg(doc_id, to).await?;
        }
        Some(DeliveryState::Accepted) => {}
        _ => {
            return Err(RetryError::NotFailed {
                doc_id: doc_id.to_owned(),
                to: to.to_owned(),
            });
        }
    }
    let message = StageMessage::new(doc_id, vec![STAGE.into()]).to_outgoing(publisher.topology());
    // A message of its own: the document's first routing message was consumed long ago.
    let message = lienthong_bus::Outgoing {
        message_id: format!("{}:retry:{}", message.message_id, now_ms()),
        ..message
    };
    publisher.publish(message).await?;
    Ok(())
}

/// Runs the router in `pipeline` until `shutdown`.
pub async fn run(
    store: Store,
    pipeline: Pipeline,
    federation: Option<Arc<FederationConfig>>,
    shutdown: watch::Receiver<bool>,
) {
    let router =
        Router::new(store, pipeline.publisher().clone(), federation).chained_in(pipeline.clone());
    pipeline
        .serve(Arc::new(Document(Arc::new(router))), shutdown)
        .await;
}
