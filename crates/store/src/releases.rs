//! Four-eyes releases of contact data for breach notifications (docs/audit.md).

use crate::{Result, Store, with_pool};

/// A request to release the contact data of the persons a breach report lists.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContactReleaseRow {
    pub id: i64,
    pub requested_by: i64,
    /// The report's principals, space-separated ids.
    pub principals: String,
    pub from_at: i64,
    pub to_at: i64,
    pub requested_at: i64,
    pub approved_by: Option<i64>,
    pub approved_at: Option<i64>,
    pub released_at: Option<i64>,
}

impl Store {
    pub async fn insert_contact_release(&self, r: &ContactReleaseRow) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO contact_releases (id, requested_by, principals, from_at, to_at, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(r.id)
        .bind(r.requested_by)
        .bind(&r.principals)
        .bind(r.from_at)
        .bind(r.to_at)
        .bind(r.requested_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    pub async fn contact_release(&self, id: i64) -> Result<Option<ContactReleaseRow>> {
        with_pool!(self, |p| Ok(sqlx::query_as(
            "SELECT * FROM contact_releases WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// Records the approval of a pending request by someone other than its requester; false if
    /// it is not pending (or is the requester's own).
    pub async fn approve_contact_release(&self, id: i64, by: i64, at: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE contact_releases SET approved_by = $2, approved_at = $3 \
             WHERE id = $1 AND approved_by IS NULL AND requested_by <> $2"
        )
        .bind(id)
        .bind(by)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Marks an approved request as released; false if it was already (it is released once).
    pub async fn mark_contact_release_used(&self, id: i64, at: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE contact_releases SET released_at = $2 \
             WHERE id = $1 AND approved_by IS NOT NULL AND released_at IS NULL"
        )
        .bind(id)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Person ids after `after`, in order, `limit` at most (a scan of the registry's ids, which
    /// are not personal data).
    pub async fn person_ids_after(&self, after: i64, limit: i64) -> Result<Vec<i64>> {
        with_pool!(self, |p| Ok(sqlx::query_scalar(
            "SELECT id FROM persons WHERE id > $1 ORDER BY id LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }
}
