//! Repositories: one method per question or command, the same SQL on both backends.

use crate::{Result, Store, with_pool};
use domain::PersonField;
use sqlx::{QueryBuilder, Row};

/// Rows a single multi-row INSERT carries (well under both backends' bind limits).
pub const BATCH: usize = 500;

/// Keys one lookup query carries.
pub const LOOKUP_BATCH: usize = 64;

/// The personal columns of `persons`, in [`PersonField::ALL`] order.
pub const PERSON_COLUMNS: &str = "immatriculation, cin, last_name, first_name, last_name_ar, first_name_ar, birth_date, phone, email, address, rib, children";

/// Executes one statement per chunk of `$size` rows of `$rows` in transaction `$tx`, in order:
/// `|$chunk| $build` makes the statement (a [`QueryBuilder`] binding the chunk's rows), and
/// the next chunk's is built while the database runs the one before it. A bulk write (an
/// import batch: half a million declarations, five million ledger postings) otherwise waits
/// for its own binding between two statements: about 2 s of an import's writer, measured
/// (docs/performance.md).
macro_rules! each_chunk {
    ($tx:ident, $rows:expr, $size:expr, |$chunk:ident| $build:expr) => {{
        let mut chunks = $rows.chunks($size);
        let mut next = chunks.next().map(|$chunk| $build);
        while let Some(mut q) = next {
            let (done, following) = tokio::join!(q.build().execute(&mut *$tx), async {
                chunks.next().map(|$chunk| $build)
            });
            done?;
            next = following;
        }
    }};
}
pub(crate) use each_chunk;

/// Inserts [`PersonRow`]s in transaction `$tx`, [`BATCH`] rows a statement.
macro_rules! insert_persons {
    ($tx:ident, $rows:expr) => {
        $crate::repo::each_chunk!($tx, $rows, $crate::BATCH, |chunk| {
            let mut q = sqlx::QueryBuilder::new(format!(
                "INSERT INTO persons (id, immatriculation_bidx, cin_bidx, {}, created_at, updated_at) ",
                $crate::PERSON_COLUMNS
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.immatriculation_bidx.as_slice())
                    .push_bind(r.cin_bidx.as_slice());
                for f in domain::PersonField::ALL {
                    b.push_bind(r.cipher.0[f.index()].as_deref());
                }
                b.push_bind(r.created_at).push_bind(r.created_at);
            });
            q
        })
    };
}
pub(crate) use insert_persons;

/// Inserts [`EmploymentRow`]s in transaction `$tx`.
macro_rules! insert_employments {
    ($tx:ident, $rows:expr) => {
        $crate::repo::each_chunk!($tx, $rows, $crate::BATCH, |chunk| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO employments (id, employer_id, person_id, start_date, end_date, created_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.id)
                    .push_bind(e.employer_id)
                    .push_bind(e.person_id)
                    .push_bind(e.start_date.clone())
                    .push_bind(e.end_date.clone())
                    .push_bind(e.created_at);
            });
            q
        })
    };
}

/// The ciphertexts of one person, indexed by [`PersonField::index`]; `None` where not on record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonCipher(pub [Option<Vec<u8>>; 12]);

impl PersonCipher {
    pub fn get(&self, f: PersonField) -> Option<&[u8]> {
        self.0[f.index()].as_deref()
    }

    pub fn set(&mut self, f: PersonField, ct: Vec<u8>) {
        self.0[f.index()] = Some(ct);
    }

    pub(crate) fn from_row<R: Row>(row: &R) -> Result<PersonCipher>
    where
        for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> &'r str: sqlx::ColumnIndex<R>,
    {
        let mut c = PersonCipher::default();
        for f in PersonField::ALL {
            c.0[f.index()] = row.try_get(f.column())?;
        }
        Ok(c)
    }
}

