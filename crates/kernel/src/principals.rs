//! Principals as loaded for each request (cached for a second on each node), and the
//! development principals `daman dev-token` mints.

use crate::capability::Actor;
use crate::event::Audit;
use crate::gate::Subject;
use crate::principal::Principal;
use crate::{AppError, Clash, Kernel, Missing};
use domain::{AffiliateNumber, Role, Rule, Timestamp, ValidationError};
use std::collections::HashMap;
use std::sync::Mutex;
use store::PrincipalRow;

/// How long a node may use a principal it loaded before loading it again. A change made on this
/// node (a lock, a role change) takes effect at once here ([`Kernel::forget_principal`]); on other
/// nodes within this time.
pub const PRINCIPAL_TTL_SECONDS: i64 = 1;

/// Entries kept before the cache starts over (a bound on memory, not a tuning knob).
const PRINCIPAL_CACHE_MAX: usize = 100_000;

/// Principals recently loaded, so that a request does not cost a database round trip just to
/// learn who is asking.
#[derive(Default)]
pub(crate) struct PrincipalCache {
    map: Mutex<HashMap<i64, (Principal, Timestamp)>>,
}

impl PrincipalCache {
    fn get(&self, id: i64, now: Timestamp) -> Option<Principal> {
        let map = self.map.lock().ok()?;
        map.get(&id)
            .filter(|(_, at)| now.0 - at.0 < PRINCIPAL_TTL_SECONDS * 1_000_000)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, p: Principal, now: Timestamp) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= PRINCIPAL_CACHE_MAX {
                map.clear();
            }
            map.insert(p.id, (p, now));
        }
    }

    fn forget(&self, id: i64) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&id);
        }
    }
}

impl Kernel {
    /// The principal with this id, if any (from this node's cache when loaded within
    /// [`PRINCIPAL_TTL_SECONDS`]).
    pub async fn principal(&self, id: i64) -> Result<Option<Principal>, AppError> {
        let now = self.now();
        if let Some(p) = self.inner.principals.get(id, now) {
            return Ok(Some(p));
        }
        let p = self
            .inner
            .store
            .principal(id)
            .await?
            .map(Principal::from_row)
            .transpose()?;
        if let Some(p) = &p {
            self.inner.principals.put(p.clone(), now);
        }
        Ok(p)
    }

    /// Drops a principal from this node's cache, after a change to it.
    pub fn forget_principal(&self, id: i64) {
        self.inner.principals.forget(id);
    }

    /// The principal known by `label`, created with `role` and `binding` if it does not exist.
    /// An insured principal is bound to a person, an employer user to an employer; staff to
    /// nothing. Used by the development token minter; real accounts come with the auth layer.
    ///
    /// Without a `label`, the account is named after what it is bound to: `insured:<person id>`
    /// (an opaque id, never the CIN) or `employer_user:<affiliation number>`.
    pub async fn ensure_principal(
        &self,
        label: Option<&str>,
        role: Role,
        binding: &Binding,
    ) -> Result<Principal, AppError> {
        let (person_id, employer_id) = match (role, binding) {
            (Role::Insured, Binding::Person(s)) => (
                Some(
                    self.resolve(s)
                        .await?
                        .ok_or(AppError::NotFound(Missing::Person))?,
                ),
                None,
            ),
            (Role::EmployerUser, Binding::Employer(a)) => {
                let e = self
                    .inner
                    .store
                    .employer_by_affiliate(i64::from(a.value()))
                    .await?;
                (
                    None,
                    Some(e.ok_or(AppError::NotFound(Missing::Employer))?.id),
                )
            }
            (Role::Agent | Role::SecurityOfficer, Binding::None) => (None, None),
            _ => return Err(ValidationError::new("subject", Rule::UnknownValue).into()),
        };
        let label = match (label, person_id, binding) {
            (Some(l), _, _) => l.to_string(),
            (None, Some(id), _) => format!("insured:{id}"),
            (None, None, Binding::Employer(a)) => format!("employer_user:{a}"),
            (None, None, _) => return Err(ValidationError::new("label", Rule::Required).into()),
        };
        if let Some(p) = self.inner.store.principal_by_label(&label).await? {
            let p = Principal::from_row(p)?;
            if p.role != role || p.person_id != person_id || p.employer_id != employer_id {
                return Err(AppError::Conflict(Clash::PrincipalLabel));
            }
            return Ok(p);
        }
        let row = PrincipalRow {
            id: self.new_id()?,
            role: role.as_str().into(),
            label,
            person_id,
            employer_id,
            locked: false,
            created_at: self.now().0,
            review_lock: None,
        };
        self.inner.store.insert_principal(&row).await?;
        Audit::counted(Actor::operator(), "create_principal", 1)
            .write(self, "cli")
            .await?;
        Principal::from_row(row)
    }
}

/// What a principal is bound to.
#[derive(Debug, Clone)]
pub enum Binding {
    None,
    Person(Subject),
    Employer(AffiliateNumber),
}
