//! SQLite read on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own: a statement is a command sent to
//! that thread and its rows sent back, two hand-offs between threads that cost more than the
//! statement (`docs/performance.md`: about a third of the bus's CPU per document, and at low
//! rates a third of its context switches). The groups' reads (`groups.rs`) are small indexed
//! look-ups that SQLite answers in microseconds, so on a SQLite file they are made here
//! instead, with SQLite's own API (rusqlite, over the same bundled library sqlx links), on the
//! thread of the task that asks.
//!
//! The reading connections only read (`PRAGMA query_only`). In WAL mode a reader never waits for
//! the writer; each statement reads the last committed state, as sqlx's readers do.
//!
//! A read made while no write holds the process's writer is made on the writer itself: a
//! connection's page cache lasts until another connection commits, so a reader's was dropped at
//! each of this process's commits and its pages read again from the operating system, where the
//! writer's lasts across them. A statement that would write still goes to a reader, which
//! refuses it.
//!
//! The writes made for every document (`writing.rs`) are made in place too, on one writer
//! connection per process, one at a time, when SQLite's write lock is free at that moment: the
//! transaction starts with `BEGIN IMMEDIATE` and no busy timeout. When another connection holds
//! the lock (sqlx's writer for the rarer writes, another process, or a checkpoint restarting the
//! log), the asking task sleeps a millisecond and tries again ([`InPlace::write_soon`]); only a
//! lock held for longer than [`WAIT_IN_PLACE`] sends the write through sqlx's writer, which waits
//! its turn on its own thread. Nothing on the asking thread ever blocks on a lock.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::columns::Columns;
use crate::writing::Writing;

/// How long a write waits for SQLite's write lock to be free, trying again in place every
/// [`TRY_AGAIN_EVERY`], before it goes through sqlx's writer instead (which then waits as long as
/// the busy timeout lets it). Another process's write, or SQLite's checkpoint restarting the log,
/// holds the lock for a few milliseconds; a longer hold is rare (a large import through sqlx).
const WAIT_IN_PLACE: Duration = Duration::from_millis(250);
/// How often a write that found the lock held tries again.
const TRY_AGAIN_EVERY: Duration = Duration::from_millis(1);

/// Idle connections kept for the next reads: one per kind of grouped read, and a few more.
const KEPT: usize = 8;

/// Statements kept prepared per connection: each kind of read and write has up to seven texts
/// (its groups padded to powers of two up to 64), and there are about twenty kinds. With 64, a
/// worker under load prepared some statement again on about one write in three.
const PREPARED: usize = 256;

/// Connections to one SQLite file that read in place.
pub(crate) struct InPlace {
    path: String,
    idle: Mutex<Vec<Connection>>,
    /// The writer, opened on the first write.
    writer: OnceLock<Mutex<Connection>>,
    /// Held by the write in progress, from its `BEGIN` to its `COMMIT` (it takes the writer's
    /// lock a statement at a time), and by a read made on the writer meanwhile
    /// ([`InPlace::rows_on_writer`], which only tries it, so that it never reads inside a write's
    /// open transaction). A write on another runtime thread waits for that one statement.
    turn: Mutex<()>,
    /// SQLite's checkpoints run in a task of their own (`store.checkpoint_ms`), not after commits.
    checkpoints_apart: bool,
    /// When the writer's commits are on the disk (`store.sqlite_synchronous`).
    synchronous: crate::SqliteSynchronous,
}

