//! Declarations, préétablis, rejections and careers: the rows, and the one transaction that
//! records a batch of imported declarations.

use crate::ledger::{LedgerEntryRow, entries_in};
use crate::{LineBlock, PersonCipher, Result, Store, with_pool};
use sqlx::{FromRow, Row};

/// An employer as a declaration names it: its id and affiliation number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmployerRef {
    pub id: i64,
    pub affiliate_number: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreetabliRow {
    pub id: i64,
    pub employer_id: i64,
    pub period: i64,
    pub transfer_id: i64,
    /// Its first line in `preetabli_lines` if it was issued before migration 0015 (0 after).
    pub first_line: i64,
    /// How many employees it lists.
    pub lines: i64,
    pub header: Vec<u8>,
    pub issued_at: i64,
    /// Its employees, sealed in one value (migration 0015). `None` for a préétabli issued
    /// before: its employees are lines `first_line .. first_line + lines` of
    /// `preetabli_lines`.
    pub employees: Option<Vec<u8>>,
    /// The persons it lists, in plaintext (migration 0024, [`persons_bytes`]); `None` for a
    /// préétabli issued before.
    pub persons: Option<Vec<u8>>,
}

/// A file an employer user sent that was rejected: its errors, sealed (`errors`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RejectionRow {
    pub id: i64,
    pub employer_id: i64,
    pub received_at: i64,
    /// How many errors the file had (the sealed list may stop before).
    pub error_count: i64,
    pub errors: Vec<u8>,
    /// The registered persons its errors name ([`persons_bytes`], migration 0024).
    pub persons: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreetabliLineRow {
    pub id: i64,
    pub preetabli_id: i64,
    pub person_id: i64,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeclarationRow {
    pub id: i64,
    pub employer_id: i64,
    pub period: i64,
    pub form: i64,
    pub status: String,
    pub digest: Vec<u8>,
    pub preetabli_id: Option<i64>,
    pub first_line: i64,
    pub lines: i64,
    pub entrants: i64,
    pub days: i64,
    pub gross: i64,
    pub capped: i64,
    pub employer_share: i64,
    pub employee_share: i64,
    pub header: Vec<u8>,
    pub received_at: i64,
    /// The declaration this one replaces (a rectification), if any.
    pub rectifies: Option<i64>,
    /// Its employer and employee shares by branch, as its transaction allocated them to the
    /// branches' ledger accounts (12 little-endian i64); `None` for a declaration accepted
    /// before allocations (migration 0020), whose ledger entry credits the branches itself.
    pub branch_shares: Option<Vec<u8>>,
}

/// Everything one import batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct ImportBatch {
    /// The claims its entrant lines make (after the declarations they name).
    pub claims: Vec<crate::ClaimRow>,
    pub declarations: Vec<DeclarationRow>,
    /// The declarations' lines, sealed in blocks ([`crate::blocks`]).
    pub blocks: Vec<LineBlock>,
    pub entries: Vec<LedgerEntryRow>,
    /// Employments that end (a line declared the person left or died): their current
    /// employment with the employer ends on this date (the period's last day).
    pub employment_ends: Vec<EmploymentEnd>,
    /// A rectification: the accepted declaration this batch's declaration replaces. It
    /// becomes `rectified` in the same transaction; if it is no longer `accepted`, nothing
    /// is written and the result is a conflict.
    pub rectified: Option<i64>,
}

/// The end of a person's current employment with an employer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmploymentEnd {
    pub employer_id: i64,
    pub person_id: i64,
    /// YYYY-MM-DD.
    pub end_date: String,
}

macro_rules! insert_declarations {
    ($tx:ident, $rows:expr) => {
        crate::repo::each_chunk!($tx, $rows, crate::BATCH, |chunk| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO declarations (id, employer_id, period, form, status, digest, preetabli_id, first_line, lines, entrants, days, gross, capped, employer_share, employee_share, header, received_at, rectifies, branch_shares) ",
            );
            q.push_values(chunk, |mut x, d| {
                x.push_bind(d.id)
                    .push_bind(d.employer_id)
                    .push_bind(d.period)
                    .push_bind(d.form)
                    .push_bind(d.status.as_str())
                    .push_bind(d.digest.as_slice())
                    .push_bind(d.preetabli_id)
                    .push_bind(d.first_line)
                    .push_bind(d.lines)
                    .push_bind(d.entrants)
                    .push_bind(d.days)
                    .push_bind(d.gross)
                    .push_bind(d.capped)
                    .push_bind(d.employer_share)
                    .push_bind(d.employee_share)
                    .push_bind(d.header.as_slice())
                    .push_bind(d.received_at)
                    .push_bind(d.rectifies)
                    .push_bind(d.branch_shares.as_deref());
            });
            q
        })
    };
}

