//! What peer buses send here: packages, accepted into this bus's pipeline, and receipts for the
//! copies this bus forwarded.

use std::sync::Arc;

use lienthong_bus::messages::EventMessage;
use lienthong_bus::{Handler, Incoming, Outcome};
use lienthong_federation::{FederationConfig, LinkOrder, Outcome as Copy, Receipt, Transfer};
use lienthong_gateway::{AppState, ErrorCode};
use lienthong_store::{Arrival, Body, DeliveryState, RuleError, StoreError, now_ms};

pub struct Arrivals {
    state: AppState,
    federation: Arc<FederationConfig>,
}

impl Arrivals {
    pub fn new(state: AppState, federation: Arc<FederationConfig>) -> Self {
        Self { state, federation }
    }

    async fn package(&self, frame: &[u8]) -> Result<(), Outcome> {
        let transfer = Transfer::decode(frame).map_err(|e| Outcome::Poison(e.0))?;
        if self.federation.peer(&transfer.from_bus).is_none() {
            return Err(Outcome::Poison(format!(
                "a package from bus {}, which is not among federation.peers",
                transfer.from_bus
            )));
        }
        let here = &self.federation.bus;
        let refusal = if transfer.via.contains(here) {
            Some(format!(
                "routing loop: {} -> {here}; the registries of these buses disagree on who serves the recipient",
                transfer.via.join(" -> ")
            ))
        } else if transfer.via.len() >= self.federation.hop_limit {
            Some(format!(
                "hop limit reached: {} buses passed ({}), federation.hop_limit of bus {here} is {}",
                transfer.via.len(),
                transfer.via.join(" -> "),
                self.federation.hop_limit
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return self.refuse(&transfer, &reason).await;
        }
        let arrival = Arrival {
            peer: transfer.from_bus.clone(),
            peer_doc: transfer.doc_id.clone(),
            via: transfer.via.clone(),
            trace: transfer.trace.clone(),
        };
        let accepted = lienthong_gateway::accept_forwarded(
            &self.state,
            transfer.format,
            Body::Bytes(transfer.package.clone().into()),
            transfer.recipients.clone(),
            arrival,
        )
        .await;
        match accepted {
            Ok(a) => {
                if !a.duplicate {
                    metrics::counter!("lienthong_arrivals_total", "from" => transfer.from_bus.clone(), "result" => "accepted")
                        .increment(1);
                }
                tracing::info!(doc_id = %a.doc_id, from = %transfer.from_bus, their_doc = %transfer.doc_id, duplicate = a.duplicate, "accepted from a peer bus");
                Ok(())
            }
            // The store or the broker is away, or a concurrent status: try again.
            Err(e) if matches!(e.code, ErrorCode::Platform | ErrorCode::IllegalTransition) => {
                Err(Outcome::Retry(e.desc))
            }
            Err(e) => {
                self.refuse(&transfer, &format!("refused by bus {here}: {}", e.desc))
                    .await
            }
        }
    }

    /// Every copy of a package this bus will not take goes back failed, with the reason.
    async fn refuse(&self, transfer: &Transfer, reason: &str) -> Result<(), Outcome> {
        metrics::counter!("lienthong_arrivals_total", "from" => transfer.from_bus.clone(), "result" => "refused")
            .increment(1);
        tracing::warn!(from = %transfer.from_bus, their_doc = %transfer.doc_id, %reason, "refused a package from a peer bus");
        let t = self.state.publisher.topology();
        let out: Vec<_> = transfer
            .recipients
            .iter()
            .map(|r| {
                LinkOrder::Receipt(Receipt {
                    from_bus: self.federation.bus.clone(),
                    doc_id: transfer.doc_id.clone(),
                    recipient: r.clone(),
                    outcome: Copy::Failed,
                    detail: Some(reason.to_owned()),
                    at_ms: now_ms(),
                })
                .to_outgoing(t, &transfer.from_bus)
            })
            .collect();
        self.state
            .publisher
            .publish_all(&out)
            .await
            .map_err(|e| Outcome::Retry(e.to_string()))
    }

    /// A copy this bus forwarded was delivered, or failed, on the bus it went to (or beyond).
    async fn receipt(&self, payload: &[u8]) -> Result<(), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let r: Receipt = serde_json::from_slice(payload)
            .map_err(|e| Outcome::Poison(format!("not a receipt: {e}")))?;
        let store = &self.state.store;
        let legs = store.legs(&r.doc_id).await.map_err(|e| retry(&e))?;
        let leg = legs
            .iter()
            .find(|l| l.recipient == r.recipient)
            .ok_or_else(|| {
                Outcome::Poison(format!(
                    "a receipt from bus {} for {} / {}, a copy this bus does not have",
                    r.from_bus, r.doc_id, r.recipient
                ))
            })?;
        if leg.bus.as_deref() != Some(r.from_bus.as_str()) {
            return Err(Outcome::Poison(format!(
                "a receipt from bus {} for {} / {}, which was forwarded to {}",
                r.from_bus,
                r.doc_id,
                r.recipient,
                leg.bus.as_deref().unwrap_or("no bus")
            )));
        }
        let detail = match &r.detail {
            Some(d) => format!("bus {}: {d}", r.from_bus),
            None => format!("bus {}", r.from_bus),
        };
        let event = match r.outcome {
            // An outcome that contradicts the one this bus already has changes nothing.
            Copy::Delivered if leg.delivery == DeliveryState::Failed => return Ok(()),
            Copy::Failed if leg.delivery == DeliveryState::Delivered => return Ok(()),
            Copy::Delivered => {
                if leg.delivery == DeliveryState::Routed {
                    store
                        .advance_leg(
                            &r.doc_id,
                            &r.recipient,
                            DeliveryState::Routed,
                            DeliveryState::Delivered,
                        )
                        .await
                        .map_err(|e| retry(&e))?;
                }
                "delivered"
            }
            Copy::Failed => {
                store
                    .fail_leg(&r.doc_id, &r.recipient, &detail)
                    .await
                    .map_err(|e| retry(&e))?;
                "failed"
            }
            Copy::Transport(status) => {
                match leg.delivery {
                    // Its `delivered` receipt is on the way (receipts may overtake each other).
                    DeliveryState::Accepted | DeliveryState::Routed => {
                        return Err(Outcome::Retry(format!(
                            "{} / {} is not delivered here yet",
                            r.doc_id, r.recipient
                        )));
                    }
                    DeliveryState::Failed => return Ok(()),
                    DeliveryState::Delivered => {}
                }
                match store
                    .set_transport(&r.doc_id, &r.recipient, status, &[])
                    .await
                {
                    Ok(_) => {}
                    // A later status got here first (`done` is final): keep it.
                    Err(StoreError::Rule(RuleError::IllegalTransition(_))) => return Ok(()),
                    Err(e) => return Err(retry(&e)),
                }
                let t = self.state.publisher.topology();
                let event = EventMessage {
                    event_id: format!("{}:transport:{}:{status}", r.doc_id, r.recipient),
                    doc_id: r.doc_id.clone(),
                    kind: "transport".into(),
                    organ: Some(r.recipient.clone()),
                    detail: Some(format!("{status}; {detail}")),
                    at_ms: r.at_ms,
                };
                return self
                    .state
                    .publisher
                    .publish(event.to_outgoing(t))
                    .await
                    .map_err(|e| retry(&e));
            }
        };
        let t = self.state.publisher.topology();
        self.state
            .publisher
            .publish(
                EventMessage::about(&r.doc_id, event, &r.recipient, Some(detail), r.at_ms)
                    .to_outgoing(t),
            )
            .await
            .map_err(|e| retry(&e))
    }
}

impl Handler for Arrivals {
    async fn handle(&self, message: Incoming) -> Outcome {
        let result = match message.routing_key.as_str() {
            "package" => self.package(&message.payload).await,
            "receipt" => self.receipt(&message.payload).await,
            other => Err(Outcome::Poison(format!(
                "an arrival with routing key `{other}` (package or receipt)"
            ))),
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}
