//! Managing second factors: list, add a TOTP app, change the phone number, remove. Each change
//! needs a step-up, is audited, and ends the account's other sessions.

use crate::session::Method;
use crate::state::Identity;
use auth::totp;
use domain::{DenyReason, Lang, PersonField, Phone};
use kernel::columns::{FACTOR_SECRET, person_column};
use kernel::sms::SmsUse;
use kernel::sms::phone_changed_notice;
use kernel::{AppError, Audit, Clash, Missing, Principal, SessionInfo, StepUp, is_staff};
use store::FactorRow;

/// A factor as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FactorView {
    pub id: String,
    pub kind: String,
    /// For an SMS factor: the number, masked.
    pub label: Option<String>,
    pub created_at: i64,
}

/// A TOTP factor waiting for its first code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The seed in base32, for manual entry.
    pub secret: String,
    /// The `otpauth://` URI an authenticator app scans.
    pub uri: String,
}

impl Identity {
    /// The caller's confirmed factors.
    pub async fn list_factors(&self, p: &Principal) -> Result<Vec<FactorView>, AppError> {
        let mut out = Vec::new();
        for f in self.k.store().factors(p.id).await? {
            if !f.confirmed {
                continue;
            }
            let label = if f.kind == "sms" {
                let plain = self.k.unseal_secret(FACTOR_SECRET, f.id, &f.secret)?;
                Some(PersonField::Phone.mask(&String::from_utf8_lossy(&plain)))
            } else {
                None
            };
            out.push(FactorView {
                id: f.id.to_string(),
                kind: f.kind,
                label,
                created_at: f.created_at,
            });
        }
        // Stable: by kind (sms, totp, passkey), then age.
        let rank = |k: &str| Method::parse(k).map(|m| m as u8);
        out.sort_by_key(|f| (rank(&f.kind), f.created_at));
        Ok(out)
    }

    /// Starts adding a TOTP app: a new 160-bit seed, shown once.
    pub async fn start_totp(
        &self,
        p: &Principal,
        _proof: StepUp,
    ) -> Result<TotpEnrolment, AppError> {
        if is_staff(p.role) {
            return Err(AppError::Denied(DenyReason::PasskeyRequired));
        }
        let mut seed = zeroize::Zeroizing::new([0u8; totp::SEED_LEN]);
        self.k.random().fill(seed.as_mut())?;
        let id = self.k.new_id()?;
        self.k
            .store()
            .insert_factor(&FactorRow {
                id,
                principal_id: p.id,
                kind: "totp".into(),
                secret: self.k.keyring().encrypt(FACTOR_SECRET, id, seed.as_ref())?,
                last_step: 0,
                confirmed: false,
                created_at: self.k.now().0,
            })
            .await?;
        Ok(TotpEnrolment {
            secret: totp::base32(seed.as_ref()),
            uri: totp::otpauth_uri(seed.as_ref(), "daman", &format!("{}", p.id)),
        })
    }

    /// Confirms the TOTP app with a first code; the account's other sessions end.
    pub async fn confirm_totp(
        &self,
        p: &Principal,
        s: &SessionInfo,
        code: &str,
        request_id: &str,
    ) -> Result<(), AppError> {
        let now_s = self.k.now().0.div_euclid(1_000_000);
        let pending = self
            .k
            .store()
            .factors(p.id)
            .await?
            .into_iter()
            .rev()
            .find(|f| f.kind == "totp" && !f.confirmed)
            .ok_or(AppError::NotFound(Missing::Factor))?;
        let seed = self
            .k
            .unseal_secret(FACTOR_SECRET, pending.id, &pending.secret)?;
        let Some(step) = totp::verify(&seed, code, now_s, 0) else {
            Audit::auth(Some(p), "factor_added", "code_rejected")
                .detail("kind=totp")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        };
        Audit::auth(Some(p), "factor_added", "ok")
            .detail("kind=totp")
            .write(&self.k, request_id)
            .await?;
        if !self
            .k
            .store()
            .confirm_factor(pending.id, p.id, step, false)
            .await?
        {
            return Err(AppError::NotFound(Missing::Factor));
        }
        self.logout_others(p, s, "factor_change", request_id)
            .await?;
        Ok(())
    }

