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
    #[error("internal failure: {0}")]
    Internal(&'static str),
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Invalid(vec![e])
    }
}
