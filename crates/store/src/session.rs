//! A connection held by one long-lived task (the audit writer, a lookup slot).
//!
//! Borrowing a pooled connection per query costs a round trip more than the query itself: the
//! pool tests every connection it takes back. The hot paths therefore keep their own connection,
//! and open a new one if it fails.

use crate::audit_log::APPEND_LOCK;
use crate::repo::{AuditRow, BATCH, LOOKUP_BATCH, Lookup, PERSON_COLUMNS, PersonCipher};
use crate::{Pool, Result, Store};
use sqlx::{PgConnection, QueryBuilder, Row, SqliteConnection};

pub(crate) enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same body on whichever connection the session holds: `$c` is `&mut` the connection.
macro_rules! with_conn {
    ($session:expr, |$c:ident| $body:expr) => {
        match &mut $session.conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

/// A connection taken out of the pool for one task's exclusive use.
pub struct Session {
    conn: Conn,
}

impl Store {
    /// A connection of its own (configured like the pool's), outside the pool's count.
    pub async fn session(&self) -> Result<Session> {
        let conn = match &self.pool {
            Pool::Sqlite(p) => {
                let mut c = p.acquire().await?.detach();
                // A long-lived session keeps a larger page cache of the registry (256 MiB): the
                // gate's lookups walk the blind indexes of millions of persons.
                sqlx::query("PRAGMA main.cache_size = -262144")
                    .execute(&mut c)
                    .await?;
                Conn::Sqlite(c)
            }
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?.detach()),
        };
        Ok(Session { conn })
    }
}

impl Session {
    /// The persons whose blind index in `by` is one of `keys`, each with the key it matched and
    /// its ciphertexts. One query for the whole set (the gate batches concurrent lookups); the
    /// number of placeholders is rounded up to a power of two so few statements are prepared.
    pub async fn persons_by_bidx(
        &mut self,
        by: Lookup,
        keys: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, i64, PersonCipher)>> {
        let col = match by {
            Lookup::Cin => "cin_bidx",
            Lookup::Immatriculation => "immatriculation_bidx",
        };
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(LOOKUP_BATCH) {
            let width = chunk.len().next_power_of_two();
            let placeholders: Vec<String> = (1..=width).map(|i| format!("${i}")).collect();
            // Only column names from the match above and numbered placeholders: no input.
            let sql = format!(
                "SELECT {col} AS k, id, {PERSON_COLUMNS} FROM persons WHERE {col} IN ({})",
                placeholders.join(", ")
            );
            let padded = chunk
                .iter()
                .chain(std::iter::repeat(&chunk[chunk.len() - 1]))
                .take(width);
            with_conn!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for k in padded {
                    q = q.bind(k.as_slice());
                }
                for r in q.fetch_all(&mut *c).await? {
                    out.push((
                        r.try_get("k")?,
                        r.try_get("id")?,
                        PersonCipher::from_row(&r)?,
                    ));
                }
            });
        }
        Ok(out)
    }

    /// Appends `rows` atomically: all are durable when this returns, or none. Events are
    /// numbered densely from 1 in commit order (the audit tree's leaf order, docs/audit.md).
    /// SQLite has one writer, and the rowid of this append-only table numbers them; PostgreSQL
    /// may have several nodes appending, so each group takes a transaction-scoped advisory lock
    /// and numbers its events after the last one committed.
    ///
    /// Returns the number given to the first row (the others follow it).
    pub async fn append_audit(&mut self, rows: &[AuditRow]) -> Result<i64> {
        if rows.is_empty() {
            return Ok(0);
        }
        // A multi-row INSERT numbers its rows consecutively: the statement holds the write
        // lock, and the rowid of a table nothing deletes from is the maximum plus one.
        let first = match &mut self.conn {
            Conn::Sqlite(c) if rows.len() <= BATCH => {
                // One statement is atomic by itself: one round trip.
                let done = audit_insert!(rows, None).build().execute(&mut *c).await?;
                done.last_insert_rowid() - rows.len() as i64 + 1
            }
            Conn::Sqlite(c) => {
                let mut tx = sqlx::Connection::begin(&mut *c).await?;
                let mut first = None;
                for chunk in rows.chunks(BATCH) {
                    let done = audit_insert!(chunk, None).build().execute(&mut *tx).await?;
                    first.get_or_insert(done.last_insert_rowid() - chunk.len() as i64 + 1);
                }
                tx.commit().await?;
                first.unwrap_or(0)
            }
            Conn::Postgres(c) => {
                // READ COMMITTED whatever the server's default: the MAX below must see the
                // group committed just before the lock was granted. A holder stuck on a dead
                // connection must not stall every audited request for long.
                let mut tx = sqlx::Connection::begin(&mut *c).await?;
                sqlx::raw_sql(
                    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '5s'",
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPEND_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let first: i64 =
                    sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM audit_events")
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                let mut next = first;
                for chunk in rows.chunks(BATCH) {
                    audit_insert!(chunk, Some(next))
                        .build()
                        .execute(&mut *tx)
                        .await?;
                    next += chunk.len() as i64;
                }
                tx.commit().await?;
                first
            }
        };
        Ok(first)
    }
}

/// `INSERT INTO audit_events` of `$chunk` (a `QueryBuilder`), numbered from `$first` when
/// it is `Some` (else by the database).
macro_rules! audit_insert {
    ($chunk:expr, $first:expr) => {{
        let first: Option<i64> = $first;
        let mut q = QueryBuilder::new(if first.is_some() {
            "INSERT INTO audit_events (seq, at, principal_id, role, action, purpose, subject, fields, detail, outcome, request_id) "
        } else {
            "INSERT INTO audit_events (at, principal_id, role, action, purpose, subject, fields, detail, outcome, request_id) "
        });
        q.push_values($chunk.iter().enumerate(), |mut b, (i, a): (usize, &AuditRow)| {
            if let Some(first) = first {
                b.push_bind(first + i as i64);
            }
            b.push_bind(a.at)
                .push_bind(a.principal_id)
                .push_bind(a.role.as_str())
                .push_bind(a.action.as_str())
                .push_bind(a.purpose.as_deref())
                .push_bind(a.subject.as_deref())
                .push_bind(a.fields)
                .push_bind(a.detail.as_deref())
                .push_bind(a.outcome.as_str())
                .push_bind(a.request_id.as_str());
        });
        q
    }};
}
use audit_insert;
