//! Data keys, the nodes that use them, re-encryption of every sealed column, and lockdown
//! (docs/keys.md). The store still sees only ciphertext: re-encrypting is the caller's work,
//! the store reads sealed rows in key order and writes new ciphertexts back only where the old
//! ones are still in place (compare-and-set), so a concurrent change is never overwritten.

use crate::{Result, Store, StoreError, with_pool};
use domain::PersonField;
use sqlx::Row;

/// A wrapped data key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    pub id: u32,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
    /// When it became the key new ciphertexts are made with; `None` while it is only being
    /// distributed. The primary key is the highest id with a `primary_since`.
    pub primary_since: Option<i64>,
}

/// What one running daman last reported of its keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNodeRow {
    pub node: String,
    /// The highest data key id it can decrypt with.
    pub newest_key: u32,
    /// The key it encrypts with.
    pub primary_key: u32,
    pub seen_at: i64,
}

/// A table with encrypted columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTable {
    pub table: &'static str,
    /// The columns that key its rows, in order: `id` (the row id bound into every ciphertext)
    /// or, for blocks of declaration lines, (`declaration_id`, `last_person`).
    pub key: &'static [&'static str],
    /// Its encrypted columns.
    pub columns: Vec<&'static str>,
    /// Rows hold blocks of declaration lines: the column's ciphertext is the block's sealed
    /// part, bound to the declaration (`key[0]`) and to the block's directory
    /// ([`crate::blocks::sealed_part`]).
    pub blocks: bool,
}

/// Every table that holds ciphertext, and its encrypted columns. A test checks this against the
/// columns the application encrypts, so that no new column escapes rotation.
pub fn sealed_tables() -> Vec<SealedTable> {
    let by_id = |table, columns: &[&'static str]| SealedTable {
        table,
        key: &["id"],
        columns: columns.to_vec(),
        blocks: false,
    };
    vec![
        by_id("persons", &PersonField::ALL.map(PersonField::column)),
        by_id("cases", &["reason"]),
        by_id("factors", &["secret"]),
        by_id("enrolments", &["phone"]),
        by_id("rib_changes", &["rib"]),
        by_id("eid_flows", &["secret"]),
        by_id("preetablis", &["header", "employees"]),
        by_id("preetabli_lines", &["data"]),
        by_id("declarations", &["header"]),
        by_id("declaration_rejections", &["errors"]),
        by_id("employment_claims", &["declared"]),
        SealedTable {
            table: "declaration_line_blocks",
            key: &["declaration_id", "last_person"],
            columns: vec!["data"],
            blocks: true,
        },
    ]
}

/// One row of a sealed table: its key (the second part 0 for tables keyed by `id`) and its
/// encrypted columns, in [`SealedTable::columns`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRow {
    pub key: [i64; 2],
    pub values: Vec<Option<Vec<u8>>>,
}

/// A row as read, and the ciphertexts to write in its place (in [`SealedTable::columns`] order).
pub type Resealed = (SealedRow, Vec<Option<Vec<u8>>>);

impl Store {
    // ---- data keys -------------------------------------------------------------------------

    /// The wrapped data keys, by id.
    pub async fn data_keys(&self) -> Result<Vec<DataKeyRow>> {
        let rows = with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, wrapped, created_at, primary_since FROM data_keys ORDER BY id",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>("id")?,
                        r.try_get::<Vec<u8>, _>("wrapped")?,
                        r.try_get::<i64, _>("created_at")?,
                        r.try_get::<Option<i64>, _>("primary_since")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        rows.into_iter()
            .map(|(id, wrapped, created_at, primary_since)| {
                Ok(DataKeyRow {
                    id: u32::try_from(id).map_err(|_| StoreError::Corrupt("data key id"))?,
                    wrapped,
                    created_at,
                    primary_since,
                })
            })
            .collect()
    }

