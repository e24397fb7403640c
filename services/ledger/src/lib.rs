//! The ledger: records every lifecycle event published on `{prefix}.events` in the store, where
//! traces are read. Event ids are deterministic, so redeliveries record nothing twice.

use std::sync::Arc;

use lienthong_bus::messages::EventMessage;
use lienthong_bus::{BusConfig, Handler, Incoming, Outcome, Topology};
use lienthong_store::{LedgerEvent, Store};
use tokio::sync::watch;

pub struct Ledger {
    store: Store,
}

impl Ledger {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl Handler for Ledger {
    async fn handle(&self, message: Incoming) -> Outcome {
        let e: EventMessage = match serde_json::from_slice(&message.payload) {
            Ok(e) => e,
            Err(err) => return Outcome::Poison(format!("not an event: {err}")),
        };
        let event = LedgerEvent {
            event_id: e.event_id,
            doc_id: e.doc_id,
            kind: e.kind,
            organ: e.organ,
            detail: e.detail,
            at_ms: e.at_ms,
        };
        match self.store.record_event(&event).await {
            Ok(_) => Outcome::Done,
            Err(err) => Outcome::Retry(err.to_string()),
        }
    }
}

/// Runs the ledger until `shutdown`.
pub async fn run(store: Store, bus: BusConfig, shutdown: watch::Receiver<bool>) {
    let queue = Topology::new(&bus.prefix).ledger_queue();
    let handler = Arc::new(Ledger::new(store));
    lienthong_bus::consume(bus, queue, "ledger".into(), handler, shutdown).await;
}
