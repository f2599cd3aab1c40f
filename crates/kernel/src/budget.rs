//! Read budgets and alerts (docs/audit.md).
//!
//! Each role may have persons revealed to it up to a budget per clock hour and per calendar day
//! (UTC): distinct persons, decided in memory on each node and exchanged with the database
//! every quarter of a second, so every node shares the count. The gate spends from the budget
//! before it reveals anything; the read that would cross it is refused,
//! the principal is locked pending review by a security officer, and an alert is raised: an
//! audit event (in the verifiable log) and a message to every notifier (the log, a webhook).
//! A scripted extraction therefore stops after a few dozen persons, not two million.

use crate::capability::Actor;
use crate::event::Audit;
use crate::principal::Principal;
use crate::{AppError, Kernel, Missing};
use domain::{DenyReason, Role};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use store::{ReadRow, Store};

/// Distinct persons a role may have revealed per clock hour and per calendar day; `None`: no
/// budget (insured persons read only themselves; security officers read no one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudgets {
    pub agent: Option<(u32, u32)>,
    pub employer_user: Option<(u32, u32)>,
}

impl Default for ReadBudgets {
    /// An agent at a counter serves a few dozen people an hour; an employer's payroll user reads
    /// its own employees (the policy) and at most this many a day.
    fn default() -> Self {
        ReadBudgets {
            agent: Some((60, 300)),
            employer_user: Some((500, 5_000)),
        }
    }
}

impl ReadBudgets {
    fn of(&self, role: Role) -> Option<(u32, u32)> {
        match role {
            Role::Agent => self.agent,
            Role::EmployerUser => self.employer_user,
            Role::Insured | Role::SecurityOfficer => None,
        }
    }
}

/// Something a security officer must look at. Carries ids and counts, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub kind: &'static str,
    #[serde(with = "crate::gate::id_string")]
    pub principal_id: i64,
    pub role: &'static str,
    pub detail: String,
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub at: i64,
}

pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where alerts go besides the audit log.
pub trait Notifier: Send + Sync {
    fn notify<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a>;
}

/// Alerts as error lines of the service's log.
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a> {
        Box::pin(async move {
            tracing::error!(
                kind = alert.kind,
                principal = alert.principal_id,
                role = alert.role,
                detail = %alert.detail,
                "security alert"
            );
        })
    }
}

