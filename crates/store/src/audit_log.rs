//! The audit log's tree: leaf hashes and signed checkpoints (docs/audit.md). The events
//! themselves are in `audit_events` ([`Store::audit_events`], [`crate::Session::append_audit`]).

use crate::{Result, Store, StoreError, with_pool};
use sqlx::Row;

/// A checkpoint the sequencer signed: the tree of the first `size` events.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditCheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    /// The right edge of the tree (`audit::Frontier::to_bytes`), to continue from.
    pub frontier: Vec<u8>,
    /// The signed note (C2SP checkpoint).
    pub note: String,
    pub at: i64,
}

/// Advisory-lock key of the sequencer on PostgreSQL ("daman-sq"), taken by the transaction
/// that records a checkpoint.
pub(crate) const SEQUENCER_LOCK: i64 = 0x6461_6d61_6e2d_7371;
/// Advisory-lock key serialising audit appends on PostgreSQL ("daman-au").
pub(crate) const APPEND_LOCK: i64 = 0x6461_6d61_6e2d_6175;

impl Store {
    /// The latest checkpoint, if any.
    pub async fn last_audit_checkpoint(&self) -> Result<Option<AuditCheckpointRow>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as::<_, AuditCheckpointRow>(
                "SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
            )
            .fetch_optional(p)
            .await?
        }))
    }

    /// Checkpoints of more than `size` events, smallest first, at most `limit`.
    pub async fn audit_checkpoints_after(
        &self,
        size: i64,
        limit: i64,
    ) -> Result<Vec<AuditCheckpointRow>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as::<_, AuditCheckpointRow>(
                "SELECT * FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
            )
            .bind(size)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// Stored leaf hashes of events with `seq > after`, in order, at most `limit`.
    pub async fn audit_leaves(&self, after: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        with_pool!(self, |p| {
            sqlx::query("SELECT seq, hash FROM audit_leaves WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
                .collect()
        })
    }

    /// The number of the last event appended (0 when there is none).
    pub async fn last_audit_seq(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS n FROM audit_events"
        )
        .fetch_one(p)
        .await?
        .try_get("n")?))
    }

    /// Records the leaves of events `previous size + 1 ..= checkpoint.size` and the checkpoint,
    /// in one transaction. Another sequencer having recorded the same is a
    /// [`StoreError::Conflict`], and nothing is written. On PostgreSQL the transaction first
    /// takes the sequencer's advisory lock (transaction-scoped): another node sealing right now
    /// is [`StoreError::Busy`], and nothing is written.
    pub async fn integrate_audit(
        &self,
        leaves: &[(i64, Vec<u8>)],
        checkpoint: &AuditCheckpointRow,
    ) -> Result<()> {
        let conflict = |e: StoreError| match e {
            StoreError::Conflict(_) => StoreError::Conflict("audit_checkpoint"),
            e => e,
        };
        macro_rules! write {
            ($tx:ident) => {
                for chunk in leaves.chunks(crate::BATCH) {
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO audit_leaves (seq, hash) ");
                    q.push_values(chunk, |mut b, (seq, hash)| {
                        b.push_bind(*seq).push_bind(hash.as_slice());
                    });
                    q.build()
                        .execute(&mut *$tx)
                        .await
                        .map_err(|e| conflict(e.into()))?;
                }
                sqlx::query(
                    "INSERT INTO audit_checkpoints (size, root, frontier, note, at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(checkpoint.size)
                .bind(&checkpoint.root)
                .bind(&checkpoint.frontier)
                .bind(&checkpoint.note)
                .bind(checkpoint.at)
                .execute(&mut *$tx)
                .await
                .map_err(|e| conflict(e.into()))?;
            };
        }
        match &self.pool {
            crate::Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                write!(tx);
                tx.commit().await?;
            }
            crate::Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                let held: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS held")
                    .bind(SEQUENCER_LOCK)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("held")?;
                if !held {
                    return Err(StoreError::Busy("another node is sealing the audit log"));
                }
                write!(tx);
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// What [`Store::read_counts`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    pub hour: i64,
    pub day: i64,
    pub seen_this_hour: bool,
    pub seen_today: bool,
}

impl Store {
    /// The persons revealed to a principal: distinct subjects in `hour` and since `day_start`
    /// (an hour number), and whether `subject` is among them.
    pub async fn read_counts(
        &self,
        principal_id: i64,
        hour: i64,
        subject: &[u8],
        day_start: i64,
    ) -> Result<ReadCounts> {
        with_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT COALESCE(SUM(CASE WHEN hour = $2 THEN 1 ELSE 0 END), 0) AS h, \
                 COUNT(DISTINCT subject) AS d, \
                 COALESCE(SUM(CASE WHEN hour = $2 AND subject = $4 THEN 1 ELSE 0 END), 0) AS sh, \
                 COALESCE(SUM(CASE WHEN subject = $4 THEN 1 ELSE 0 END), 0) AS sd \
                 FROM reads WHERE principal_id = $1 AND hour >= $3",
            )
            .bind(principal_id)
            .bind(hour)
            .bind(day_start)
            .bind(subject)
            .fetch_one(p)
            .await?;
            Ok(ReadCounts {
                hour: r.try_get("h")?,
                day: r.try_get("d")?,
                seen_this_hour: r.try_get::<i64, _>("sh")? > 0,
                seen_today: r.try_get::<i64, _>("sd")? > 0,
            })
        })
    }

    /// Records that `subject` was revealed to the principal in `hour` (once per hour).
    pub async fn record_read(&self, principal_id: i64, hour: i64, subject: &[u8]) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO reads (principal_id, hour, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(principal_id)
            .bind(hour)
            .bind(subject)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Forgets reads counted before `hour`.
    pub async fn prune_reads(&self, hour: i64) -> Result<u64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "DELETE FROM reads WHERE hour < $1"
        )
        .bind(hour)
        .execute(p)
        .await?
        .rows_affected()))
    }
}