/// Inserts line blocks in transaction `$tx`, in key order (they append).
macro_rules! insert_blocks {
    ($tx:ident, $rows:expr) => {
        crate::repo::each_chunk!($tx, $rows, crate::BATCH, |chunk| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO declaration_line_blocks (declaration_id, last_person, period, lines, data) ",
            );
            q.push_values(chunk, |mut x, b| {
                x.push_bind(b.declaration_id)
                    .push_bind(b.last_person)
                    .push_bind(b.period)
                    .push_bind(b.lines)
                    .push_bind(b.data.as_slice());
            });
            q
        })
    };
}

pub(crate) use insert_blocks;

/// Ends the current employments of [`EmploymentEnd`]s in transaction `$tx` (one begun by
/// the end date and not ended yet).
macro_rules! end_employments {
    ($tx:ident, $rows:expr) => {
        crate::repo::each_chunk!($tx, $rows, crate::BATCH, |chunk| {
            let mut q =
                sqlx::QueryBuilder::new("UPDATE employments SET end_date = v.column3 FROM (");
            q.push_values(chunk, |mut x, e| {
                x.push_bind(e.employer_id)
                    .push_bind(e.person_id)
                    .push_bind(e.end_date.as_str());
            });
            q.push(
                ") AS v WHERE employments.employer_id = v.column1 \
                 AND employments.person_id = v.column2 AND employments.end_date IS NULL \
                 AND employments.start_date <= v.column3",
            );
            q
        })
    };
}

/// Marks the declaration a rectification replaces (if any) in transaction `$tx`: from
/// `accepted` to `rectified`, or a conflict when it is no longer accepted.
macro_rules! mark_rectified {
    ($tx:ident, $id:expr) => {
        if let Some(id) = $id {
            let done = sqlx::query(
                "UPDATE declarations SET status = 'rectified' WHERE id = $1 AND status = 'accepted'",
            )
            .bind(id)
            .execute(&mut *$tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(crate::StoreError::Conflict("rectified"));
            }
            // Its claims nobody decided yet go with it: the rectification makes its own.
            sqlx::query(
                "UPDATE employment_claims SET state = 'withdrawn' \
                 WHERE declaration_id = $1 AND state = 'pending'",
            )
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// The time each step of an import batch's transaction took, logged at debug level
/// (`DAMAN_LOG=store=debug`) with the batch's row counts: where the writer's time goes
/// (docs/performance.md).
struct Laps {
    last: std::time::Instant,
    steps: Vec<(&'static str, u128)>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            last: std::time::Instant::now(),
            steps: Vec::with_capacity(8),
        }
    }

    /// Ends step `name`: the time since the previous step ended (or since the start).
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.steps
            .push((name, now.duration_since(self.last).as_micros()));
        self.last = now;
    }

    fn report(&self, b: &ImportBatch) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let steps: Vec<String> = self
                .steps
                .iter()
                .map(|(name, us)| format!("{name}={us}"))
                .collect();
            tracing::debug!(
                claims = b.claims.len(),
                ends = b.employment_ends.len(),
                declarations = b.declarations.len(),
                blocks = b.blocks.len(),
                entries = b.entries.len(),
                steps_us = %steps.join(" "),
                "import batch written"
            );
        }
    }
}

/// Whether `wanted` keys spread over `span` consecutive ones are better read as one range
/// (filtered afterwards) than looked up one by one: when they fill at least about half of it.
pub fn worth_a_range(wanted: i64, span: i64) -> bool {
    span <= wanted.saturating_mul(2).saturating_add(1_000)
}

/// Which column [`Store::employments_on`] selects by.
#[derive(Clone, Copy)]
enum EmploymentsBy {
    Employer,
    Person,
}

