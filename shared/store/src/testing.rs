//! Scratch PostgreSQL databases for tests: each test gets a database of its own on the server named
//! by `LIENTHONG_TEST_POSTGRES` (default: the local trust-auth server), dropped afterwards.

use sqlx::Executor;

use crate::StoreError;

/// The maintenance database URL tests create their databases from.
pub fn postgres_admin_url() -> String {
    std::env::var("LIENTHONG_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test.
#[derive(Debug)]
pub struct ScratchPostgres {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
}

impl ScratchPostgres {
    pub async fn create(prefix: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let admin_url = postgres_admin_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect(&admin_url).await?;
        // The name is ours: a fixed prefix and a UUID.
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_database(self) {
        if let Ok(admin) = sqlx::AnyPool::connect(&postgres_admin_url()).await {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .await;
            admin.close().await;
        }
    }
}

impl crate::Store {
    /// `PRAGMA synchronous` on the store's sqlx writer (SQLite: 1 NORMAL, 2 FULL).
    pub async fn sqlite_synchronous_for_tests(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("PRAGMA synchronous")
            .fetch_one(&self.writer)
            .await
            .and_then(|row| row.try_get::<i64, _>(0))
            .unwrap_or_else(|e| panic!("PRAGMA synchronous: {e}"))
    }

    /// The plan the database makes for `sql` with `$1` bound to `arg`, as text. On PostgreSQL
    /// with sequential scans set aside, so that an index the query can use shows even on the few
    /// rows of a test.
    pub async fn query_plan_for_tests(&self, sql: &str, arg: &str) -> String {
        use sqlx::Row;
        let mut tx = self
            .pool
            .begin()
            .await
            .unwrap_or_else(|e| panic!("begin: {e}"));
        let (explain, column) = match self.backend {
            crate::Backend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
            crate::Backend::Postgres => ("EXPLAIN", "QUERY PLAN"),
        };
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("enable_seqscan: {e}"));
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{explain} {sql}")))
            .bind(arg)
            .fetch_all(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{explain} {sql}: {e}"));
        let plan = rows
            .iter()
            .map(|r| r.try_get::<String, _>(column))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("reading the plan: {e}"));
        let _ = tx.rollback().await;
        plan.join("\n")
    }

    /// Dates a document (and its copies) as accepted at `ms`: for tests of searches by time.
    pub async fn set_created_for_tests(&self, doc_id: &str, ms: i64) {
        for table in ["documents", "legs"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET created_ms = $1 WHERE doc_id = $2"
            )))
            .bind(ms)
            .bind(doc_id)
            .execute(&self.writer)
            .await
            .unwrap_or_else(|e| panic!("dating {doc_id}: {e}"));
        }
    }
}
