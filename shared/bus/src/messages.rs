//! The messages that travel between services: the wire contract, versioned by field names.
//! Messages carry identifiers, never package bytes: the bytes live in the store, so a message is
//! small whatever the package size and no stage holds the only copy of anything.

use serde::{Deserialize, Serialize};

use crate::{Outgoing, Route, Topology};

/// A document on its way through the document stages. `slip` lists the stages still to run,
/// the current one first (a routing slip): the gateway writes it from configuration, each stage
/// forwards to the next, so a new stage slots in without any other stage changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMessage {
    pub doc_id: String,
    pub slip: Vec<String>,
    /// Lifecycle events of the step that sent the message (the gateway's `accepted`), for the
    /// stage that takes it to publish with its own, so they cost the broker no message of their
    /// own (`bus.chain_stages`). Empty on every hop after the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventMessage>,
}

impl StageMessage {
    /// Reads a message meant for `stage`: anything else is poison (a message that can never be
    /// handled here, dead-lettered rather than retried).
    pub fn for_stage(payload: &[u8], stage: &str) -> Result<StageMessage, crate::Outcome> {
        let msg: StageMessage = serde_json::from_slice(payload)
            .map_err(|e| crate::Outcome::Poison(format!("not a stage message: {e}")))?;
        if msg.slip.first().map(String::as_str) != Some(stage) {
            return Err(crate::Outcome::Poison(format!(
                "routing slip {:?} does not start with {stage}",
                msg.slip
            )));
        }
        Ok(msg)
    }

    /// A message for the first stage of `slip`, carrying no events.
    pub fn new(doc_id: &str, slip: Vec<String>) -> StageMessage {
        StageMessage {
            doc_id: doc_id.to_owned(),
            slip,
            events: Vec::new(),
        }
    }

    /// The message for the stage after this one, if any. The events it carried are not passed
    /// on: the stage that took them publishes them.
    pub fn forward(&self) -> Option<StageMessage> {
        (self.slip.len() > 1).then(|| StageMessage::new(&self.doc_id, self.slip[1..].to_vec()))
    }

    /// The events a stage message carries, read from its payload whatever else is wrong with
    /// it: a message its stage cannot handle still has its events recorded before it is
    /// dead-lettered. Nothing when the payload has none or is not JSON.
    pub fn carried_events(payload: &[u8]) -> Vec<EventMessage> {
        #[derive(Deserialize)]
        struct Carried {
            #[serde(default)]
            events: Vec<EventMessage>,
        }
        serde_json::from_slice::<Carried>(payload)
            .map(|c| c.events)
            .unwrap_or_default()
    }

    pub fn to_outgoing(&self, t: &Topology) -> Outgoing {
        let stage = self.slip.first().map(String::as_str).unwrap_or("router");
        Outgoing {
            route: Route {
                exchange: t.pipeline(),
                routing_key: stage.to_owned(),
                mandatory: true,
            },
            payload: json(self),
            message_id: format!("{}:{stage}", self.doc_id),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

/// One recipient's copy to put in its inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverLeg {
    pub doc_id: String,
    pub recipient: String,
}

impl DeliverLeg {
    /// What a stage leaves delivery's run on this copy under (`Pipeline::leave_for`).
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}", self.doc_id, self.recipient)
    }

