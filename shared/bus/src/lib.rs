//! RabbitMQ for every hop: the topology every service declares, a publisher that only reports
//! success once the broker confirmed a persistent message reached a durable queue, and a consumer
//! loop that acks only after the handler finished (including its own confirmed publishes),
//! retries transient failures without losing the message, dead-letters poison messages, and
//! reconnects after the broker comes back.

mod acks;
pub mod adapters;
mod config;
mod consumer;
mod dead;
mod error;
pub mod messages;
mod pipeline;
mod publisher;
mod topology;
pub mod work;

pub use config::{BusConfig, QueueType, TlsConfig};
pub use consumer::{Handler, Incoming, Outcome, consume};
pub use dead::{DeadAction, DeadLetter};
pub use error::BusError;
pub use pipeline::{
    Document, DocumentStage, EventSink, Handoffs, Onward, Pipeline, RecordFuture, Stage,
    StageFuture,
};
pub use publisher::{Outgoing, Publisher, Route};
pub use topology::{STAGES, Topology, declare};

/// The node of each cluster (by its list of URLs) that answered last, tried first next time.
static LAST_GOOD: std::sync::Mutex<Vec<(Vec<String>, usize)>> = std::sync::Mutex::new(Vec::new());

/// Opens a connection to the broker: to `url`, or when it does not answer to each of
/// `failover_urls` in turn (starting with the node that answered last), each with a bounded wait
/// so a node that is down is passed over quickly.
pub(crate) async fn connect(config: &BusConfig, name: &str) -> Result<lapin::Connection, BusError> {
    let urls: Vec<String> = config.urls().map(str::to_owned).collect();
    let first = LAST_GOOD
        .lock()
        .ok()
        .and_then(|l| l.iter().find(|(u, _)| *u == urls).map(|(_, i)| *i))
        .unwrap_or(0);
    let mut failures = Vec::new();
    for k in 0..urls.len() {
        let i = (first + k) % urls.len();
        match connect_to(config, &urls[i], name).await {
            Ok(conn) => {
                if k > 0 || first > 0 {
                    tracing::info!(node = %host_of(&urls[i]), "connected to the broker");
                }
                if let Ok(mut last) = LAST_GOOD.lock() {
                    match last.iter_mut().find(|(u, _)| *u == urls) {
                        Some(entry) => entry.1 = i,
                        None => last.push((urls.clone(), i)),
                    }
                }
                return Ok(conn);
            }
            Err(e) => failures.push(if urls.len() > 1 {
                format!("{}: {e}", host_of(&urls[i]))
            } else {
                e.to_string()
            }),
        }
    }
    Err(BusError::Unavailable(failures.join("; ")))
}

/// `host:port` of an AMQP URL, for messages (never the credentials).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Opens one AMQP connection named `name` (as the broker lists it) to `url`, with `tls`'s CA and
/// client certificate when given (an `amqps://` URL without it trusts the system's roots).
pub async fn open_connection(
    url: &str,
    name: &str,
    tls: Option<&TlsConfig>,
) -> Result<lapin::Connection, lapin::Error> {
    let props = lapin::ConnectionProperties::default().with_connection_name(name.into());
    match tls {
        None => lapin::Connection::connect(url, props).await,
        Some(tls) => {
            let tls = tls.load().map_err(|e| {
                lapin::Error::from(lapin::ErrorKind::IOError(std::sync::Arc::new(
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                )))
            })?;
            let runtime = lapin::runtime::default_runtime()?;
            lapin::Connection::connect_with_config(url, props, tls, runtime).await
        }
    }
}

async fn connect_to(
    config: &BusConfig,
    url: &str,
    name: &str,
) -> Result<lapin::Connection, BusError> {
    let connecting = open_connection(url, name, config.tls.as_ref());
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

#[cfg(test)]
mod tests {
    #[test]
    fn node_names_in_messages_leave_the_credentials_out() {
        assert_eq!(
            super::host_of("amqp://guest:s3cret@rabbit-2.example:5672/%2f"),
            "rabbit-2.example:5672"
        );
        assert_eq!(super::host_of("amqps://node:5671"), "node:5671");
    }
}
