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
//! copies at a later tick.
//!
//! SQLite starts the log again from the top only when a writer begins while all of it is copied
//! back and no reader is reading from it. Under sustained load that moment never comes (some
//! process is always mid-read), and the log grew without end: 3.4 GB after 20,000 documents,
//! and every frame appended past its end made the kernel zero fresh blocks, 14% of a worker's
//! CPU (`docs/performance.md`). So once the log holds [`RESTART_FRAMES`] and a passive
//! checkpoint has copied all of it back, the task asks for a `RESTART` checkpoint: it holds new
//! writers off while the readers still in the log finish, so the next write starts the log again
//! from the top, where its pages are already in the page cache. It waits at most
//! [`RESTART_WAIT_MS`] for them (the connection's busy timeout, lowered for that statement); a
//! restart that cannot be had that soon is tried at a later tick. Before it, the task syncs the
//! database file and the log itself ([`sync_files`]), holding no lock, so that the restart,
//! which syncs them too while it holds the writers off, has only its last few pages to sync.
//! Each connection's `journal_size_limit` then gives back to the disk what a longer log took.
//!
//! A restart does not start the log again itself: the next write does. Until then a checkpoint
//! sees the same log, long and all copied back, so the task remembers the log it last restarted
//! and does not sync and restart it again: an idle bus syncs nothing.

use std::time::{Duration, Instant};

use sqlx::{AnyPool, Executor, Row};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

/// A log this long (pages of 4 KiB: 256 MiB) that a checkpoint could not copy back means a
/// reader has held one snapshot for a long time; worth an operator's look.
const LONG_LOG_FRAMES: i64 = 65_536;
/// At most one warning in this long, whatever the interval.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// A log this long (pages of 4 KiB: 64 MiB), all copied back, is started again from the top.
pub(crate) const RESTART_FRAMES: i64 = 16_384;
/// How long a restart holds writers off, at most, waiting for readers to leave the log.
const RESTART_WAIT_MS: u32 = 20;
/// What each connection keeps of the log's file once it starts again from the top
/// (`PRAGMA journal_size_limit`, bytes): the pages of one [`RESTART_FRAMES`] log.
pub(crate) const LOG_KEPT_BYTES: i64 = RESTART_FRAMES * 4096;

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

/// A `RESTART` checkpoint on one connection of `pool`, waiting at most [`RESTART_WAIT_MS`] for
/// readers and writers: whether the log will start again from the top.
async fn restart(pool: &AnyPool) -> Result<(bool, Duration), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {RESTART_WAIT_MS}"
    )))
    .await?;
    let started = Instant::now();
    let done = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<i64, _>(0));
    let took = started.elapsed();
    // The connection goes back to the pool with the timeout every connection has.
    conn.execute("PRAGMA busy_timeout = 15000").await?;
    // First column: 1 when it could not finish for readers or writers (SQLITE_BUSY).
    Ok((done? == 0, took))
}

/// Whether a passive checkpoint's outcome calls for a restart: the log is long and all copied
/// back, and it is not the log this task's last restart already asked to start again (`restarted`,
/// its length then), which no write has touched since.
fn wants_restart(c: Checkpoint, restarted: Option<i64>) -> bool {
    c.log >= RESTART_FRAMES && c.behind() == 0 && restarted != Some(c.log)
}

