//! Where a write's statements run: through sqlx (its writer pool, or a transaction on it), or
//! in place on a SQLite file (`in_place.rs`). The writes made for every document (a leg moved
//! on, a verdict, a rendition, the ledger's events) are written once against this, so the same
//! statements run whichever way they go.

use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sqlx::AnyPool;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::columns::Columns;
use crate::in_place::{in_sqlite_order, read};
use crate::{StoreError, sql};

/// A value bound to a statement's next `$n`.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    /// Text made for the statement.
    Made(Option<String>),
    Int(i64),
    Bytes(&'a [u8]),
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Text(s) | Value::OptText(Some(s)) => ValueRef::Text(s.as_bytes()),
            Value::Made(Some(s)) => ValueRef::Text(s.as_bytes()),
            Value::OptText(None) | Value::Made(None) => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn bound<'q>(text: &str, values: &[Value<'_>]) -> Query<'q, sqlx::Any, AnyArguments> {
    let mut q = sqlx::query(sql(text.to_owned()));
    for v in values {
        q = match v {
            Value::Text(s) => q.bind(*s),
            Value::OptText(s) => q.bind(*s),
            Value::Made(s) => q.bind(s.as_deref()),
            Value::Int(i) => q.bind(*i),
            Value::Bytes(b) => q.bind(*b),
        };
    }
    q
}

/// A write's statements, and where they run.
pub(crate) enum Writing<'a> {
    /// Each statement alone, through sqlx's writer pool.
    Pool(&'a AnyPool),
    /// In a sqlx transaction.
    Tx(&'a mut sqlx::AnyConnection),
    /// In place, in the transaction open on the in-place writer (`InPlace::write`).
    InPlace(&'a Mutex<Connection>),
}

impl Writing<'_> {
    /// The rows `text` returns with `values` bound to `$1, $2, ...` in order, each decoded.
    pub(crate) async fn rows<T>(
        &mut self,
        text: &str,
        values: &[Value<'_>],
        decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = match self {
            Self::Pool(pool) => bound(text, values).fetch_all(*pool).await?,
            Self::Tx(conn) => bound(text, values).fetch_all(&mut **conn).await?,
            Self::InPlace(conn) => {
                let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                return read(&conn, text, values, decode);
            }
        };
        rows.iter().map(|row| decode(row)).collect()
    }

    /// Runs `text` with `values` bound; the rows it changed.
    pub(crate) async fn execute(
        &mut self,
        text: &str,
        values: &[Value<'_>],
    ) -> Result<u64, StoreError> {
        Ok(match self {
            Self::Pool(pool) => bound(text, values).execute(*pool).await?.rows_affected(),
            Self::Tx(conn) => bound(text, values)
                .execute(&mut **conn)
                .await?
                .rows_affected(),
            Self::InPlace(conn) => {
                let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                let mut statement = conn.prepare_cached(text)?;
                statement.execute(rusqlite::params_from_iter(in_sqlite_order(text, values)?))?
                    as u64
            }
        })
    }
}

/// A write's future run in place: it never waits (every statement is a call on this thread), so
/// it is done when first polled.
pub(crate) fn at_once<T>(
    write: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    futures_util::FutureExt::now_or_never(write).unwrap_or_else(|| {
        Err(StoreError::Corrupt(
            "a write made in place waited for something".into(),
        ))
    })
}