/// An employer and its préétabli, from a row of [`Store::declarants`]' join.
fn declarant<R>(r: &R) -> Result<(EmployerRef, Option<PreetabliRow>)>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    PreetabliRow: for<'r> FromRow<'r, R>,
{
    let employer = EmployerRef {
        id: r.try_get("declarant_id")?,
        affiliate_number: r.try_get("declarant_number")?,
    };
    let pre = match r.try_get::<Option<i64>, _>("id")? {
        Some(_) => Some(PreetabliRow::from_row(r)?),
        None => None,
    };
    Ok((employer, pre))
}

impl Store {
    /// Every employer's id, in the order of their affiliation numbers.
    pub async fn employer_ids(&self) -> Result<Vec<i64>> {
        with_pool!(self, |p| {
            let rows = sqlx::query("SELECT id FROM employers ORDER BY affiliate_number")
                .fetch_all(p)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// Every employer's affiliation number, in order.
    pub async fn employer_numbers(&self) -> Result<Vec<i64>> {
        with_pool!(self, |p| {
            let rows =
                sqlx::query("SELECT affiliate_number FROM employers ORDER BY affiliate_number")
                    .fetch_all(p)
                    .await?;
            rows.iter()
                .map(|r| Ok(r.try_get("affiliate_number")?))
                .collect()
        })
    }

    /// Employers by id or by affiliation number (`by_number`).
    pub async fn employers_where(
        &self,
        by_number: bool,
        keys: &[i64],
    ) -> Result<Vec<crate::EmployerRow>> {
        let col = if by_number { "affiliate_number" } else { "id" };
        let mut out = Vec::new();
        for chunk in keys.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q =
                    sqlx::QueryBuilder::new(format!("SELECT * FROM employers WHERE {col} IN ("));
                let mut sep = q.separated(", ");
                for k in chunk {
                    sep.push_bind(*k);
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    out.push(crate::repo::employer_from_row(&r)?);
                }
            });
        }
        Ok(out)
    }

