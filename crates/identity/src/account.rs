//! Accounts: login names, enrolment of insured persons (proving the phone on record), invitations
//! (employer admins invite their users; the operator invites staff and first admins), and
//! disabling. Login, sessions and step-up are in [`crate::login`]; factors in [`crate::factors`].

use crate::session::LoginName;
use crate::state::Identity;
use auth::{otp, password, token};
use domain::{Cin, DenyReason, Lang, PersonField, Phone, Role, Rule, ValidationError};
use kernel::columns::{ENROLMENT_PHONE, FACTOR_SECRET};
use kernel::sms::SmsUse;
use kernel::{AppError, Audit, Clash, Missing, Principal, SessionInfo, StepUp, Subject, is_staff};
use store::{EnrolmentRow, FactorRow};

/// How long an invitation waits to be accepted.
pub const INVITATION_HOURS: i64 = 72;
/// Wrong codes an enrolment survives.
pub const ENROLMENT_MAX_FAILURES: i64 = 5;

/// The least time a refused enrolment confirmation takes, whether its token names an
/// enrolment or not: well above the work of either (about 3 ms at the median).
const REFUSAL_FLOOR: std::time::Duration = std::time::Duration::from_millis(12);

/// What an invitation creates.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub login: String,
    pub phone: String,
    pub role: Role,
    /// For an employer user: the employer's affiliation number.
    pub affiliate: Option<domain::AffiliateNumber>,
    /// An employer user who may invite others.
    pub is_admin: bool,
}

/// What an insured person's new password is checked against: what a leak of their record
/// would give an attacker.
const PASSWORD_CONTEXT: [PersonField; 8] = [
    PersonField::Cin,
    PersonField::Immatriculation,
    PersonField::LastName,
    PersonField::FirstName,
    PersonField::LastNameAr,
    PersonField::FirstNameAr,
    PersonField::BirthDate,
    PersonField::Phone,
];

impl Identity {
    /// The values of [`PASSWORD_CONTEXT`] on a person's record, for [`password::check_new`]:
    /// read for the pass's recorded reason (which names those fields).
    fn record_words(
        &self,
        pass: &kernel::gate::Pass,
        person: i64,
        cipher: &store::PersonCipher,
    ) -> Result<Vec<String>, AppError> {
        let mut words = Vec::with_capacity(PASSWORD_CONTEXT.len());
        for f in PASSWORD_CONTEXT {
            if let Some(v) = self.k.system_text(pass, person, cipher, f)? {
                words.push(v);
            }
        }
        Ok(words)
    }
}

/// The SMS to a person whose enrolment's password was built of their own record, in Arabic
/// and French (the enrolment's language is the requester's, not necessarily theirs).
pub fn guessable_password_notice() -> &'static str {
    "ضمان: كلمة المرور المختارة قريبة جدا من بياناتك الشخصية. أعد التسجيل بكلمة أخرى. \
     daman : le mot de passe choisi est trop proche de vos donnees personnelles. Inscrivez-vous a nouveau avec un autre."
}

/// Who invites: an employer admin (for their own employer, with a fresh second factor), or the
/// operator at the command line.
pub enum Inviter<'a> {
    EmployerAdmin(&'a Principal, StepUp),
    Operator,
}

impl Identity {
    /// Starts an insured person's enrolment: checks the new password, hashes it, and answers with
    /// an enrolment token. Then, in the background, if the CIN belongs to a registered person with
    /// a phone on record and no account yet, the enrolment is recorded (replacing any earlier one
    /// of that person) and a code goes to that phone. The answer looks the same and takes the same
    /// time whether or not the CIN is registered.
    pub async fn enrol_insured(
        &self,
        cin: &str,
        new_password: &str,
        lang: Lang,
        request_id: &str,
    ) -> Result<String, AppError> {
        let cin = Cin::parse(cin)?;
        password::check_new(new_password, &[cin.as_str()], true)?;
        let phc = self
            .auth()
            .hasher
            .hash(new_password, self.k.random())
            .await?;
        let (tok, hash) = token::new_token(self.k.random())?;
        let app = self.clone();
        let request_id = request_id.to_string();
        // Checked again in the background against the person's record (names, number, birth
        // date, phone), which the answer must not depend on.
        let typed = zeroize::Zeroizing::new(new_password.to_string());
        tokio::spawn(async move {
            if let Err(e) = app
                .record_enrolment(cin, phc, &typed, hash, lang, &request_id)
                .await
            {
                tracing::warn!(error = %e, "enrolment not recorded");
            }
        });
        Ok(tok)
    }