#[derive(Debug, Clone)]
pub struct PersonRow {
    pub id: i64,
    pub immatriculation_bidx: Vec<u8>,
    pub cin_bidx: Vec<u8>,
    pub cipher: PersonCipher,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployerRow {
    pub id: i64,
    pub affiliate_number: i64,
    pub ice: String,
    pub name: String,
    pub activity: String,
    pub city: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct EmploymentRow {
    pub id: i64,
    pub employer_id: i64,
    pub person_id: i64,
    pub start_date: String,
    pub end_date: Option<String>,
    pub created_at: i64,
}

/// `INSERT INTO principals` of a [`PrincipalRow`], bound and ready to run on a pool or a
/// transaction.
macro_rules! insert_principal {
    ($r:expr) => {
        sqlx::query(
            "INSERT INTO principals (id, role, label, person_id, employer_id, locked, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind($r.id)
        .bind(&$r.role)
        .bind(&$r.label)
        .bind($r.person_id)
        .bind($r.employer_id)
        .bind($r.locked)
        .bind($r.created_at)
    };
}
pub(crate) use insert_principal;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PrincipalRow {
    pub id: i64,
    pub role: String,
    pub label: String,
    pub person_id: Option<i64>,
    pub employer_id: Option<i64>,
    /// Disabled by an operator (or through the account commands).
    pub locked: bool,
    pub created_at: i64,
    /// Locked pending a security officer's review, and why (e.g. `read_budget_exceeded`).
    pub review_lock: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: i64,
    pub agent_id: i64,
    pub person_id: i64,
    /// Ciphertext.
    pub reason: Vec<u8>,
    pub opened_at: i64,
}

/// An audit event as written. `subject` is a keyed pseudonym, never an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: i64,
    pub principal_id: Option<i64>,
    pub role: String,
    pub action: String,
    pub purpose: Option<String>,
    pub subject: Option<Vec<u8>>,
    /// Bit mask of the personal fields concerned (see `PersonField::bits`).
    pub fields: i64,
    pub detail: Option<String>,
    pub outcome: String,
    pub request_id: String,
}

/// Which blind index to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Cin,
    Immatriculation,
}

pub(crate) fn employer_from_row<R: Row>(r: &R) -> Result<EmployerRow>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(EmployerRow {
        id: r.try_get("id")?,
        affiliate_number: r.try_get("affiliate_number")?,
        ice: r.try_get("ice")?,
        name: r.try_get("name")?,
        activity: r.try_get("activity")?,
        city: r.try_get("city")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    // ---- counters --------------------------------------------------------------------------

    /// Reserves `count` consecutive values of counter `name` and returns the first.
    pub async fn allocate(&self, name: &'static str, count: i64) -> Result<i64> {
        let next: i64 = with_pool!(self, |p| {
            sqlx::query("UPDATE counters SET next_value = next_value + $2 WHERE name = $1 RETURNING next_value")
                .bind(name)
                .bind(count)
                .fetch_one(p)
                .await?
                .try_get("next_value")?
        });
        Ok(next - count)
    }

    // ---- employers -------------------------------------------------------------------------

    pub async fn insert_employers(&self, rows: &[EmployerRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(BATCH) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO employers (id, affiliate_number, ice, name, activity, city, created_at) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.id)
                        .push_bind(e.affiliate_number)
                        .push_bind(e.ice.clone())
                        .push_bind(e.name.clone())
                        .push_bind(e.activity.clone())
                        .push_bind(e.city.clone())
                        .push_bind(e.created_at);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn employer_by_affiliate(
        &self,
        affiliate_number: i64,
    ) -> Result<Option<EmployerRow>> {
        with_pool!(self, |p| {
            let row = sqlx::query("SELECT * FROM employers WHERE affiliate_number = $1")
                .bind(affiliate_number)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(employer_from_row).transpose()
        })
    }

    // ---- persons ---------------------------------------------------------------------------

    pub async fn insert_persons(&self, rows: &[PersonRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_persons!(tx, rows);
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn person(&self, id: i64) -> Result<Option<PersonCipher>> {
        with_pool!(self, |p| {
            let row = sqlx::query(const_format_person_select!("id"))
                .bind(id)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(PersonCipher::from_row).transpose()
        })
    }

    /// Replaces the contact ciphertexts given (`None` keeps the stored value). False if no such person.
    pub async fn update_contact(
        &self,
        id: i64,
        phone: Option<Vec<u8>>,
        email: Option<Vec<u8>>,
        address: Option<Vec<u8>>,
        at: i64,
    ) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE persons SET phone = COALESCE($2, phone), email = COALESCE($3, email), \
             address = COALESCE($4, address), updated_at = $5 WHERE id = $1"
        )
        .bind(id)
        .bind(phone)
        .bind(email)
        .bind(address)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn count_persons(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT COUNT(*) AS n FROM persons"
        )
        .fetch_one(p)
        .await?
        .try_get("n")?))
    }

    // ---- employments -----------------------------------------------------------------------

    pub async fn insert_employments(&self, rows: &[EmploymentRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_employments!(tx, rows);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Whether `employer_id` employs `person_id` on `date` (YYYY-MM-DD).
    pub async fn employs(&self, employer_id: i64, person_id: i64, date: &str) -> Result<bool> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT 1 FROM employments WHERE person_id = $1 AND employer_id = $2 \
             AND start_date <= $3 AND (end_date IS NULL OR end_date >= $3) LIMIT 1"
        )
        .bind(person_id)
        .bind(employer_id)
        .bind(date)
        .fetch_optional(p)
        .await?
        .is_some()))
    }

    // ---- principals ------------------------------------------------------------------------

    pub async fn insert_principal(&self, r: &PrincipalRow) -> Result<()> {
        with_pool!(self, |p| insert_principal!(r)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    pub async fn principal(&self, id: i64) -> Result<Option<PrincipalRow>> {
        with_pool!(self, |p| {
            Ok(sqlx::query_as("SELECT * FROM principals WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?)
        })
    }

    pub async fn principal_by_label(&self, label: &str) -> Result<Option<PrincipalRow>> {
        with_pool!(self, |p| {
            Ok(sqlx::query_as("SELECT * FROM principals WHERE label = $1")
                .bind(label)
                .fetch_optional(p)
                .await?)
        })
    }

    // ---- cases -----------------------------------------------------------------------------

    pub async fn open_case(&self, c: &CaseRow) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO cases (id, agent_id, person_id, reason, opened_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(c.id)
        .bind(c.agent_id)
        .bind(c.person_id)
        .bind(&c.reason)
        .bind(c.opened_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    /// Whether `agent_id` has a case on `person_id` opened at or after `opened_since` and not closed.
    pub async fn has_open_case(
        &self,
        agent_id: i64,
        person_id: i64,
        opened_since: i64,
    ) -> Result<bool> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT 1 FROM cases WHERE agent_id = $1 AND person_id = $2 AND closed_at IS NULL \
             AND opened_at >= $3 LIMIT 1"
        )
        .bind(agent_id)
        .bind(person_id)
        .bind(opened_since)
        .fetch_optional(p)
        .await?
        .is_some()))
    }

    // ---- audit -----------------------------------------------------------------------------

    /// Audit events with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_events(&self, after: i64, limit: i64) -> Result<Vec<(i64, AuditRow)>> {
        with_pool!(self, |p| {
            let rows =
                sqlx::query("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
            rows.iter().map(audit_row).collect()
        })
    }

    /// One principal's audit events with `seq > after` and `from <= at < to`, oldest first, at
    /// most `limit`.
    pub async fn principal_audit_events(
        &self,
        principal_id: i64,
        from: i64,
        to: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AuditRow)>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT * FROM audit_events WHERE principal_id = $1 AND seq > $2 \
                 AND at >= $3 AND at < $4 ORDER BY principal_id, seq LIMIT $5",
            )
            .bind(principal_id)
            .bind(after)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(audit_row).collect()
        })
    }

    /// The audit events naming `subject` (a keyed pseudonym), newest first, numbered below
    /// `before`, `limit` at most: what "who read my data" lists. Events up to
    /// `audit_subjects_upto` are found through `audit_subjects` (which the sequencer fills, off
    /// the request path, every few seconds); later ones by reading the log's tail, up to `TAIL`
    /// of them.
    pub async fn audit_events_of_subject(
        &self,
        subject: &[u8],
        before: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AuditRow)>> {
        /// Tail events read at most (the sequencer normally keeps this to ten seconds' worth).
        const TAIL: i64 = 200_000;
        let sealed = self.audit_subjects_upto().await?;
        with_pool!(self, |p| {
            let mut out = Vec::new();
            if before > sealed + 1 {
                let rows = sqlx::query(
                    "SELECT * FROM (SELECT * FROM audit_events WHERE seq > $1 AND seq < $2 \
                     ORDER BY seq LIMIT $3) AS tail WHERE subject = $4 ORDER BY seq DESC LIMIT $5",
                )
                .bind(sealed)
                .bind(before)
                .bind(TAIL)
                .bind(subject)
                .bind(limit)
                .fetch_all(p)
                .await?;
                for r in &rows {
                    out.push(audit_row(r)?);
                }
            }
            let left = limit - out.len() as i64;
            if left > 0 {
                let rows = sqlx::query(
                    "SELECT e.* FROM audit_subjects s JOIN audit_events e ON e.seq = s.seq \
                     WHERE s.bucket = $1 AND s.seq < $2 AND s.subject = $3 \
                     ORDER BY s.bucket DESC, s.seq DESC LIMIT $4",
                )
                .bind(crate::audit_log::subject_bucket(subject))
                .bind(before.min(sealed + 1))
                .bind(subject)
                .bind(left)
                .fetch_all(p)
                .await?;
                for r in &rows {
                    out.push(audit_row(r)?);
                }
            }
            Ok(out)
        })
    }

    pub async fn count_audit(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT COUNT(*) AS n FROM audit_events"
        )
        .fetch_one(p)
        .await?
        .try_get("n")?))
    }
}