    /// The employers with these affiliation numbers, each with its préétabli for `period` if
    /// it has one: what an import needs of the declarants of a batch, without the employers'
    /// other columns. Numbers close together (an import's files, sorted by name, are a run of
    /// consecutive employers) are read as one range of the affiliation-number index, in
    /// order; scattered ones by one join per 500 numbers.
    pub async fn declarants(
        &self,
        numbers: &[i64],
        period: i64,
    ) -> Result<Vec<(EmployerRef, Option<PreetabliRow>)>> {
        const SELECT: &str = "SELECT e.id AS declarant_id, e.affiliate_number AS declarant_number, pre.* \
             FROM employers e LEFT JOIN preetablis pre \
             ON pre.employer_id = e.id AND pre.period = ";
        let mut out = Vec::with_capacity(numbers.len());
        let (Some(lo), Some(hi)) = (numbers.iter().min(), numbers.iter().max()) else {
            return Ok(out);
        };
        if worth_a_range(numbers.len() as i64, hi - lo) {
            let wanted: std::collections::HashSet<i64> = numbers.iter().copied().collect();
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(SELECT);
                q.push_bind(period)
                    .push(" WHERE e.affiliate_number BETWEEN ")
                    .push_bind(*lo)
                    .push(" AND ")
                    .push_bind(*hi);
                for r in q.build().fetch_all(p).await? {
                    let found = declarant(&r)?;
                    if wanted.contains(&found.0.affiliate_number) {
                        out.push(found);
                    }
                }
            });
            return Ok(out);
        }
        for chunk in numbers.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(SELECT);
                q.push_bind(period).push(" WHERE e.affiliate_number IN (");
                let mut sep = q.separated(", ");
                for n in chunk {
                    sep.push_bind(*n);
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    out.push(declarant(&r)?);
                }
            });
        }
        Ok(out)
    }

    /// Records préétablis, their employees inside them.
    pub async fn insert_preetablis(&self, rows: &[PreetabliRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(crate::BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO preetablis (id, employer_id, period, transfer_id, first_line, lines, header, issued_at, employees, persons) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.employer_id)
                        .push_bind(r.period)
                        .push_bind(r.transfer_id)
                        .push_bind(r.first_line)
                        .push_bind(r.lines)
                        .push_bind(r.header.as_slice())
                        .push_bind(r.issued_at)
                        .push_bind(r.employees.as_deref())
                        .push_bind(r.persons.as_deref());
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The préétablis of these employers for a period.
    pub async fn preetablis(&self, employer_ids: &[i64], period: i64) -> Result<Vec<PreetabliRow>> {
        let mut out = Vec::new();
        for chunk in employer_ids.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new("SELECT * FROM preetablis WHERE period = ");
                q.push_bind(period).push(" AND employer_id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                out.extend(q.build_query_as::<PreetabliRow>().fetch_all(p).await?);
            });
        }
        Ok(out)
    }

    /// Lines `first .. first + n` of préétablis issued before their employees were sealed
    /// inside them ([`PreetabliRow::employees`]).
    pub async fn preetabli_lines(&self, first: i64, n: i64) -> Result<Vec<PreetabliLineRow>> {
        Ok(with_pool!(self, |p| sqlx::query_as::<_, PreetabliLineRow>(
            "SELECT * FROM preetabli_lines WHERE id >= $1 AND id < $2 ORDER BY id"
        )
        .bind(first)
        .bind(first + n)
        .fetch_all(p)
        .await?))
    }

    /// The persons employed by these employers on `date` (YYYY-MM-DD): (employer, person).
    pub async fn employees_on(&self, employer_ids: &[i64], date: &str) -> Result<Vec<(i64, i64)>> {
        Ok(self
            .employments_on(EmploymentsBy::Employer, employer_ids, date)
            .await?
            .into_iter()
            .collect())
    }

    /// How many persons an employer employs on `date` (YYYY-MM-DD).
    pub async fn headcount(&self, employer_id: i64, date: &str) -> Result<i64> {
        Ok(self.employees_on(&[employer_id], date).await?.len() as i64)
    }

    /// Which of these (employer, person) pairs are employed on `date` (YYYY-MM-DD): found by
    /// person, so only the pairs asked about are read.
    pub async fn employed_among(
        &self,
        pairs: &[(i64, i64)],
        date: &str,
    ) -> Result<Vec<(i64, i64)>> {
        let wanted: std::collections::BTreeSet<(i64, i64)> = pairs.iter().copied().collect();
        let persons: std::collections::BTreeSet<i64> = wanted.iter().map(|(_, p)| *p).collect();
        let persons: Vec<i64> = persons.into_iter().collect();
        let employed = self
            .employments_on(EmploymentsBy::Person, &persons, date)
            .await?;
        Ok(employed.intersection(&wanted).copied().collect())
    }

    /// The (employer, person) of the employments current on `date` of these employers or
    /// persons.
    async fn employments_on(
        &self,
        by: EmploymentsBy,
        ids: &[i64],
        date: &str,
    ) -> Result<std::collections::BTreeSet<(i64, i64)>> {
        let column = match by {
            EmploymentsBy::Employer => "employer_id",
            EmploymentsBy::Person => "person_id",
        };
        let mut out = std::collections::BTreeSet::new();
        for chunk in ids.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT employer_id, person_id FROM employments WHERE start_date <= ",
                );
                q.push_bind(date.to_string())
                    .push(" AND (end_date IS NULL OR end_date >= ")
                    .push_bind(date.to_string())
                    .push(") AND ")
                    .push(column)
                    .push(" IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    out.insert((r.try_get("employer_id")?, r.try_get("person_id")?));
                }
            });
        }
        Ok(out)
    }

    /// The ciphertexts of these persons (in no particular order).
    pub async fn persons_by_id(&self, ids: &[i64]) -> Result<Vec<(i64, PersonCipher)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT id, {} FROM persons WHERE id IN (",
                    crate::PERSON_COLUMNS
                ));
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    out.push((r.try_get("id")?, PersonCipher::from_row(&r)?));
                }
            });
        }
        Ok(out)
    }

    /// Person ids by blind index of `column` (`immatriculation_bidx` or `cin_bidx`).
    pub async fn person_ids_by_index(
        &self,
        column: BlindColumn,
        keys: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, i64)>> {
        let col = match column {
            BlindColumn::Immatriculation => "immatriculation_bidx",
            BlindColumn::Cin => "cin_bidx",
        };
        let mut out = Vec::new();
        for chunk in keys.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {col} AS k, id FROM persons WHERE {col} IN ("
                ));
                let mut sep = q.separated(", ");
                for k in chunk {
                    sep.push_bind(k.clone());
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    out.push((r.try_get("k")?, r.try_get("id")?));
                }
            });
        }
        Ok(out)
    }

    /// The persons already declared by these employers for a period: (employer, person).
    pub async fn declared_persons(
        &self,
        employer_ids: &[i64],
        period: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for chunk in employer_ids.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT d.employer_id, b.data FROM declarations d \
                     JOIN declaration_line_blocks b ON b.declaration_id = d.id \
                     WHERE d.status = 'accepted' AND d.period = ",
                );
                q.push_bind(period).push(" AND d.employer_id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(p).await? {
                    let employer: i64 = r.try_get("employer_id")?;
                    let data: Vec<u8> = r.try_get("data")?;
                    // Claims' entrant lines (negative ids) are no person's.
                    for person in crate::blocks::persons(&data)?
                        .into_iter()
                        .filter(|p| *p > 0)
                    {
                        out.push((employer, person));
                    }
                }
            });
        }
        Ok(out)
    }

    /// Records a rejection and keeps only the `keep` latest of its employer.
    pub async fn insert_rejection(&self, row: &RejectionRow, keep: i64) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO declaration_rejections (id, employer_id, received_at, error_count, errors, persons) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(row.id)
            .bind(row.employer_id)
            .bind(row.received_at)
            .bind(row.error_count)
            .bind(&row.errors)
            .bind(row.persons.as_deref())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM declaration_rejections WHERE employer_id = $1 AND id NOT IN \
                 (SELECT id FROM declaration_rejections WHERE employer_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(row.employer_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// An employer's rejections, the latest first.
    pub async fn employer_rejections(&self, employer_id: i64) -> Result<Vec<RejectionRow>> {
        Ok(with_pool!(self, |p| sqlx::query_as::<_, RejectionRow>(
            "SELECT * FROM declaration_rejections WHERE employer_id = $1 ORDER BY id DESC"
        )
        .bind(employer_id)
        .fetch_all(p)
        .await?))
    }

    /// An employer's declarations, oldest first.
    pub async fn employer_declarations(&self, employer_id: i64) -> Result<Vec<DeclarationRow>> {
        Ok(with_pool!(self, |p| sqlx::query_as::<_, DeclarationRow>(
            "SELECT * FROM declarations WHERE employer_id = $1 ORDER BY period, id"
        )
        .bind(employer_id)
        .fetch_all(p)
        .await?))
    }

    /// The accepted declarations of these employers for a period.
    pub async fn accepted_declarations(
        &self,
        employer_ids: &[i64],
        period: i64,
    ) -> Result<Vec<DeclarationRow>> {
        let mut out = Vec::new();
        for chunk in employer_ids.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT * FROM declarations WHERE status = 'accepted' AND period = ",
                );
                q.push_bind(period).push(" AND employer_id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                out.extend(q.build_query_as::<DeclarationRow>().fetch_all(p).await?);
            });
        }
        Ok(out)
    }

    pub async fn declaration(&self, id: i64) -> Result<Option<DeclarationRow>> {
        Ok(with_pool!(self, |p| sqlx::query_as::<_, DeclarationRow>(
            "SELECT * FROM declarations WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// The blocks of a declaration's lines ([`crate::blocks`]).
    pub async fn declaration_blocks(&self, declaration_id: i64) -> Result<Vec<LineBlock>> {
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT last_person, period, lines, data FROM declaration_line_blocks \
                 WHERE declaration_id = $1 ORDER BY last_person",
            )
            .bind(declaration_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(last_person, period, lines, data)| LineBlock {
                declaration_id,
                last_person,
                period,
                lines,
                data,
            })
            .collect())
    }

    /// The persons a declaration declares, read from its blocks' directories (nothing is
    /// decrypted).
    pub async fn declaration_persons(&self, declaration_id: i64) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for b in self.declaration_blocks(declaration_id).await? {
            out.extend(
                crate::blocks::persons(&b.data)?
                    .into_iter()
                    .filter(|p| *p > 0),
            );
        }
        Ok(out)
    }

    /// The blocks that hold a person's career lines, with the employer and form of their
    /// declaration. Lines are stored in blocks keyed by declaration (so imports append): the
    /// career is every declaration, from the month the person's first employment with it
    /// began, of every employer the person was ever employed by, one block lookup each (the
    /// first block whose last person is at or after them; the caller opens it and takes the
    /// person's line, if it holds one). Every declared person has an employment with the
    /// declaring employer begun by the first day of the period (the préétabli is drawn from the
    /// employments on that day; an entrant's employment begins with the period), and
    /// employments are never deleted.
    pub async fn career(&self, person_id: i64) -> Result<Vec<(LineBlock, i64, i64)>> {
        /// A block's key, period, line count and data; its declaration's employer and form.
        type Found = (i64, i64, i64, i64, Vec<u8>, i64, i64);
        let rows: Vec<Found> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT b.declaration_id, b.last_person, d.period, b.lines, b.data, \
                 d.employer_id, d.form \
                 FROM (SELECT employer_id, MIN(start_date) AS since FROM employments \
                       WHERE person_id = $1 GROUP BY employer_id) e \
                 JOIN declarations d ON d.employer_id = e.employer_id \
                   AND d.period >= CAST(REPLACE(SUBSTR(e.since, 1, 7), '-', '') AS BIGINT) \
                 JOIN declaration_line_blocks b ON b.declaration_id = d.id \
                   AND b.last_person = (SELECT MIN(x.last_person) FROM declaration_line_blocks x \
                                        WHERE x.declaration_id = d.id AND x.last_person >= $1) \
                 WHERE d.status = 'accepted'",
            )
            .bind(person_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(declaration_id, last_person, period, lines, data, employer, form)| {
                    let block = LineBlock {
                        declaration_id,
                        last_person,
                        period,
                        lines,
                        data,
                    };
                    (block, employer, form)
                },
            )
            .collect())
    }

    /// Writes an import batch in one transaction: the employments it begins and ends, the
    /// declarations, the claims of their entrants, their lines (in blocks, [`crate::blocks`]) and their ledger entries. The
    /// many narrow ledger rows (entries, postings) go in as multi-row inserts on SQLite and as
    /// arrays expanded by `UNNEST` on PostgreSQL. An import writes its batches one right after
    /// the other, so it first folds a long write-ahead log ([`Store::fold_long_log`]).
    pub async fn insert_import(&self, b: &ImportBatch) -> Result<()> {
        self.fold_long_log().await?;
        with_pool!(self, |p| {
            let mut laps = Laps::start();
            let mut tx = p.begin().await?;
            mark_rectified!(tx, b.rectified);
            end_employments!(tx, b.employment_ends);
            laps.lap("ends");
            insert_declarations!(tx, b.declarations);
            laps.lap("declarations");
            insert_blocks!(tx, b.blocks);
            laps.lap("blocks");
            crate::claims::insert_claims!(tx, b.claims);
            laps.lap("claims");
            entries_in(&mut tx, &b.entries).await?;
            laps.lap("ledger");
            tx.commit().await?;
            laps.lap("commit");
            laps.report(b);
        });
        Ok(())
    }

    /// Counts of the declaration tables (for tests and reports).
    pub async fn declaration_counts(&self) -> Result<DeclarationCounts> {
        with_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM declarations) AS declarations, \
                 (SELECT CAST(COALESCE(SUM(lines), 0) AS BIGINT) FROM declaration_line_blocks) AS lines, \
                 (SELECT COUNT(*) FROM ledger_entries) AS entries, \
                 (SELECT COUNT(*) FROM ledger_postings) AS postings, \
                 (SELECT COUNT(*) FROM persons) AS persons, \
                 (SELECT COUNT(*) FROM employments) AS employments, \
                 (SELECT COUNT(*) FROM employment_claims) AS claims",
            )
            .fetch_one(p)
            .await?;
            Ok(DeclarationCounts {
                declarations: r.try_get("declarations")?,
                lines: r.try_get("lines")?,
                entries: r.try_get("entries")?,
                postings: r.try_get("postings")?,
                persons: r.try_get("persons")?,
                employments: r.try_get("employments")?,
                claims: r.try_get("claims")?,
            })
        })
    }
}

/// Which blind index to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlindColumn {
    Immatriculation,
    Cin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeclarationCounts {
    pub declarations: i64,
    pub lines: i64,
    pub entries: i64,
    pub postings: i64,
    pub persons: i64,
    pub employments: i64,
    pub claims: i64,
}

/// A list of person ids as stored in plaintext (`preetablis.persons`): 8 bytes each, little
/// endian.
pub fn persons_bytes(ids: &[i64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// [`persons_bytes`] read back.
pub fn persons_of_bytes(b: &[u8]) -> Result<Vec<i64>> {
    if !b.len().is_multiple_of(8) {
        return Err(crate::StoreError::Corrupt("person list"));
    }
    Ok(b.chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}