    pub fn to_outgoing(&self, t: &Topology) -> Outgoing {
        Outgoing {
            route: Route {
                exchange: t.pipeline(),
                routing_key: "delivery".into(),
                mandatory: true,
            },
            payload: json(self),
            message_id: format!("{}:deliver:{}", self.doc_id, self.recipient),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

/// A lifecycle event for the ledger. `event_id` is deterministic so duplicates collapse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    pub event_id: String,
    pub doc_id: String,
    pub kind: String,
    pub organ: Option<String>,
    pub detail: Option<String>,
    pub at_ms: i64,
}

impl EventMessage {
    /// An event about `organ` with the deterministic id `{doc_id}:{key}:{organ}`, so a message
    /// handled twice records it once. `key` is the kind, or the kind with a qualifier after a
    /// colon when one document has several events of a kind for one organ (`translated:json`).
    pub fn about(doc_id: &str, key: &str, organ: &str, detail: Option<String>, at_ms: i64) -> Self {
        Self {
            event_id: format!("{doc_id}:{key}:{organ}"),
            doc_id: doc_id.to_owned(),
            kind: key.split(':').next().unwrap_or(key).to_owned(),
            organ: Some(organ.to_owned()),
            detail,
            at_ms,
        }
    }

    pub fn to_outgoing(&self, t: &Topology) -> Outgoing {
        Outgoing {
            route: Route {
                exchange: t.events(),
                routing_key: self.kind.clone(),
                mandatory: true,
            },
            payload: json(self),
            message_id: self.event_id.clone(),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

/// Most events in one message on the events exchange.
const EVENTS_PER_MESSAGE: usize = 64;

impl EventMessage {
    /// The events of one message on the events exchange: one event (an object) or several
    /// published together (an array).
    pub fn read_all(payload: &[u8]) -> Result<Vec<EventMessage>, serde_json::Error> {
        match payload.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice(payload),
            _ => serde_json::from_slice(payload).map(|e| vec![e]),
        }
    }
}

/// Events published together: one message per event when there is one, otherwise arrays of up
/// to 64. A batch's routing key lists its kinds (`verified.translated.routed.delivered`), so
/// consumers bind to a kind with `#.kind.#` whatever else travels with it.
pub fn events_outgoing(events: &[EventMessage], t: &Topology) -> Vec<Outgoing> {
    if let [one] = events {
        return vec![one.to_outgoing(t)];
    }
    events
        .chunks(EVENTS_PER_MESSAGE)
        .map(|batch| {
            let mut kinds: Vec<&str> = Vec::new();
            for e in batch {
                if !kinds.contains(&e.kind.as_str()) {
                    kinds.push(&e.kind);
                }
            }
            let first = &batch[0];
            Outgoing {
                route: Route {
                    exchange: t.events(),
                    routing_key: kinds.join("."),
                    mandatory: true,
                },
                payload: json(&batch),
                message_id: format!("{}+{}", first.event_id, batch.len() - 1),
                doc_id: Some(first.doc_id.clone()),
            }
        })
        .collect()
}

/// Tells an AMQP adapter that something arrived in its agency's inbox (routing key: the OrganId).
/// Adapters read it, so its fields are named as in the REST interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxNotice {
    pub doc_id: String,
    pub recipient: String,
    pub sender: String,
    pub message_type: String,
}

impl InboxNotice {
    pub fn to_outgoing(&self, t: &Topology) -> Outgoing {
        Outgoing {
            route: Route {
                exchange: t.inbox(),
                routing_key: self.recipient.clone(),
                mandatory: false,
            },
            payload: json(self),
            message_id: format!("{}:inbox:{}", self.doc_id, self.recipient),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // These types serialise infallibly (strings, numbers and vectors of them).
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(doc: &str, kind: &str, organ: &str) -> EventMessage {
        EventMessage::about(doc, kind, organ, None, 1)
    }

    #[test]
    fn events_published_together_read_back_as_they_were_and_name_their_kinds() {
        let t = Topology::new("lt");
        let one = vec![event("d", "verified", "A")];
        let out = events_outgoing(&one, &t);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].route.routing_key, "verified");
        assert_eq!(out[0].message_id, "d:verified:A");
        assert_eq!(EventMessage::read_all(&out[0].payload).expect("one"), one);

        let many: Vec<EventMessage> = (0..70)
            .map(|i| {
                event(
                    "d",
                    if i % 2 == 0 { "routed" } else { "delivered" },
                    &i.to_string(),
                )
            })
            .collect();
        let out = events_outgoing(&many, &t);
        assert_eq!(out.len(), 2, "64 events at most per message");
        assert_eq!(out[0].route.routing_key, "routed.delivered");
        assert_eq!(out[0].route.exchange, "lt.events");
        assert_eq!(out[0].message_id, "d:routed:0+63");
        assert_eq!(out[1].message_id, "d:routed:64+5");
        let back: Vec<EventMessage> = out
            .iter()
            .flat_map(|o| EventMessage::read_all(&o.payload).expect("a batch"))
            .collect();
        assert_eq!(back, many);
        assert!(events_outgoing(&[], &t).is_empty());
        assert!(EventMessage::read_all(b"{\"kind\": 3}").is_err());
        assert!(EventMessage::read_all(b" [1]").is_err());
    }

    #[test]
    fn routing_slip_forwards_to_the_next_stage_only() {
        let mut m = StageMessage::new("d", vec!["verifier".into(), "router".into()]);
        m.events.push(event("d", "accepted", "A"));
        let payload = json(&m);
        assert_eq!(
            StageMessage::for_stage(&payload, "verifier").expect("for the verifier"),
            m
        );
        assert_eq!(StageMessage::carried_events(&payload), m.events);
        let next = m.forward().expect("router is next");
        assert_eq!(next.slip, ["router"]);
        assert!(
            next.events.is_empty(),
            "the events are the verifier's to publish"
        );
        // Without events the field is left out, as messages were before it.
        assert_eq!(
            String::from_utf8(json(&next)).expect("utf-8"),
            r#"{"doc_id":"d","slip":["router"]}"#
        );
        assert_eq!(
            StageMessage::for_stage(br#"{"doc_id":"d","slip":["router"]}"#, "router")
                .expect("an older message"),
            next
        );
        assert!(StageMessage::carried_events(b"not json").is_empty());
        assert!(StageMessage::carried_events(br#"{"doc_id":"d"}"#).is_empty());
        assert_eq!(next.forward(), None);
        let out = next.to_outgoing(&Topology::new("lt"));
        assert_eq!(
            (out.route.exchange.as_str(), out.route.routing_key.as_str()),
            ("lt.pipeline", "router")
        );
        assert_eq!(out.message_id, "d:router");
    }
}
