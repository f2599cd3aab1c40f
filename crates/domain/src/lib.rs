//! daman's domain: pure types and rules, no I/O.
//!
//! Identifiers with validation, money in integer centimes, periods, dated parameter tables,
//! contribution computation, the ledger's accounts and movements, the calendar of dues, and the access vocabulary (roles, purposes, personal fields,
//! masking). Time comes in through the [`Clock`] trait.

pub mod access;
pub mod calendar;
pub mod contribution;
pub mod error;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod params;
pub mod period;
pub mod time;

pub use access::{Decision, DenyReason, PersonField, Purpose, Role};
pub use calendar::months_late;
pub use contribution::{BranchAmount, LineContribution, compute_line};
pub use error::{Lang, Rule, ValidationError};
pub use ids::{AffiliateNumber, Cin, Ice, Immatriculation, Phone, Rib};
pub use ledger::{Account, BranchShares, EntryCode, Journal, LedgerError, Posting, Share, Shares};
pub use money::Centimes;
pub use params::{Branch, FamilyAllowance, Parameters, Surcharge};
pub use period::Period;
pub use time::{Clock, Date, Timestamp};
