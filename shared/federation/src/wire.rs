//! What travels on links. Locally, the router and the receipts relay put [`LinkOrder`]s on the
//! peer's link queue; the link forwarder turns each into a message on the peer's broker: a
//! [`Transfer`] (the package, framed) or a [`Receipt`] (JSON).

use lienthong_bus::{Outgoing, Route, Topology};
use lienthong_edxml::Format;
use lienthong_store::{Hop, TransportStatus};
use serde::{Deserialize, Serialize};

/// A job for the link forwarder, on `{prefix}.link.{bus}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LinkOrder {
    /// Send a document's package for these recipients (every leg routed to that bus).
    Package {
        doc_id: String,
        recipients: Vec<String>,
    },
    /// Send a receipt back.
    Receipt(Receipt),
}

impl LinkOrder {
    /// The message on this bus's link queue for `bus`.
    pub fn to_outgoing(&self, t: &Topology, bus: &str) -> Outgoing {
        let (message_id, doc_id) = match self {
            Self::Package { doc_id, .. } => (format!("{doc_id}:link:{bus}"), doc_id.clone()),
            Self::Receipt(r) => (r.message_id(), r.doc_id.clone()),
        };
        Outgoing {
            route: Route {
                exchange: t.links(),
                routing_key: bus.to_owned(),
                mandatory: true,
            },
            payload: serde_json::to_vec(self).unwrap_or_default(),
            message_id,
            doc_id: Some(doc_id),
        }
    }
}

/// What became of one copy on the bus that sends the receipt (or on a bus beyond it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// In the recipient's inbox.
    Delivered,
    /// Will not be delivered; the receipt's detail says why.
    Failed,
    /// The recipient's system reported this transport status (`updateStatus`).
    Transport(TransportStatus),
}

impl Outcome {
    /// A name for message ids: `delivered`, `failed`, `transport-done`...
    pub fn key(self) -> String {
        match self {
            Self::Delivered => "delivered".into(),
            Self::Failed => "failed".into(),
            Self::Transport(t) => format!("transport-{t}"),
        }
    }
}

/// A copy's outcome, going back to the bus the document came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The bus sending the receipt.
    pub from_bus: String,
    /// The document's docId on the bus the receipt goes to.
    pub doc_id: String,
    pub recipient: String,
    pub outcome: Outcome,
    /// Where and how: `delivered on bus tinh-b; sha256 ...`, or why it failed.
    pub detail: Option<String>,
    pub at_ms: i64,
}

impl Receipt {
    pub fn message_id(&self) -> String {
        format!(
            "{}:receipt:{}:{}",
            self.doc_id,
            self.recipient,
            self.outcome.key()
        )
    }