    async fn record_enrolment(
        &self,
        cin: Cin,
        phc: String,
        typed: &str,
        hash: [u8; 32],
        lang: Lang,
        request_id: &str,
    ) -> Result<(), AppError> {
        let found = self.k.resolve_record(&Subject::Cin(cin.clone())).await?;
        // Enrolling as a decoy: ignored like any enrolment that sends no code, and an alert.
        if let Some((id, _)) = &found
            && self.k.is_decoy_person(*id)
        {
            Audit::auth(None, "enrol_start", "ignored")
                .subject(*id)
                .write(&self.k, request_id)
                .await?;
            return self.k.decoy_touched(None, "enrolment", request_id).await;
        }
        let (person_id, cipher) = match found {
            Some((id, cipher))
                if cipher.get(PersonField::Phone).is_some()
                    && !self.k.store().person_has_account(id).await? =>
            {
                (id, cipher)
            }
            other => {
                let audit = Audit::auth(None, "enrol_start", "ignored");
                let audit = match other {
                    Some((id, _)) => audit.subject(id),
                    None => audit,
                };
                return audit.write(&self.k, request_id).await;
            }
        };
        // Recorded before the phone on record, and what the password is checked against, are
        // read.
        let event = Audit::auth(None, "enrol_start", "checked")
            .subject(person_id)
            .fields(&PASSWORD_CONTEXT)
            .detail("reason=the code's phone, and the new password against the record");
        let pass = self.k.recorded_read(event, request_id).await?;
        let phone = self
            .k
            .phone_in(&pass, person_id, &cipher)?
            .ok_or(AppError::NotFound(Missing::Person))?;
        // A password built of the person's own record (what a leak gives an attacker) is
        // refused here, where only the person hears of it: an SMS to their phone, no
        // enrolment. The answer to whoever enrolled was the same either way.
        let context = self.record_words(&pass, person_id, &cipher)?;
        let words: Vec<&str> = context.iter().map(String::as_str).collect();
        if password::check_new(typed, &words, true).is_err() {
            Audit::auth(None, "enrol_start", "refused:context_password")
                .subject(person_id)
                .write(&self.k, request_id)
                .await?;
            let ticket = self.k.sms_quota(&phone, SmsUse::Anonymous).await?;
            return self
                .k
                .deliver_sms(ticket, &phone, guessable_password_notice())
                .await;
        }
        let id = self.k.new_id()?;
        let now = self.k.now().0;
        let row = EnrolmentRow {
            id,
            token_hash: hash.to_vec(),
            role: Role::Insured.as_str().into(),
            person_id: Some(person_id),
            employer_id: None,
            is_admin: false,
            login_bidx: self.login_bidx(cin.as_str())?,
            phone: Some(self.k.keyring().encrypt(
                ENROLMENT_PHONE,
                id,
                phone.as_str().as_bytes(),
            )?),
            password_hash: Some(phc),
            failures: 0,
            created_by: None,
            created_at: now,
            expires_at: now + otp::CODE_TTL_SECONDS * 1_000_000,
            used_at: None,
        };
        // One enrolment at a time per person: guesses cannot be spread over many.
        self.k
            .store()
            .end_enrolments_of_person(person_id, now)
            .await?;
        self.k.store().insert_enrolment(&row).await?;
        self.send_code(&hash, &phone, lang, SmsUse::Anonymous).await
    }