/// Alerts posted as JSON to a URL (a SIEM, a chat room's hook). A failure is logged; the alert
/// is in the audit log either way.
pub struct WebhookNotifier {
    url: String,
    client: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(url: &str) -> Result<WebhookNotifier, AppError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| AppError::Internal("the alert webhook is not a URL"))?;
        let local = parsed.scheme() == "http"
            && parsed.host_str() == Some("127.0.0.1")
            && parsed.username().is_empty();
        if !(parsed.scheme() == "https" || local) {
            return Err(AppError::Internal(
                "the alert webhook must be https (or http://127.0.0.1 for tests)",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| AppError::Internal("HTTP client"))?;
        Ok(WebhookNotifier {
            url: url.to_string(),
            client,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn notify<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a> {
        Box::pin(async move {
            let sent = self.client.post(&self.url).json(alert).send().await;
            match sent.map(|r| r.status()) {
                Ok(s) if s.is_success() => {}
                Ok(s) => tracing::error!(status = s.as_u16(), "alert webhook refused the alert"),
                Err(e) => tracing::error!(error = %e.without_url(), "alert webhook unreachable"),
            }
        })
    }
}

const HOUR_MICROS: i64 = 3_600_000_000;

/// How often a node writes the reads it counted, and (PostgreSQL) learns the other nodes'.
const SHARE_EVERY: Duration = Duration::from_millis(250);

/// Persons above its headcount that an employer's users may have revealed to them in an hour
/// or a day, together: its own employees are its normal work, and the policy refuses anyone
/// else, so this is the margin for employees hired or leaving that day.
pub const EMPLOYER_SLACK: u32 = 10;

/// Whose budget a principal spends: its own, or (an employer user) its employer's, which all of
/// that employer's users share. Employers are keyed below zero, principals above.
fn holder(who: &Principal) -> i64 {
    match (who.role, who.employer_id) {
        (Role::EmployerUser, Some(e)) => -e,
        _ => who.id,
    }
}

/// The persons revealed to one budget holder today, as this node knows them.
struct Day {
    day: i64,
    /// The holder's own budget, if it is not its role's (an employer's, from its headcount).
    limits: Option<(u32, u32)>,
    /// Person (pseudonym) → the last clock hour they were revealed in.
    seen: HashMap<Vec<u8>, i64>,
    /// Hour → persons whose last hour it is.
    per_hour: HashMap<i64, i64>,
}

impl Day {
    fn new(day: i64, limits: Option<(u32, u32)>) -> Day {
        Day {
            day,
            limits,
            seen: HashMap::new(),
            per_hour: HashMap::new(),
        }
    }

    /// Marks `subject` revealed in `hour` (keeping the latest hour).
    fn mark(&mut self, subject: &[u8], hour: i64) {
        match self.seen.get_mut(subject) {
            Some(h) if *h >= hour => {}
            Some(h) => {
                if let Some(n) = self.per_hour.get_mut(h) {
                    *n -= 1;
                }
                *h = hour;
                *self.per_hour.entry(hour).or_default() += 1;
            }
            None => {
                self.seen.insert(subject.to_vec(), hour);
                *self.per_hour.entry(hour).or_default() += 1;
            }
        }
    }
}

/// What a node knows of the read budgets: each active principal's persons of the day, loaded
/// from the database when first needed, decided on in memory (no query on the hot path), and
/// shared through the database every [`SHARE_EVERY`]: the reads counted here are written, and
/// on PostgreSQL (several nodes) those of the other nodes are read back. Nodes may overshoot a
/// budget by what they count between two exchanges; one node never does. A crash loses the
/// last quarter of a second of counts.
#[derive(Default)]
pub(crate) struct BudgetBook {
    days: Mutex<HashMap<i64, Day>>,
    /// Counted since the last exchange: the latest hour of each read.
    pending: Mutex<HashMap<ReadKey, i64>>,
    /// The hour old reads were last pruned in.
    pruned: std::sync::atomic::AtomicI64,
    /// Each principal counted on this node: the holder of its budget.
    holders: Mutex<HashMap<i64, i64>>,
}

/// A read's principal, day and person.
type ReadKey = (i64, i64, Vec<u8>);

/// Records that `key` was read in `hour`, keeping the latest hour.
fn keep_latest(pending: &mut HashMap<ReadKey, i64>, key: ReadKey, hour: i64) {
    let h = pending.entry(key).or_insert(hour);
    *h = (*h).max(hour);
}

/// What counting one read did.
enum Count {
    Free,
    Counted,
    Over(String),
}

impl BudgetBook {
    /// Counts a read of `subject` by `principal` against its `holder`'s budget (`caps`, or the
    /// holder's own limits); `None` if the holder's day is not loaded on this node yet.
    fn count(
        &self,
        (holder, principal): (i64, i64),
        day: i64,
        hour: i64,
        subject: &[u8],
        caps: (u32, u32),
    ) -> Option<Count> {
        let mut days = self.days.lock().ok()?;
        let d = days.get_mut(&holder).filter(|d| d.day == day)?;
        let (per_hour, per_day) = d.limits.unwrap_or(caps);
        let last = d.seen.get(subject).copied();
        if last == Some(hour) {
            return Some(Count::Free);
        }
        let h = d.per_hour.get(&hour).copied().unwrap_or(0) + 1;
        let t = d.seen.len() as i64 + i64::from(last.is_none());
        if h > i64::from(per_hour) {
            return Some(Count::Over(format!(
                "{h} persons this hour, budget {per_hour}"
            )));
        }
        if t > i64::from(per_day) {
            return Some(Count::Over(format!("{t} persons today, budget {per_day}")));
        }
        d.mark(subject, hour);
        drop(days);
        if let Ok(mut p) = self.pending.lock() {
            keep_latest(&mut p, (principal, day, subject.to_vec()), hour);
        }
        if let Ok(mut h) = self.holders.lock() {
            h.insert(principal, holder);
        }
        Some(Count::Counted)
    }

    /// Loads (or refreshes) a holder's day from the database: a principal's reads, or those of
    /// every user of an employer. `limits`: the holder's own budget, if known now (kept
    /// otherwise).
    async fn load(
        &self,
        store: &Store,
        holder: i64,
        day: i64,
        limits: Option<(u32, u32)>,
    ) -> Result<(), AppError> {
        let rows = if holder < 0 {
            store.reads_of_employer(-holder, day).await?
        } else {
            store.reads_of(holder, day).await?
        };
        let mut days = self
            .days
            .lock()
            .map_err(|_| AppError::Internal("read budgets"))?;
        let d = days.entry(holder).or_insert_with(|| Day::new(day, limits));
        if day < d.day {
            // A request dated just before midnight: today's counts stay.
            return Ok(());
        }
        if day > d.day {
            *d = Day::new(day, limits.or(d.limits));
        }
        if limits.is_some() {
            d.limits = limits;
        }
        for (subject, hour) in rows {
            d.mark(&subject, hour);
        }
        Ok(())
    }

    /// Writes the reads counted since the last exchange; on PostgreSQL, reads back the days of
    /// the principals active meanwhile (other nodes count too). Forgets past days.
    async fn share(&self, store: &Store, today: i64) -> Result<(), AppError> {
        // One row per (principal, day, person), the latest hour: PostgreSQL refuses an upsert
        // that names a row twice.
        let taken = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| AppError::Internal("read budgets"))?,
        );
        let rows: Vec<ReadRow> = taken
            .into_iter()
            .map(|((principal_id, day, subject), last_hour)| ReadRow {
                principal_id,
                day,
                subject,
                last_hour,
            })
            .collect();
        if let Err(e) = store.record_reads(&rows).await {
            // Keep them for the next exchange.
            if let Ok(mut p) = self.pending.lock() {
                for r in rows {
                    keep_latest(&mut p, (r.principal_id, r.day, r.subject), r.last_hour);
                }
            }
            return Err(e.into());
        }
        let active: Vec<i64> = {
            let mut days = self
                .days
                .lock()
                .map_err(|_| AppError::Internal("read budgets"))?;
            days.retain(|_, d| d.day >= today);
            if store.backend() != store::Backend::Postgres {
                return Ok(());
            }
            let holders = self
                .holders
                .lock()
                .map_err(|_| AppError::Internal("read budgets"))?;
            let mut a: Vec<i64> = rows
                .iter()
                .map(|r| {
                    holders
                        .get(&r.principal_id)
                        .copied()
                        .unwrap_or(r.principal_id)
                })
                .collect();
            a.sort_unstable();
            a.dedup();
            a
        };
        for h in active {
            self.load(store, h, today, None).await?;
        }
        Ok(())
    }
}

/// Runs the exchange every [`SHARE_EVERY`] while the application lives, and prunes old counts.
pub(crate) fn start_sharing(k: &Kernel) {
    k.every(SHARE_EVERY, |k| async move {
        if let Err(e) = k.share_read_budgets().await {
            tracing::error!(error = %e, "read budgets: exchange with the database failed");
        }
        if let Err(e) = k.prune_reads().await {
            tracing::error!(error = %e, "read budgets: pruning failed");
        }
    });
}

impl Kernel {
    /// Spends one person from `who`'s read budget (a person already revealed to them this hour
    /// costs nothing). `Some(reason)` when the read would cross the budget: the principal is
    /// then locked and an alert raised, and the caller refuses the read.
    /// `subject` is the person's keyed pseudonym.
    pub async fn spend_read_budget(
        &self,
        who: &Principal,
        subject: &[u8],
        request_id: &str,
    ) -> Result<Option<DenyReason>, AppError> {
        let Some(caps) = self.inner.budgets.of(who.role) else {
            return Ok(None);
        };
        let hour = self.hour_now();
        let day = hour.div_euclid(24);
        let book = &self.inner.book;
        let holder = holder(who);
        let counted = match book.count((holder, who.id), day, hour, subject, caps) {
            Some(c) => c,
            None => {
                // First read of the day for this holder on this node.
                let limits = self.limits_of(holder, caps).await?;
                book.load(&self.inner.store, holder, day, limits).await?;
                book.count((holder, who.id), day, hour, subject, caps)
                    .ok_or(AppError::Internal("read budgets"))?
            }
        };
        match counted {
            Count::Free | Count::Counted => Ok(None),
            Count::Over(crossed) => {
                self.lock_and_alert(Some(who), "read_budget_exceeded", crossed, request_id)
                    .await?;
                Ok(Some(DenyReason::ReadBudget))
            }
        }
    }

    /// Counts an act of `who` on `person` (an employment link, a case opened) against `who`'s
    /// read budget like a read of them: `Err(Denied(ReadBudget))` once it crosses the budget,
    /// with the principal locked and the alert raised.
    pub async fn spend_on_person(
        &self,
        who: &Principal,
        person: i64,
        request_id: &str,
    ) -> Result<(), AppError> {
        let subject = self.keyring().person_pseudonym(person);
        match self.spend_read_budget(who, &subject, request_id).await? {
            Some(reason) => Err(AppError::Denied(reason)),
            None => Ok(()),
        }
    }

    /// A holder's own budget: an employer's is its headcount today and [`EMPLOYER_SLACK`], within
    /// the role's caps; a principal's is its role's (`None`).
    async fn limits_of(
        &self,
        holder: i64,
        (cap_hour, cap_day): (u32, u32),
    ) -> Result<Option<(u32, u32)>, AppError> {
        if holder >= 0 {
            return Ok(None);
        }
        let today = self.now().date().to_string();
        let n = self.inner.store.headcount(-holder, &today).await?;
        let n = u32::try_from(n)
            .unwrap_or(u32::MAX)
            .saturating_add(EMPLOYER_SLACK);
        Ok(Some((n.min(cap_hour), n.min(cap_day))))
    }

    /// The clock hour now, counted from 1970.
    fn hour_now(&self) -> i64 {
        self.now().0.div_euclid(HOUR_MICROS)
    }

    /// Writes the reads counted on this node now (commands call it before they exit).
    pub async fn share_read_budgets(&self) -> Result<(), AppError> {
        let today = self.hour_now().div_euclid(24);
        self.inner.book.share(&self.inner.store, today).await
    }

    /// Locks `who` pending review and raises an alert of `kind`: an audit event, and every
    /// notifier. The operator at the command line (`None`) has no account to lock: the alert is
    /// raised all the same. A principal locked already raises no second alert.
    pub async fn lock_and_alert(
        &self,
        who: Option<&Principal>,
        kind: &'static str,
        detail: String,
        request_id: &str,
    ) -> Result<(), AppError> {
        // An employer user's lock locks every user of its employer (they share one budget, and
        // a second user of a harvesting employer would otherwise go on).
        if let Some(p) = who {
            let newly = match (p.role, p.employer_id) {
                (Role::EmployerUser, Some(e)) => {
                    let ids = self.inner.store.lock_employer_for_review(e, kind).await?;
                    for id in &ids {
                        self.forget_principal(*id);
                    }
                    !ids.is_empty()
                }
                _ => self.inner.store.lock_for_review(p.id, kind).await?,
            };
            self.forget_principal(p.id);
            if !newly {
                return Ok(());
            }
        }
        let alert = Alert {
            kind,
            principal_id: who.map_or(0, |p| p.id),
            role: who.map_or("operator", |p| p.role.as_str()),
            detail,
            at: self.now().0,
        };
        // In the background: a slow webhook never delays the refusal, and a failed audit write
        // does not keep the alert from going out.
        let notifiers = self.inner.notifiers.clone();
        let sent = alert.clone();
        tokio::spawn(async move {
            for n in &notifiers {
                n.notify(&sent).await;
            }
        });
        let audit = match who {
            Some(p) => Audit::command(p, "alert", None),
            None => Audit::counted(Actor::operator(), "alert", 0),
        };
        let detail = match who {
            Some(_) => format!("locked; {}", alert.detail),
            None => alert.detail,
        };
        audit
            .outcome(kind)
            .detail(detail)
            .write(self, request_id)
            .await
    }

    /// A security officer lifts a review lock (a read budget crossed, a decoy touched) after
    /// review. An account an operator disabled stays disabled. Audited.
    pub async fn unlock_principal(
        &self,
        officer: &Principal,
        principal_id: i64,
        request_id: &str,
    ) -> Result<(), AppError> {
        if officer.role != Role::SecurityOfficer || officer.locked {
            Audit::command(officer, "unlock_principal", None)
                .denied(DenyReason::RoleHasNoAccess)
                .detail(format!("principal={principal_id}"))
                .write(self, request_id)
                .await?;
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        if !self.inner.store.clear_review_lock(principal_id).await? {
            return Err(AppError::NotFound(Missing::Principal));
        }
        self.forget_principal(principal_id);
        Audit::command(officer, "unlock_principal", None)
            .detail(format!("principal={principal_id}"))
            .write(self, request_id)
            .await
    }

    /// Forgets counted reads older than yesterday (the budgets look at today at most); once an
    /// hour on each node.
    pub async fn prune_reads(&self) -> Result<(), AppError> {
        let hour = self.hour_now();
        if self
            .inner
            .book
            .pruned
            .swap(hour, std::sync::atomic::Ordering::Relaxed)
            == hour
        {
            return Ok(());
        }
        self.inner
            .store
            .prune_reads(hour.div_euclid(24) - 1)
            .await?;
        Ok(())
    }
}
