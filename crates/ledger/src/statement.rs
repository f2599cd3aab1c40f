//! An employer's statement: owed, surcharges, paid and balance, period by period, from its
//! receivable account.

use crate::Ledger;
use domain::Centimes;
use domain::Period;
use domain::ledger::EntryCode;
use kernel::{AppError, Declarant, stored_period};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementPeriod {
    pub period: Period,
    pub due_date: String,
    /// Contributions declared plus surcharges.
    pub owed: Centimes,
    /// Of which late-payment surcharges.
    pub surcharges: Centimes,
    pub paid: Centimes,
    pub balance: Centimes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub affiliate_number: String,
    pub owed: Centimes,
    pub paid: Centimes,
    pub balance: Centimes,
    pub periods: Vec<StatementPeriod>,
}

impl Ledger {
    /// What an employer owes and has paid, period by period.
    pub async fn statement(
        &self,
        who: Declarant,
        affiliate_number: u32,
        request_id: &str,
    ) -> Result<Statement, AppError> {
        let e = self
            .k
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        let mut periods: BTreeMap<i64, StatementPeriod> = BTreeMap::new();
        for r in self.k.store().receivable(e.id).await? {
            let period = stored_period(r.period)?;
            let p = periods.entry(r.period).or_insert_with(|| StatementPeriod {
                period,
                due_date: period.due_date().to_string(),
                owed: Centimes(0),
                surcharges: Centimes(0),
                paid: Centimes(0),
                balance: Centimes(0),
            });
            match r.code {
                EntryCode::Payment => p.paid.0 -= r.amount.0,
                EntryCode::Surcharge => {
                    p.surcharges.0 += r.amount.0;
                    p.owed.0 += r.amount.0;
                }
                EntryCode::Declaration | EntryCode::Reversal | EntryCode::Allocation => {
                    p.owed.0 += r.amount.0
                }
            }
            p.balance = Centimes(p.owed.0 - p.paid.0);
        }
        let periods: Vec<StatementPeriod> = periods.into_values().collect();
        let sum =
            |f: fn(&StatementPeriod) -> Centimes| Centimes(periods.iter().map(|p| f(p).0).sum());
        Ok(Statement {
            affiliate_number: format!("{:07}", e.affiliate_number),
            owed: sum(|p| p.owed),
            paid: sum(|p| p.paid),
            balance: sum(|p| p.balance),
            periods,
        })
    }
}
