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
//! These connections only read (`PRAGMA query_only`): every write still goes through sqlx's one
//! writer connection, so writers keep their one queue. In WAL mode a reader never waits for the
//! writer; each statement reads the last committed state, as sqlx's readers do.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::columns::Columns;

/// Idle connections kept for the next reads: one per kind of grouped read, and a few more.
const KEPT: usize = 8;

/// Statements kept prepared per connection: each kind of read has up to seven texts (its groups
/// padded to powers of two up to 64).
const PREPARED: usize = 64;

/// Connections to one SQLite file that read in place.
pub(crate) struct InPlace {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

impl InPlace {
    /// Reads of the database at `path` (which sqlx has opened and migrated).
    pub(crate) fn new(path: String) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
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
}

fn read<T>(
    conn: &Connection,
    text: &str,
    params: &[&str],
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(text)?;
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
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
        let in_place = InPlace::new(path.display().to_string());

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
}
