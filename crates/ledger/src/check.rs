//! The whole fund's ledger: every account's balance, and the proof that it balances (every
//! entry sums to zero, the whole ledger too, and nothing declared is left unallocated).

use crate::Ledger;
use domain::ledger::Account;
use domain::{Centimes, DenyReason, Period, Role};
use kernel::{AppError, Principal};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBalance {
    pub account: Account,
    pub balance: Centimes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundView {
    pub balanced: bool,
    pub unbalanced_entries: usize,
    pub accounts: Vec<AccountBalance>,
}

impl Ledger {
    /// The whole fund: every account's balance (optionally for one period), and whether the
    /// ledger balances (every entry sums to zero, and so does everything).
    pub async fn fund_view(
        &self,
        who: &Principal,
        period: Option<Period>,
    ) -> Result<FundView, AppError> {
        if !matches!(who.role, Role::Agent | Role::SecurityOfficer) || who.locked {
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        self.ledger_check(period).await
    }

    /// The same, for the operator (command line, tests).
    pub async fn ledger_check(&self, period: Option<Period>) -> Result<FundView, AppError> {
        let accounts = self
            .k
            .store()
            .account_balances(period.map(Period::number))
            .await?;
        let unbalanced = self.k.store().unbalanced_entries().await?;
        let total: i64 = accounts.iter().map(|(_, v)| v.0).sum();
        // Every transaction allocates what its declarations declared: nothing is left in
        // `contribution:declared`, for the whole fund or any period.
        let unallocated = accounts
            .iter()
            .any(|(a, v)| *a == Account::Declared && *v != Centimes::ZERO);
        Ok(FundView {
            balanced: unbalanced.is_empty() && !unallocated && (period.is_some() || total == 0),
            unbalanced_entries: unbalanced.len(),
            accounts: accounts
                .into_iter()
                .map(|(account, balance)| AccountBalance { account, balance })
                .collect(),
        })
    }
}
