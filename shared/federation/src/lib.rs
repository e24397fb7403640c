//! Routing between buses. Each bus serves a set of agencies (the registry's `bus` column names
//! the bus that serves each one); a copy for any other agency goes to the peer bus that serves it,
//! to a peer that reaches that bus, or else to the parent bus (a province's national bus). What
//! travels on a link is the package exactly as accepted, with the way it came (the buses passed
//! and their TraceHeaders), and, back along the same links, a receipt per copy.
//!
//! Everything here is pure: the services in `services/federation` and the router do the IO.

mod config;
mod route;
mod wire;

pub use config::{FederationConfig, PeerConfig};
pub use route::Route;
pub use wire::{LinkOrder, Outcome, Receipt, Transfer, TransferError};
