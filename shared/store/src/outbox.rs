//! The transactional outbox: messages written in the same transaction as the state change they
//! announce, published with confirms right after commit, and republished by a relay if the
//! publisher died or the broker was away in between. Consumers are idempotent, so a message
//! published twice has the effect of one.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::writing::{Value, Writing, at_once};
use crate::{Store, StoreError, get_opt_string, now_ms, placeholders};

/// A message to publish: exchange, routing key, message id and JSON payload, and the document it
/// is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub doc_id: Option<String>,
    pub exchange: String,
    pub routing_key: String,
    /// Deterministic id consumers deduplicate on.
    pub message_id: String,
    pub payload: String,
}

/// A stored outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub message: OutboxMessage,
}

fn outbox_row(r: &AnyRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        message: OutboxMessage {
            doc_id: get_opt_string(r, "doc_id")?,
            exchange: r.try_get("exchange")?,
            routing_key: r.try_get("routing_key")?,
            message_id: r.try_get("message_id")?,
            payload: r.try_get("payload")?,
        },
    })
}

impl Store {
    pub(crate) async fn insert_outbox(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        messages: &[OutboxMessage],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            let row = sqlx::query(
                "INSERT INTO outbox (doc_id, exchange, routing_key, message_id, payload, created_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&m.doc_id)
            .bind(&m.exchange)
            .bind(&m.routing_key)
            .bind(&m.message_id)
            .bind(&m.payload)
            .bind(now_ms())
            .fetch_one(&mut **tx)
            .await?;
            rows.push(OutboxRow {
                id: row.try_get("id")?,
                message: m.clone(),
            });
        }
        Ok(rows)
    }

    /// [`Store::insert_outbox`] in one statement: the messages of several documents accepted
    /// together. The rows come back from the database in no promised order; each is matched to
    /// its message by what it holds, and they are returned in the order of `messages`.
    pub(crate) async fn insert_outbox_many(
        w: &mut Writing<'_>,
        messages: &[&OutboxMessage],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let now_param = 5 * messages.len() + 1;
        let text = format!(
            "INSERT INTO outbox (doc_id, exchange, routing_key, message_id, payload, created_ms) VALUES {} \
             RETURNING id, doc_id, exchange, routing_key, message_id",
            (0..messages.len())
                .map(|k| format!("({}, ${now_param})", placeholders(5 * k + 1, 5)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut values = Vec::with_capacity(5 * messages.len() + 1);
        for m in messages {
            values.extend([
                Value::OptText(m.doc_id.as_deref()),
                Value::Text(&m.exchange),
                Value::Text(&m.routing_key),
                Value::Text(&m.message_id),
                Value::Text(&m.payload),
            ]);
        }
        values.push(Value::Int(now_ms()));
        let returned = w
            .rows(&text, &values, |r| {
                Ok((
                    r.int("id")?,
                    r.opt_text("doc_id")?,
                    r.text("exchange")?,
                    r.text("routing_key")?,
                    r.text("message_id")?,
                ))
            })
            .await?;
        if returned.len() != messages.len() {
            return Err(StoreError::Corrupt(format!(
                "{} outbox messages inserted, {} rows returned",
                messages.len(),
                returned.len()
            )));
        }
        let mut ids: Vec<Option<i64>> = vec![None; messages.len()];
        for (id, doc_id, exchange, routing_key, message_id) in returned {
            // Two messages alike in all of these are alike for the relay too: either id will do.
            let at = (0..messages.len()).find(|&k| {
                let m = messages[k];
                ids[k].is_none()
                    && m.doc_id == doc_id
                    && m.exchange == exchange
                    && m.routing_key == routing_key
                    && m.message_id == message_id
            });
            let Some(at) = at else {
                return Err(StoreError::Corrupt(format!(
                    "the outbox returned a row for message {message_id} that was not inserted"
                )));
            };
            ids[at] = Some(id);
        }
        Ok(ids
            .into_iter()
            .zip(messages)
            .filter_map(|(id, m)| {
                Some(OutboxRow {
                    id: id?,
                    message: (*m).clone(),
                })
            })
            .collect())
    }

    /// Appends messages on their own (for state changes that need nothing else written).
    pub async fn enqueue(&self, messages: &[OutboxMessage]) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = Self::insert_outbox(&mut tx, messages).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Unpublished messages created before `older_than_ms`, oldest first.
    pub async fn pending_outbox(
        &self,
        older_than_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        sqlx::query(
            "SELECT id, doc_id, exchange, routing_key, message_id, payload FROM outbox
             WHERE published_ms IS NULL AND created_ms <= $1 ORDER BY id LIMIT $2",
        )
        .bind(older_than_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_row)
        .collect()
    }

    /// The unpublished messages about one document (a resubmission publishes what a failed first
    /// attempt left behind before it answers).
    pub async fn unpublished_for(&self, doc_id: &str) -> Result<Vec<OutboxRow>, StoreError> {
        sqlx::query(
            "SELECT id, doc_id, exchange, routing_key, message_id, payload FROM outbox WHERE published_ms IS NULL AND doc_id = $1 ORDER BY id",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_row)
            .collect()
    }

    pub async fn mark_published(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql_text = format!(
            "UPDATE outbox SET published_ms = $1 WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let mut values = vec![Value::Int(now_ms())];
        values.extend(ids.iter().map(|id| Value::Int(*id)));
        // In place on a SQLite file once its write lock is free (`in_place.rs`).
        if let Some(in_place) = &self.in_place
            && let Some(done) = in_place
                .write_soon("outbox_published", |w| {
                    at_once(w.execute(&sql_text, &values))
                })
                .await
        {
            return done.map(|_| ());
        }
        Writing::Pool(&self.writer)
            .execute(&sql_text, &values)
            .await?;
        Ok(())
    }

    /// Deletes published messages older than `before_ms`; returns how many.
    pub async fn prune_outbox(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM outbox WHERE published_ms IS NOT NULL AND published_ms < $1")
                .bind(before_ms)
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }
}
