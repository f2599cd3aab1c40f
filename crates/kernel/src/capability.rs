//! Capabilities: rights that only the kernel hands out. Their fields are private, so code
//! outside the kernel holds one only if the kernel gave it one: a command that takes a
//! [`Registrar`] cannot be called by code whose principal's role does not grant it.
//!
//! The audit log records who acted as an [`Actor`]: a principal, or the operator at the
//! command line. Capabilities say what may be done; actors say who did it.

use crate::principal::Principal;
use crate::{AppError, Kernel};
use domain::access::DeclarantKind;
use domain::{DenyReason, Role};

/// Who acted, as the audit log records it: a principal (id and role), or the operator at the
/// command line (no principal, role `operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub(crate) principal_id: Option<i64>,
    pub(crate) role: &'static str,
}

impl Actor {
    pub fn of(p: &Principal) -> Actor {
        Actor {
            principal_id: Some(p.id),
            role: p.role.as_str(),
        }
    }

    /// Someone not logged in (an enrolment, a login that failed, a cancellation code).
    pub(crate) fn anonymous() -> Actor {
        Actor {
            principal_id: None,
            role: "anonymous",
        }
    }

    /// daman itself, reading for its own work (comparing a declared name with the
    /// registry's, sending a notice): audited as role `system`, with the reason.
    pub fn system() -> Actor {
        Actor {
            principal_id: None,
            role: "system",
        }
    }

    /// The operator at the command line (`daman demo`, loaders, imports).
    pub fn operator() -> Actor {
        Actor {
            principal_id: None,
            role: "operator",
        }
    }

    pub fn principal_id(self) -> Option<i64> {
        self.principal_id
    }
}

/// The right to change the registry (affiliate, immatriculate, link in bulk, record
/// payments, post surcharges). Held by an unlocked agent ([`Kernel::registrar`]), or by the
/// operator's command line for bulk loads ([`Registrar::operator`]).
#[derive(Debug, Clone, Copy)]
pub struct Registrar {
    actor: Actor,
}

impl Registrar {
    /// The operator at the command line (`daman demo`, loaders): audited as role `operator`.
    pub fn operator() -> Registrar {
        Registrar {
            actor: Actor::operator(),
        }
    }

    pub fn actor(self) -> Actor {
        self.actor
    }
}

/// The right to send or read an employer's declarations and statement: a user of that
/// employer (its own only), an agent (totals only), or the operator at the command line.
/// Which employer's data each may see is the pure policy's (`domain::access`).
#[derive(Debug, Clone, Copy)]
pub struct Declarant {
    kind: DeclarantKind,
    actor: Actor,
}

impl Declarant {
    /// The operator at the command line (batch imports).
    pub fn operator() -> Declarant {
        Declarant {
            kind: DeclarantKind::Operator,
            actor: Actor::operator(),
        }
    }

    /// Whoever holds the registrar's right, declaring: an agent, or the operator.
    pub fn from_registrar(reg: Registrar) -> Declarant {
        Declarant {
            kind: match reg.actor.principal_id {
                Some(_) => DeclarantKind::Agent,
                None => DeclarantKind::Operator,
            },
            actor: reg.actor,
        }
    }

    pub fn kind(self) -> DeclarantKind {
        self.kind
    }

    pub fn actor(self) -> Actor {
        self.actor
    }

    /// The principal behind the declarant (none for the operator).
    pub fn principal_id(self) -> Option<i64> {
        self.actor.principal_id
    }

    /// The employer whose user this is.
    pub fn employer(self) -> Option<i64> {
        match self.kind {
            DeclarantKind::EmployerUser { own } => Some(own),
            DeclarantKind::Operator | DeclarantKind::Agent => None,
        }
    }

    pub fn is_agent(self) -> bool {
        self.kind == DeclarantKind::Agent
    }

    /// Whether the declarant may send declarations for the employer and read their content.
    pub fn may_see(self, employer_id: i64) -> bool {
        domain::access::may_see_declarations(self.kind, employer_id)
    }

    /// Whether the declarant may read the employer's totals (receipts, statement).
    pub fn may_see_totals(self, employer_id: i64) -> bool {
        domain::access::may_see_totals(self.kind, employer_id)
    }
}

impl Kernel {
    /// The registrar capability: only an agent that is not locked holds it.
    pub fn registrar(&self, p: &Principal) -> Result<Registrar, AppError> {
        match (p.role, p.locked) {
            (_, true) => Err(AppError::Denied(DenyReason::Locked)),
            (Role::Agent, false) => Ok(Registrar {
                actor: Actor::of(p),
            }),
            _ => Err(AppError::Denied(DenyReason::RoleHasNoAccess)),
        }
    }

    /// The declarant capability: an unlocked employer user (for its employer) or agent.
    pub fn declarant(&self, p: &Principal) -> Result<Declarant, AppError> {
        if p.locked {
            return Err(AppError::Denied(DenyReason::Locked));
        }
        let kind = match (p.role, p.employer_id) {
            (Role::EmployerUser, Some(e)) => DeclarantKind::EmployerUser { own: e },
            (Role::Agent, _) => DeclarantKind::Agent,
            _ => return Err(AppError::Denied(DenyReason::RoleHasNoAccess)),
        };
        Ok(Declarant {
            kind,
            actor: Actor::of(p),
        })
    }
}
