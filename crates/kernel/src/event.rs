//! The audit-event builder: what every command writes before it acts (and when it refuses).
//! An event names its actor, action, purpose, subject (by keyed pseudonym), fields and
//! outcome; [`Audit::write`] returns once it is durable (group commit, [`crate::writer`]).

use crate::capability::Actor;
use crate::principal::Principal;
use crate::{AppError, Kernel};
use domain::{DenyReason, PersonField, Purpose};
use store::AuditRow;

/// The actions whose allowed events read the personal data of their subject: the gate's reads
/// and reveals, careers, and the reads of an employer's data that name persons
/// ([`crate::Kernel::admit_named`]). The breach report and "who read my data" count these.
pub const PERSON_READS: [&str; 8] = [
    "read",
    "reveal",
    "read_career",
    "download_preetabli",
    "export_declaration",
    "read_declaration_receipt",
    "read_declaration_lines",
    "read_declaration_rejections",
];

/// Those of [`PERSON_READS`] that show salaries (a career, a declaration's file or lines).
pub const SALARY_READS: [&str; 3] = [
    "read_career",
    "export_declaration",
    "read_declaration_lines",
];

/// An audit event being put together.
pub struct Audit {
    actor: Actor,
    action: &'static str,
    purpose: Option<Purpose>,
    subject: Option<i64>,
    fields: i64,
    detail: Option<String>,
    outcome: String,
}

impl Audit {
    /// `actor` doing `action`, allowed so far; the builders below say more.
    pub(crate) fn by(actor: Actor, action: &'static str) -> Audit {
        Audit {
            actor,
            action,
            purpose: None,
            subject: None,
            fields: 0,
            detail: None,
            outcome: "allow".into(),
        }
    }

    /// An act of `actor` on `count` records (a bulk registration, an import, a download).
    pub fn counted(actor: Actor, action: &'static str, count: usize) -> Audit {
        Audit::by(actor, action).detail(format!("count={count}"))
    }

    pub fn command(who: &Principal, action: &'static str, subject: Option<i64>) -> Audit {
        Audit {
            subject,
            ..Audit::by(Actor::of(who), action)
        }
    }

    /// An authentication event: who (if known), what, and how it ended. Never a secret, a code,
    /// a login name or a phone number.
    pub fn auth(who: Option<&Principal>, action: &'static str, outcome: &str) -> Audit {
        let actor = who.map_or(Actor::anonymous(), Actor::of);
        Audit {
            subject: who.and_then(|p| p.person_id),
            ..Audit::by(actor, action)
        }
        .outcome(outcome)
    }

    pub fn outcome(mut self, outcome: &str) -> Audit {
        self.outcome = outcome.into();
        self
    }

    pub fn subject(mut self, person_id: i64) -> Audit {
        self.subject = Some(person_id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Audit {
        self.detail = Some(detail.into());
        self
    }

    pub fn fields(mut self, fields: &[PersonField]) -> Audit {
        self.fields = PersonField::bits(fields);
        self
    }

    pub fn purpose(mut self, p: Purpose) -> Audit {
        self.purpose = Some(p);
        self
    }

    /// The subject does not exist (recorded as such; the caller may still be told "denied").
    pub fn not_found(mut self) -> Audit {
        self.outcome = "not_found".into();
        self
    }

    pub fn denied(mut self, reason: DenyReason) -> Audit {
        self.outcome = format!("deny:{}", reason.as_str());
        self
    }

    /// Appends the event and returns once it is durable.
    pub async fn write(self, k: &Kernel, request_id: &str) -> Result<(), AppError> {
        k.inner.audit.append(self.row(k, request_id)).await
    }

    /// Appends events together and returns once every one is durable.
    pub async fn write_all(
        events: Vec<Audit>,
        k: &Kernel,
        request_id: &str,
    ) -> Result<(), AppError> {
        let rows = events.into_iter().map(|a| a.row(k, request_id)).collect();
        k.inner.audit.append_all(rows).await
    }

    fn row(self, k: &Kernel, request_id: &str) -> AuditRow {
        AuditRow {
            at: k.now().0,
            principal_id: self.actor.principal_id,
            role: self.actor.role.into(),
            action: self.action.into(),
            purpose: self.purpose.map(|p| p.as_str().into()),
            subject: self
                .subject
                .map(|id| k.keyring().person_pseudonym(id).to_vec()),
            fields: self.fields,
            detail: self.detail,
            outcome: self.outcome,
            request_id: request_id.chars().take(64).collect(),
        }
    }
}
