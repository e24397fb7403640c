//! The publishing side of the transactional outbox. A service that changes state and must
//! announce it writes the messages in the same store transaction (`Store::accept`,
//! `Store::enqueue`, ...), then calls [`publish`]; whatever a crash or a broker outage leaves
//! unpublished, [`relay`] publishes later. Consumers are idempotent, so a message published twice
//! has the effect of one.

use std::time::Duration;

use lienthong_bus::{BusError, Outgoing, Publisher, Route};
use lienthong_store::{OutboxMessage, OutboxRow, Store, now_ms};
use tokio::sync::{mpsc, watch};

/// The stored form of a message (every outbox message is an internal hop: routing is mandatory).
pub fn to_outbox(o: &Outgoing) -> OutboxMessage {
    OutboxMessage {
        doc_id: o.doc_id.clone(),
        exchange: o.route.exchange.clone(),
        routing_key: o.route.routing_key.clone(),
        message_id: o.message_id.clone(),
        payload: String::from_utf8_lossy(&o.payload).into_owned(),
    }
}

fn to_outgoing(m: &OutboxMessage) -> Outgoing {
    Outgoing {
        route: Route {
            exchange: m.exchange.clone(),
            routing_key: m.routing_key.clone(),
            mandatory: true,
        },
        payload: m.payload.clone().into_bytes(),
        message_id: m.message_id.clone(),
        doc_id: m.doc_id.clone(),
    }
}

/// Publishes stored messages with confirms and marks them published.
pub async fn publish(
    store: &Store,
    publisher: &Publisher,
    rows: &[OutboxRow],
) -> Result<(), BusError> {
    let ids = publish_rows(publisher, rows).await?;
    if ids.is_empty() {
        return Ok(());
    }
    if let Err(e) = store.mark_published(&ids).await {
        // Published but not marked: the relay publishes again, consumers deduplicate.
        tracing::warn!(error = %e, "could not mark outbox messages published");
    }
    Ok(())
}

/// Publishes stored messages with confirms, then hands their rows to `marks`, which marks them
/// published a moment later together with the rows other requests published meanwhile: one
/// store write for many acceptances, none on the request's path. Rows not marked yet (a crash in
/// between) are published again by the relay, and consumers deduplicate.
pub async fn publish_then_mark(
    publisher: &Publisher,
    marks: &Marks,
    rows: &[OutboxRow],
) -> Result<(), BusError> {
    let ids = publish_rows(publisher, rows).await?;
    if !ids.is_empty() {
        marks.mark(ids);
    }
    Ok(())
}

/// Publishes the rows' messages with confirms; the ids of the rows published.
async fn publish_rows(publisher: &Publisher, rows: &[OutboxRow]) -> Result<Vec<i64>, BusError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<Outgoing> = rows.iter().map(|r| to_outgoing(&r.message)).collect();
    publisher.publish_all(&messages).await?;
    Ok(rows.iter().map(|r| r.id).collect())
}

/// Most acceptances' rows marked published in one statement.
const MAX_MARKS: usize = 512;

/// How long the marking task lets published rows gather before it marks them: one write for
/// the acceptances of this long, where marking each group as it came was a commit for every
/// two documents at full speed (`docs/performance.md`). Nothing waits on it; a row published
/// and not marked yet is published again only by the relay, `gateway.relay_after_ms` later.
const MARK_EVERY: Duration = Duration::from_millis(25);

/// Marks outbox rows published in groups, in a task of its own (see [`publish_then_mark`]).
#[derive(Debug, Clone)]
pub struct Marks {
    queue: mpsc::UnboundedSender<Vec<i64>>,
}

impl Marks {
    /// Starts the marking task on the current runtime; it ends when every `Marks` is gone.
    pub fn start(store: Store) -> Self {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Vec<i64>>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let pause = || tokio::time::sleep(MARK_EVERY);
            while lienthong_store::gather_after(&mut waiting, &mut batch, MAX_MARKS, pause).await
                > 0
            {
                let ids: Vec<i64> = batch.drain(..).flatten().collect();
                if let Err(e) = store.mark_published(&ids).await {
                    // Published but not marked: the relay publishes again, consumers deduplicate.
                    tracing::warn!(error = %e, count = ids.len(), "could not mark outbox messages published");
                }
            }
        });
        Self { queue }
    }

    fn mark(&self, ids: Vec<i64>) {
        // The task is gone only at shutdown; the relay then publishes these again.
        let _ = self.queue.send(ids);
    }
}

/// Publishes messages older than `relay_after_ms` that are still unpublished, every half second,
/// until `shutdown`; prunes published messages older than a day, hourly.
pub async fn relay(
    store: Store,
    publisher: Publisher,
    relay_after_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let age = i64::try_from(relay_after_ms).unwrap_or(i64::MAX);
    let mut last_prune = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match store.pending_outbox(now_ms() - age, 500).await {
            Ok(rows) if !rows.is_empty() => match publish(&store, &publisher, &rows).await {
                Ok(()) => tracing::info!(count = rows.len(), "relayed outbox messages"),
                Err(e) => {
                    tracing::warn!(error = %e, pending = rows.len(), "outbox relay could not publish")
                }
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay could not read the store"),
        }
        if now_ms() - last_prune > 3_600_000 {
            last_prune = now_ms();
            if let Err(e) = store.prune_outbox(now_ms() - 86_400_000).await {
                tracing::warn!(error = %e, "could not prune the outbox");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_store::StoreConfig;

    /// Rows handed over one after another, some while the task lets the ones before gather, are
    /// all marked published, so the relay does not publish them again.
    #[tokio::test]
    async fn rows_handed_to_the_marks_are_all_marked_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config: StoreConfig = serde_json::from_value(serde_json::json!({
            "url": format!("sqlite://{}", dir.path().join("t.db").display()),
        }))
        .expect("config");
        let store = Store::connect(&config).await.expect("store");
        let message = |i: usize| OutboxMessage {
            doc_id: None,
            exchange: "lienthong.pipeline".into(),
            routing_key: "verifier".into(),
            message_id: format!("m{i}"),
            payload: "{}".into(),
        };
        let rows = store
            .enqueue(&(0..5).map(message).collect::<Vec<_>>())
            .await
            .expect("enqueue");
        assert_eq!(rows.len(), 5);
        let marks = Marks::start(store.clone());
        // 10 ms apart: the five span more than one of the task's gatherings.
        for row in &rows {
            marks.mark(vec![row.id]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A bound for a loaded machine, not a measure: a few gatherings suffice.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let pending = store.pending_outbox(i64::MAX, 10).await.expect("pending");
            if pending.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} rows never marked published",
                pending.len()
            );
            tokio::time::sleep(MARK_EVERY).await;
        }
    }
}
