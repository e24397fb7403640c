//! The ledger: every lifecycle event of every document, kept for the trace (nhật ký).
//!
//! Event ids are deterministic (`<docId>:<kind>:<organ>...`), so a message redelivered after a
//! crash records nothing twice.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Store, StoreError, get_opt_string};

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub event_id: String,
    pub doc_id: String,
    /// `accepted`, `routed`, `delivered`, `fetched`, `transport`, `status`, `failed`.
    pub kind: String,
    /// The agency the event concerns (recipient, or status sender).
    pub organ: Option<String>,
    /// Human-readable detail (transport status, status code and description, failure reason).
    pub detail: Option<String>,
    pub at_ms: i64,
}

impl Store {
    /// Records an event; false if it was already recorded.
    pub async fn record_event(&self, e: &LedgerEvent) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO events (event_id, doc_id, kind, organ, detail, at_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&e.event_id)
        .bind(&e.doc_id)
        .bind(&e.kind)
        .bind(&e.organ)
        .bind(&e.detail)
        .bind(e.at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The trace of a document: its own events and those of the status packages answering it,
    /// in the order they happened.
    pub async fn trace(&self, doc_id: &str) -> Result<Vec<LedgerEvent>, StoreError> {
        sqlx::query(
            "SELECT event_id, doc_id, kind, organ, detail, at_ms FROM events
             WHERE doc_id = $1 OR doc_id IN (SELECT doc_id FROM documents WHERE response_for = $1)
             ORDER BY at_ms, seq",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(LedgerEvent {
                event_id: r.try_get("event_id")?,
                doc_id: r.try_get("doc_id")?,
                kind: r.try_get("kind")?,
                organ: get_opt_string(r, "organ")?,
                detail: get_opt_string(r, "detail")?,
                at_ms: r.try_get("at_ms")?,
            })
        })
        .collect()
    }
}