impl InPlace {
    /// Reads and writes of the database at `path` (which sqlx has opened and migrated).
    pub(crate) fn new(
        path: String,
        checkpoints_apart: bool,
        synchronous: crate::SqliteSynchronous,
    ) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            writer: OnceLock::new(),
            turn: Mutex::new(()),
            checkpoints_apart,
            synchronous,
        }
    }

    fn open_writer(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // No busy timeout: a lock held elsewhere sends the write to sqlx's writer, which waits.
        conn.busy_timeout(Duration::ZERO)?;
        // As sqlx's connections (per connection, not per file).
        conn.pragma_update(None, "synchronous", self.synchronous.pragma())?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(
            None,
            "journal_size_limit",
            crate::checkpoint::LOG_KEPT_BYTES,
        )?;
        if self.checkpoints_apart {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        conn.set_prepared_statement_cache_capacity(PREPARED);
        Ok(conn)
    }

    /// Runs `work` in a write transaction on this process's writer, committed if it succeeds
    /// and rolled back if not; `None`, with nothing done, when SQLite's write lock is held
    /// elsewhere right now ([`InPlace::write_soon`] then tries again). `work` must not wait: it
    /// is a call on this thread ([`crate::writing::at_once`]). `kind` names the write in the
    /// metrics (each one is a commit: the load report counts them per document).
    fn write<T>(
        &self,
        kind: &'static str,
        work: impl FnOnce(&mut Writing<'_>) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let started = std::time::Instant::now();
        let made = self.write_now(work);
        let outcome = if made.is_some() { "made" } else { "lock_held" };
        metrics::histogram!(
            "lienthong_store_in_place_write_seconds",
            "outcome" => outcome,
            "kind" => kind
        )
        .record(started.elapsed().as_secs_f64());
        made
    }

    /// [`InPlace::write`], trying again every [`TRY_AGAIN_EVERY`] while the lock is held
    /// elsewhere, for at most [`WAIT_IN_PLACE`]; `None` after that.
    ///
    /// Going through sqlx's writer at once, as before, made every write that came while the
    /// lock was held a transaction of its own on sqlx's one connection, one after another, each
    /// slept in SQLite's busy handler (1, 2, 5, 10 ms...): after each restart of the log a few
    /// dozen documents queued there and the latency's tail was those queues
    /// (`docs/performance.md`). Waiting here, a group's calls stay one transaction, the calls
    /// that come meanwhile gather into the next, and nothing waits on the asking thread.
    pub(crate) async fn write_soon<T>(
        &self,
        kind: &'static str,
        work: impl FnMut(&mut Writing<'_>) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        self.write_within(WAIT_IN_PLACE, kind, work).await
    }

    /// [`InPlace::write_soon`], waiting at most `wait`.
    async fn write_within<T>(
        &self,
        wait: Duration,
        kind: &'static str,
        mut work: impl FnMut(&mut Writing<'_>) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let started = std::time::Instant::now();
        loop {
            if let Some(done) = self.write(kind, &mut work) {
                return Some(done);
            }
            if started.elapsed() >= wait {
                metrics::counter!("lienthong_store_in_place_gave_up_total", "kind" => kind)
                    .increment(1);
                return None;
            }
            tokio::time::sleep(TRY_AGAIN_EVERY).await;
        }
    }

    fn write_now<T>(
        &self,
        work: impl FnOnce(&mut Writing<'_>) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let writer = match self.writer.get() {
            Some(writer) => writer,
            None => match self.open_writer() {
                Ok(conn) => self.writer.get_or_init(|| Mutex::new(conn)),
                Err(e) => return Some(Err(e)),
            },
        };
        {
            let conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
            if !conn.is_autocommit() {
                // Left open by a write that panicked.
                let _ = conn.execute_batch("ROLLBACK");
            }
            match conn
                .prepare_cached("BEGIN IMMEDIATE")
                .and_then(|mut begin| begin.execute([]))
            {
                Ok(_) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    return None;
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
        let done = work(&mut Writing::InPlace(writer));
        let conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
        let done = done.and_then(|v| {
            conn.prepare_cached("COMMIT")
                .and_then(|mut commit| commit.execute([]))
                .map(|_| v)
                .map_err(Into::into)
        });
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        Some(done)
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // As sqlx's connections: wait for a lock another process holds (recovering the WAL
        // after a crash) instead of failing.
        conn.busy_timeout(Duration::from_secs(15))?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(PREPARED);
        Ok(conn)
    }

    /// The rows `text` selects with `params` bound to `$1, $2, ...` in order, each decoded.
    pub(crate) fn rows<T>(
        &self,
        text: &str,
        params: &[&str],
        decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if let Some(rows) = self.rows_on_writer(text, params, &decode) {
            return rows;
        }
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let rows = read(&conn, text, params, decode);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(conn);
        }
        rows
    }

    /// [`InPlace::rows`] on this process's writer, when it is open and no write holds it:
    /// `None` otherwise, and for a statement that would write (a reader refuses it) or a read
    /// that found the database busy (a reader waits for it).
    ///
    /// A connection keeps the pages it read until another connection commits; a reader's are
    /// dropped at every commit of this process's writer, and read again from the operating
    /// system, once for each commit (at low rates two a document: `docs/performance.md`). The
    /// writer's stay valid across its own commits, and what a read brings in is what the next
    /// write of the same document touches.
    fn rows_on_writer<T>(
        &self,
        text: &str,
        params: &[&str],
        decode: &impl Fn(&dyn Columns) -> Result<T, StoreError>,
    ) -> Option<Result<Vec<T>, StoreError>> {
        let _turn = self.turn.try_lock().ok()?;
        let conn = self.writer.get()?.try_lock().ok()?;
        if !conn.is_autocommit() {
            // Left open by a write that panicked: the next write rolls it back.
            return None;
        }
        let mut statement = match conn.prepare_cached(text) {
            Ok(statement) if statement.readonly() => statement,
            Ok(_) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        match rows_of(&mut statement, text, params, decode) {
            Err(StoreError::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                None
            }
            rows => Some(rows),
        }
    }
}

/// `values` in the order SQLite numbers `text`'s parameters. The store's statements name them
/// `$1, $2, ...` and bind the values in that order, as sqlx does; SQLite numbers a `$N` by
/// where it first appears, so a statement that names `$7` before `$2` (the outbox's rows all
/// end with one `created_ms`) needs its values put in that order.
pub(crate) fn in_sqlite_order<'v, V>(
    text: &str,
    values: &'v [V],
) -> Result<Vec<&'v V>, StoreError> {
    let mut order: Vec<&V> = Vec::with_capacity(values.len());
    let mut seen = vec![false; values.len()];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        i = end;
        let Ok(n) = text[start..end].parse::<usize>() else {
            continue;
        };
        let value = n
            .checked_sub(1)
            .and_then(|k| values.get(k).map(|v| (k, v)))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a statement names ${n} but {} values are bound",
                    values.len()
                ))
            })?;
        if !seen[value.0] {
            seen[value.0] = true;
            order.push(value.1);
        }
    }
    Ok(order)
}

