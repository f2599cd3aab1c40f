//! Payments received from employers: recorded once per bank reference (the idempotency key),
//! each a ledger entry debiting the bank and crediting the employer's receivable.

use crate::Ledger;
use domain::ledger::{Account, EntryCode, Journal};
use domain::{Centimes, Date, Period};
use kernel::{AppError, Audit, Clash, Declarant, Registrar, stored_period};
use serde::Serialize;
use store::{LedgerEntryRow, PaymentRow};

/// A payment received from an employer for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub affiliate_number: u32,
    pub period: Period,
    pub amount: Centimes,
    /// The bank's reference: recording it a second time changes nothing.
    pub bank_reference: String,
    pub paid_on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub affiliate_period: Period,
    pub bank_reference: String,
    pub amount: Centimes,
    pub paid_on: String,
}

fn payment_view(p: &PaymentRow) -> Result<PaymentView, AppError> {
    Ok(PaymentView {
        affiliate_period: stored_period(p.period)?,
        bank_reference: p.bank_reference.clone(),
        amount: Centimes(p.amount),
        paid_on: p.paid_on.clone(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PaymentOutcome {
    Recorded(PaymentView),
    AlreadyRecorded(PaymentView),
}

impl Ledger {
    /// Records a payment by an employer for a period, once per bank reference: the same
    /// reference again changes nothing and returns the payment already recorded.
    pub async fn record_payment(
        &self,
        reg: Registrar,
        payment: &NewPayment,
        request_id: &str,
    ) -> Result<PaymentOutcome, AppError> {
        let NewPayment {
            affiliate_number,
            period,
            amount,
            paid_on,
            ..
        } = *payment;
        let bank_reference = payment.bank_reference.as_str();
        let reference = bank_reference.trim();
        let mut bad = Vec::new();
        if amount.0 <= 0 {
            bad.push(domain::ValidationError::new(
                "amount",
                domain::Rule::NotNegative,
            ));
        }
        // A bank's reference: letters, digits and . _ / - (it becomes the idempotency key).
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-');
        if reference.is_empty() {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::Required,
            ));
        } else if reference.len() > 64 {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::TooLong(64),
            ));
        } else if !reference.chars().all(allowed) {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::UnknownValue,
            ));
        }
        if !bad.is_empty() {
            return Err(AppError::Invalid(bad));
        }
        // As whoever records it: the agent is locked if the employer is a decoy.
        let who = Declarant::from_registrar(reg);
        let employer = self
            .k
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        if let Some(p) = self.k.store().payment_by_reference(reference).await? {
            // The same payment again changes nothing; another payment under the same reference
            // is refused rather than lost.
            return if (p.employer_id, p.period, p.amount)
                == (employer.id, period.number(), amount.0)
            {
                Ok(PaymentOutcome::AlreadyRecorded(payment_view(&p)?))
            } else {
                Err(AppError::Conflict(Clash::Payment))
            };
        }
        let id = self.k.store().allocate("payment", 1).await?;
        let entry_id = self.k.store().allocate("ledger_entry", 1).await?;
        let now = self.k.now();
        let pay = PaymentRow {
            id,
            employer_id: employer.id,
            period: period.number(),
            bank_reference: reference.to_string(),
            amount: amount.0,
            paid_on: paid_on.to_string(),
            entry_id,
            received_at: now.0,
        };
        let entry = LedgerEntryRow {
            id: entry_id,
            key: EntryCode::Payment.key(reference),
            code: EntryCode::Payment,
            employer_id: Some(employer.id),
            period: pay.period,
            at: now.0,
            postings: Journal::transfer(Account::Bank, Account::Receivable, amount)?,
        };
        Audit::counted(reg.actor(), "record_payment", 1)
            .detail(format!("affiliate={affiliate_number:07} period={period}"))
            .write(&self.k, request_id)
            .await?;
        match self.k.store().insert_payment(&pay, &entry).await {
            Ok(()) => Ok(PaymentOutcome::Recorded(payment_view(&pay)?)),
            Err(store::StoreError::Conflict(_)) => {
                let p = self
                    .k
                    .store()
                    .payment_by_reference(reference)
                    .await?
                    .ok_or(AppError::Conflict(Clash::Payment))?;
                Ok(PaymentOutcome::AlreadyRecorded(payment_view(&p)?))
            }
            Err(e) => Err(e.into()),
        }
    }
}
