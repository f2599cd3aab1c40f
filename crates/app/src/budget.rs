//! Read budgets and alerts (docs/audit.md).
//!
//! Each role may have persons revealed to it up to a budget per clock hour and per calendar day
//! (UTC): distinct persons, counted in the database so every node shares the count. The gate
//! spends from the budget before it reveals anything; the read that would cross it is refused,
//! the principal is locked pending review by a security officer, and an alert is raised: an
//! audit event (in the verifiable log) and a message to every notifier (the log, a webhook).
//! A scripted extraction therefore stops after a few dozen persons, not two million.

use crate::gate::Audit;
use crate::{App, AppError, Principal};
use domain::{DenyReason, Role};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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
        if !(url.starts_with("https://") || url.starts_with("http://127.0.0.1")) {
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

impl App {
    /// Spends one person from `who`'s read budget (a person already revealed to them this hour
    /// costs nothing). `Some(reason)` when the read would cross the budget: the principal is
    /// then locked and an alert raised, and the caller refuses the read.
    pub(crate) async fn spend_read_budget(
        &self,
        who: &Principal,
        person: i64,
        request_id: &str,
    ) -> Result<Option<DenyReason>, AppError> {
        let Some((per_hour, per_day)) = self.inner.budgets.of(who.role) else {
            return Ok(None);
        };
        let now = self.now().0;
        let hour = now.div_euclid(HOUR_MICROS);
        let day_start = hour - hour.rem_euclid(24);
        let subject = self.inner.keyring.pseudonym("person", person);
        let store = &self.inner.store;
        let c = store.read_counts(who.id, hour, &subject, day_start).await?;
        if c.seen_this_hour {
            return Ok(None);
        }
        let (h, d) = (c.hour + 1, c.day + i64::from(!c.seen_today));
        let crossed = if h > i64::from(per_hour) {
            format!("{h} persons this hour, budget {per_hour}")
        } else if d > i64::from(per_day) {
            format!("{d} persons today, budget {per_day}")
        } else {
            store.record_read(who.id, hour, &subject).await?;
            return Ok(None);
        };
        self.lock_and_alert(who, "read_budget_exceeded", crossed, request_id)
            .await?;
        Ok(Some(DenyReason::ReadBudget))
    }

    /// Locks `who` pending review and raises an alert of `kind`: an audit event, then every
    /// notifier.
    pub(crate) async fn lock_and_alert(
        &self,
        who: &Principal,
        kind: &'static str,
        detail: String,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.inner.store.set_locked(who.id, true).await?;
        self.forget_principal(who.id);
        let alert = Alert {
            kind,
            principal_id: who.id,
            role: who.role.as_str(),
            detail,
            at: self.now().0,
        };
        Audit::command(who, "alert", None)
            .outcome(kind)
            .detail(format!("locked; {}", alert.detail))
            .write(self, request_id)
            .await?;
        for n in &self.inner.notifiers {
            n.notify(&alert).await;
        }
        Ok(())
    }

    /// A security officer unlocks a principal after review (a locked account stays locked
    /// until then, whatever locked it). Audited.
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
        if !self.inner.store.set_locked(principal_id, false).await? {
            return Err(AppError::NotFound("principal"));
        }
        self.forget_principal(principal_id);
        Audit::command(officer, "unlock_principal", None)
            .detail(format!("principal={principal_id}"))
            .write(self, request_id)
            .await
    }

    /// Forgets counted reads older than yesterday (the budgets look at today at most).
    pub(crate) async fn prune_reads(&self) -> Result<(), AppError> {
        let hour = self.now().0.div_euclid(HOUR_MICROS);
        self.inner.store.prune_reads(hour - 48).await?;
        Ok(())
    }
}
