//! A connection held by one long-lived task (the audit writer, a lookup slot).
//!
//! Borrowing a pooled connection per query costs a round trip more than the query itself: the
//! pool tests every connection it takes back. The hot paths therefore keep their own connection,
//! and open a new one if it fails.

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

    /// Appends `rows` atomically: all are durable when this returns, or none. Up to [`BATCH`]
    /// rows go in one statement (atomic by itself, one round trip); more in one transaction.
    pub async fn append_audit(&mut self, rows: &[AuditRow]) -> Result<()> {
        macro_rules! insert {
            ($chunk:expr) => {{
                let mut q = QueryBuilder::new(
                    "INSERT INTO audit_events (at, principal_id, role, action, purpose, subject, fields, detail, outcome, request_id) ",
                );
                q.push_values($chunk, |mut b, a: &AuditRow| {
                    b.push_bind(a.at)
                        .push_bind(a.principal_id)
                        .push_bind(a.role.clone())
                        .push_bind(a.action.clone())
                        .push_bind(a.purpose.clone())
                        .push_bind(a.subject.clone())
                        .push_bind(a.fields)
                        .push_bind(a.detail.clone())
                        .push_bind(a.outcome.clone())
                        .push_bind(a.request_id.clone());
                });
                q
            }};
        }
        if rows.is_empty() {
            return Ok(());
        }
        with_conn!(self, |c| {
            if rows.len() <= BATCH {
                insert!(rows).build().execute(&mut *c).await?;
            } else {
                let mut tx = sqlx::Connection::begin(&mut *c).await?;
                for chunk in rows.chunks(BATCH) {
                    insert!(chunk).build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        });
        Ok(())
    }
}
