//! Identity: who may act, and how they prove it. Enrolment of insured persons (proving the
//! phone on record), invitations (employer admins invite their users; the operator invites
//! staff and first admins), logging in (a password, then a second factor: an SMS code, a
//! TOTP app or a passkey; or the national E-ID), sessions and step-up, second factors, and
//! RIB changes with their cooling-off. NIST SP 800-63B rev. 4 and OWASP ASVS 5 level 3;
//! design: docs/authentication.md.
//!
//! Module map: [`state`] (the service, its configuration) and [`session`] (what the others
//! share) are at the bottom; `account`, `login`, `passkey`, `eid`, `factors` and `rib` each
//! use only those two.

mod account;
mod eid;
mod factors;
mod login;
mod passkey;
mod rib;
pub mod session;
pub mod state;

pub use account::{ENROLMENT_MAX_FAILURES, INVITATION_HOURS, Invitation, Inviter};
pub use eid::EidCallback;
pub use factors::{FactorView, TotpEnrolment};
pub use rib::RibChangePending;
pub use session::{LoginName, Method, NewSession, PENDING_SECONDS, PendingLogin};
pub use state::{AuthConfig, Identity};
