//! The ledger: every lifecycle event of every document, kept for the trace (nhật ký).
//!
//! Event ids are deterministic (`<docId>:<kind>:<organ>...`), so a message redelivered after a
//! crash records nothing twice.
//!
//! The ledger is tamper-evident: events form a hash chain in the order they were recorded
//! (`chain_seq`), each hash covering the previous one and every field of the event; writers take
//! the chain head's row lock first, so the order is total even with several ledger consumers.
//! Anchors (the head at a moment, kept apart and printed for operators to keep elsewhere) let
//! [`Store::verify_chain`] prove that nothing before them was rewritten, including wholesale.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::groups::{StageWrite, StageWritten, padded};
use crate::writing::{Value, Writing};
use crate::{Backend, Store, StoreError, get_opt_string, value_rows};

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

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash and every field, separated so no two events hash alike.
fn chain_hash(prev: &str, e: &LedgerEvent) -> String {
    let text = format!(
        "{prev}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        e.event_id,
        e.doc_id,
        e.kind,
        e.organ.as_deref().unwrap_or("\u{0}"),
        e.detail.as_deref().unwrap_or("\u{0}"),
        e.at_ms
    );
    crate::sha256_hex(text.as_bytes())
}

/// What `verify_chain` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ChainCheck {
    Intact {
        events: i64,
        head: String,
        anchors: usize,
    },
    Broken {
        seq: i64,
        event_id: String,
        reason: String,
    },
}

/// Events per statement when a batch is recorded: 9 parameters each, well under the limits of
/// SQLite (32,766) and PostgreSQL (65,535). A power of two: each statement's rows are padded
/// to one (`padded`), so that a few statement texts serve every group's size.
const ROWS_PER_STATEMENT: usize = 512;

impl Store {
    /// Records an event at the end of the chain; false if it was already recorded.
    pub async fn record_event(&self, e: &LedgerEvent) -> Result<bool, StoreError> {
        let recorded = self.record_events(std::slice::from_ref(e)).await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    /// Records events at the end of the chain, in order, in one transaction (the ledger groups
    /// the events that arrive together: one commit instead of one each); for each, false if it
    /// was already recorded, before or earlier in `events`.
    pub async fn record_events(&self, events: &[LedgerEvent]) -> Result<Vec<bool>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // On SQLite, in the transaction of the stages' writes waiting meanwhile (`groups.rs`):
        // one writer there, so the chain's head is held by one transaction at a time anyway.
        // On PostgreSQL, a transaction of their own, so the head's row lock, which every
        // ledger of the bus waits for, is held no longer than the events' own statements.
        if self.backend == Backend::Sqlite {
            let call = StageWrite::Events(events.to_vec());
            return match self.groups.writes.call(call).await? {
                StageWritten::Chained(recorded) => Ok(recorded),
                _ => Err(StoreError::Corrupt(
                    "the ledger's write answered another kind".into(),
                )),
            };
        }
        let mut tx = self.begin().await?;
        let recorded = chain_events(&mut Writing::Tx(&mut tx), events).await?;
        if recorded.contains(&true) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(recorded)
    }

    /// The chain head now: (events chained, hash of the last).
    pub async fn chain_head(&self) -> Result<(i64, String), StoreError> {
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((head.try_get("seq")?, head.try_get("hash")?))
    }

    /// Records the current head as an anchor (once per head) and returns it.
    pub async fn anchor_chain(&self) -> Result<(i64, String), StoreError> {
        let (seq, hash) = self.chain_head().await?;
        sqlx::query("INSERT INTO audit_anchors (seq, hash, at_ms) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING")
            .bind(seq)
            .bind(&hash)
            .bind(crate::now_ms())
            .execute(&self.writer)
            .await?;
        Ok((seq, hash))
    }

