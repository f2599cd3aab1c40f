//! Who is asking: a principal as loaded for each request. Loading and caching them is
//! [`crate::principals`]'.

use crate::AppError;
use domain::Role;
use store::PrincipalRow;

/// An authenticated principal, as loaded from storage for each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub role: Role,
    /// For an insured person: their registry record.
    pub person_id: Option<i64>,
    /// For an employer user: their employer.
    pub employer_id: Option<i64>,
    pub locked: bool,
}

impl Principal {
    pub fn from_row(r: PrincipalRow) -> Result<Principal, AppError> {
        let role = Role::parse(&r.role).ok_or(store::StoreError::Corrupt("principal role"))?;
        Ok(Principal {
            id: r.id,
            role,
            person_id: r.person_id,
            employer_id: r.employer_id,
            // Disabled, or locked pending review: either way, nothing.
            locked: r.locked || r.review_lock.is_some(),
        })
    }
}