/// The rows `text` returns on `conn` with `params` bound to `$1, $2, ...`, each decoded: the
/// readers' statements and those of a write in place (`writing.rs`).
pub(crate) fn read<T, V: rusqlite::ToSql>(
    conn: &Connection,
    text: &str,
    params: &[V],
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows_of(&mut conn.prepare_cached(text)?, text, params, decode)
}

/// The rows `statement` (prepared from `text`) returns with `params` bound, each decoded.
fn rows_of<T, V: rusqlite::ToSql>(
    statement: &mut rusqlite::CachedStatement<'_>,
    text: &str,
    params: &[V],
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = statement.query(rusqlite::params_from_iter(in_sqlite_order(text, params)?))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(in_place: &InPlace, keys: &[&str]) -> Result<Vec<(String, i64)>, StoreError> {
        let list = (1..=keys.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        in_place.rows(
            &format!("SELECT k, v FROM t WHERE k IN ({list}) ORDER BY k"),
            keys,
            |row| Ok((row.text("k")?, row.int("v")?)),
        )
    }

    #[test]
    fn values_are_bound_in_the_order_sqlite_numbers_the_parameters() {
        let values = ["a", "b", "c", "d", "e"];
        let order = |text: &str| {
            in_sqlite_order(text, &values).map(|v| v.into_iter().copied().collect::<Vec<_>>())
        };
        assert_eq!(
            order("WHERE k IN ($1, $2, $3)").expect("in order"),
            ["a", "b", "c"]
        );
        // Each row ends with the same `$5`, named before `$3`.
        assert_eq!(
            order("VALUES ($1, $2, $5), ($3, $4, $5)").expect("reordered"),
            ["a", "b", "e", "c", "d"]
        );
        // A name used twice is one parameter; `$1` is not the start of `$10`.
        assert_eq!(
            order("a = $1 OR b = $1 OR c = $2").expect("twice"),
            ["a", "b"]
        );
        let many: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
        let got = in_sqlite_order("($12, $1, $10)", &many).expect("two digits");
        assert_eq!(got, [&many[11], &many[0], &many[9]]);
        let missing = order("k = $6").expect_err("no sixth value");
        assert!(missing.to_string().contains("$6"), "{missing}");
    }

    #[test]
    fn the_writer_syncs_the_disk_at_each_commit_only_when_asked() {
        for (setting, pragma) in [
            (crate::SqliteSynchronous::Normal, 1),
            (crate::SqliteSynchronous::Full, 2),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("t.db");
            Connection::open(&path)
                .and_then(|c| c.execute_batch("PRAGMA journal_mode = WAL;"))
                .expect("database");
            let in_place = InPlace::new(path.display().to_string(), false, setting);
            let writer = in_place.open_writer().expect("writer");
            let value: i64 = writer
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .expect("PRAGMA synchronous");
            assert_eq!(value, pragma, "{setting:?}");
        }
    }

    #[test]
    fn reads_bind_in_order_see_each_commit_and_never_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
                 INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);",
            )
            .expect("schema");
        let in_place = InPlace::new(
            path.display().to_string(),
            false,
            crate::SqliteSynchronous::Normal,
        );

        assert_eq!(
            pairs(&in_place, &["c", "a"]).expect("read"),
            [("a".to_owned(), 1), ("c".to_owned(), 3)]
        );
        // The connection and its prepared statement are kept, and hold no snapshot: a commit
        // made since is read.
        writer
            .execute("UPDATE t SET v = 30 WHERE k = 'c'", [])
            .expect("update");
        assert_eq!(
            pairs(&in_place, &["c", "a"]).expect("read again"),
            [("a".to_owned(), 1), ("c".to_owned(), 30)]
        );
        assert_eq!(in_place.idle.lock().expect("idle").len(), 1);

        // A statement that would write is refused, and changes nothing.
        let refused = in_place.rows("DELETE FROM t WHERE k = $1 RETURNING k", &["a"], |row| {
            row.text("k")
        });
        assert!(matches!(refused, Err(StoreError::Sqlite(_))), "{refused:?}");
        assert_eq!(pairs(&in_place, &["a"]).expect("read").len(), 1);

        // A column that is not there is named in the error.
        let missing = in_place
            .rows("SELECT k FROM t WHERE k = $1", &["a"], |row| {
                row.int("nope")
            })
            .expect_err("no such column");
        assert!(missing.to_string().contains("nope"), "{missing}");
        assert!(!missing.is_transient());
    }

    /// A WAL database at `path` with a table `t (k, v)`: a connection of its own (another
    /// writer, and to read what was written) and this module's writer.
    fn table_and_writer(path: &std::path::Path) -> (Connection, InPlace) {
        let other = Connection::open(path).expect("open");
        other
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
            )
            .expect("schema");
        let in_place = InPlace::new(
            path.display().to_string(),
            false,
            crate::SqliteSynchronous::Normal,
        );
        (other, in_place)
    }

    /// A write inserting row `k` into `t`.
    fn insert(k: &'static str) -> impl FnMut(&mut Writing<'_>) -> Result<u64, StoreError> {
        move |w| {
            crate::writing::at_once(w.execute(
                "INSERT INTO t VALUES ($1, 1)",
                &[crate::writing::Value::Text(k)],
            ))
        }
    }

    #[test]
    fn reads_are_made_on_the_writer_while_no_write_holds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let (other, in_place) = table_and_writer(&path);
        in_place
            .write("test", insert("a"))
            .expect("made")
            .expect("ok");

        // The writer is open and free: the read is made on it, and no reader is opened.
        assert_eq!(
            pairs(&in_place, &["a"]).expect("read"),
            [("a".to_owned(), 1)]
        );
        assert_eq!(in_place.idle.lock().expect("idle").len(), 0);
        // It sees what another connection commits, as a reader does.
        other
            .execute("UPDATE t SET v = 10 WHERE k = 'a'", [])
            .expect("update");
        assert_eq!(
            pairs(&in_place, &["a"]).expect("read again"),
            [("a".to_owned(), 10)]
        );
        assert_eq!(in_place.idle.lock().expect("idle").len(), 0);

        // During a write, a read goes to a reader, which sees what is committed only.
        let during = in_place
            .write("test", |w| {
                insert("b")(w)?;
                pairs(&in_place, &["a", "b"])
            })
            .expect("made")
            .expect("ok");
        assert_eq!(during, [("a".to_owned(), 10)]);
        assert_eq!(in_place.idle.lock().expect("idle").len(), 1);
        assert_eq!(
            pairs(&in_place, &["a", "b"]).expect("after the write"),
            [("a".to_owned(), 10), ("b".to_owned(), 1)]
        );

        // A statement that would write is refused with the writer free too, and changes nothing.
        let refused = in_place.rows("DELETE FROM t WHERE k = $1 RETURNING k", &["a"], |row| {
            row.text("k")
        });
        assert!(matches!(refused, Err(StoreError::Sqlite(_))), "{refused:?}");
        assert_eq!(pairs(&in_place, &["a"]).expect("read").len(), 1);
    }

    #[test]
    fn a_write_is_made_only_while_the_lock_is_free_and_undone_when_it_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let (other, in_place) = table_and_writer(&path);
        let count = |k: &str| -> i64 {
            other
                .query_row("SELECT count(*) FROM t WHERE k = $1", [k], |r| r.get(0))
                .expect("count")
        };

        // Another connection holds the write lock: nothing is done, and at once.
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let started = std::time::Instant::now();
        assert!(in_place.write("test", insert("a")).is_none());
        assert!(started.elapsed() < Duration::from_secs(1));
        other.execute_batch("COMMIT").expect("unlock");
        assert_eq!(count("a"), 0);

        // Free: made and committed.
        assert_eq!(
            in_place
                .write("test", insert("a"))
                .expect("made")
                .expect("ok"),
            1
        );
        assert_eq!(count("a"), 1);

        // A write that fails after a statement: the statement is undone, the next write goes on.
        let failed = in_place.write("test", |w| -> Result<(), StoreError> {
            insert("b")(w)?;
            Err(StoreError::Corrupt("changed my mind".into()))
        });
        assert!(
            matches!(failed, Some(Err(StoreError::Corrupt(_)))),
            "{failed:?}"
        );
        assert_eq!(count("b"), 0);
        // A statement that breaks a constraint: an error, the transaction undone.
        let duplicate = in_place.write("test", insert("a")).expect("made");
        assert!(
            matches!(duplicate, Err(StoreError::Sqlite(_))),
            "{duplicate:?}"
        );
        assert_eq!(
            in_place
                .write("test", insert("c"))
                .expect("made")
                .expect("ok"),
            1
        );
        assert_eq!((count("a"), count("b"), count("c")), (1, 0, 1));
    }

    #[tokio::test]
    async fn a_write_waits_in_place_for_a_lock_held_briefly_and_gives_up_on_one_held_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let (other, in_place) = table_and_writer(&path);

        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        // A task on the same (one) thread, counting the milliseconds it gets to run.
        let ticks = Arc::new(AtomicU32::new(0));
        let ticking = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Held by another connection (on a thread of its own, as another process would) until
        // that task has run five times: only a write that waits without holding the thread
        // lets it, and once the lock is free the write is made in place. (No deadline is
        // tested: the wait allowed is far longer than any machine takes.)
        let held = Arc::new(std::sync::Barrier::new(2));
        let holder = {
            let (path, held, ticks) = (path.clone(), held.clone(), ticks.clone());
            std::thread::spawn(move || {
                let c = Connection::open(&path).expect("open");
                c.execute_batch("BEGIN IMMEDIATE").expect("lock");
                held.wait();
                // (A write that held the thread would never let it: given up after 10 s, so
                // that such a write fails the test below instead of hanging it.)
                let since = std::time::Instant::now();
                while ticks.load(Ordering::Relaxed) < 5 && since.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                c.execute_batch("COMMIT").expect("unlock");
            })
        };
        held.wait();
        let made = in_place
            .write_within(Duration::from_secs(60), "test", insert("a"))
            .await;
        assert_eq!(made.expect("made in place").expect("ok"), 1);
        assert!(ticks.load(Ordering::Relaxed) >= 5);
        ticking.abort();
        holder.join().expect("holder");

        // Held for longer than it waits: nothing is made here (the caller goes through sqlx).
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let started = std::time::Instant::now();
        let wait = Duration::from_millis(20);
        assert!(
            in_place
                .write_within(wait, "test", insert("b"))
                .await
                .is_none()
        );
        assert!(started.elapsed() >= wait);
        other.execute_batch("COMMIT").expect("unlock");
        let count = |k: &str| -> i64 {
            other
                .query_row("SELECT count(*) FROM t WHERE k = $1", [k], |r| r.get(0))
                .expect("count")
        };
        assert_eq!((count("a"), count("b")), (1, 0));
    }
}