    /// Recomputes the whole chain; the first event (or anchor) that does not match is reported.
    pub async fn verify_chain(&self) -> Result<ChainCheck, StoreError> {
        let anchors: Vec<(i64, String)> =
            sqlx::query("SELECT seq, hash FROM audit_anchors ORDER BY seq")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok::<_, StoreError>((r.try_get("seq")?, r.try_get("hash")?)))
                .collect::<Result<_, _>>()?;
        let (head_seq, head_hash) = self.chain_head().await?;
        let rows = sqlx::query(
            "SELECT event_id, doc_id, kind, organ, detail, at_ms, chain_seq, prev_hash, hash FROM events
             WHERE chain_seq IS NOT NULL ORDER BY chain_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut prev = GENESIS.to_owned();
        let mut expected_seq = 1;
        let mut anchors_checked = 0;
        for r in &rows {
            let e = LedgerEvent {
                event_id: r.try_get("event_id")?,
                doc_id: r.try_get("doc_id")?,
                kind: r.try_get("kind")?,
                organ: get_opt_string(r, "organ")?,
                detail: get_opt_string(r, "detail")?,
                at_ms: r.try_get("at_ms")?,
            };
            let seq: i64 = r.try_get("chain_seq")?;
            let stored: String = r.try_get("hash")?;
            let stored_prev = get_opt_string(r, "prev_hash")?.unwrap_or_default();
            let broken = |why: &str| ChainCheck::Broken {
                seq,
                event_id: e.event_id.clone(),
                reason: why.to_owned(),
            };
            if seq != expected_seq {
                return Ok(broken(&format!(
                    "expected event {expected_seq} of the chain here: one is missing"
                )));
            }
            if stored_prev != prev {
                return Ok(broken("does not link to the event before it"));
            }
            if chain_hash(&prev, &e) != stored {
                return Ok(broken(
                    "its content does not match its hash: it was altered",
                ));
            }
            if let Some((_, anchored)) = anchors.iter().find(|(s, _)| *s == seq) {
                if *anchored != stored {
                    return Ok(broken("differs from the anchored hash at this point"));
                }
                anchors_checked += 1;
            }
            prev = stored;
            expected_seq += 1;
        }
        let chained = expected_seq - 1;
        if chained != head_seq || prev != head_hash {
            return Ok(ChainCheck::Broken {
                seq: chained,
                event_id: String::new(),
                reason: format!(
                    "the chain ends at event {chained} but the head says {head_seq}: events were removed or the head was rewritten"
                ),
            });
        }
        if let Some((seq, _)) = anchors.iter().find(|(s, _)| *s > chained) {
            return Ok(ChainCheck::Broken {
                seq: *seq,
                event_id: String::new(),
                reason: "an anchor lies beyond the end of the chain: events were removed".into(),
            });
        }
        Ok(ChainCheck::Intact {
            events: chained,
            head: prev,
            anchors: anchors_checked,
        })
    }