/// Syncs the database file at `path` and its write-ahead log to the disk, holding no lock of
/// SQLite's: `fdatasync` on a descriptor of our own, which flushes whatever any connection wrote.
///
/// A passive checkpoint under load syncs the log but not the database file: SQLite syncs the
/// file only when the checkpoint copied back every frame in the log, and commits go on while it
/// copies. So the pages copied back since the last restart (tens of megabytes) were still to be
/// written out when the restart came, and the restart wrote them out while it held every
/// writer off: 20 to 60 ms, a burst of late documents each time (`docs/performance.md`). Synced
/// here first, the restart has only its own few pages to sync.
async fn sync_files(path: &std::path::Path) -> std::io::Result<()> {
    let database = path.to_path_buf();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&database)?.sync_data()?;
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No log (yet, or any more): nothing of it to sync.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Checkpoints `pool`'s database (the file at `path`) every `every` until the returned handle is
/// dropped or the pool closed.
pub(crate) fn spawn(pool: AnyPool, path: std::path::PathBuf, every: Duration) -> Checkpointer {
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        // The length of the log this task last restarted, until a write starts it again.
        let mut restarted: Option<i64> = None;
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
                Ok(c) if wants_restart(c, restarted) => {
                    if let Err(e) = sync_files(&path).await {
                        warn(format!(
                            "SQLite checkpoint: syncing {} failed (tried again in {every:?}): {e}",
                            path.display()
                        ));
                        continue;
                    }
                    match restart(&pool).await {
                        Ok((done, took)) => {
                            if done {
                                restarted = Some(c.log);
                            }
                            tracing::debug!(
                                log = c.log,
                                restarted = done,
                                took_ms = took.as_secs_f64() * 1000.0,
                                "checkpoint, restart"
                            );
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => warn(format!(
                            "SQLite checkpoint (restart) failed (tried again in {every:?}): {e}"
                        )),
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_restart_starts_the_log_again_unless_a_reader_is_still_in_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .expect("pool");
        for statement in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA wal_autocheckpoint = 0",
            "CREATE TABLE t (v TEXT)",
        ] {
            pool.execute(statement).await.expect(statement);
        }
        let write = |n: usize| {
            let pool = pool.clone();
            async move {
                for _ in 0..n {
                    pool.execute("INSERT INTO t VALUES (hex(randomblob(3000)))")
                        .await
                        .expect("insert");
                }
            }
        };
        write(50).await;
        let before = checkpoint(&pool).await.expect("checkpoint");
        assert!(before.log >= 50, "{before:?}");
        assert_eq!(before.behind(), 0);

        // A reader in the middle of a read of the log: no restart, and writers go on.
        write(5).await;
        let reader = rusqlite::Connection::open(&path).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("read");
        write(40).await;
        let during = checkpoint(&pool).await.expect("checkpoint");
        assert!(during.log >= 40, "{during:?}");
        assert!(!restart(&pool).await.expect("restart").0);
        write(1).await;
        assert!(checkpoint(&pool).await.expect("checkpoint").log > during.log);

        // Once it is done, the log starts again from the top with the next write.
        reader.execute_batch("COMMIT").expect("end of read");
        checkpoint(&pool).await.expect("checkpoint");
        assert!(restart(&pool).await.expect("restart").0);
        write(1).await;
        let after = checkpoint(&pool).await.expect("checkpoint");
        assert!(
            after.log < 10,
            "the log went on from {during:?} to {after:?}"
        );
        // The connection's own busy timeout is back.
        let timeout: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&pool)
            .await
            .and_then(|r| r.try_get(0))
            .expect("busy_timeout");
        assert_ne!(timeout, i64::from(RESTART_WAIT_MS));
        pool.close().await;
    }

    #[test]
    fn a_log_is_restarted_when_long_and_copied_back_and_not_again_before_a_write() {
        let long = Checkpoint {
            log: RESTART_FRAMES,
            copied: RESTART_FRAMES,
        };
        assert!(wants_restart(long, None));
        assert!(!wants_restart(long, Some(RESTART_FRAMES)), "asked already");
        assert!(wants_restart(long, Some(RESTART_FRAMES + 7)), "another log");
        let behind = Checkpoint {
            log: RESTART_FRAMES,
            copied: RESTART_FRAMES - 1,
        };
        assert!(
            !wants_restart(behind, None),
            "a reader keeps a page in the log"
        );
        let short = Checkpoint {
            log: RESTART_FRAMES - 1,
            copied: RESTART_FRAMES - 1,
        };
        assert!(!wants_restart(short, None));
    }

    #[tokio::test]
    async fn the_files_are_synced_with_or_without_a_log_and_a_missing_database_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let db = rusqlite::Connection::open(&path).expect("open");
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (v TEXT);
             INSERT INTO t VALUES ('a');",
        )
        .expect("write");
        assert!(dir.path().join("t.db-wal").exists());
        sync_files(&path).await.expect("with a log");
        drop(db);
        // The last connection closed: SQLite took the log away.
        assert!(!dir.path().join("t.db-wal").exists());
        sync_files(&path).await.expect("without a log");
        let missing = sync_files(&dir.path().join("none.db"))
            .await
            .expect_err("no database");
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
