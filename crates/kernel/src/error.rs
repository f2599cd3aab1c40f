//! What the application layer fails with: one enum for every service, mapped to HTTP in one
//! place (`server/src/error.rs`); `Missing` and `Clash` name each thing not found or in the way.

use domain::{DenyReason, ValidationError};

/// What an application command can fail with. The server maps each to one HTTP status and a
/// stable code, in one place; nothing here carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input")]
    Invalid(Vec<ValidationError>),
    #[error("access denied")]
    Denied(DenyReason),
    #[error("not found: {0}")]
    NotFound(Missing),
    #[error("conflict: {0}")]
    Conflict(Clash),
    #[error("authentication required")]
    Unauthenticated,
    #[error("storage failure")]
    Store(#[from] store::StoreError),
    #[error("key or cipher failure")]
    Vault(#[from] vault::VaultError),
    #[error("the audit log could not be written")]
    Audit,
    #[error("the database is overloaded")]
    Unavailable,
    /// A login that did not succeed: the same for an unknown login, a wrong password and a
    /// disabled account.
    #[error("login failed")]
    LoginFailed,
    /// Too many consecutive failures: try again after this many seconds.
    #[error("too many failed attempts")]
    Throttled(i64),
    /// A one-time code that is wrong, expired or already used.
    #[error("code rejected")]
    CodeRejected,
    /// The act needs a second factor presented within the last few minutes.
    #[error("step-up authentication required")]
    StepUpRequired,
    /// Too many SMS to this number or in all: try again later.
    #[error("SMS limit reached")]
    SmsLimit,
    /// Too many password checks waiting: try again in a moment.
    #[error("busy")]
    Busy,
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// The audit log's witness file or checkpoints: what went wrong (paths and sizes only).
    #[error("audit log: {0}")]
    Witness(String),
    /// A key rotation that cannot go on yet: why (node names and key ids only).
    #[error("key rotation: {0}")]
    Keys(String),
}

impl From<auth::AuthError> for AppError {
    fn from(e: auth::AuthError) -> Self {
        match e {
            auth::AuthError::Busy => AppError::Busy,
            auth::AuthError::Vault(v) => AppError::Vault(v),
            auth::AuthError::Config(what) => AppError::Internal(what),
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Invalid(vec![e])
    }
}

/// What a command did not find. Each has its own message for the caller (server's one
/// mapping, which names every case: a new one does not compile until it has its message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No such person, or (to anyone but an agent) one the caller may not know of.
    Person,
    Employer,
    /// An invitation unknown, used or expired.
    Invitation,
    /// No pending RIB change for this cancellation code.
    RibChange,
    /// The E-ID is not configured on this server.
    Eid,
    /// No accepted declaration the caller may read.
    Declaration,
    /// No préétabli issued for the period.
    Preetabli,
    /// No such second factor of the caller's.
    Factor,
    /// No account with this login.
    Account,
    /// No principal with this id.
    Principal,
    /// No contact release with this id (for this officer).
    Release,
    /// No audit entry with this number in the latest checkpoint.
    AuditEntry,
    /// No signed checkpoint yet.
    AuditCheckpoint,
    /// No pending employment claim with this id that the caller may decide.
    Claim,
}

/// What stands in the way of a command: something that already exists, or a state that
/// does not allow it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// Another payment is recorded under this bank reference.
    Payment,
    /// A person with this CIN is registered.
    Cin,
    /// An employer with this ICE is affiliated.
    Ice,
    /// This employment link exists.
    Employment,
    /// The login is taken.
    Login,
    /// A development principal's label is taken by another role or binding.
    PrincipalLabel,
    /// The phone changed less than the hold ago: no RIB change yet.
    RecentPhoneChange,
    /// The declaration was rectified already.
    Rectified,
    /// A declaration for the same employer, period and form was accepted meanwhile.
    Declaration,
    /// The caller's last second factor.
    LastFactor,
    ReleaseNotApproved,
    ReleaseDiffers,
    ReleaseAlreadyApproved,
    ReleaseAlreadyUsed,
    ReleaseExpired,
    /// A key rotation is under way: resume it first.
    RotationUnfinished,
    /// Someone decided this employment claim first.
    ClaimDecided,
}

impl Missing {
    pub const ALL: [Missing; 14] = [
        Missing::Person,
        Missing::Employer,
        Missing::Invitation,
        Missing::RibChange,
        Missing::Eid,
        Missing::Declaration,
        Missing::Preetabli,
        Missing::Factor,
        Missing::Account,
        Missing::Principal,
        Missing::Release,
        Missing::AuditEntry,
        Missing::AuditCheckpoint,
        Missing::Claim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Person => "person",
            Missing::Employer => "employer",
            Missing::Invitation => "invitation",
            Missing::RibChange => "rib_change",
            Missing::Eid => "eid",
            Missing::Declaration => "declaration",
            Missing::Preetabli => "preetabli",
            Missing::Factor => "factor",
            Missing::Account => "account",
            Missing::Principal => "principal",
            Missing::Release => "release",
            Missing::AuditEntry => "audit_entry",
            Missing::AuditCheckpoint => "audit_checkpoint",
            Missing::Claim => "claim",
        }
    }
}

impl Clash {
    pub const ALL: [Clash; 17] = [
        Clash::Payment,
        Clash::Cin,
        Clash::Ice,
        Clash::Employment,
        Clash::Login,
        Clash::PrincipalLabel,
        Clash::RecentPhoneChange,
        Clash::Rectified,
        Clash::Declaration,
        Clash::LastFactor,
        Clash::ReleaseNotApproved,
        Clash::ReleaseDiffers,
        Clash::ReleaseAlreadyApproved,
        Clash::ReleaseAlreadyUsed,
        Clash::ReleaseExpired,
        Clash::RotationUnfinished,
        Clash::ClaimDecided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Clash::Payment => "payment",
            Clash::Cin => "cin",
            Clash::Ice => "ice",
            Clash::Employment => "employment",
            Clash::Login => "login",
            Clash::PrincipalLabel => "principal_label",
            Clash::RecentPhoneChange => "recent_phone_change",
            Clash::Rectified => "rectified",
            Clash::Declaration => "declaration",
            Clash::LastFactor => "last_factor",
            Clash::ReleaseNotApproved => "release_not_approved",
            Clash::ReleaseDiffers => "release_differs",
            Clash::ReleaseAlreadyApproved => "release_already_approved",
            Clash::ReleaseAlreadyUsed => "release_already_used",
            Clash::ReleaseExpired => "release_expired",
            Clash::RotationUnfinished => "rotation_unfinished",
            Clash::ClaimDecided => "claim_decided",
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ledger rule that refused: an amount that does not fit is bad input; stored shares that
/// do not read are a fault.
impl From<domain::LedgerError> for AppError {
    fn from(e: domain::LedgerError) -> Self {
        match e {
            domain::LedgerError::Overflow => AppError::Invalid(vec![e.into()]),
            domain::LedgerError::SharesMissing | domain::LedgerError::SharesCorrupt => {
                AppError::Internal("branch shares")
            }
        }
    }
}

/// A period as stored (`YYYYMM`), read back: one that is no period is corruption.
pub fn stored_period(n: i64) -> Result<domain::Period, AppError> {
    domain::Period::from_number(n).ok_or(AppError::Store(store::StoreError::Corrupt("period")))
}
