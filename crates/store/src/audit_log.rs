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
    /// When it was signed: microseconds since 1970-01-01T00:00:00Z.
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

    /// The entry up to which `audit_subjects` records the events' pseudonyms.
    pub async fn audit_subjects_upto(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_subjects_upto")
                .fetch_one(p)
                .await?
        }))
    }

    /// The pseudonyms named by events `after + 1 ..= upto` (those that name one), in order.
    pub async fn audit_event_subjects(&self, after: i64, upto: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT seq, subject FROM audit_events \
                 WHERE seq > $1 AND seq <= $2 AND subject IS NOT NULL ORDER BY seq",
            )
            .bind(after)
            .bind(upto)
            .fetch_all(p)
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

    /// Records the leaves of events `previous size + 1 ..= checkpoint.size`, the checkpoint,
    /// and, when given, the pseudonyms events name (`audit_subjects`) up to an entry
    /// (`audit_subjects_upto`), in one transaction. Another sequencer having recorded the same is a
    /// [`StoreError::Conflict`], and nothing is written. On PostgreSQL the transaction first
    /// takes the sequencer's advisory lock (transaction-scoped): another node sealing right now
    /// is [`StoreError::Busy`], and nothing is written.
    pub async fn integrate_audit(
        &self,
        leaves: &[(i64, [u8; 32])],
        subjects: Option<SubjectsUpto<'_>>,
        checkpoint: &AuditCheckpointRow,
    ) -> Result<()> {
        let mut by_bucket: Vec<(i64, i64, &[u8])> = subjects
            .map(|(s, _)| s)
            .unwrap_or_default()
            .iter()
            .map(|(seq, subject)| (subject_bucket(subject), *seq, subject.as_slice()))
            .collect();
        by_bucket.sort_unstable();
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
                for chunk in by_bucket.chunks(crate::BATCH) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO audit_subjects (bucket, seq, subject) ",
                    );
                    q.push_values(chunk, |mut b, (bucket, seq, subject)| {
                        b.push_bind(*bucket).push_bind(*seq).push_bind(*subject);
                    });
                    q.build()
                        .execute(&mut *$tx)
                        .await
                        .map_err(|e| conflict(e.into()))?;
                }
                if let Some((_, upto)) = subjects {
                    sqlx::query("INSERT INTO audit_subjects_upto (seq) VALUES ($1)")
                        .bind(upto)
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

/// The pseudonyms events name, as (entry, pseudonym), and the entry they are recorded up to.
pub type SubjectsUpto<'a> = (&'a [(i64, Vec<u8>)], i64);

/// Buckets of `audit_subjects`: the events naming a pseudonym are in its bucket, in order.
/// Sealing appends to the end of each bucket it touches (at most this many pages written per
/// seal, whatever the size of the table), and a person's accesses are found by reading their
/// bucket backwards from the newest: 1/1024th of the log at worst, stopping at a page's worth.
pub const SUBJECT_BUCKETS: i64 = 1024;

/// The bucket of a pseudonym (its first two bytes, modulo [`SUBJECT_BUCKETS`]).
pub fn subject_bucket(subject: &[u8]) -> i64 {
    let hi = i64::from(subject.first().copied().unwrap_or(0));
    let lo = i64::from(subject.get(1).copied().unwrap_or(0));
    ((hi << 8) | lo) % SUBJECT_BUCKETS
}

/// A person revealed to a principal on a day, and the last clock hour it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRow {
    pub principal_id: i64,
    pub day: i64,
    pub subject: Vec<u8>,
    pub last_hour: i64,
}

impl Store {
    /// The persons revealed to a principal on `day` (by every node), with their last hour.
    pub async fn reads_of(&self, principal_id: i64, day: i64) -> Result<Vec<(Vec<u8>, i64)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT subject, last_hour FROM reads WHERE principal_id = $1 AND day = $2",
            )
            .bind(principal_id)
            .bind(day)
            .fetch_all(p)
            .await?
        }))
    }

    /// The persons revealed on `day` to any user of an employer, with the last hour each was
    /// (an employer's users share one budget).
    pub async fn reads_of_employer(
        &self,
        employer_id: i64,
        day: i64,
    ) -> Result<Vec<(Vec<u8>, i64)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.subject, MAX(r.last_hour) AS last_hour FROM reads r \
                 JOIN principals p ON p.id = r.principal_id \
                 WHERE p.employer_id = $1 AND r.day = $2 GROUP BY r.subject",
            )
            .bind(employer_id)
            .bind(day)
            .fetch_all(p)
            .await?
        }))
    }

    /// Records reads (one transaction): a row per principal, day and person, keeping the
    /// latest hour.
    pub async fn record_reads(&self, rows: &[ReadRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(crate::BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO reads (principal_id, day, subject, last_hour) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.principal_id)
                        .push_bind(r.day)
                        .push_bind(r.subject.as_slice())
                        .push_bind(r.last_hour);
                });
                q.push(
                    " ON CONFLICT (principal_id, day, subject) DO UPDATE SET last_hour = \
                     CASE WHEN excluded.last_hour > reads.last_hour THEN excluded.last_hour ELSE reads.last_hour END",
                );
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets reads of days before `day`.
    pub async fn prune_reads(&self, day: i64) -> Result<u64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "DELETE FROM reads WHERE day < $1"
        )
        .bind(day)
        .execute(p)
        .await?
        .rows_affected()))
    }
}
