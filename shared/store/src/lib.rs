//! The bus's durable state: agency registry, connected systems, accepted documents and their
//! per-recipient legs, the ledger of lifecycle events, the transactional outbox, and package blobs.
//!
//! One SQL implementation serves both backends through sqlx's `Any` driver: SQLite (the embedded
//! default) and PostgreSQL (production). Only the schema differs per backend; every query is written
//! in the SQL both understand, and one conformance suite runs against both.

mod blobs;
mod cache;
mod checkpoint;
mod columns;
mod documents;
mod groups;
mod in_place;
mod ledger;
mod outbox;
mod registry;
mod registry_file;
mod spool;
pub mod testing;
mod together;
mod verdicts;
mod writing;

use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};

pub use blobs::{BlobConfig, BoxFuture, ObjectStore};
pub use cache::{CACHED_BLOB_BYTES, CACHED_DOCUMENTS};
pub use documents::*;
pub use ledger::*;
pub use outbox::*;
pub use registry::*;
pub use registry_file::{
    CSV_COLUMNS, RegistryFileError, check_bus_name, registry_csv, registry_from_csv,
    registry_from_json,
};
pub use spool::{Body, Held, SpoolError, SpoolWriter, Spooled, SyncSpoolWriter};
pub use together::{gather, gather_after};
pub use verdicts::*;

/// Where the store lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://data/lienthong.db` or `postgres://user@host/db`.
    pub url: String,
    /// Connection pool size; SQLite serialises writers anyway, so a small pool is best there.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Where package bytes go.
    #[serde(default)]
    pub blobs: BlobConfig,
    /// Attachments larger than this (in bytes) are left in the stored package and read from it
    /// a piece at a time, never held in memory whole.
    #[serde(default = "default_large_attachment")]
    pub large_attachment_bytes: u64,
    /// Packages and renditions of at most this many bytes are kept in the database, written in
    /// the transaction that names them, whatever `blobs` says: no file to create, sync and
    /// rename per document. Larger ones go to `blobs`. 0 sends everything to `blobs`.
    #[serde(default = "default_inline_blob")]
    pub inline_blob_bytes: u64,
    /// How many documents' rows a process keeps in memory once read (rows never change after
    /// acceptance), so the stages it chains read each from the database once. 0 keeps none.
    #[serde(default = "default_cached_documents")]
    pub cached_documents: usize,
    /// How many bytes of blobs read from the database (packages and renditions within
    /// `inline_blob_bytes`) a process keeps in memory, so the stages it chains read a package
    /// once. A blob is named by its SHA-256 and never changes. 0 keeps none.
    #[serde(default = "default_cached_blob_bytes")]
    pub cached_blob_bytes: usize,
    /// SQLite only: copy the write-ahead log back into the database file every this many
    /// milliseconds, in a task of its own, instead of after whichever commit finds the log long
    /// (SQLite's own way, which syncs the disk on the write path; see `checkpoint.rs`).
    /// 0 leaves checkpoints to SQLite.
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_ms: u64,
    /// SQLite only: when a commit is on the disk (`PRAGMA synchronous`).
    #[serde(default)]
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite only: the size of the database's pages, in bytes (a power of two from 512 to
    /// 65,536), set when the database file is created; an existing file keeps its own.
    #[serde(
        default = "default_sqlite_page_size",
        deserialize_with = "deserialize_sqlite_page_size"
    )]
    pub sqlite_page_size: u32,
}

/// `store.sqlite_page_size` by default. A commit writes every page it changed whole, to the log
/// and again to the database file; most of a document's are leaves of the indexes, each changed
/// by a few dozen bytes. At 2 KiB instead of SQLite's 4 KiB a document of 20 KB writes about a
/// fifth fewer bytes at full speed and a third fewer at half that rate, for 1 to 3% more CPU
/// (a package's overflow pages are twice as many); smaller still, the CPU grows by a fifth
/// (docs/performance.md).
pub const SQLITE_PAGE_SIZE: u32 = 2048;

fn default_sqlite_page_size() -> u32 {
    SQLITE_PAGE_SIZE
}

/// A page size SQLite takes, or which rule it breaks.
fn check_sqlite_page_size(bytes: u32) -> Result<u32, String> {
    if (512..=65536).contains(&bytes) && bytes.is_power_of_two() {
        Ok(bytes)
    } else {
        Err(format!(
            "store.sqlite_page_size = {bytes}: must be a power of two from 512 to 65536"
        ))
    }
}

