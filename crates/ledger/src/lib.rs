//! The ledger's commands and views: payments received, late-payment surcharges, employers'
//! statements and the whole fund's check. The accounts and kinds of movement are
//! `domain::ledger`'s enums; the store keeps the entries. Declarations post their own entries
//! (the contributions crate), through the same rules.

mod check;
mod payments;
mod statement;
mod surcharges;

pub use check::{AccountBalance, FundView};
pub use payments::{NewPayment, PaymentOutcome, PaymentView};
pub use statement::{Statement, StatementPeriod};
pub use surcharges::SurchargeRun;

use kernel::Kernel;

/// The ledger service over the kernel.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) k: Kernel,
}

impl Ledger {
    pub fn new(k: Kernel) -> Ledger {
        Ledger { k }
    }
}
