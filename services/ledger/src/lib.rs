//! The ledger: records every lifecycle event published on `{prefix}.events` in the store, where
//! traces are read. Event ids are deterministic, so redeliveries record nothing twice. The store
//! chains events by hash; the ledger anchors the chain's head every hour and logs it, so the
//! head also lives outside the database (in the log system) for `lienthong audit verify`.

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
            Ok(recorded) => {
                if recorded {
                    metrics::counter!("lienthong_events_total", "kind" => event.kind.clone())
                        .increment(1);
                }
                Outcome::Done
            }
            Err(err) => Outcome::Retry(err.to_string()),
        }
    }
}

/// How often the chain's head is anchored.
const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

async fn anchor(store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut last = -1;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ANCHOR_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match store.chain_head().await {
            Ok((seq, _)) if seq == last => {}
            Ok(_) => match store.anchor_chain().await {
                Ok((seq, hash)) => {
                    last = seq;
                    tracing::info!(seq, %hash, "audit chain anchored");
                }
                Err(e) => tracing::warn!(error = %e, "could not anchor the audit chain"),
            },
            Err(e) => tracing::warn!(error = %e, "could not read the audit chain head"),
        }
    }
}

/// Runs the ledger until `shutdown`.
pub async fn run(store: Store, bus: BusConfig, shutdown: watch::Receiver<bool>) {
    let queue = Topology::new(&bus.prefix).ledger_queue();
    let anchoring = tokio::spawn(anchor(store.clone(), shutdown.clone()));
    let handler = Arc::new(Ledger::new(store));
    lienthong_bus::consume(bus, queue, "ledger".into(), handler, shutdown).await;
    let _ = anchoring.await;
}