    /// Adds a data key, primary at once (the first key) or only distributed (a rotation's).
    /// A key with this id already there is a conflict.
    pub async fn insert_data_key(
        &self,
        id: u32,
        wrapped: &[u8],
        at: i64,
        primary: bool,
    ) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO data_keys (id, wrapped, created_at, primary_since) VALUES ($1, $2, $3, $4)"
        )
        .bind(i64::from(id))
        .bind(wrapped)
        .bind(at)
        .bind(primary.then_some(at))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Makes a distributed key primary; false if it is unknown or already primary.
    pub async fn make_key_primary(&self, id: u32, at: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE data_keys SET primary_since = $2 WHERE id = $1 AND primary_since IS NULL"
        )
        .bind(i64::from(id))
        .bind(at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    // ---- nodes -------------------------------------------------------------------------------

    /// The database's clock, in microseconds since 1970, as SQL: nodes' clocks may differ,
    /// so when a node was seen is the database's time.
    fn db_now(&self) -> &'static str {
        match self.pool {
            crate::Pool::Sqlite(_) => {
                "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS BIGINT)"
            }
            crate::Pool::Postgres(_) => {
                "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
            }
        }
    }

    /// Records what a node has loaded, seen now (the database's time), and forgets nodes not
    /// seen for a day.
    pub async fn report_key_node(
        &self,
        node: &str,
        newest_key: u32,
        primary_key: u32,
    ) -> Result<()> {
        let now = self.db_now();
        let upsert = format!(
            "INSERT INTO key_nodes (node, newest_key, primary_key, seen_at) VALUES ($1, $2, $3, {now}) \
             ON CONFLICT (node) DO UPDATE SET newest_key = excluded.newest_key, \
             primary_key = excluded.primary_key, seen_at = excluded.seen_at"
        );
        let forget = format!("DELETE FROM key_nodes WHERE seen_at < {now} - 86400000000");
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(upsert))
                .bind(node)
                .bind(i64::from(newest_key))
                .bind(i64::from(primary_key))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(forget))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Takes a node off the list (a process about to exit).
    pub async fn forget_key_node(&self, node: &str) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "DELETE FROM key_nodes WHERE node = $1"
        )
        .bind(node)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The nodes seen in the last `seconds` (by the database's clock).
    pub async fn key_nodes(&self, seconds: i64) -> Result<Vec<KeyNodeRow>> {
        let sql = format!(
            "SELECT node, newest_key, primary_key, seen_at FROM key_nodes \
             WHERE seen_at >= {} - $1 ORDER BY node",
            self.db_now()
        );
        let rows = with_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(seconds * 1_000_000)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>("node")?,
                        r.try_get::<i64, _>("newest_key")?,
                        r.try_get::<i64, _>("primary_key")?,
                        r.try_get::<i64, _>("seen_at")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        let id = |k: i64| u32::try_from(k).map_err(|_| StoreError::Corrupt("data key id"));
        rows.into_iter()
            .map(|(node, newest, primary, seen_at)| {
                Ok(KeyNodeRow {
                    node,
                    newest_key: id(newest)?,
                    primary_key: id(primary)?,
                    seen_at,
                })
            })
            .collect()
    }

    // ---- re-encryption -----------------------------------------------------------------------

    /// Up to `limit` rows of `t` after `after` (from the first when `None`), in key order.
    pub async fn sealed_rows(
        &self,
        t: &SealedTable,
        after: Option<[i64; 2]>,
        limit: i64,
    ) -> Result<Vec<SealedRow>> {
        let keys = t.key.join(", ");
        let filter = match (after, t.key.len()) {
            (None, _) => String::new(),
            (Some(_), 1) => format!("WHERE {keys} > $2"),
            (Some(_), _) => format!("WHERE ({keys}) > ($2, $3)"),
        };
        let sql = format!(
            "SELECT {keys}, {} FROM {} {filter} ORDER BY {keys} LIMIT $1",
            t.columns.join(", "),
            t.table
        );
        let width = t.key.len();
        let rows = with_pool!(self, |p| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit);
            if let Some(a) = after {
                for k in a.iter().take(width) {
                    q = q.bind(*k);
                }
            }
            let rows = q.fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    let mut key = [0i64; 2];
                    for (i, k) in key.iter_mut().enumerate().take(width) {
                        *k = r.try_get::<i64, _>(i)?;
                    }
                    let values = (0..t.columns.len())
                        .map(|c| r.try_get::<Option<Vec<u8>>, _>(width + c))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    Ok(SealedRow { key, values })
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(rows)
    }

    /// How many rows `table` (one of [`sealed_tables`]) holds.
    pub async fn count_rows(&self, table: &str) -> Result<u64> {
        if !sealed_tables().iter().any(|t| t.table == table) {
            return Err(StoreError::Corrupt("not a sealed table"));
        }
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = with_pool!(self, |p| sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(p)
            .await?);
        Ok(n.max(0) as u64)
    }

    /// Writes new ciphertexts for rows of `t`, in one transaction, each only if the row still
    /// holds exactly the old ones; returns how many rows were written (the others changed
    /// meanwhile, and are left as they are).
    pub async fn replace_sealed(&self, t: &SealedTable, rows: &[Resealed]) -> Result<u64> {
        let n = t.columns.len();
        let set: Vec<String> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let mut cond: Vec<String> = t
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", n + 1 + i))
            .collect();
        let base = n + t.key.len();
        cond.extend(
            t.columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} IS NOT DISTINCT FROM ${}", base + 1 + i)),
        );
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            t.table,
            set.join(", "),
            cond.join(" AND ")
        );
        let mut written = 0;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (old, new) in rows {
                if new.len() != n || old.values.len() != n {
                    return Err(StoreError::Corrupt("sealed row of another shape"));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for v in new {
                    q = q.bind(v.clone());
                }
                for k in old.key.iter().take(t.key.len()) {
                    q = q.bind(*k);
                }
                for v in &old.values {
                    q = q.bind(v.clone());
                }
                written += q.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(written)
    }

    // ---- lockdown ----------------------------------------------------------------------------

    /// Ends every live session (of principals of `role`, or of everyone), in any stage, with
    /// `reason`; returns how many.
    pub async fn end_all_sessions(&self, role: Option<&str>, at: i64, reason: &str) -> Result<u64> {
        let live = "UPDATE sessions SET ended_at = $1, end_reason = $2 \
                    WHERE ended_at IS NULL AND expires_at > $1";
        Ok(with_pool!(self, |p| match role {
            None => sqlx::query(live).bind(at).bind(reason).execute(p).await?,
            Some(role) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{live} AND principal_id IN (SELECT id FROM principals WHERE role = $3)"
                )))
                .bind(at)
                .bind(reason)
                .bind(role)
                .execute(p)
                .await?
            }
        }
        .rows_affected()))
    }
}