/// Refuses a page size SQLite does not take when the configuration is read (so that
/// `lienthong check-config` names it), not only when the store opens.
fn deserialize_sqlite_page_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    check_sqlite_page_size(u32::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// When a SQLite commit is on the disk (`store.sqlite_synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// A commit is in the write-ahead log when it returns, in the operating system's cache; the
    /// disk is synced by the checkpoints (every `store.checkpoint_ms`). A process that crashes
    /// or is killed loses nothing; a host that crashes or loses power can lose the commits since
    /// the last checkpoint, while the broker keeps the messages it confirmed.
    #[default]
    Normal,
    /// Each commit syncs the write-ahead log before it returns: a host that loses power loses
    /// no commit, for a sync of the disk per commit.
    Full,
}

impl SqliteSynchronous {
    /// The value of `PRAGMA synchronous`.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// How long [`Store::close`] waits for the connections to close.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// `store.checkpoint_ms` by default. Every 100 ms, a checkpoint copies back a tenth of a second's
/// writes: at 1 s, each one synced ten times as much at once, and the bus's tail latency (and the
/// broker's, on the same disk) paid for it (`docs/performance.md`).
pub const CHECKPOINT_MS: u64 = 100;

fn default_checkpoint_ms() -> u64 {
    CHECKPOINT_MS
}

fn default_cached_documents() -> usize {
    cache::CACHED_DOCUMENTS
}

fn default_cached_blob_bytes() -> usize {
    cache::CACHED_BLOB_BYTES
}

fn default_inline_blob() -> u64 {
    256 * 1024
}

fn default_large_attachment() -> u64 {
    1024 * 1024
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A read made in place on SQLite (`in_place.rs`).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("blob store: {0}")]
    Blob(#[from] std::io::Error),
    #[error("unsupported store url `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A setting of `[store]` out of its range: which, and the rule.
    #[error("{0}")]
    InvalidConfig(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// A request that the stored state does not allow; these are the caller's errors, not the store's.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("no document {0}")]
    NoSuchDocument(String),
    #[error("{0}")]
    IllegalTransition(String),
    #[error("{0} has no copy of document {1}")]
    NoSuchLeg(String, String),
}

impl StoreError {
    /// Worth retrying: the database or the disk was unavailable, not the request wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => !matches!(
                e,
                sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::Decode(_)
            ),
            // As sqlx's: what the database said or could not do, not a row that did not decode.
            Self::Sqlite(e) => !matches!(
                e,
                rusqlite::Error::QueryReturnedNoRows
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::Utf8Error(..)
                    | rusqlite::Error::InvalidColumnName(_)
                    | rusqlite::Error::InvalidColumnIndex(_)
                    | rusqlite::Error::InvalidColumnType(..)
            ),
            Self::Blob(_) => true,
            Self::UnsupportedUrl(_) | Self::InvalidConfig(_) | Self::Corrupt(_) | Self::Rule(_) => {
                false
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes).
    pool: AnyPool,
    /// Writes. On SQLite one connection, so that writers of this process wait their turn in the
    /// pool's queue, woken the moment the last one commits, instead of sleeping in SQLite's busy
    /// handler (1, 2, 5 ... 100 ms) while the database sits idle. On PostgreSQL, `pool`.
    writer: AnyPool,
    backend: Backend,
    blobs: blobs::Blobs,
    large_attachment_bytes: u64,
    inline_blob_bytes: u64,
    /// Documents already read by this process.
    documents: std::sync::Arc<cache::DocumentCache>,
    /// Small blobs already read by this process.
    small_blobs: std::sync::Arc<cache::BlobCache>,
    /// On a SQLite file, reads made on the asking thread (`in_place.rs`).
    in_place: Option<std::sync::Arc<in_place::InPlace>>,
    /// The stages' calls, each kind made for many callers at once (`together.rs`).
    groups: std::sync::Arc<groups::Groups>,
    /// SQLite's checkpoints, while any clone of this store lives (`store.checkpoint_ms`).
    _checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, include_str!("../migrations/sqlite/0002_verdicts.sql")),
    (3, include_str!("../migrations/sqlite/0003_audit_chain.sql")),
    (4, include_str!("../migrations/sqlite/0004_formats.sql")),
    (
        5,
        include_str!("../migrations/sqlite/0005_registry_history.sql"),
    ),
    (6, include_str!("../migrations/sqlite/0006_federation.sql")),
    (7, include_str!("../migrations/sqlite/0007_search.sql")),
    (
        8,
        include_str!("../migrations/sqlite/0008_system_certificates.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_spliced_renditions.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_response_for_partial.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_initial.sql")),
    (2, include_str!("../migrations/postgres/0002_verdicts.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_audit_chain.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_formats.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_registry_history.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_federation.sql"),
    ),
    (7, include_str!("../migrations/postgres/0007_search.sql")),
    (
        8,
        include_str!("../migrations/postgres/0008_system_certificates.sql"),
    ),
    (
        9,
        include_str!("../migrations/postgres/0009_spliced_renditions.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_response_for_partial.sql"),
    ),
];

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if config.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if config.url.starts_with("postgres:") || config.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(config.url.clone()));
        };
        // Before anything is made on the disk (the database's directory, its file).
        if backend == Backend::Sqlite {
            check_sqlite_page_size(config.sqlite_page_size).map_err(StoreError::InvalidConfig)?;
        }
        let mut url = config.url.clone();
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(&url)
                && let Some(dir) = std::path::Path::new(&path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let max = config.max_connections.unwrap_or(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        });
        // An in-memory SQLite database exists once per connection: one connection for all.
        let in_memory = backend == Backend::Sqlite && sqlite_path(&url).is_none();
        let checkpoints = (backend == Backend::Sqlite && !in_memory && config.checkpoint_ms > 0)
            .then(|| Duration::from_millis(config.checkpoint_ms));
        let synchronous = config.sqlite_synchronous;
        let page_size = config.sqlite_page_size;
        let options = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                // A ping before each use is a round trip to the connection's thread; a SQLite
                // connection is a file open in this process, with no server to hang up.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL lets readers run beside the one writer; the busy timeout makes
                            // writers from other processes (`lienthong serve`) wait instead of fail.
                            // It comes first, so that a connection opened while another process
                            // holds a lock (recovering the WAL after a crash) waits its turn too.
                            conn.execute("PRAGMA busy_timeout = 15000").await?;
                            // Before the log is turned on: once in WAL mode, the file's page
                            // size is fixed (and a file that exists keeps its own).
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA page_size = {page_size}"
                            )))
                            .await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA synchronous = {}",
                                synchronous.pragma()
                            )))
                            .await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA journal_size_limit = {}",
                                checkpoint::LOG_KEPT_BYTES
                            )))
                            .await?;
                            if checkpoints.is_some() {
                                // The checkpointer's task copies the log back, not the commits.
                                conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            }
                        }
                        Ok(())
                    })
                })
        };
        let pool = options(if in_memory { 1 } else { max })
            .connect(&url)
            .await?;
        let writer = match backend {
            Backend::Sqlite if !in_memory => options(1).connect(&url).await?,
            _ => pool.clone(),
        };
        let blobs = blobs::Blobs::new(&config.blobs).await?;
        let checkpointer = checkpoints.zip(sqlite_path(&url)).map(|(every, path)| {
            std::sync::Arc::new(checkpoint::spawn(pool.clone(), path.into(), every))
        });
        let in_place = (backend == Backend::Sqlite && !in_memory)
            .then(|| sqlite_path(&url))
            .flatten()
            .map(|path| {
                std::sync::Arc::new(in_place::InPlace::new(
                    path,
                    checkpoints.is_some(),
                    synchronous,
                ))
            });
        let groups = std::sync::Arc::new(groups::Groups::spawn(&groups::Db {
            pool: pool.clone(),
            writer: writer.clone(),
            backend,
            in_place: in_place.clone(),
        }));
        let store = Self {
            pool,
            writer,
            in_place,
            backend,
            groups,
            blobs,
            large_attachment_bytes: config.large_attachment_bytes,
            inline_blob_bytes: config.inline_blob_bytes,
            documents: std::sync::Arc::new(cache::DocumentCache::new(config.cached_documents)),
            small_blobs: std::sync::Arc::new(cache::BlobCache::new(config.cached_blob_bytes)),
            _checkpointer: checkpointer,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Attachments above this size stay in the stored package (see
    /// [`StoreConfig::large_attachment_bytes`]).
    pub fn large_attachment_bytes(&self) -> u64 {
        self.large_attachment_bytes
    }

    /// Packages and renditions up to this size are held in memory and kept in the database (see
    /// [`StoreConfig::inline_blob_bytes`]); larger ones are written to spool files.
    pub fn inline_blob_bytes(&self) -> u64 {
        self.inline_blob_bytes
    }

    /// Applies the migrations not yet applied, each in its own transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        for &(version, sql) in migrations {
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                // Serialise concurrent starters of several services on one database.
                sqlx::query("SELECT pg_advisory_xact_lock(4243)")
                    .execute(&mut *tx)
                    .await?;
            }
            let applied: Option<AnyRow> =
                sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_none() {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
                    .bind(version)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                tracing::info!(version, "applied store migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Starts a write transaction on the writer (see [`begin_write`]).
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        begin_write(&self.writer, self.backend).await
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the connections, waiting [`CLOSE_WITHIN`] at most: a shutdown must not hang. sqlx's
    /// `Pool::close` waits until every connection has come back and closed; once, in CI, a test's
    /// teardown waited there for good while every connection's thread sat idle (sqlx's tracker
    /// has races in `close` of that kind, and it did not happen again in many runs). A connection
    /// not closed in time closes with the process.
    pub async fn close(&self) {
        self.close_within(CLOSE_WITHIN).await;
    }

    async fn close_within(&self, within: Duration) {
        for pool in [&self.pool, &self.writer] {
            if tokio::time::timeout(within, pool.close()).await.is_err() {
                tracing::warn!(
                    within_ms = within.as_millis() as u64,
                    open = pool.size(),
                    "the store's connections did not all close in time; they close with the process"
                );
            }
        }
    }
}

/// A write transaction on `writer`: on SQLite `BEGIN IMMEDIATE`, which takes the write lock up
/// front so that two writers wait on the busy timeout instead of deadlocking when a read turns
/// into a write.
async fn begin_write(
    writer: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    Ok(match backend {
        Backend::Sqlite => writer.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => writer.begin().await?,
    })
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new random secret (a system's key, a broker password, a token): 32 bytes from the OS, hex.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Marks SQL assembled from constants and numbered placeholders only: no value is ever
/// interpolated into query text, values are always bound.
fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

/// The rows `text` selects with `params` bound to `$1, $2, ...` in order, each decoded: in place
/// on a SQLite file (`in_place.rs`), else through `pool`.
async fn read_rows<T>(
    in_place: Option<&in_place::InPlace>,
    pool: &AnyPool,
    text: String,
    params: &[&str],
    decode: impl Fn(&dyn columns::Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if let Some(in_place) = in_place {
        return in_place.rows(&text, params, decode);
    }
    let mut q = sqlx::query(sql(text));
    for p in params {
        q = q.bind(*p);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|row| decode(row))
        .collect()
}

/// `$first, $first+1, ...` for an `IN (...)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, ..., $columns), ($columns+1, ...)`: `rows` rows of `columns` parameters each, for a
/// multi-row `INSERT`.
///
/// Made once for each shape and kept for the life of the process: the groups' statements are
/// padded to a power of two rows, and the acceptances' hold at most a group (64 documents), so
/// a process asks for at most a few hundred shapes (some hundreds of KB in all), each of them
/// for every group it writes (making the text each time was 1.6% of a worker's CPU).
fn value_rows(rows: usize, columns: usize) -> &'static str {
    static MADE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<(usize, usize), &'static str>>,
    > = std::sync::OnceLock::new();
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    made.entry((rows, columns)).or_insert_with(|| {
        let text = (0..rows)
            .map(|r| format!("({})", placeholders(r * columns + 1, columns)))
            .collect::<Vec<_>>()
            .join(", ");
        Box::leak(text.into_boxed_str())
    })
}

fn parse_format(
    row: &(impl columns::Columns + ?Sized),
    col: &str,
) -> Result<lienthong_edxml::Format, StoreError> {
    row.text(col)?.parse().map_err(StoreError::Corrupt)
}

fn get_opt_string(
    row: &(impl columns::Columns + ?Sized),
    col: &str,
) -> Result<Option<String>, StoreError> {
    row.opt_text(col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rows_are_numbered_row_by_row() {
        assert_eq!(value_rows(1, 3), "($1, $2, $3)");
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
    }

    #[tokio::test]
    async fn closing_returns_while_a_connection_is_still_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&StoreConfig {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            max_connections: None,
            blobs: BlobConfig::Db,
            large_attachment_bytes: default_large_attachment(),
            inline_blob_bytes: default_inline_blob(),
            cached_documents: 0,
            cached_blob_bytes: 0,
            checkpoint_ms: 0,
            sqlite_synchronous: SqliteSynchronous::Normal,
            sqlite_page_size: crate::SQLITE_PAGE_SIZE,
        })
        .await
        .expect("store");
        // Never given back while the store closes.
        let held = store.pool.acquire().await.expect("a connection");
        let closed = tokio::time::timeout(
            Duration::from_secs(30),
            store.close_within(Duration::from_millis(200)),
        )
        .await;
        assert!(
            closed.is_ok(),
            "close waited for a connection that never came back"
        );
        assert!(store.pool.is_closed() && store.writer.is_closed());
        drop(held);
    }
}
