//! Employment claims: an employer's word that a person works for it, pending until the person
//! or an agent decides (migration 0023, docs/declarations.md "Entrants").

use crate::blocks::LineBlock;
use crate::repo::{EmploymentRow, PersonRow, insert_persons};
use crate::{Result, Store, StoreError, with_pool};

/// What a claim says: one registered person (number, CIN and name matched), or anyone else
/// (an immatriculation request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    Link,
    Request,
}

/// Where a claim is in its life: pending, then once confirmed, refused or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    Pending,
    Confirmed,
    Refused,
    /// The declaration that made it was rectified before anyone decided.
    Withdrawn,
}

impl ClaimKind {
    pub fn name(self) -> &'static str {
        match self {
            ClaimKind::Link => "link",
            ClaimKind::Request => "request",
        }
    }

    fn parse(s: &str) -> Result<ClaimKind> {
        match s {
            "link" => Ok(ClaimKind::Link),
            "request" => Ok(ClaimKind::Request),
            _ => Err(StoreError::Corrupt("claim kind")),
        }
    }
}

impl ClaimState {
    pub fn name(self) -> &'static str {
        match self {
            ClaimState::Pending => "pending",
            ClaimState::Confirmed => "confirmed",
            ClaimState::Refused => "refused",
            ClaimState::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Result<ClaimState> {
        match s {
            "pending" => Ok(ClaimState::Pending),
            "confirmed" => Ok(ClaimState::Confirmed),
            "refused" => Ok(ClaimState::Refused),
            "withdrawn" => Ok(ClaimState::Withdrawn),
            _ => Err(StoreError::Corrupt("claim state")),
        }
    }
}

/// One row of `employment_claims`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub id: i64,
    pub employer_id: i64,
    pub kind: ClaimKind,
    pub state: ClaimState,
    pub period: i64,
    pub start_date: String,
    /// The declaration whose entrant line made it (`None`: an employer user's link).
    pub declaration_id: Option<i64>,
    /// The person: claimed (a link), or decided (a request once confirmed).
    pub person_id: Option<i64>,
    pub cin_bidx: Vec<u8>,
    /// The CIN and name as declared, sealed and bound to the row.
    pub declared: Vec<u8>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<i64>,
}

impl ClaimRow {
    /// The id a claim's entrant line has in its declaration's block directory: no person's.
    pub fn line_subject(&self) -> i64 {
        claim_line_subject(self.id)
    }
}

/// The block-directory id of the entrant line of claim `id` (persons' ids are positive).
pub fn claim_line_subject(id: i64) -> i64 {
    -id
}

type Raw = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Vec<u8>,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str = "id, employer_id, kind, state, period, start_date, declaration_id, person_id, \
                       cin_bidx, declared, created_at, decided_at, decided_by";

fn row(r: Raw) -> Result<ClaimRow> {
    Ok(ClaimRow {
        id: r.0,
        employer_id: r.1,
        kind: ClaimKind::parse(&r.2)?,
        state: ClaimState::parse(&r.3)?,
        period: r.4,
        start_date: r.5,
        declaration_id: r.6,
        person_id: r.7,
        cin_bidx: r.8,
        declared: r.9,
        created_at: r.10,
        decided_at: r.11,
        decided_by: r.12,
    })
}

/// Inserts [`ClaimRow`]s in transaction `$tx`, [`crate::BATCH`] rows a statement.
macro_rules! insert_claims {
    ($tx:ident, $rows:expr) => {
        $crate::repo::each_chunk!($tx, $rows, $crate::BATCH, |chunk| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO employment_claims (id, employer_id, kind, state, period, start_date, \
                 declaration_id, person_id, cin_bidx, declared, created_at) ",
            );
            q.push_values(chunk, |mut b, c| {
                b.push_bind(c.id)
                    .push_bind(c.employer_id)
                    .push_bind(c.kind.name())
                    .push_bind(c.state.name())
                    .push_bind(c.period)
                    .push_bind(c.start_date.clone())
                    .push_bind(c.declaration_id)
                    .push_bind(c.person_id)
                    .push_bind(c.cin_bidx.as_slice())
                    .push_bind(c.declared.as_slice())
                    .push_bind(c.created_at);
            });
            q
        })
    };
}
pub(crate) use insert_claims;

