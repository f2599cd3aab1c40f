//! Authentication building blocks, without storage: password policy and hashing, one-time codes,
//! TOTP, opaque tokens, the failure throttle, and SMS senders. The application layer (`app`)
//! composes them into enrolment, login, sessions and step-up, with storage and the audit log.

pub mod eid;
pub mod otp;
pub mod password;
pub mod sms;
pub mod throttle;
pub mod token;
pub mod totp;

pub use password::{HashCost, PasswordHasher, Verified};
pub use sms::{SmsError, SmsSender};

/// What can fail here. Never carries a secret, a code or a phone number.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("configuration: {0}")]
    Config(&'static str),
    #[error("too many password checks waiting")]
    Busy,
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
}

pub use vault::hex;
