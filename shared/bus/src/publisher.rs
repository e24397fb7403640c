//! Confirmed publishing. A publish succeeds only when the broker has confirmed that a persistent
//! message reached at least one durable queue (mandatory routing), within a bounded time.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::Mutex;

use crate::{BusConfig, BusError, Topology, declare};

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub exchange: String,
    pub routing_key: String,
    /// Require a bound queue (every internal hop); off for adapter notifications, which nobody
    /// may be listening for.
    pub mandatory: bool,
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub route: Route,
    pub payload: Vec<u8>,
    /// Deterministic id: consumers deduplicate on what it names.
    pub message_id: String,
    /// The document it is about, as a header for operators and tracing.
    pub doc_id: Option<String>,
}

/// A reconnecting, confirming publisher; cheap to clone and safe to share.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    topology: Topology,
    name: String,
    link: Mutex<Option<(Connection, Channel)>>,
    /// The current connection's state as the broker last told it (read without waiting for
    /// `link`).
    status: std::sync::Mutex<Option<lapin::ConnectionStatus>>,
    /// Declares this bus's topology on connecting; off for another bus's broker, whose
    /// topology is its own to declare.
    declares: bool,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Publisher {
    /// Creates a publisher; the connection is opened (and the topology declared) on first use and
    /// again after any failure.
    pub fn new(config: &BusConfig, name: &str) -> Self {
        Self::build(config, name, true)
    }

    /// A publisher to another bus's broker (`config` names its URL, prefix and TLS): it
    /// declares nothing there, so a message for a bus that has not started yet is unroutable
    /// and stays where it was.
    pub fn to_peer(config: &BusConfig, name: &str) -> Self {
        Self::build(config, name, false)
    }

    /// A publisher that declares nothing: for looking at queues (their depth, the dead
    /// letters) without touching the topology.
    pub fn observer(config: &BusConfig, name: &str) -> Self {
        Self::build(config, name, false)
    }

    fn build(config: &BusConfig, name: &str, declares: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                topology: Topology::new(&config.prefix),
                config: config.clone(),
                name: name.to_owned(),
                link: Mutex::new(None),
                status: std::sync::Mutex::new(None),
                declares,
            }),
        }
    }

    /// The messages waiting in a queue and its consumers (a passive declare: nothing is
    /// created).
    pub async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BusError> {
        let mut depths = self.queue_depths(&[queue.to_owned()]).await?;
        depths
            .pop()
            .map(|(_, d)| d)
            .ok_or_else(|| BusError::Unavailable(format!("no answer about queue {queue}")))
    }

    /// [`Publisher::queue_depth`] of several queues on one connection; a queue that does not
    /// exist is left out.
    pub async fn queue_depths(
        &self,
        queues: &[String],
    ) -> Result<Vec<(String, (u32, u32))>, BusError> {
        // On this publisher's connection (opened if need be), so polling opens no connections.
        self.channel().await?;
        let mut out = Vec::with_capacity(queues.len());
        let mut missing = None;
        for queue in queues {
            // A failed passive declare closes its channel: one channel per queue.
            let channel = match self.inner.link.lock().await.as_ref() {
                Some((conn, _)) => conn.create_channel().await?,
                None => return Err(BusError::Unavailable("the connection closed".into())),
            };
            match crate::topology::inspect(&channel, queue).await {
                Ok(q) => {
                    out.push((queue.clone(), (q.message_count(), q.consumer_count())));
                    let _ = channel.close(200, "bye".into()).await;
                }
                Err(e) => missing = Some(e),
            }
        }
        match (out.is_empty(), missing) {
            (true, Some(e)) => Err(e.into()),
            _ => Ok(out),
        }
    }

    /// Connects now, so a misconfiguration shows at start rather than at the first message.
    pub async fn ensure_connected(&self) -> Result<(), BusError> {
        self.channel().await.map(|_| ())
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    async fn channel(&self) -> Result<Channel, BusError> {
        let mut link = self.inner.link.lock().await;
        if let Some((conn, channel)) = link.as_ref()
            && conn.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        *link = None;
        let conn = crate::connect(&self.inner.config, &self.inner.name).await?;
        // Bounded: a node that accepted the connection may still not answer (its quorum queues
        // electing leaders after another node was lost), and every publish of this publisher
        // waits behind this lock meanwhile.
        let limit = Duration::from_millis(self.inner.config.confirm_timeout_ms);
        let setup = async {
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            if self.inner.declares {
                declare(&channel, &self.inner.config).await?;
            }
            Ok::<_, BusError>(channel)
        };
        let channel = match tokio::time::timeout(limit, setup).await {
            Ok(channel) => channel?,
            Err(_) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), conn.close(200, "slow".into()))
                        .await;
                return Err(BusError::Unavailable(format!(
                    "the broker opened no channel within {} ms",
                    limit.as_millis()
                )));
            }
        };
        if let Ok(mut status) = self.inner.status.lock() {
            *status = Some(conn.status().clone());
        }
        *link = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// The broker has blocked this publisher's connection (`connection.blocked`: a memory or
    /// disk alarm). A publish would wait until the alarm clears, so callers that answer people
    /// refuse at once instead; the connection is kept, and unblocks by itself.
    pub fn blocked(&self) -> bool {
        self.inner
            .status
            .lock()
            .ok()
            // A connection that died while blocked is not blocked any more: the next publish
            // opens a new one.
            .and_then(|s| s.as_ref().map(|s| s.connected() && s.blocked()))
            .unwrap_or(false)
    }

    /// Forgets the connection so the next publish opens a fresh one.
    async fn reset(&self) {
        // Taken out first, so nobody waits on the lock while the old connection closes; and the
        // close is bounded: a broker that stopped reading this connection (an alarm) never
        // answers it, and dropping the connection ends it anyway.
        let old = self.inner.link.lock().await.take();
        if let Some((conn, _)) = old {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), conn.close(200, "reset".into())).await;
        }
    }

    /// Publishes one message and waits for its confirm.
    pub async fn publish(&self, message: Outgoing) -> Result<(), BusError> {
        self.publish_all(std::slice::from_ref(&message)).await
    }

    /// Publishes several messages, then waits for every confirm (pipelined, so a batch costs about
    /// one round trip). Fails if any message was not confirmed; the caller retries the batch and
    /// consumers deduplicate.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let result = if self.blocked() {
            Err(BusError::Unavailable(
                "the broker is refusing messages for now (a memory or disk alarm)".into(),
            ))
        } else {
            self.try_publish_all(messages).await
        };
        match &result {
            Ok(()) => {
                metrics::histogram!("lienthong_publish_seconds")
                    .record(started.elapsed().as_secs_f64());
                // Broker messages by exchange, without the bus prefix: what each document costs.
                for m in messages {
                    let exchange = m.route.exchange.rsplit('.').next().unwrap_or_default();
                    metrics::counter!("lienthong_published_messages_total", "exchange" => exchange.to_owned())
                        .increment(1);
                }
            }
            Err(e) => {
                let reason = match e {
                    BusError::Unavailable(_) => "unavailable",
                    BusError::Refused(_) => "refused",
                    BusError::Unroutable { .. } => "unroutable",
                    BusError::Protocol(_) => "protocol",
                };
                metrics::counter!("lienthong_publish_failures_total", "reason" => reason)
                    .increment(1);
            }
        }
        // A blocked connection is healthy, only held back: a new one would be blocked as well
        // and would not hear the broker's `connection.unblocked`. A nack means a fresh channel:
        // a channel opened on a cluster node while its quorum queues were electing new leaders
        // (the node it was connected to lost) goes on nacking every publish (RabbitMQ 3.10,
        // `tests/cluster.rs`), where a new one is accepted.
        if matches!(
            result,
            Err(BusError::Unavailable(_) | BusError::Protocol(_) | BusError::Refused(_))
        ) && !self.blocked()
        {
            self.reset().await;
        }
        result
    }

    async fn try_publish_all(&self, messages: &[Outgoing]) -> Result<(), BusError> {
        let channel = self.channel().await?;
        let limit = Duration::from_millis(self.inner.config.confirm_timeout_ms);
        let confirms = tokio::time::timeout(limit, self.send_all(&channel, messages))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "the broker took no message within {} ms",
                    limit.as_millis()
                ))
            })??;
        for (confirm, m) in confirms {
            let confirmation = match tokio::time::timeout(limit, confirm).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(BusError::Unavailable(e.to_string())),
                Err(_) => {
                    return Err(BusError::Unavailable(format!(
                        "no publisher confirm within {} ms",
                        limit.as_millis()
                    )));
                }
            };
            if confirmation.is_nack() {
                return Err(BusError::Refused(format!(
                    "nack for {} on {}",
                    m.message_id, m.route.exchange
                )));
            }
            if confirmation.take_message().is_some() {
                return Err(BusError::Unroutable {
                    exchange: m.route.exchange.clone(),
                    routing_key: m.route.routing_key.clone(),
                });
            }
        }
        Ok(())
    }

    /// Sends every message on `channel` (pipelined); their confirms, to wait for.
    async fn send_all<'m>(
        &self,
        channel: &Channel,
        messages: &'m [Outgoing],
    ) -> Result<Vec<(lapin::PublisherConfirm, &'m Outgoing)>, BusError> {
        let mut confirms = Vec::with_capacity(messages.len());
        // The trace this publish belongs to goes with every message (W3C trace context).
        let trace = lienthong_telemetry::current_context_headers();
        for m in messages {
            let mut headers = FieldTable::default();
            for (k, v) in &trace {
                headers.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
            }
            if let Some(doc) = &m.doc_id {
                headers.insert(
                    "lienthong-doc-id".into(),
                    AMQPValue::LongString(doc.as_str().into()),
                );
            }
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(m.message_id.as_str().into())
                .with_headers(headers);
            let confirm = channel
                .basic_publish(
                    m.route.exchange.as_str().into(),
                    m.route.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: m.route.mandatory,
                        ..BasicPublishOptions::default()
                    },
                    &m.payload,
                    props,
                )
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            confirms.push((confirm, m));
        }
        Ok(confirms)
    }
}
