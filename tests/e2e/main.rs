//! End-to-end tests: the whole bus on the real RabbitMQ and real SQLite/PostgreSQL, driven through
//! the REST interface exactly as agency systems drive it. One binary, many tests.

mod acks;
mod adapters;
mod authorization;
mod chain;
mod cli;
mod console;
mod crash;
mod deploy;
mod errors;
mod federation;
mod flow;
mod legacy;
mod observability;
mod registry;
mod resilience;
mod revocation;
mod signatures;
mod statuses;
mod tls;
mod tracing;
mod translation;