/// What deciding a set of pending claims writes, in one transaction.
#[derive(Debug, Default)]
pub struct ClaimDecision {
    pub claims: Vec<i64>,
    pub state: Option<ClaimState>,
    /// The person the claims are decided to be (set on a request's claims).
    pub person_id: Option<i64>,
    pub decided_by: Option<i64>,
    pub at: i64,
    /// A person immatriculated from a request.
    pub new_person: Option<PersonRow>,
    /// The employment a confirmation begins (nothing if the same one exists).
    pub employment: Option<EmploymentRow>,
}

impl Store {
    /// Claims not made by a declaration (an employer user's link).
    pub async fn insert_claims(&self, rows: &[ClaimRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_claims!(tx, rows);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` pending link claims after `after` whose person has not been told yet
    /// (oldest first): (claim, person).
    pub async fn unnotified_claims(&self, after: i64, limit: i64) -> Result<Vec<(i64, i64)>> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT id, person_id FROM employment_claims \
             WHERE notified_at IS NULL AND state = 'pending' AND kind = 'link' \
             AND person_id IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// Takes a claim's notice to send it, unless it was sent or another node took it less
    /// than `lease` ago. True if taken.
    pub async fn take_claim_notice(&self, id: i64, now: i64, lease: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE employment_claims SET notice_taken_at = $1 WHERE id = $2 \
             AND notified_at IS NULL AND (notice_taken_at IS NULL OR notice_taken_at < $3)"
        )
        .bind(now)
        .bind(id)
        .bind(now - lease)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Marks a claim's notice sent.
    pub async fn claim_notified(&self, id: i64, at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE employment_claims SET notified_at = $1 WHERE id = $2"
        )
        .bind(at)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn claim(&self, id: i64) -> Result<Option<ClaimRow>> {
        let sql = format!("SELECT {COLUMNS} FROM employment_claims WHERE id = $1");
        let r: Option<Raw> = with_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        r.map(row).transpose()
    }

    /// A person's claims in one state, oldest first.
    pub async fn claims_of_person(&self, person: i64, state: ClaimState) -> Result<Vec<ClaimRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM employment_claims WHERE person_id = $1 AND state = $2 ORDER BY id"
        );
        let rows: Vec<Raw> = with_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(person)
                .bind(state.name())
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(row).collect()
    }

    /// Pending claims after `after`, oldest first, at most `limit` (the agents' queue).
    pub async fn pending_claims(&self, after: i64, limit: i64) -> Result<Vec<ClaimRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM employment_claims WHERE state = 'pending' AND id > $1 \
             ORDER BY id LIMIT $2"
        );
        let rows: Vec<Raw> = with_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(row).collect()
    }

    /// The pending claims one decision settles with `c`: the same employer's, for the same
    /// person (a link) or the same declared CIN (a request), oldest first; `c` among them.
    pub async fn sibling_claims(&self, c: &ClaimRow) -> Result<Vec<ClaimRow>> {
        let same = match c.kind {
            ClaimKind::Link => "kind = 'link' AND person_id = $2",
            ClaimKind::Request => "kind = 'request' AND cin_bidx = $2",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM employment_claims \
             WHERE employer_id = $1 AND state = 'pending' AND {same} ORDER BY id"
        );
        let rows: Vec<Raw> = with_pool!(self, |p| {
            let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(c.employer_id);
            match c.kind {
                ClaimKind::Link => q.bind(c.person_id).fetch_all(p).await?,
                ClaimKind::Request => q.bind(c.cin_bidx.as_slice()).fetch_all(p).await?,
            }
        });
        rows.into_iter().map(row).collect()
    }

    /// The declared CINs (blind index) of the claims made by these employers' accepted
    /// declarations of `period`, each once declared for that period: (employer, declaration,
    /// CIN's blind index).
    pub async fn claimed_cins(
        &self,
        employers: &[i64],
        period: i64,
    ) -> Result<Vec<(i64, i64, Vec<u8>)>> {
        let mut out = Vec::new();
        for chunk in employers.chunks(crate::BATCH) {
            with_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT c.employer_id, d.id, c.cin_bidx FROM employment_claims c \
                     JOIN declarations d ON d.id = c.declaration_id AND d.status = 'accepted' \
                     WHERE c.period = ",
                );
                q.push_bind(period).push(" AND c.employer_id IN (");
                let mut s = q.separated(", ");
                for e in chunk {
                    s.push_bind(*e);
                }
                q.push(")");
                let rows: Vec<(i64, i64, Vec<u8>)> = q.build_query_as().fetch_all(p).await?;
                out.extend(rows);
            });
        }
        Ok(out)
    }

    /// Decides pending claims, in one transaction: a person immatriculated from a request (if
    /// any), every claim's new state (a conflict if one is no longer pending: someone decided
    /// first), and the employment a confirmation begins.
    pub async fn decide_claims(&self, d: &ClaimDecision) -> Result<()> {
        let state = d.state.ok_or(StoreError::Corrupt("claim decision"))?;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if let Some(person) = &d.new_person {
                let persons = std::slice::from_ref(person);
                insert_persons!(tx, persons);
            }
            let mut q = sqlx::QueryBuilder::new("UPDATE employment_claims SET state = ");
            q.push_bind(state.name())
                .push(", decided_at = ")
                .push_bind(d.at)
                .push(", decided_by = ")
                .push_bind(d.decided_by)
                .push(", person_id = COALESCE(person_id, ")
                .push_bind(d.person_id)
                .push(") WHERE state = 'pending' AND id IN (");
            let mut s = q.separated(", ");
            for id in &d.claims {
                s.push_bind(*id);
            }
            q.push(")");
            let done = q.build().execute(&mut *tx).await?.rows_affected();
            if done != d.claims.len() as u64 {
                return Err(StoreError::Conflict("claim decided"));
            }
            if let Some(e) = &d.employment {
                sqlx::query(
                    "INSERT INTO employments (id, employer_id, person_id, start_date, end_date, created_at) \
                     VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING",
                )
                .bind(e.id)
                .bind(e.employer_id)
                .bind(e.person_id)
                .bind(e.start_date.clone())
                .bind(e.created_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The block of each confirmed claim of `person` that holds its entrant line, with the
    /// claim's id, the declaration's employer and form (accepted declarations only).
    pub async fn claim_blocks(&self, person: i64) -> Result<Vec<(i64, LineBlock, i64, i64)>> {
        type Found = (i64, i64, i64, i64, i64, Vec<u8>, i64, i64);
        let rows: Vec<Found> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT c.id, b.declaration_id, b.last_person, d.period, b.lines, b.data, \
                 d.employer_id, d.form \
                 FROM employment_claims c \
                 JOIN declarations d ON d.id = c.declaration_id AND d.status = 'accepted' \
                 JOIN declaration_line_blocks b ON b.declaration_id = d.id \
                   AND b.last_person = (SELECT MIN(x.last_person) FROM declaration_line_blocks x \
                                        WHERE x.declaration_id = d.id AND x.last_person >= -c.id) \
                 WHERE c.person_id = $1 AND c.state = 'confirmed'",
            )
            .bind(person)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(claim, declaration_id, last_person, period, lines, data, employer, form)| {
                    let block = LineBlock {
                        declaration_id,
                        last_person,
                        period,
                        lines,
                        data,
                    };
                    (claim, block, employer, form)
                },
            )
            .collect())
    }
}