    /// Creates an invitation: an enrolment the invitee completes with a password and a code sent
    /// to `phone`. Returns the invitation token (valid [`INVITATION_HOURS`]), to hand over.
    pub async fn invite(
        &self,
        by: Inviter<'_>,
        inv: &Invitation,
        request_id: &str,
    ) -> Result<String, AppError> {
        let login = LoginName::parse(&inv.login)?;
        if matches!(login, LoginName::Cin(_)) {
            return Err(ValidationError::new("login", Rule::UnknownValue).into());
        }
        let phone = Phone::parse(&inv.phone)?;
        let (employer_id, created_by) = match (&by, inv.role) {
            (Inviter::EmployerAdmin(p, _), Role::EmployerUser) => {
                let admin = self
                    .k
                    .store()
                    .account(p.id)
                    .await?
                    .is_some_and(|a| a.is_admin);
                if p.locked || !admin || p.role != Role::EmployerUser {
                    Audit::auth(Some(p), "invite", "deny:not_admin")
                        .write(&self.k, request_id)
                        .await?;
                    return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
                }
                (p.employer_id, Some(p.id))
            }
            (Inviter::EmployerAdmin(p, _), _) => {
                Audit::auth(Some(p), "invite", "deny:role")
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
            (Inviter::Operator, Role::EmployerUser) => {
                let a = inv
                    .affiliate
                    .ok_or(ValidationError::new("affiliate", Rule::Required))?;
                let e = self
                    .k
                    .store()
                    .employer_by_affiliate(i64::from(a.value()))
                    .await?
                    .ok_or(AppError::NotFound(Missing::Employer))?;
                (Some(e.id), None)
            }
            (Inviter::Operator, Role::Agent | Role::SecurityOfficer) => (None, None),
            (Inviter::Operator, Role::Insured) => {
                return Err(ValidationError::new("role", Rule::UnknownValue).into());
            }
        };
        let login_bidx = self.login_bidx(login.as_str())?;
        // The operator learns at once that a login is taken; an employer admin only when the
        // invitee confirms (no probing which logins exist, staff's included).
        if matches!(by, Inviter::Operator)
            && self
                .k
                .store()
                .account_by_login(&login_bidx)
                .await?
                .is_some()
        {
            return Err(AppError::Conflict(Clash::Login));
        }
        let (tok, hash) = token::new_token(self.k.random())?;
        let id = self.k.new_id()?;
        let now = self.k.now().0;
        let row = EnrolmentRow {
            id,
            token_hash: hash.to_vec(),
            role: inv.role.as_str().into(),
            person_id: None,
            employer_id,
            is_admin: inv.is_admin && inv.role == Role::EmployerUser,
            login_bidx,
            phone: Some(self.k.keyring().encrypt(
                ENROLMENT_PHONE,
                id,
                phone.as_str().as_bytes(),
            )?),
            password_hash: None,
            failures: 0,
            created_by,
            created_at: now,
            expires_at: now + INVITATION_HOURS * 3_600_000_000,
            used_at: None,
        };
        let who = match by {
            Inviter::EmployerAdmin(p, _) => Some(p.clone()),
            Inviter::Operator => None,
        };
        Audit::auth(who.as_ref(), "invite", "allow")
            .detail(format!("role={}", inv.role.as_str()))
            .write(&self.k, request_id)
            .await?;
        self.k.store().insert_enrolment(&row).await?;
        Ok(tok)
    }

    /// The invitee accepts: sets a password and gets a code on the invited phone. Returns the
    /// same token, now waiting for the code.
    pub async fn accept_invitation(
        &self,
        invitation: &str,
        new_password: &str,
        lang: Lang,
        request_id: &str,
    ) -> Result<String, AppError> {
        let hash = token::token_hash(invitation);
        let e = self.live_enrolment(&hash).await?;
        let role = Role::parse(&e.role).ok_or(store::StoreError::Corrupt("enrolment role"))?;
        // Staff passwords are a first factor before a passkey; the same minimum applies. The
        // login is known here only by its blind index: a password equal to it is refused.
        password::check_new(new_password, &[], true)?;
        if self.login_bidx(new_password)? == e.login_bidx {
            return Err(ValidationError::new("password", Rule::ContextPassword).into());
        }
        let phc = self
            .auth()
            .hasher
            .hash(new_password, self.k.random())
            .await?;
        self.k.store().set_enrolment_password(e.id, &phc).await?;
        let phone = self.enrolment_phone(&e)?;
        Audit::auth(None, "invitation_accept", "code_sent")
            .detail(format!("role={}", role.as_str()))
            .write(&self.k, request_id)
            .await?;
        self.send_code(&hash, &phone, lang, SmsUse::Account).await?;
        Ok(invitation.trim().to_string())
    }

    /// Completes an enrolment with the code sent to its phone: the account exists from now on,
    /// with its password and the phone as its SMS factor. For staff, returns the setup token with
    /// which they register their first passkey (their only way to log in).
    pub async fn complete_enrolment(
        &self,
        enrolment: &str,
        code: &str,
        request_id: &str,
    ) -> Result<Option<String>, AppError> {
        let started = tokio::time::Instant::now();
        let hash = token::token_hash(enrolment);
        let live = self
            .k
            .store()
            .enrolment(&hash)
            .await?
            .filter(|e| self.enrolment_is_live(e) && e.password_hash.is_some());
        // The same work in the same order whether the token names a live enrolment or not (an
        // insured person's names one only if the CIN is registered, with a phone): each try is
        // counted before the code is checked, on the token's own throttle (429 past the free
        // five, for any token alike) and on the enrolment (at most ENROLMENT_MAX_FAILURES);
        // the code is looked up either way, and a refusal is audited either way. The login's
        // own counter is not touched: only its owner's success changes it, and a login already
        // taken (an employer admin may invite one without knowing) is another's.
        let throttle = self.login_bidx(&format!("enrolment:{}", kernel::hex(&hash)))?;
        self.reserve_attempt(&throttle).await?;
        let counted = self
            .k
            .store()
            .enrolment_try(
                live.as_ref().map(|e| e.id),
                ENROLMENT_MAX_FAILURES,
                &throttle,
            )
            .await?;
        let right = self.use_code(&hash, code).await?;
        let e = match live {
            Some(e) if counted && right => e,
            _ => {
                Audit::auth(None, "enrol_finish", "code_rejected")
                    .write(&self.k, request_id)
                    .await?;
                // No sooner than the floor: an enrolment found and counted still takes a
                // little longer than none (0.3 ms at the median, `scripts/bench-oracle`).
                tokio::time::sleep_until(started + REFUSAL_FLOOR).await;
                return Err(AppError::CodeRejected);
            }
        };
        if self
            .k
            .store()
            .account_by_login(&e.login_bidx)
            .await?
            .is_some()
        {
            Audit::auth(None, "enrol_finish", "conflict:login")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Conflict(Clash::Login));
        }
        self.k.store().clear_login_failures(&e.login_bidx).await?;
        let role = Role::parse(&e.role).ok_or(store::StoreError::Corrupt("enrolment role"))?;
        let phone = self.enrolment_phone(&e)?;
        let now = self.k.now().0;
        let (principal, account) = self.account_rows(
            role,
            (e.person_id, e.employer_id),
            e.login_bidx.clone(),
            e.password_hash.clone(),
            e.is_admin,
        )?;
        let principal_id = principal.id;
        let factor_id = self.k.new_id()?;
        let factor = FactorRow {
            id: factor_id,
            principal_id,
            kind: "sms".into(),
            secret: self.k.keyring().encrypt(
                FACTOR_SECRET,
                factor_id,
                phone.as_str().as_bytes(),
            )?,
            last_step: 0,
            confirmed: true,
            created_at: now,
        };
        let p = Principal::from_row(principal.clone())?;
        Audit::auth(Some(&p), "account_created", "allow")
            .detail("factor=sms")
            .write(&self.k, request_id)
            .await?;
        match self
            .k
            .store()
            .complete_enrolment(e.id, &principal, &account, &factor, now)
            .await
        {
            Ok(true) if is_staff(role) => Ok(Some(self.setup_token(principal_id).await?)),
            Ok(true) => Ok(None),
            // Not created after all: recorded as such.
            Ok(false) => {
                Audit::auth(Some(&p), "account_created", "aborted:used")
                    .write(&self.k, request_id)
                    .await?;
                Err(AppError::CodeRejected)
            }
            Err(store::StoreError::Conflict(_)) => {
                Audit::auth(Some(&p), "account_created", "aborted:login_taken")
                    .write(&self.k, request_id)
                    .await?;
                Err(AppError::Conflict(Clash::Login))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn enrolment_is_live(&self, e: &EnrolmentRow) -> bool {
        e.used_at.is_none() && e.expires_at > self.k.now().0 && e.failures < ENROLMENT_MAX_FAILURES
    }

    async fn live_enrolment(&self, hash: &[u8]) -> Result<EnrolmentRow, AppError> {
        match self.k.store().enrolment(hash).await? {
            Some(e) if self.enrolment_is_live(&e) && e.password_hash.is_none() => Ok(e),
            _ => Err(AppError::NotFound(Missing::Invitation)),
        }
    }

    fn enrolment_phone(&self, e: &EnrolmentRow) -> Result<Phone, AppError> {
        let ct = e
            .phone
            .as_deref()
            .ok_or(store::StoreError::Corrupt("enrolment without phone"))?;
        let plain = self.k.unseal_secret(ENROLMENT_PHONE, e.id, ct)?;
        Ok(Phone::parse(&String::from_utf8_lossy(&plain))?)
    }

    /// Disables (or re-enables) the account with this login: a disabled account cannot log in,
    /// and all its sessions end at once.
    pub async fn set_account_disabled(
        &self,
        login: &str,
        disabled: bool,
        request_id: &str,
    ) -> Result<(), AppError> {
        let bidx = self.login_bidx(login)?;
        let account = self
            .k
            .store()
            .account_by_login(&bidx)
            .await?
            .ok_or(AppError::NotFound(Missing::Account))?;
        let p = self
            .k
            .principal(account.principal_id)
            .await?
            .ok_or(AppError::NotFound(Missing::Account))?;
        let action = if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        };
        Audit::auth(Some(&p), action, "allow")
            .write(&self.k, request_id)
            .await?;
        self.k.store().set_locked(p.id, disabled).await?;
        if disabled {
            let n = self
                .k
                .store()
                .end_sessions(p.id, None, self.k.now().0, "disabled")
                .await?;
            Audit::auth(Some(&p), "sessions_ended", "allow")
                .detail(format!("reason=disabled count={n}"))
                .write(&self.k, request_id)
                .await?;
        }
        self.k.forget_principal(p.id);
        Ok(())
    }
}

impl Identity {
    /// Changes a signed-in person's password: with a fresh second factor (`_proof`) and the
    /// current password (counted on the login's throttle like a login's, so a stolen session
    /// cannot guess it), the new one checked against the policy and, for an insured person,
    /// their own record (read as their own, audited). Every other session ends. Returns how
    /// many did.
    pub async fn change_password(
        &self,
        p: &Principal,
        s: &SessionInfo,
        _proof: StepUp,
        current: &str,
        new_password: &str,
        request_id: &str,
    ) -> Result<u64, AppError> {
        let account = self
            .account_attempt(
                p,
                Audit::auth(Some(p), "password_change", "throttled"),
                request_id,
            )
            .await?;
        let verified = self
            .auth()
            .hasher
            .verify(account.password_hash.as_deref(), current, self.k.random())
            .await?;
        if !matches!(verified, auth::Verified::Yes { .. }) {
            Audit::auth(Some(p), "password_change", "failed")
                .write(&self.k, request_id)
                .await?;
            return Err(ValidationError::new("current_password", Rule::UnknownValue).into());
        }
        let mut context = Vec::new();
        if let Some(person) = p.person_id {
            let event = Audit::auth(Some(p), "password_change", "checked")
                .subject(person)
                .fields(&PASSWORD_CONTEXT)
                .detail("reason=the new password against the person's own record");
            let pass = self.k.recorded_read(event, request_id).await?;
            if let Some(cipher) = self.k.store().person(person).await? {
                context = self.record_words(&pass, person, &cipher)?;
            }
        }
        let words: Vec<&str> = context.iter().map(String::as_str).collect();
        password::check_new(new_password, &words, true)?;
        let phc = self
            .auth()
            .hasher
            .hash(new_password, self.k.random())
            .await?;
        self.k
            .store()
            .set_password_hash(p.id, &phc, self.k.now().0)
            .await?;
        self.k
            .store()
            .clear_login_failures(&account.login_bidx)
            .await?;
        Audit::auth(Some(p), "password_change", "ok")
            .write(&self.k, request_id)
            .await?;
        self.logout_others(p, s, "password_changed", request_id)
            .await
    }
}
