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
    NotFound(&'static str),
    #[error("already exists: {0}")]
    Conflict(&'static str),
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