    /// The message on the peer's broker.
    pub fn to_peer(&self, peer: &Topology) -> Outgoing {
        Outgoing {
            route: Route {
                exchange: peer.federation(),
                routing_key: "receipt".into(),
                mandatory: true,
            },
            payload: serde_json::to_vec(self).unwrap_or_default(),
            message_id: self.message_id(),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

/// A package between buses: exactly the bytes accepted at its origin, and the way it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The bus sending it.
    pub from_bus: String,
    /// Its docId on that bus: the receiving bus accepts each (`from_bus`, `doc_id`) once.
    pub doc_id: String,
    /// The copies the receiving bus is to route (not necessarily every `To` of the package).
    pub recipients: Vec<String>,
    pub format: Format,
    /// SHA-256 of `package`, checked on arrival.
    pub sha256: String,
    /// The buses passed, the origin first and `from_bus` last.
    pub via: Vec<String>,
    /// The TraceHeader of each bus passed.
    pub trace: Vec<Hop>,
    #[serde(skip)]
    pub package: Vec<u8>,
}

/// Why a message from a peer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransferError(pub String);

const MAGIC: &[u8; 4] = b"LTX1";

impl Transfer {
    /// `LTX1`, the header's length (4 bytes, big-endian), the header (JSON), the package.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(8 + header.len() + self.package.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(
            &u32::try_from(header.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.package);
        out
    }

    pub fn decode(frame: &[u8]) -> Result<Transfer, TransferError> {
        let bad = |m: &str| TransferError(format!("not a package transfer: {m}"));
        let rest = frame
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("no LTX1 mark"))?;
        let (len, rest) = rest.split_at_checked(4).ok_or_else(|| bad("truncated"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (header, package) = rest
            .split_at_checked(len)
            .ok_or_else(|| bad("truncated header"))?;
        let mut t: Transfer = serde_json::from_slice(header)
            .map_err(|e| TransferError(format!("transfer header: {e}")))?;
        let digest = lienthong_store::sha256_hex(package);
        if digest != t.sha256 {
            return Err(TransferError(format!(
                "the package's SHA-256 is {digest}, the header says {}",
                t.sha256
            )));
        }
        if t.via.last() != Some(&t.from_bus) {
            return Err(TransferError(format!(
                "transfer header: via {:?} does not end with the sending bus {}",
                t.via, t.from_bus
            )));
        }
        if t.recipients.is_empty() {
            return Err(TransferError("transfer header: no recipients".into()));
        }
        t.package = package.to_vec();
        Ok(t)
    }

    /// The message on the peer's broker.
    pub fn to_peer(&self, peer: &Topology) -> Outgoing {
        Outgoing {
            route: Route {
                exchange: peer.federation(),
                routing_key: "package".into(),
                mandatory: true,
            },
            payload: self.encode(),
            message_id: format!("{}:{}", self.from_bus, self.doc_id),
            doc_id: Some(self.doc_id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer() -> Transfer {
        let package = b"<edXMLEnvelope/>".to_vec();
        Transfer {
            from_bus: "tinh-a".into(),
            doc_id: "d1".into(),
            recipients: vec!["000.00.00.G22".into()],
            format: Format::Edxml,
            sha256: lienthong_store::sha256_hex(&package),
            via: vec!["tinh-a".into()],
            trace: vec![Hop {
                organ_id: "000.00.05.H49".into(),
                timestamp: "2026/12/03 08:00:00".into(),
            }],
            package,
        }
    }

    #[test]
    fn a_transfer_reads_back_and_damage_is_named() {
        let t = transfer();
        let frame = t.encode();
        assert_eq!(Transfer::decode(&frame).expect("decode"), t);

        let mut flipped = frame.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = Transfer::decode(&flipped).expect_err("digest");
        assert!(e.0.contains("SHA-256"), "{e}");
        assert!(
            Transfer::decode(&frame[..10])
                .expect_err("short")
                .0
                .contains("truncated")
        );
        assert!(
            Transfer::decode(b"{}")
                .expect_err("mark")
                .0
                .contains("LTX1")
        );

        let mut spoofed = t;
        spoofed.via = vec!["tinh-b".into()];
        let e = Transfer::decode(&spoofed.encode()).expect_err("via");
        assert!(e.0.contains("does not end with the sending bus"), "{e}");
    }

    #[test]
    fn link_orders_are_deterministic_messages_on_the_peers_queue() {
        let t = Topology::new("lt");
        let order = LinkOrder::Package {
            doc_id: "d1".into(),
            recipients: vec!["000.00.00.G22".into()],
        };
        let out = order.to_outgoing(&t, "quoc-gia");
        assert_eq!(
            (
                out.route.exchange.as_str(),
                out.route.routing_key.as_str(),
                out.message_id.as_str()
            ),
            ("lt.links", "quoc-gia", "d1:link:quoc-gia")
        );
        let back: LinkOrder = serde_json::from_slice(&out.payload).expect("json");
        assert_eq!(back, order);

        let receipt = LinkOrder::Receipt(Receipt {
            from_bus: "quoc-gia".into(),
            doc_id: "d1".into(),
            recipient: "000.00.00.G22".into(),
            outcome: Outcome::Transport(TransportStatus::Done),
            detail: None,
            at_ms: 1,
        });
        let out = receipt.to_outgoing(&t, "tinh-a");
        assert_eq!(out.message_id, "d1:receipt:000.00.00.G22:transport-done");
        let back: LinkOrder = serde_json::from_slice(&out.payload).expect("json");
        assert_eq!(back, receipt);
    }
}