/// An audit event row, with its number.
fn audit_row<R: Row>(r: &R) -> Result<(i64, AuditRow)>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<Vec<u8>>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        r.try_get("seq")?,
        AuditRow {
            at: r.try_get("at")?,
            principal_id: r.try_get("principal_id")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            purpose: r.try_get("purpose")?,
            subject: r.try_get("subject")?,
            fields: r.try_get("fields")?,
            detail: r.try_get("detail")?,
            outcome: r.try_get("outcome")?,
            request_id: r.try_get("request_id")?,
        },
    ))
}

/// `SELECT id, <personal columns> FROM persons WHERE <col> = $1` as a `&'static str`.
macro_rules! const_format_person_select {
    ($col:literal) => {
        concat!(
            "SELECT id, immatriculation, cin, last_name, first_name, last_name_ar, first_name_ar, birth_date, phone, email, address, rib, children FROM persons WHERE ",
            $col,
            " = $1"
        )
    };
}
use const_format_person_select;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_columns_follow_the_field_order() {
        let cols: Vec<&str> = PersonField::ALL.iter().map(|f| f.column()).collect();
        assert_eq!(PERSON_COLUMNS, cols.join(", "));
        assert!(const_format_person_select!("id").contains(PERSON_COLUMNS));
    }
}
