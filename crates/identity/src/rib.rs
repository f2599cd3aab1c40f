//! Changing the RIB, which is how benefits get diverted: the insured person asks with a fresh
//! step-up; the change waits a cooling-off period (72 h by default) during which the old phone
//! number gets a notice with a cancellation code; then it takes effect.

use crate::state::Identity;
use auth::token;
use domain::{DenyReason, Lang, PersonField, Phone, Rib, Role};
use kernel::columns::{RIB_CHANGE, person_column};
use kernel::gate::Pass;
use kernel::{AppError, Audit, Clash, Missing, Principal, StepUp};
use store::RibChangeRow;

/// After a phone change, RIB changes are refused this long: their notice goes to the phone.
pub const PHONE_CHANGE_HOLD_DAYS: i64 = 7;

/// A RIB change accepted and waiting.
#[derive(Debug, Clone)]
pub struct RibChangePending {
    pub effective_at: i64,
}

impl Identity {
    /// Asks for a new RIB (an insured person, for themselves). A newer request replaces a pending
    /// one.
    pub async fn request_rib_change(
        &self,
        p: &Principal,
        _proof: StepUp,
        rib: &str,
        lang: Lang,
        request_id: &str,
    ) -> Result<RibChangePending, AppError> {
        let rib = Rib::parse(rib)?;
        let person = match (p.role, p.person_id, p.locked) {
            (Role::Insured, Some(id), false) => id,
            _ => {
                Audit::auth(Some(p), "rib_change_requested", "deny:not_self")
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::NotSelf));
            }
        };
        let now = self.k.now().0;
        // A phone changed recently could be the attacker's: the notice must reach the owner.
        if let Some(at) = self.k.store().phone_changed_at(person).await?
            && now - at < PHONE_CHANGE_HOLD_DAYS * 86_400_000_000
        {
            Audit::auth(Some(p), "rib_change_requested", "deny:recent_phone_change")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Conflict(Clash::RecentPhoneChange));
        }
        let id = self.k.new_id()?;
        let (cancel, cancel_hash) = token::new_token(self.k.random())?;
        let effective_at = now + self.auth().cfg.rib_cooling_off_hours * 3_600_000_000;
        // The phone numbers on record are read for the notice.
        let event = Audit::auth(Some(p), "rib_change_requested", "ok")
            .fields(&[PersonField::Rib, PersonField::Phone]);
        let pass = self.k.recorded_read(event, request_id).await?;
        self.k
            .store()
            .cancel_pending_rib_changes(person, now)
            .await?;
        self.k
            .store()
            .insert_rib_change(&RibChangeRow {
                id,
                person_id: person,
                principal_id: p.id,
                rib: self
                    .k
                    .keyring()
                    .encrypt(RIB_CHANGE, id, rib.as_str().as_bytes())?,
                cancel_hash: cancel_hash.to_vec(),
                requested_at: now,
                effective_at,
            })
            .await?;
        // The notice goes to every number on record (the registry's and the login's), outside
        // their own SMS quota. A change nobody could be told about does not stand.
        let text = rib_notice(&cancel, self.auth().cfg.rib_cooling_off_hours, lang);
        let mut told = 0;
        for phone in self.notice_phones(&pass, p, person).await? {
            match self.k.send_notice(&phone, &text).await {
                Ok(()) => told += 1,
                Err(e) => tracing::warn!(error = %e, "RIB change notice not sent"),
            }
        }
        if told == 0 {
            self.k.store().cancel_rib_change_by_id(id, now).await?;
            Audit::auth(Some(p), "rib_change_cancelled", "no_notice")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Unavailable);
        }
        Ok(RibChangePending { effective_at })
    }

    /// The distinct numbers on record for a person: the registry's phone and the login's.
    async fn notice_phones(
        &self,
        pass: &Pass,
        p: &Principal,
        person: i64,
    ) -> Result<Vec<Phone>, AppError> {
        let mut out: Vec<Phone> = self
            .k
            .phone_on_record(pass, person)
            .await?
            .into_iter()
            .collect();
        if let Some(login_phone) = self.sms_factor_phone(p.id).await?
            && !out.contains(&login_phone)
        {
            out.push(login_phone);
        }
        Ok(out)
    }

    /// Cancels a pending change with the code from its notice (no login needed: the notice is
    /// the proof).
    pub async fn cancel_rib_change(&self, code: &str, request_id: &str) -> Result<(), AppError> {
        let hash = token::token_hash(code);
        match self
            .k
            .store()
            .cancel_rib_change(&hash, self.k.now().0)
            .await?
        {
            Some((_, person)) => {
                Audit::auth(None, "rib_change_cancelled", "ok")
                    .subject(person)
                    .fields(&[PersonField::Rib])
                    .write(&self.k, request_id)
                    .await
            }
            None => {
                Audit::auth(None, "rib_change_cancelled", "not_found")
                    .write(&self.k, request_id)
                    .await?;
                Err(AppError::NotFound(Missing::RibChange))
            }
        }
    }

    /// Applies the changes whose cooling-off period is over; returns how many. Run every minute
    /// by the server; safe on several nodes at once (each change applies once).
    pub async fn apply_due_rib_changes(&self) -> Result<usize, AppError> {
        let now = self.k.now().0;
        let mut applied = 0;
        for c in self.k.store().due_rib_changes(now, 500).await? {
            // Recorded before it happens (and before the new RIB is decrypted); a change
            // cancelled or applied meanwhile (by another node) is recorded as such.
            let audit = || Audit::auth(None, "rib_change_applied", "ok").subject(c.person_id);
            let pass = self
                .k
                .recorded_read(audit().fields(&[PersonField::Rib]), "scheduler")
                .await?;
            let plain = zeroize::Zeroizing::new(self.k.unseal(&pass, RIB_CHANGE, c.id, &c.rib)?);
            let ct =
                self.k
                    .keyring()
                    .encrypt(person_column(PersonField::Rib), c.person_id, &plain)?;
            if self
                .k
                .store()
                .apply_rib_change(c.id, c.person_id, &ct, now)
                .await?
            {
                applied += 1;
            } else {
                audit()
                    .outcome("superseded")
                    .write(&self.k, "scheduler")
                    .await?;
            }
        }
        Ok(applied)
    }
}

impl Identity {
    /// Deletes expired authentication rows (codes, ceremonies, flows, enrolments, old SMS-send
    /// records and failure counters, sessions over for a week); returns how many. Run hourly by
    /// the server.
    pub async fn purge_expired(&self) -> Result<u64, AppError> {
        Ok(self.k.store().purge_auth(self.k.now().0).await?)
    }
}

fn rib_notice(cancel: &str, hours: i64, lang: Lang) -> String {
    match lang {
        Lang::Ar => format!(
            "ضمان: طلب تغيير RIB سيسري بعد {hours} ساعة. إن لم تكن أنت ألغه بالرمز {cancel}"
        ),
        Lang::Fr => format!(
            "daman : changement de RIB demande, effectif dans {hours} h. Si ce n'est pas vous, annulez avec le code {cancel}"
        ),
        Lang::En => format!(
            "daman: RIB change requested, effective in {hours} h. If this was not you, cancel with code {cancel}"
        ),
    }
}
