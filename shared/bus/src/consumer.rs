//! The one consumer loop every service runs: take a message, let the handler do its whole job
//! (including its own confirmed publishes), and only then ack; the acks of messages settled
//! together go as one frame ([`crate::acks`]). Transient failures are retried in
//! place with backoff (the message stays unacked, so a crash hands it to another consumer);
//! poison messages and handler panics are rejected to the dead-letter queue so they never stall
//! the stage; a lost connection is re-established with backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::acks::{Acks, Settled};
use crate::{BusConfig, BusError, declare};

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub payload: Vec<u8>,
    pub message_id: Option<String>,
    pub routing_key: String,
    pub redelivered: bool,
    /// The trace the message belongs to (`traceparent`, `tracestate`).
    pub trace: std::collections::HashMap<String, String>,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fully handled: ack it.
    Done,
    /// Could not be handled now (database or broker away): try again later, keep the message.
    Retry(String),
    /// Can never be handled (undecodable, refers to nothing): dead-letter it.
    Poison(String),
}

/// A stage's work on one message. Handlers must be idempotent: a message may arrive twice.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: Incoming) -> impl Future<Output = Outcome> + Send;
}

/// Consumes `queue` until `shutdown` turns true, then lets in-flight messages finish.
pub async fn consume<H: Handler>(
    config: BusConfig,
    queue: String,
    name: String,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run(&config, &queue, &name, &handler, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%queue, error = %e, retry_in_ms = backoff.as_millis() as u64, "consumer lost its connection");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connected session; returns Ok on shutdown, Err when the connection failed.
async fn run<H: Handler>(
    config: &BusConfig,
    queue: &str,
    name: &str,
    handler: &Arc<H>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), BusError> {
    let conn = crate::connect(config, name).await?;
    let tag = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    // Bounded: a node that accepted the connection may not answer yet (its quorum queues
    // electing leaders after another node was lost); then try again, maybe another node.
    let setup = async {
        let channel = conn.create_channel().await?;
        declare(&channel, config).await?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, BusError>((channel, consumer))
    };
    let limit = Duration::from_millis(config.confirm_timeout_ms);
    let (channel, mut consumer) = match tokio::time::timeout(limit, setup).await {
        Ok(ready) => ready?,
        Err(_) => {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), conn.close(200, "slow".into())).await;
            return Err(BusError::Unavailable(format!(
                "the broker did not start the consumer within {} ms",
                limit.as_millis()
            )));
        }
    };
    tracing::info!(%queue, consumer = %tag, "consuming");
    let mut in_flight = JoinSet::new();
    let (acks, sending) = Acks::start(queue.to_owned());
    let result = loop {
        tokio::select! {
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    let incoming = Incoming {
                        payload: delivery.data.clone(),
                        message_id: delivery.properties.message_id().as_ref().map(|m| m.to_string()),
                        routing_key: delivery.routing_key.to_string(),
                        redelivered: delivery.redelivered,
                        trace: trace_headers(delivery.properties.headers().as_ref()),
                    };
                    let taken = Taken {
                        tag: delivery.delivery_tag,
                        acker: delivery.acker.clone(),
                        acks: acks.clone(),
                    };
                    acks.taken(taken.tag, delivery.acker);
                    let handler = Arc::clone(handler);
                    let shutdown = shutdown.clone();
                    let queue = queue.to_owned();
                    in_flight.spawn(async move {
                        settle(handler, incoming, taken, shutdown, &queue).await;
                    });
                }
                Some(Err(e)) => break Err(BusError::Unavailable(e.to_string())),
                None => break Err(BusError::Unavailable("consumer cancelled by the broker".into())),
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = shutdown.changed() => {
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(());
            }
        }
    };
    // Let what was taken finish and its acks go out (they need the connection), then close.
    while in_flight.join_next().await.is_some() {}
    drop(acks);
    let _ = sending.await;
    let _ = conn.close(200, "bye".into()).await;
    result
}

/// The W3C trace-context headers of a delivery.
fn trace_headers(headers: Option<&FieldTable>) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in headers.map(|h| h.inner().iter()).into_iter().flatten() {
        let key = k.as_str();
        if (key == "traceparent" || key == "tracestate")
            && let lapin::types::AMQPValue::LongString(s) = v
        {
            out.insert(key.to_owned(), s.to_string());
        }
    }
    out
}

/// A delivery in hand: its tag, and where to say how it was left.
struct Taken {
    tag: u64,
    /// Only asked whether the channel is still usable; the acks' task sends.
    acker: lapin::Acker,
    acks: Acks,
}

/// Runs the handler until the message is settled one way or the other.
async fn settle<H: Handler>(
    handler: Arc<H>,
    incoming: Incoming,
    taken: Taken,
    shutdown: watch::Receiver<bool>,
    queue: &str,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let h = Arc::clone(&handler);
        let msg = incoming.clone();
        let started = std::time::Instant::now();
        // One span per attempt, in the trace the message came with.
        let span = tracing::info_span!(
            "handle",
            queue = %queue,
            message_id = incoming.message_id.as_deref().unwrap_or(""),
        );
        lienthong_telemetry::continue_trace(&span, &incoming.trace);
        // A separate task contains a panic to this one message.
        let outcome = match tokio::spawn(async move { h.handle(msg).await }.instrument(span)).await
        {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Poison(format!("handler panicked: {e}")),
        };
        let label = match &outcome {
            Outcome::Done => "done",
            Outcome::Retry(_) => "retry",
            Outcome::Poison(_) => "poison",
        };
        metrics::counter!("lienthong_messages_total", "queue" => queue.to_owned(), "outcome" => label)
            .increment(1);
        metrics::histogram!("lienthong_message_handling_seconds", "queue" => queue.to_owned())
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Outcome::Done => {
                taken.acks.settled(taken.tag, Settled::Acked);
                return;
            }
            Outcome::Poison(reason) => {
                tracing::error!(%queue, message_id = ?incoming.message_id, %reason, "dead-lettering message");
                taken.acks.settled(taken.tag, Settled::Rejected);
                return;
            }
            Outcome::Retry(reason) => {
                if *shutdown.borrow() || !taken.acker.usable() {
                    // Left unacked: the broker hands it to another consumer.
                    taken.acks.settled(taken.tag, Settled::Kept);
                    return;
                }
                tracing::warn!(%queue, message_id = ?incoming.message_id, %reason, retry_in_ms = backoff.as_millis() as u64, "will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
