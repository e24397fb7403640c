//! SQLite's WAL checkpoints, taken off the write path.
//!
//! Left to itself, SQLite checkpoints in the connection that commits, after the commit, whenever
//! the write-ahead log holds more than 1,000 pages. A checkpoint syncs the log, copies pages back
//! into the database file and syncs that too. While readers hold older snapshots (and the bus's
//! processes nearly always have some) a checkpoint cannot copy the whole log back, the log stays
//! over the mark, and the commits that follow try again: syncs of the disk, on the one
//! connection that every write of the process queues for. Under load that was one `fsync` for
//! every four or five documents in each process (`docs/performance.md`).
//!
//! With `store.checkpoint_ms` set, every connection is opened with `wal_autocheckpoint = 0`,
//! and this task asks for a `PASSIVE` checkpoint on a reader connection at that interval: the
//! same work, done once per interval whatever the commit rate, never on the writer's connection.
//! A passive checkpoint never waits for readers or writers; what it cannot copy back now it
//! copies at a later tick, and SQLite starts the log again from the top once all of it is in.

use std::time::{Duration, Instant};

use sqlx::{AnyPool, Row};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

/// A log this long (pages of 4 KiB: 256 MiB) that a checkpoint could not copy back means a
/// reader has held one snapshot for a long time; worth an operator's look.
const LONG_LOG_FRAMES: i64 = 65_536;
/// At most one warning in this long, whatever the interval.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Keeps the task running; dropped with the last clone of the [`crate::Store`], it stops it.
pub(crate) struct Checkpointer {
    _stop: oneshot::Sender<()>,
}

/// What one `PRAGMA wal_checkpoint(PASSIVE)` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    /// Pages in the log.
    log: i64,
    /// Of those, the pages now in the database file.
    copied: i64,
}

impl Checkpoint {
    /// Pages a reader still keeps in the log.
    fn behind(&self) -> i64 {
        (self.log - self.copied).max(0)
    }
}

/// One passive checkpoint, on a connection of `pool`.
async fn checkpoint(pool: &AnyPool) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok(Checkpoint {
        log: row.try_get(1)?,
        copied: row.try_get(2)?,
    })
}

/// Checkpoints `pool`'s database every `every` until the returned handle is dropped or the pool
/// closed.
pub(crate) fn spawn(pool: AnyPool, every: Duration) -> Checkpointer {
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut warned: Option<Instant> = None;
        let mut warn = |message: String| {
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                tracing::warn!("{message}");
            }
        };
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tick.tick() => {}
            }
            match checkpoint(&pool).await {
                Ok(c) if c.behind() >= LONG_LOG_FRAMES => warn(format!(
                    "SQLite's write-ahead log holds {} pages that a checkpoint could not copy \
                     back: a reader has kept an old snapshot open",
                    c.behind()
                )),
                Ok(c) => tracing::trace!(log = c.log, copied = c.copied, "checkpoint"),
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => warn(format!(
                    "SQLite checkpoint failed (tried again in {every:?}): {e}"
                )),
            }
        }
    });
    Checkpointer { _stop: stop }
}