    /// Administrative actions, newest first: registry changes (`registry`) and what operators
    /// did to dead letters and failed copies (`operations`). They are the events of the pseudo
    /// documents `registry` and `operations`: two lookups in the events' (doc_id, at_ms) index.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<LedgerEvent>, StoreError> {
        sqlx::query(
            "SELECT * FROM (SELECT event_id, doc_id, kind, organ, detail, at_ms, seq FROM events
                              WHERE doc_id = 'operations' ORDER BY at_ms DESC, seq DESC LIMIT $1) o
             UNION ALL
             SELECT * FROM (SELECT event_id, doc_id, kind, organ, detail, at_ms, seq FROM events
                              WHERE doc_id = 'registry' ORDER BY at_ms DESC, seq DESC LIMIT $1) r
             ORDER BY at_ms DESC, seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    /// The trace of a document: its own events and those of the status packages answering it,
    /// in the order they happened.
    pub async fn trace(&self, doc_id: &str) -> Result<Vec<LedgerEvent>, StoreError> {
        sqlx::query(
            // Two index lookups (the document's events, and those of the statuses answering it)
            // rather than one `OR`, which PostgreSQL can only answer by reading every event.
            "SELECT event_id, doc_id, kind, organ, detail, at_ms, seq FROM events WHERE doc_id = $1
             UNION ALL
             SELECT e.event_id, e.doc_id, e.kind, e.organ, e.detail, e.at_ms, e.seq
               FROM events e JOIN documents d ON d.doc_id = e.doc_id WHERE d.response_for = $1
             ORDER BY at_ms, seq",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }
}

/// Chains `events` after the head, in order, in the write `w` has open: for each, false if it was
/// already recorded, before or earlier in `events`.
pub(crate) async fn chain_events(
    w: &mut Writing<'_>,
    events: &[LedgerEvent],
) -> Result<Vec<bool>, StoreError> {
    // Take the head's row lock before anything else: chain order is record order.
    w.execute("UPDATE audit_head SET seq = seq WHERE id = 1", &[])
        .await?;
    let head = w
        .rows("SELECT seq, hash FROM audit_head WHERE id = 1", &[], |r| {
            Ok((r.int("seq")?, r.text("hash")?))
        })
        .await?;
    let Some((mut seq, mut prev)) = head.into_iter().next() else {
        return Err(StoreError::Corrupt("audit_head has no row".into()));
    };
    // Which are recorded already (a redelivery), in one query; then the new ones in one
    // statement. The head's lock keeps other ledgers out until the commit.
    let mut known = std::collections::HashSet::new();
    for ids in events.chunks(ROWS_PER_STATEMENT) {
        let ids = padded(ids.iter().collect());
        // Placeholders only: the values are bound.
        let text = format!(
            "SELECT event_id FROM events WHERE event_id IN {}",
            value_rows(1, ids.len())
        );
        let values: Vec<Value> = ids.iter().map(|e| Value::Text(&e.event_id)).collect();
        known.extend(w.rows(&text, &values, |r| r.text("event_id")).await?);
    }
    let mut recorded = Vec::with_capacity(events.len());
    let mut rows = Vec::new();
    for e in events {
        // Known before, or earlier in this batch.
        let new = known.insert(e.event_id.clone());
        if new {
            let hash = chain_hash(&prev, e);
            seq += 1;
            rows.push((e, seq, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        recorded.push(new);
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let new = chunk.len();
        // A row repeated to pad the statement is the same event: its conflict does nothing.
        let chunk = padded(chunk.iter().collect());
        let text = format!(
            "INSERT INTO events (event_id, doc_id, kind, organ, detail, at_ms, chain_seq, prev_hash, hash)
             VALUES {} ON CONFLICT (event_id) DO NOTHING",
            value_rows(chunk.len(), 9)
        );
        let mut values = Vec::with_capacity(chunk.len() * 9);
        for (e, seq, prev, hash) in chunk {
            values.extend([
                Value::Text(&e.event_id),
                Value::Text(&e.doc_id),
                Value::Text(&e.kind),
                Value::OptText(e.organ.as_deref()),
                Value::OptText(e.detail.as_deref()),
                Value::Int(e.at_ms),
                Value::Int(*seq),
                Value::Text(prev),
                Value::Text(hash),
            ]);
        }
        // Only the padding may conflict: an event recorded meanwhile outside the head's lock
        // would leave a gap in the chain, so the transaction fails instead.
        let inserted = w.execute(&text, &values).await?;
        if inserted != new as u64 {
            return Err(StoreError::Corrupt(format!(
                "{inserted} of {new} new events inserted: an event was recorded outside the chain"
            )));
        }
    }
    if recorded.contains(&true) {
        w.execute(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            &[Value::Int(seq), Value::Text(&prev)],
        )
        .await?;
    }
    Ok(recorded)
}

fn event_from_row(r: &sqlx::any::AnyRow) -> Result<LedgerEvent, StoreError> {
    Ok(LedgerEvent {
        event_id: r.try_get("event_id")?,
        doc_id: r.try_get("doc_id")?,
        kind: r.try_get("kind")?,
        organ: get_opt_string(r, "organ")?,
        detail: get_opt_string(r, "detail")?,
        at_ms: r.try_get("at_ms")?,
    })
}
