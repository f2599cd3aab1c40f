//! Late-payment surcharges: for each employer and period past its due date with contributions
//! unpaid, the dated table's rate for the months late, posted once per day.

use crate::Ledger;
use domain::ledger::{Account, EntryCode, Journal};
use domain::{Centimes, Date, Period, months_late};
use kernel::{AppError, Audit, Registrar, stored_period};
use serde::Serialize;
use std::collections::BTreeMap;
use store::LedgerEntryRow;

/// What a surcharge run posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurchargeRun {
    pub entries: usize,
    pub total: Centimes,
}

impl Ledger {
    /// Posts the late-payment surcharges due on `at`: for each employer and period whose due
    /// date has passed with contributions unpaid, the rate of the dated table for the months
    /// (or parts of months) late, on what is unpaid (surcharges are not surcharged), less what
    /// was already posted. Idempotent: the same day again posts nothing.
    pub async fn post_surcharges(
        &self,
        reg: Registrar,
        at: Date,
        request_id: &str,
    ) -> Result<SurchargeRun, AppError> {
        let store = &self.k.store();
        let at_period = Period::new(at.year.clamp(1900, 9999) as u16, at.month)?;
        let mut sums: BTreeMap<(i64, i64), (i64, i64, i64)> = BTreeMap::new();
        for (employer, r) in store.receivables_up_to(at_period.number()).await? {
            let e = sums.entry((employer, r.period)).or_default();
            match r.code {
                EntryCode::Payment => e.1 -= r.amount.0,
                EntryCode::Surcharge => e.2 += r.amount.0,
                EntryCode::Declaration | EntryCode::Reversal | EntryCode::Allocation => {
                    e.0 += r.amount.0
                }
            }
        }
        let now = self.k.now();
        let mut entries = Vec::new();
        let mut total = 0i64;
        for ((employer, pn), (owed, paid, posted)) in sums {
            let period = stored_period(pn)?;
            let months = months_late(period.due_date(), at);
            let unpaid = (owed - paid).max(0);
            let Some(rates) = self.k.params().surcharge_at(period) else {
                continue;
            };
            let due = Centimes(unpaid).apply_basis_points(rates.rate_after(months))?;
            let add = due.0 - posted;
            if add <= 0 {
                continue;
            }
            total += add;
            entries.push(LedgerEntryRow {
                id: 0,
                key: EntryCode::Surcharge.key(format!("{employer}:{pn}:{months}:{at}")),
                code: EntryCode::Surcharge,
                employer_id: Some(employer),
                period: pn,
                at: now.0,
                postings: Journal::transfer(
                    Account::Receivable,
                    Account::Surcharge,
                    Centimes(add),
                )?,
            });
        }
        if !entries.is_empty() {
            let first = store.allocate("ledger_entry", entries.len() as i64).await?;
            for (k, e) in entries.iter_mut().enumerate() {
                e.id = first + k as i64;
            }
        }
        Audit::counted(reg.actor(), "post_surcharges", entries.len())
            .detail(format!("at={at}"))
            .write(&self.k, request_id)
            .await?;
        store.insert_entries(&entries).await?;
        Ok(SurchargeRun {
            entries: entries.len(),
            total: Centimes(total),
        })
    }
}
