//! RabbitMQ for every hop: the topology every service declares, a publisher that only reports
//! success once the broker confirmed a persistent message reached a durable queue, and a consumer
//! loop that acks only after the handler finished (including its own confirmed publishes),
//! retries transient failures without losing the message, dead-letters poison messages, and
//! reconnects after the broker comes back.

mod config;
mod consumer;
mod dead;
mod error;
pub mod messages;
mod publisher;
mod topology;

pub use config::{BusConfig, QueueType, TlsConfig};
pub use consumer::{DocumentStage, Handler, Incoming, Outcome, consume};
pub use dead::{DeadAction, DeadLetter};
pub use error::BusError;
pub use publisher::{Outgoing, Publisher, Route};
pub use topology::{STAGES, Topology, declare};

/// Opens a connection with a bounded wait, so a broker that is down is reported quickly.
pub(crate) async fn connect(config: &BusConfig, name: &str) -> Result<lapin::Connection, BusError> {
    let props = lapin::ConnectionProperties::default().with_connection_name(name.into());
    let connecting = async {
        match &config.tls {
            None => lapin::Connection::connect(&config.url, props).await,
            Some(tls) => {
                let tls = tls.load().map_err(|e| {
                    lapin::Error::from(lapin::ErrorKind::IOError(std::sync::Arc::new(
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                    )))
                })?;
                let runtime = lapin::runtime::default_runtime()?;
                lapin::Connection::connect_with_config(&config.url, props, tls, runtime).await
            }
        }
    };
    match tokio::time::timeout(
        std::time::Duration::from_millis(config.connect_timeout_ms),
        connecting,
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