    /// Starts a phone number change: a code goes to the new number.
    pub async fn start_phone_change(
        &self,
        p: &Principal,
        _proof: StepUp,
        phone: &str,
        lang: Lang,
    ) -> Result<(), AppError> {
        let phone = Phone::parse(phone)?;
        if is_staff(p.role) {
            return Err(AppError::Denied(DenyReason::PasskeyRequired));
        }
        let id = self.k.new_id()?;
        self.k
            .store()
            .insert_factor(&FactorRow {
                id,
                principal_id: p.id,
                kind: "sms".into(),
                secret: self
                    .k
                    .keyring()
                    .encrypt(FACTOR_SECRET, id, phone.as_str().as_bytes())?,
                last_step: 0,
                confirmed: false,
                created_at: self.k.now().0,
            })
            .await?;
        self.send_code(&phone_flow(id), &phone, lang, SmsUse::Account)
            .await
    }

    /// Confirms the new number with its code: it replaces the old SMS factor (and, for an insured
    /// person, the phone on record); the old number is told; other sessions end.
    pub async fn confirm_phone_change(
        &self,
        p: &Principal,
        s: &SessionInfo,
        code: &str,
        lang: Lang,
        request_id: &str,
    ) -> Result<(), AppError> {
        let factors = self.k.store().factors(p.id).await?;
        let new = factors
            .iter()
            .rev()
            .find(|f| f.kind == "sms" && !f.confirmed)
            .ok_or(AppError::NotFound(Missing::Factor))?;
        // Counted on the account's login throttle, as a login's code is: reserved before the
        // code is checked (a wrong one stays a failure), cleared by the right one.
        let throttled = Audit::auth(Some(p), "factor_changed", "throttled").detail("kind=sms");
        let account = self.account_attempt(p, throttled, request_id).await?;
        if !self.use_code(&phone_flow(new.id), code).await? {
            Audit::auth(Some(p), "factor_changed", "code_rejected")
                .detail("kind=sms")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        }
        self.k
            .store()
            .clear_login_failures(&account.login_bidx)
            .await?;
        let old_phone = self.sms_factor_phone(p.id).await?;
        Audit::auth(Some(p), "factor_changed", "ok")
            .detail("kind=sms")
            .fields(&[PersonField::Phone])
            .write(&self.k, request_id)
            .await?;
        // The new number replaces the old one, in one transaction.
        if !self.k.store().confirm_factor(new.id, p.id, 0, true).await? {
            return Err(AppError::NotFound(Missing::Factor));
        }
        if let Some(person) = p.person_id {
            self.k
                .store()
                .record_phone_change(person, self.k.now().0)
                .await?;
            let plain = self.k.unseal_secret(FACTOR_SECRET, new.id, &new.secret)?;
            let ct = self
                .k
                .keyring()
                .encrypt(person_column(PersonField::Phone), person, &plain)?;
            self.k
                .store()
                .update_contact(person, Some(ct), None, None, self.k.now().0)
                .await?;
        }
        if let Some(old) = old_phone
            && let Err(e) = self.k.send_notice(&old, phone_changed_notice(lang)).await
        {
            tracing::warn!(error = %e, "phone change notice not sent");
        }
        self.logout_others(p, s, "factor_change", request_id)
            .await?;
        Ok(())
    }

    /// Removes a factor, keeping at least one second factor; other sessions end.
    pub async fn remove_factor(
        &self,
        p: &Principal,
        s: &SessionInfo,
        _proof: StepUp,
        factor_id: i64,
        request_id: &str,
    ) -> Result<(), AppError> {
        let Some(f) = self
            .k
            .store()
            .factors(p.id)
            .await?
            .into_iter()
            .find(|f| f.id == factor_id && f.confirmed)
        else {
            return Err(AppError::NotFound(Missing::Factor));
        };
        // Staff keep at least one passkey; everyone else at least one second factor.
        let usable: &[&str] = if is_staff(p.role) {
            &["passkey"]
        } else {
            &["sms", "totp", "passkey"]
        };
        // Recorded before it happens; a refusal is recorded too.
        Audit::auth(Some(p), "factor_removed", "ok")
            .detail(format!("kind={}", f.kind))
            .write(&self.k, request_id)
            .await?;
        if !self
            .k
            .store()
            .delete_factor_keeping_one(factor_id, p.id, usable, self.k.now().0)
            .await?
        {
            Audit::auth(Some(p), "factor_removed", "deny:last_factor")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Conflict(Clash::LastFactor));
        }
        self.logout_others(p, s, "factor_change", request_id)
            .await?;
        Ok(())
    }
}

fn phone_flow(factor_id: i64) -> Vec<u8> {
    let mut f = b"phone:".to_vec();
    f.extend_from_slice(&factor_id.to_be_bytes());
    f
}
