//! Authentication storage: accounts, failure counters, second factors, one-time codes, SMS sends,
//! sessions, enrolments and RIB changes. Tokens, codes and login names arrive already hashed,
//! MACed or blind-indexed; secrets already encrypted.

use crate::repo::insert_principal;
use crate::{PrincipalRow, Result, Store, with_pool};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRow {
    pub principal_id: i64,
    pub login_bidx: Vec<u8>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FactorRow {
    pub id: i64,
    pub principal_id: i64,
    pub kind: String,
    pub secret: Vec<u8>,
    pub last_step: i64,
    pub confirmed: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub principal_id: i64,
    pub stage: String,
    pub method: String,
    pub idle_seconds: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub step_up_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnrolmentRow {
    pub id: i64,
    pub token_hash: Vec<u8>,
    pub role: String,
    pub person_id: Option<i64>,
    pub employer_id: Option<i64>,
    pub is_admin: bool,
    pub login_bidx: Vec<u8>,
    pub phone: Option<Vec<u8>>,
    pub password_hash: Option<String>,
    pub failures: i64,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RibChangeRow {
    pub id: i64,
    pub person_id: i64,
    pub principal_id: i64,
    pub rib: Vec<u8>,
    pub cancel_hash: Vec<u8>,
    pub requested_at: i64,
    pub effective_at: i64,
}

/// `INSERT INTO accounts` of an [`AccountRow`], bound and ready to run on a pool or a transaction.
macro_rules! insert_account {
    ($a:expr) => {
        sqlx::query(
            "INSERT INTO accounts (principal_id, login_bidx, password_hash, is_admin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind($a.principal_id)
        .bind(&$a.login_bidx)
        .bind(&$a.password_hash)
        .bind($a.is_admin)
        .bind($a.created_at)
    };
}

/// `INSERT INTO factors` of a [`FactorRow`], bound and ready to run.
macro_rules! insert_factor {
    ($f:expr) => {
        sqlx::query(
            "INSERT INTO factors (id, principal_id, kind, secret, last_step, confirmed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind($f.id)
        .bind($f.principal_id)
        .bind(&$f.kind)
        .bind(&$f.secret)
        .bind($f.last_step)
        .bind($f.confirmed)
        .bind($f.created_at)
    };
}

macro_rules! get {
    ($r:expr, $($f:ident),*) => { ($($r.try_get::<_, _>(stringify!($f))?),*) };
}

impl Store {
    // ---- accounts ----------------------------------------------------------------------------

    /// Creates a principal and its account in one transaction.
    pub async fn insert_account(&self, p: &PrincipalRow, a: &AccountRow) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_principal!(p).execute(&mut *tx).await?;
            insert_account!(a).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The account with this login name, and its principal.
    pub async fn account_by_login(&self, login_bidx: &[u8]) -> Result<Option<AccountRow>> {
        self.account_where("login_bidx", login_bidx.to_vec()).await
    }

    pub async fn account(&self, principal_id: i64) -> Result<Option<AccountRow>> {
        self.account_where("principal_id", principal_id).await
    }

    async fn account_where<T>(&self, column: &'static str, key: T) -> Result<Option<AccountRow>>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite>
            + for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Type<sqlx::Postgres>
            + Send
            + Clone,
    {
        let sql = format!(
            "SELECT principal_id, login_bidx, password_hash, is_admin, created_at FROM accounts WHERE {column} = $1"
        );
        with_pool!(self, |p| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(key.clone())
                .fetch_optional(p)
                .await?)
        })
    }

    /// Whether an account is bound to this person.
    pub async fn person_has_account(&self, person_id: i64) -> Result<bool> {
        Ok(with_pool!(self, |p| {
            sqlx::query(
            "SELECT 1 FROM principals pr JOIN accounts a ON a.principal_id = pr.id WHERE pr.person_id = $1 LIMIT 1"
        )
        .bind(person_id)
        .fetch_optional(p)
        .await?
        .is_some()
        }))
    }

    pub async fn set_password_hash(&self, principal_id: i64, phc: &str, at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE accounts SET password_hash = $2, updated_at = $3 WHERE principal_id = $1"
        )
        .bind(principal_id)
        .bind(phc)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Locks a principal pending review, for `why`; whether the lock is new.
    pub async fn lock_for_review(&self, principal_id: i64, why: &str) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE principals SET review_lock = $2 WHERE id = $1 AND review_lock IS NULL"
        )
        .bind(principal_id)
        .bind(why)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Locks every user of an employer pending review (they share one read budget): the ids of
    /// those not locked already.
    pub async fn lock_employer_for_review(&self, employer_id: i64, why: &str) -> Result<Vec<i64>> {
        Ok(with_pool!(self, |p| sqlx::query_scalar(
            "UPDATE principals SET review_lock = $2 \
             WHERE employer_id = $1 AND review_lock IS NULL RETURNING id"
        )
        .bind(employer_id)
        .bind(why)
        .fetch_all(p)
        .await?))
    }

    /// Lifts a review lock; whether the principal exists.
    pub async fn clear_review_lock(&self, principal_id: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE principals SET review_lock = NULL WHERE id = $1"
        )
        .bind(principal_id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Locks or unlocks a principal; false if there is none.
    pub async fn set_locked(&self, principal_id: i64, locked: bool) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE principals SET locked = $2 WHERE id = $1"
        )
        .bind(principal_id)
        .bind(locked)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    // ---- failure counters --------------------------------------------------------------------

    /// (consecutive failures, time of the last one) for a login name.
    pub async fn login_failures(&self, login_bidx: &[u8]) -> Result<(i64, i64)> {
        with_pool!(self, |p| {
            let row = sqlx::query(
                "SELECT failures, last_failure_at FROM login_throttle WHERE login_bidx = $1",
            )
            .bind(login_bidx)
            .fetch_optional(p)
            .await?;
            match row {
                Some(r) => Ok(get!(r, failures, last_failure_at)),
                None => Ok((0, 0)),
            }
        })
    }

    /// Counts an attempt against a login name, atomically, if the wait its failures impose is
    /// over at `at`: the new count, or `None` (throttled). `wait_sql` is the wait in seconds as an
    /// SQL expression over `login_throttle.failures` (`auth::throttle::sql_wait_seconds`). The
    /// attempt counts as a failure until [`Store::release_login_attempt`] or
    /// [`Store::clear_login_failures`] says otherwise, so concurrent attempts cannot all slip
    /// through on the same count.
    pub async fn reserve_login_attempt(
        &self,
        login_bidx: &[u8],
        at: i64,
        wait_sql: &str,
    ) -> Result<Option<i64>> {
        let sql = format!(
            "INSERT INTO login_throttle (login_bidx, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (login_bidx) DO UPDATE SET failures = login_throttle.failures + 1, \
             last_failure_at = excluded.last_failure_at \
             WHERE login_throttle.last_failure_at + 1000000 * {wait_sql} <= excluded.last_failure_at \
             RETURNING failures"
        );
        with_pool!(self, |p| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(login_bidx)
                .bind(at)
                .fetch_optional(p)
                .await?;
            row.map(|r| Ok(r.try_get("failures")?)).transpose()
        })
    }

    /// Gives back an attempt reserved at `reserved_at` that turned out right (a password, before
    /// its second factor): one failure less, and the time of the failure before it unless
    /// another attempt counted since.
    pub async fn release_login_attempt(
        &self,
        login_bidx: &[u8],
        reserved_at: i64,
        previous_failure_at: i64,
    ) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1, last_failure_at = \
             CASE WHEN last_failure_at = $2 THEN $3 ELSE last_failure_at END \
             WHERE login_bidx = $1 AND failures > 0"
        )
        .bind(login_bidx)
        .bind(reserved_at)
        .bind(previous_failure_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn clear_login_failures(&self, login_bidx: &[u8]) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "DELETE FROM login_throttle WHERE login_bidx = $1"
        )
        .bind(login_bidx)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    // ---- factors -----------------------------------------------------------------------------

    pub async fn insert_factor(&self, f: &FactorRow) -> Result<()> {
        with_pool!(self, |p| insert_factor!(f).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// A principal's factors, oldest first.
    pub async fn factors(&self, principal_id: i64) -> Result<Vec<FactorRow>> {
        with_pool!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT * FROM factors WHERE principal_id = $1 ORDER BY created_at, id",
            )
            .bind(principal_id)
            .fetch_all(p)
            .await?)
        })
    }

    /// Marks an unconfirmed factor confirmed (with its TOTP step) and deletes the principal's
    /// other factors of the same kind that are unconfirmed, or all of them when `replace` (a new
    /// phone number replaces the old). One transaction; false if the factor was not waiting.
    pub async fn confirm_factor(
        &self,
        id: i64,
        principal_id: i64,
        step: i64,
        replace: bool,
    ) -> Result<bool> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let kind: Option<String> = sqlx::query(
                "UPDATE factors SET confirmed = $3, last_step = $4 WHERE id = $1 AND principal_id = $2 \
                 AND confirmed = $5 RETURNING kind",
            )
            .bind(id)
            .bind(principal_id)
            .bind(true)
            .bind(step)
            .bind(false)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("kind"))
            .transpose()?;
            let Some(kind) = kind else {
                return Ok(false);
            };
            sqlx::query(
                "DELETE FROM factors WHERE principal_id = $1 AND kind = $2 AND id <> $3 \
                 AND (confirmed = $4 OR $5)",
            )
            .bind(principal_id)
            .bind(&kind)
            .bind(id)
            .bind(false)
            .bind(replace)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records that `step` was accepted for a TOTP factor, unless a later or equal step already
    /// was (a concurrent replay loses here).
    pub async fn advance_factor_step(&self, id: i64, step: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE factors SET last_step = $2 WHERE id = $1 AND last_step < $2"
        )
        .bind(id)
        .bind(step)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn set_factor_secret(&self, id: i64, secret: &[u8]) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE factors SET secret = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(secret)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Deletes a confirmed factor if at least one other confirmed factor of the `usable` kinds
    /// remains (none would leave the account without a second factor). The principal's account
    /// row is locked first, so two concurrent removals cannot both pass.
    pub async fn delete_factor_keeping_one(
        &self,
        id: i64,
        principal_id: i64,
        usable: &[&str],
        at: i64,
    ) -> Result<bool> {
        let kinds = usable
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let delete = format!(
            "DELETE FROM factors WHERE id = $1 AND principal_id = $2 AND (SELECT COUNT(*) FROM factors \
             WHERE principal_id = $2 AND confirmed = $3 AND id <> $1 AND kind IN ({kinds})) >= 1"
        );
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE accounts SET updated_at = $2 WHERE principal_id = $1")
                .bind(principal_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(sqlx::AssertSqlSafe(delete.clone()))
                .bind(id)
                .bind(principal_id)
                .bind(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    // ---- one-time codes ----------------------------------------------------------------------

    pub async fn insert_otp(
        &self,
        id: i64,
        flow_hash: &[u8],
        code_mac: &[u8],
        at: i64,
        expires_at: i64,
    ) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO otp_codes (id, flow_hash, code_mac, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id)
        .bind(flow_hash)
        .bind(code_mac)
        .bind(at)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    /// Codes of a flow still valid and unused at `now`.
    pub async fn live_otps(&self, flow_hash: &[u8], now: i64) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query(
            "SELECT COUNT(*) AS n FROM otp_codes WHERE flow_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )
        .bind(flow_hash)
        .bind(now)
        .fetch_one(p)
        .await?
        .try_get("n")?
        }))
    }

    /// Uses a code: true once for a valid unused code of the flow, false ever after.
    pub async fn use_otp(&self, flow_hash: &[u8], code_mac: &[u8], now: i64) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE otp_codes SET used_at = $3 WHERE flow_hash = $1 AND code_mac = $2 \
             AND used_at IS NULL AND expires_at > $3"
        )
        .bind(flow_hash)
        .bind(code_mac)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n >= 1)
    }

    // ---- SMS sends ---------------------------------------------------------------------------

    pub async fn record_sms(&self, phone_bidx: &[u8], at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO sms_sends (phone_bidx, at) VALUES ($1, $2)"
        )
        .bind(phone_bidx)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// SMS sent since `since`, to one number or (`None`) to all.
    pub async fn sms_sent_since(&self, phone_bidx: Option<&[u8]>, since: i64) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            let q = match phone_bidx {
                Some(b) => sqlx::query(
                    "SELECT COUNT(*) AS n FROM sms_sends WHERE phone_bidx = $1 AND at >= $2",
                )
                .bind(b.to_vec())
                .bind(since),
                None => {
                    sqlx::query("SELECT COUNT(*) AS n FROM sms_sends WHERE at >= $1").bind(since)
                }
            };
            q.fetch_one(p).await?.try_get("n")?
        }))
    }

    // ---- sessions ----------------------------------------------------------------------------

    pub async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO sessions (token_hash, principal_id, stage, method, idle_seconds, created_at, \
             last_seen_at, expires_at, step_up_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(&s.token_hash)
        .bind(s.principal_id)
        .bind(&s.stage)
        .bind(&s.method)
        .bind(s.idle_seconds)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.step_up_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    pub async fn login_session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>> {
        with_pool!(self, |p| {
            Ok(
                sqlx::query_as("SELECT * FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(p)
                    .await?,
            )
        })
    }

    pub async fn touch_session(&self, token_hash: &[u8], at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2"
        )
        .bind(token_hash)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn set_step_up(&self, token_hash: &[u8], at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE sessions SET step_up_at = $2 WHERE token_hash = $1"
        )
        .bind(token_hash)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Ends one session; false if it was already ended or does not exist.
    pub async fn end_session(&self, token_hash: &[u8], at: i64, reason: &str) -> Result<bool> {
        let n = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE token_hash = $1 AND ended_at IS NULL"
        )
        .bind(token_hash)
        .bind(at)
        .bind(reason)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Ends every live session of a principal but `except` (sessions already over their timeouts
    /// are not counted); returns how many.
    pub async fn end_sessions(
        &self,
        principal_id: i64,
        except: Option<&[u8]>,
        at: i64,
        reason: &str,
    ) -> Result<u64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE principal_id = $1 \
             AND ended_at IS NULL AND token_hash <> $4 AND expires_at > $2 \
             AND last_seen_at + idle_seconds * 1000000 > $2"
        )
        .bind(principal_id)
        .bind(at)
        .bind(reason)
        .bind(except.unwrap_or(&[]).to_vec())
        .execute(p)
        .await?
        .rows_affected()))
    }

    // ---- enrolments --------------------------------------------------------------------------

    pub async fn insert_enrolment(&self, e: &EnrolmentRow) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO enrolments (id, token_hash, role, person_id, employer_id, is_admin, login_bidx, \
             phone, password_hash, failures, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )
        .bind(e.id)
        .bind(&e.token_hash)
        .bind(&e.role)
        .bind(e.person_id)
        .bind(e.employer_id)
        .bind(e.is_admin)
        .bind(&e.login_bidx)
        .bind(&e.phone)
        .bind(&e.password_hash)
        .bind(e.failures)
        .bind(e.created_by)
        .bind(e.created_at)
        .bind(e.expires_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    pub async fn enrolment(&self, token_hash: &[u8]) -> Result<Option<EnrolmentRow>> {
        with_pool!(self, |p| {
            Ok(
                sqlx::query_as("SELECT * FROM enrolments WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(p)
                    .await?,
            )
        })
    }

    pub async fn set_enrolment_password(&self, id: i64, phc: &str) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE enrolments SET password_hash = $2 WHERE id = $1 AND used_at IS NULL"
        )
        .bind(id)
        .bind(phc)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Counts a try at an enrolment's code, if fewer than `max` were made and it is unused: true
    /// if this try may go ahead.
    pub async fn enrolment_attempt(&self, id: i64, max: i64) -> Result<bool> {
        let n = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE enrolments SET failures = failures + 1 WHERE id = $1 AND failures < $2 AND used_at IS NULL"
        )
        .bind(id)
        .bind(max)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// [`Store::enrolment_attempt`] for a token that may name no enrolment (`None`): then the
    /// same kind of write happens (its throttle's row, reserved just before, is written again
    /// as it is), so that the confirmation takes the same time either way. False for `None`.
    pub async fn enrolment_try(&self, id: Option<i64>, max: i64, throttle: &[u8]) -> Result<bool> {
        match id {
            Some(id) => self.enrolment_attempt(id, max).await,
            None => {
                with_pool!(self, |p| sqlx::query(
                    "UPDATE login_throttle SET failures = failures WHERE login_bidx = $1"
                )
                .bind(throttle)
                .execute(p)
                .await
                .map(|_| ())?);
                Ok(false)
            }
        }
    }

    /// Ends a person's enrolments still open (a new one replaces them).
    pub async fn end_enrolments_of_person(&self, person_id: i64, at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE enrolments SET used_at = $2 WHERE person_id = $1 AND used_at IS NULL"
        )
        .bind(person_id)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Turns an enrolment into a principal, its account and first factor, once.
    pub async fn complete_enrolment(
        &self,
        enrolment_id: i64,
        p: &PrincipalRow,
        a: &AccountRow,
        f: &FactorRow,
        at: i64,
    ) -> Result<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n =
                sqlx::query("UPDATE enrolments SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                    .bind(enrolment_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            insert_principal!(p).execute(&mut *tx).await?;
            insert_account!(a).execute(&mut *tx).await?;
            insert_factor!(f).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    // ---- RIB changes -------------------------------------------------------------------------

    pub async fn insert_rib_change(&self, c: &RibChangeRow) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO rib_changes (id, person_id, principal_id, rib, cancel_hash, requested_at, effective_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(c.id)
        .bind(c.person_id)
        .bind(c.principal_id)
        .bind(&c.rib)
        .bind(&c.cancel_hash)
        .bind(c.requested_at)
        .bind(c.effective_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    /// Cancels every pending change of a person (a newer request replaces them).
    pub async fn cancel_pending_rib_changes(&self, person_id: i64, at: i64) -> Result<u64> {
        Ok(with_pool!(self, |p| sqlx::query(
            "UPDATE rib_changes SET cancelled_at = $2 WHERE person_id = $1 \
             AND cancelled_at IS NULL AND applied_at IS NULL"
        )
        .bind(person_id)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// Cancels the pending change with this cancellation token hash: its (id, person id).
    pub async fn cancel_rib_change(
        &self,
        cancel_hash: &[u8],
        at: i64,
    ) -> Result<Option<(i64, i64)>> {
        with_pool!(self, |p| {
            let row = sqlx::query(
                "UPDATE rib_changes SET cancelled_at = $2 WHERE cancel_hash = $1 \
                 AND cancelled_at IS NULL AND applied_at IS NULL RETURNING id, person_id",
            )
            .bind(cancel_hash)
            .bind(at)
            .fetch_optional(p)
            .await?;
            row.map(|r| Ok(get!(r, id, person_id))).transpose()
        })
    }

    /// Pending changes whose cooling-off period is over at `now`.
    pub async fn due_rib_changes(&self, now: i64, limit: i64) -> Result<Vec<RibChangeRow>> {
        with_pool!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT id, person_id, principal_id, rib, cancel_hash, requested_at, effective_at \
                 FROM rib_changes WHERE effective_at <= $1 AND cancelled_at IS NULL \
                 AND applied_at IS NULL ORDER BY effective_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?)
        })
    }

    /// Applies a due change: the person's RIB becomes `rib` (already encrypted for the person's
    /// row), once. False if it was cancelled or applied meanwhile.
    pub async fn apply_rib_change(
        &self,
        id: i64,
        person_id: i64,
        rib: &[u8],
        at: i64,
    ) -> Result<bool> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE rib_changes SET applied_at = $2 WHERE id = $1 AND cancelled_at IS NULL AND applied_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query("UPDATE persons SET rib = $2, updated_at = $3 WHERE id = $1")
                .bind(person_id)
                .bind(rib)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

impl Store {
    // ---- passkey ceremonies ------------------------------------------------------------------

    /// Records a ceremony's state under `flow_hash`, replacing an unfinished one of the same flow.
    pub async fn put_passkey_ceremony(
        &self,
        flow_hash: &[u8],
        principal_id: i64,
        purpose: &str,
        state: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO passkey_ceremonies (flow_hash, principal_id, purpose, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (flow_hash) DO UPDATE SET \
             principal_id = excluded.principal_id, purpose = excluded.purpose, state = excluded.state, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, used_at = NULL"
        )
        .bind(flow_hash)
        .bind(principal_id)
        .bind(purpose)
        .bind(state)
        .bind(at)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    /// Takes a live ceremony's state, once: (principal id, state) if it exists for this purpose,
    /// is unused and unexpired at `now`.
    pub async fn take_passkey_ceremony(
        &self,
        flow_hash: &[u8],
        purpose: &str,
        now: i64,
    ) -> Result<Option<(i64, String)>> {
        with_pool!(self, |p| {
            let row = sqlx::query(
                "UPDATE passkey_ceremonies SET used_at = $3 WHERE flow_hash = $1 AND purpose = $2 \
                 AND used_at IS NULL AND expires_at > $3 RETURNING principal_id, state",
            )
            .bind(flow_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(p)
            .await?;
            row.map(|r| Ok(get!(r, principal_id, state))).transpose()
        })
    }
}

impl Store {
    // ---- E-ID flows --------------------------------------------------------------------------

    pub async fn insert_eid_flow(
        &self,
        id: i64,
        state_hash: &[u8],
        secret: &[u8],
        client: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO eid_flows (id, state_hash, secret, client, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(id)
        .bind(state_hash)
        .bind(secret)
        .bind(client)
        .bind(at)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Takes a live flow by its state hash, once: (id, encrypted secret, client).
    pub async fn take_eid_flow(
        &self,
        state_hash: &[u8],
        now: i64,
    ) -> Result<Option<(i64, Vec<u8>, String)>> {
        with_pool!(self, |p| {
            let row = sqlx::query(
                "UPDATE eid_flows SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL \
                 AND expires_at > $2 RETURNING id, secret, client",
            )
            .bind(state_hash)
            .bind(now)
            .fetch_optional(p)
            .await?;
            row.map(|r| Ok(get!(r, id, secret, client))).transpose()
        })
    }

    /// The principal whose account is bound to a person, if any.
    pub async fn account_for_person(&self, person_id: i64) -> Result<Option<PrincipalRow>> {
        with_pool!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT pr.* FROM principals pr JOIN accounts a ON a.principal_id = pr.id \
                 WHERE pr.person_id = $1 LIMIT 1",
            )
            .bind(person_id)
            .fetch_optional(p)
            .await?)
        })
    }
}

impl Store {
    /// Deletes authentication rows no longer of any use at `now` (microseconds): one-time codes,
    /// ceremonies, E-ID flows and enrolments expired for a day, SMS-send records and failure
    /// counters older than two days (past every limit and hold), sessions over for a week.
    /// Returns how many rows went.
    pub async fn purge_auth(&self, now: i64) -> Result<u64> {
        const DAY: i64 = 86_400_000_000;
        let statements: [(&str, i64); 7] = [
            ("DELETE FROM otp_codes WHERE expires_at < $1", now - DAY),
            (
                "DELETE FROM passkey_ceremonies WHERE expires_at < $1",
                now - DAY,
            ),
            ("DELETE FROM eid_flows WHERE expires_at < $1", now - DAY),
            ("DELETE FROM enrolments WHERE expires_at < $1", now - DAY),
            ("DELETE FROM sms_sends WHERE at < $1", now - 2 * DAY),
            (
                "DELETE FROM login_throttle WHERE last_failure_at < $1",
                now - 2 * DAY,
            ),
            (
                "DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $1",
                now - 7 * DAY,
            ),
        ];
        let mut n = 0;
        for (sql, before) in statements {
            n += with_pool!(self, |p| sqlx::query(sql)
                .bind(before)
                .execute(p)
                .await?
                .rows_affected());
        }
        Ok(n)
    }
}

impl Store {
    // ---- phone changes -----------------------------------------------------------------------

    pub async fn record_phone_change(&self, person_id: i64, at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO phone_changes (person_id, changed_at) VALUES ($1, $2) \
             ON CONFLICT (person_id) DO UPDATE SET changed_at = excluded.changed_at"
        )
        .bind(person_id)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn phone_changed_at(&self, person_id: i64) -> Result<Option<i64>> {
        with_pool!(self, |p| {
            let row = sqlx::query("SELECT changed_at FROM phone_changes WHERE person_id = $1")
                .bind(person_id)
                .fetch_optional(p)
                .await?;
            row.map(|r| Ok(r.try_get("changed_at")?)).transpose()
        })
    }

    /// Cancels one pending RIB change by id (its notice could not be sent).
    pub async fn cancel_rib_change_by_id(&self, id: i64, at: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE rib_changes SET cancelled_at = $2 WHERE id = $1 AND applied_at IS NULL"
        )
        .bind(id)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }
}
