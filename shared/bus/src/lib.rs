//! RabbitMQ for every hop: the topology every service declares, a publisher that only reports
//! success once the broker confirmed a persistent message reached a durable queue, and a consumer
//! loop that acks only after the handler finished (including its own confirmed publishes),
//! retries transient failures without losing the message, dead-letters poison messages, and
//! reconnects after the broker comes back.

mod config;
mod consumer;
mod error;
pub mod messages;
mod publisher;
mod topology;

pub use config::{BusConfig, QueueType};
pub use consumer::{DocumentStage, Handler, Incoming, Outcome, consume};
pub use error::BusError;
pub use publisher::{Outgoing, Publisher, Route};
pub use topology::{STAGES, Topology, declare};

/// Opens a connection with a bounded wait, so a broker that is down is reported quickly.
pub(crate) async fn connect(config: &BusConfig, name: &str) -> Result<lapin::Connection, BusError> {
    let props = lapin::ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(
        std::time::Duration::from_millis(config.connect_timeout_ms),
        lapin::Connection::connect(&config.url, props),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(BusError::Unavailable(e.to_string())),
        Err(_) => Err(BusError::Unavailable(format!(
            "no connection to the broker within {} ms",
            config.connect_timeout_ms
        ))),
    }
}
