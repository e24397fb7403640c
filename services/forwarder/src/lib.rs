//! The forwarder: this bus's side of its links to other buses. Three consumers:
//!
//! - **outbound**, one per peer, on `{prefix}.link.{bus}`: sends each package the router routed
//!   to that bus (the bytes as accepted, with the way they came and this bus's TraceHeader), and
//!   each receipt going back there, to the peer's broker with publisher confirms; only then
//!   acks. While the peer is away its messages wait in the link queue (the backlog operators see
//!   at `/admin/links`) and flow when it returns.
//! - **arrivals**, on `{prefix}.arrivals`: accepts packages from peers, once per (peer, docId
//!   there), into this bus's pipeline (verifier, translator, router), and applies receipts to the
//!   copies this bus forwarded. A package this bus refuses (a loop, the hop limit, an unreadable
//!   package) goes back as a failed receipt per copy.
//! - **receipts**, on `{prefix}.receipts` (the `delivered` and `failed` events): for a document
//!   that came from another bus, sends each copy's outcome back to that bus, so it travels the
//!   reverse path to the sender's bus hop by hop.

mod arrivals;
mod outbound;
mod receipts;

use std::sync::Arc;

use lienthong_bus::{BusConfig, Publisher};
use lienthong_federation::FederationConfig;
use lienthong_gateway::GatewayConfig;
use lienthong_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use arrivals::Arrivals;
pub use outbound::LinkForwarder;
pub use receipts::ReceiptRelay;

/// Runs every consumer of the forwarder until `shutdown`.
pub async fn run(
    store: Store,
    bus: BusConfig,
    gateway: GatewayConfig,
    federation: Arc<FederationConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let organ_id = federation
        .organ_id
        .clone()
        .ok_or("federation.organ_id is not set (nor translator.bus_organ_id)")?;
    let mut bus = bus;
    bus.links = federation.link_names();
    let local = Publisher::new(&bus, "lienthong-forwarder");
    let t = local.topology().clone();
    let mut tasks = JoinSet::new();
    for peer in &federation.peers {
        let peer_bus = federation.peer_bus_config(peer, &bus);
        let mut link_bus = bus.clone();
        link_bus.prefetch = federation.link_prefetch;
        let handler = Arc::new(LinkForwarder::new(
            store.clone(),
            local.clone(),
            Publisher::to_peer(&peer_bus, &format!("lienthong-link-{}", peer.bus)),
            peer.bus.clone(),
            Arc::clone(&federation),
            organ_id.clone(),
        ));
        let queue = t.link_queue(&peer.bus);
        let name = format!("link-{}", peer.bus);
        tasks.spawn(lienthong_bus::consume(
            link_bus,
            queue,
            name,
            handler,
            shutdown.clone(),
        ));
    }
    let mut arrivals_bus = bus.clone();
    arrivals_bus.prefetch = federation.link_prefetch;
    let arrivals = Arc::new(Arrivals::new(
        lienthong_gateway::AppState::new(
            store.clone(),
            Publisher::new(&bus, "lienthong-arrivals"),
            gateway,
        ),
        Arc::clone(&federation),
    ));
    tasks.spawn(lienthong_bus::consume(
        arrivals_bus,
        t.arrivals_queue(),
        "arrivals".into(),
        arrivals,
        shutdown.clone(),
    ));
    let relay = Arc::new(ReceiptRelay::new(store, local, Arc::clone(&federation)));
    tasks.spawn(lienthong_bus::consume(
        bus,
        t.receipts_queue(),
        "receipts".into(),
        relay,
        shutdown,
    ));
    while tasks.join_next().await.is_some() {}
    Ok(())
}
