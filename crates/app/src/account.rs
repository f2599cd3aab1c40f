//! Accounts: login names, enrolment of insured persons (proving the phone on record), invitations
//! (employer admins invite their users; the operator invites staff and first admins), and
//! disabling. Login, sessions and step-up are in [`crate::login`]; factors in [`crate::factors`].

use crate::gate::{Audit, Subject};
use crate::{App, AppError, Principal};
use crate::{Clash, Missing};
use auth::{otp, password, token};
use domain::{Cin, DenyReason, Lang, PersonField, Phone, Role, Rule, ValidationError};
use std::sync::Arc;
use store::{AccountRow, EnrolmentRow, FactorRow, PrincipalRow};
use vault::Column;

/// The blind index of login names (`accounts.login_bidx`).
pub const LOGIN_INDEX: Column = Column {
    table: "accounts",
    column: "login",
};
/// The blind index of phone numbers in the SMS send log (`sms_sends.phone_bidx`).
pub const SMS_PHONE_INDEX: Column = Column {
    table: "sms_sends",
    column: "phone",
};
/// Encrypted factor secrets: a phone number, a TOTP seed.
pub const FACTOR_SECRET: Column = Column {
    table: "factors",
    column: "secret",
};
/// The phone number an enrolment's code goes to.
pub const ENROLMENT_PHONE: Column = Column {
    table: "enrolments",
    column: "phone",
};

/// How long an invitation waits to be accepted.
pub const INVITATION_HOURS: i64 = 72;
/// Wrong codes an enrolment survives.
pub const ENROLMENT_MAX_FAILURES: i64 = 5;

/// What the authentication layer is configured with.
#[derive(Clone)]
pub struct AuthConfig {
    pub cost: auth::HashCost,
    /// Password hashes computed at once; 0 means one less than the cores, at least one.
    pub hash_workers: usize,
    /// Password checks allowed to wait for a worker before new ones are refused with 503.
    pub hash_queue: usize,
    /// Where SMS go; `None` refuses to send (commands that never send need none).
    pub sms: Option<Arc<dyn auth::SmsSender>>,
    pub sms_per_number_hour: i64,
    pub sms_per_number_day: i64,
    pub sms_global_hour: i64,
    /// How long a new RIB waits before it takes effect.
    pub rib_cooling_off_hours: i64,
    /// The public address of the portal: the WebAuthn origin, and links in messages.
    pub public_url: String,
    /// The WebAuthn relying-party id: the portal's domain (or a parent of it).
    pub rp_id: String,
    /// The national E-ID (OpenID Connect), if configured.
    pub eid: Option<auth::eid::EidConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cost: auth::HashCost::default(),
            hash_workers: 0,
            hash_queue: 64,
            sms: None,
            sms_per_number_hour: 5,
            sms_per_number_day: 10,
            sms_global_hour: 10_000,
            rib_cooling_off_hours: 72,
            public_url: "http://localhost:8080".into(),
            rp_id: "localhost".into(),
            eid: None,
        }
    }
}

/// The authentication state an [`App`] holds.
pub(crate) struct AuthState {
    pub(crate) cfg: AuthConfig,
    pub(crate) hasher: auth::PasswordHasher,
    pub(crate) codes: otp::CodeKey,
    pub(crate) webauthn: webauthn_rs::prelude::Webauthn,
    pub(crate) eid: crate::eid::EidState,
}

impl AuthState {
    pub(crate) fn open(
        cfg: AuthConfig,
        key_dir: &vault::KeyDir,
        random: &dyn vault::Random,
    ) -> Result<AuthState, AppError> {
        let pepper = key_dir.secret("password-pepper", random)?;
        let workers = match cfg.hash_workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        let hasher =
            auth::PasswordHasher::new(*pepper.expose(), cfg.cost, workers, cfg.hash_queue, random)?;
        let codes = otp::CodeKey::new(vault::MacKey::new(&key_dir.secret("otp", random)?));
        let webauthn = crate::passkey::relying_party(&cfg.rp_id, &cfg.public_url)?;
        let eid = crate::eid::EidState::new(cfg.eid.clone());
        Ok(AuthState {
            eid,
            cfg,
            hasher,
            codes,
            webauthn,
        })
    }
}

/// A login name: an insured person's CIN, or a user name chosen at invitation (3 to 64 of
/// `a-z 0-9 . _ @ -`, with at least one of `. _ @ -`, so it can never look like a CIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginName {
    Cin(Cin),
    User(String),
}

impl LoginName {
    pub fn parse(s: &str) -> Result<LoginName, ValidationError> {
        let t = s.trim();
        if let Ok(c) = Cin::parse(t) {
            return Ok(LoginName::Cin(c));
        }
        let lower = t.to_lowercase();
        let ok_chars = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@".contains(c));
        let has_sep = lower.chars().any(|c| ".-_@".contains(c));
        if lower.is_empty() {
            return Err(ValidationError::new("login", Rule::Required));
        }
        if lower.chars().count() > 64 {
            return Err(ValidationError::new("login", Rule::TooLong(64)));
        }
        if lower.len() < 3 || !ok_chars || !has_sep {
            return Err(ValidationError::new("login", Rule::UnknownValue));
        }
        Ok(LoginName::User(lower))
    }

    /// The bytes the blind index is computed over: two namespaces that cannot collide.
    fn index_input(&self) -> String {
        match self {
            LoginName::Cin(c) => format!("cin:{}", c.as_str()),
            LoginName::User(u) => format!("user:{u}"),
        }
    }

    /// The login as the user typed it, for the password's context words.
    pub fn as_str(&self) -> &str {
        match self {
            LoginName::Cin(c) => c.as_str(),
            LoginName::User(u) => u,
        }
    }
}

/// Staff (agents, security officers) follow the stricter rules: passkeys only, shorter sessions.
pub(crate) fn is_staff(role: Role) -> bool {
    matches!(role, Role::Agent | Role::SecurityOfficer)
}

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

/// Who invites: an employer admin (for their own employer, with a fresh second factor), or the
/// operator at the command line.
pub enum Inviter<'a> {
    EmployerAdmin(&'a Principal, crate::StepUp),
    Operator,
}

impl App {
    pub(crate) fn auth(&self) -> &AuthState {
        &self.inner.auth
    }

    /// The blind index of a login as typed. A string that is not a valid login still gets an
    /// index (of its lower-cased form), so it is throttled like any other.
    pub(crate) fn login_bidx(&self, login: &str) -> Result<Vec<u8>, AppError> {
        let input = match LoginName::parse(login) {
            Ok(l) => l.index_input(),
            Err(_) => format!("raw:{}", login.trim().to_lowercase()),
        };
        Ok(self
            .keyring()
            .blind_index(LOGIN_INDEX, input.as_bytes())?
            .to_vec())
    }

    /// Checks the SMS limits for `to`: the number's own (unless `per_number` is false: notices
    /// about the account must get through even when someone spent the number's quota) and the
    /// global one. Returns the number's blind index for the send log.
    async fn sms_quota(&self, to: &Phone, per_number: bool) -> Result<Vec<u8>, AppError> {
        let cfg = &self.auth().cfg;
        let now = self.now().0;
        let bidx = self
            .keyring()
            .blind_index(SMS_PHONE_INDEX, to.as_str().as_bytes())?
            .to_vec();
        let store = &self.inner.store;
        const HOUR: i64 = 3_600_000_000;
        let over = (per_number
            && (store.sms_sent_since(Some(&bidx), now - HOUR).await? >= cfg.sms_per_number_hour
                || store.sms_sent_since(Some(&bidx), now - 24 * HOUR).await?
                    >= cfg.sms_per_number_day))
            || store.sms_sent_since(None, now - HOUR).await? >= cfg.sms_global_hour;
        if over {
            return Err(AppError::SmsLimit);
        }
        Ok(bidx)
    }

    /// Sends a text whose quota was checked.
    async fn deliver_sms(&self, bidx: &[u8], to: &Phone, text: &str) -> Result<(), AppError> {
        let sender = self.auth().cfg.sms.as_ref().ok_or(AppError::Unavailable)?;
        self.inner.store.record_sms(bidx, self.now().0).await?;
        sender.send(to, text).await.map_err(|e| {
            tracing::error!(error = %e, sender = sender.kind(), "SMS not sent");
            AppError::Unavailable
        })
    }

    /// Sends a notice about the account (a phone or RIB change): outside the number's own quota,
    /// within the global one.
    pub(crate) async fn send_notice(&self, to: &Phone, text: &str) -> Result<(), AppError> {
        let bidx = self.sms_quota(to, false).await?;
        self.deliver_sms(&bidx, to, text).await
    }

    /// Issues a one-time code for `flow` (at most [`otp::MAX_LIVE_CODES`] live at once) and sends
    /// it to `to`. The limits are checked first: no code exists that was not sent.
    pub(crate) async fn send_code(
        &self,
        flow: &[u8],
        to: &Phone,
        lang: Lang,
    ) -> Result<(), AppError> {
        let bidx = self.sms_quota(to, true).await?;
        let now = self.now().0;
        if self.inner.store.live_otps(flow, now).await? >= otp::MAX_LIVE_CODES {
            return Err(AppError::SmsLimit);
        }
        let code = otp::new_code(self.random())?;
        let mac = self.auth().codes.mac(flow, &code);
        self.inner
            .store
            .insert_otp(
                self.new_id()?,
                flow,
                &mac,
                now,
                now + otp::CODE_TTL_SECONDS * 1_000_000,
            )
            .await?;
        self.deliver_sms(&bidx, to, &code_message(&code, lang))
            .await
    }

    /// Uses a code of `flow`: true once for a valid one.
    pub(crate) async fn use_code(&self, flow: &[u8], code: &str) -> Result<bool, AppError> {
        if !otp::well_formed(code) {
            return Ok(false);
        }
        let mac = self.auth().codes.mac(flow, code);
        Ok(self.inner.store.use_otp(flow, &mac, self.now().0).await?)
    }

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
        let phc = self.auth().hasher.hash(new_password, self.random()).await?;
        let (tok, hash) = token::new_token(self.random())?;
        let app = self.clone();
        let request_id = request_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = app
                .record_enrolment(cin, phc, hash, lang, &request_id)
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
        hash: [u8; 32],
        lang: Lang,
        request_id: &str,
    ) -> Result<(), AppError> {
        let found = self.resolve_record(&Subject::Cin(cin.clone())).await?;
        // Enrolling as a decoy: ignored like any enrolment that sends no code, and an alert.
        if let Some((id, _)) = &found
            && self.is_decoy_person(*id)
        {
            Audit::auth(None, "enrol_start", "ignored")
                .subject(*id)
                .write(self, request_id)
                .await?;
            return self.decoy_touched(None, "enrolment", request_id).await;
        }
        let (person_id, cipher) = match found {
            Some((id, cipher))
                if cipher.get(PersonField::Phone).is_some()
                    && !self.inner.store.person_has_account(id).await? =>
            {
                (id, cipher)
            }
            other => {
                let audit = Audit::auth(None, "enrol_start", "ignored");
                let audit = match other {
                    Some((id, _)) => audit.subject(id),
                    None => audit,
                };
                return audit.write(self, request_id).await;
            }
        };
        // Recorded before the phone on record is read.
        Audit::auth(None, "enrol_start", "code_sent")
            .subject(person_id)
            .fields(&[PersonField::Phone])
            .write(self, request_id)
            .await?;
        let phone = self
            .phone_in(person_id, &cipher)?
            .ok_or(AppError::NotFound(Missing::Person))?;
        let id = self.new_id()?;
        let now = self.now().0;
        let row = EnrolmentRow {
            id,
            token_hash: hash.to_vec(),
            role: Role::Insured.as_str().into(),
            person_id: Some(person_id),
            employer_id: None,
            is_admin: false,
            login_bidx: self.login_bidx(cin.as_str())?,
            phone: Some(
                self.keyring()
                    .encrypt(ENROLMENT_PHONE, id, phone.as_str().as_bytes())?,
            ),
            password_hash: Some(phc),
            failures: 0,
            created_by: None,
            created_at: now,
            expires_at: now + otp::CODE_TTL_SECONDS * 1_000_000,
            used_at: None,
        };
        // One enrolment at a time per person: guesses cannot be spread over many.
        self.inner
            .store
            .end_enrolments_of_person(person_id, now)
            .await?;
        self.inner.store.insert_enrolment(&row).await?;
        self.send_code(&hash, &phone, lang).await
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
                    .inner
                    .store
                    .account(p.id)
                    .await?
                    .is_some_and(|a| a.is_admin);
                if p.locked || !admin || p.role != Role::EmployerUser {
                    Audit::auth(Some(p), "invite", "deny:not_admin")
                        .write(self, request_id)
                        .await?;
                    return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
                }
                (p.employer_id, Some(p.id))
            }
            (Inviter::EmployerAdmin(p, _), _) => {
                Audit::auth(Some(p), "invite", "deny:role")
                    .write(self, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
            (Inviter::Operator, Role::EmployerUser) => {
                let a = inv
                    .affiliate
                    .ok_or(ValidationError::new("affiliate", Rule::Required))?;
                let e = self
                    .inner
                    .store
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
                .inner
                .store
                .account_by_login(&login_bidx)
                .await?
                .is_some()
        {
            return Err(AppError::Conflict(Clash::Login));
        }
        let (tok, hash) = token::new_token(self.random())?;
        let id = self.new_id()?;
        let now = self.now().0;
        let row = EnrolmentRow {
            id,
            token_hash: hash.to_vec(),
            role: inv.role.as_str().into(),
            person_id: None,
            employer_id,
            is_admin: inv.is_admin && inv.role == Role::EmployerUser,
            login_bidx,
            phone: Some(
                self.keyring()
                    .encrypt(ENROLMENT_PHONE, id, phone.as_str().as_bytes())?,
            ),
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
            .write(self, request_id)
            .await?;
        self.inner.store.insert_enrolment(&row).await?;
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
        let phc = self.auth().hasher.hash(new_password, self.random()).await?;
        self.inner.store.set_enrolment_password(e.id, &phc).await?;
        let phone = self.enrolment_phone(&e)?;
        Audit::auth(None, "invitation_accept", "code_sent")
            .detail(format!("role={}", role.as_str()))
            .write(self, request_id)
            .await?;
        self.send_code(&hash, &phone, lang).await?;
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
        let hash = token::token_hash(enrolment);
        let e = match self.inner.store.enrolment(&hash).await? {
            Some(e) if self.enrolment_is_live(&e) && e.password_hash.is_some() => e,
            // An unknown token and a wrong code get the same answer.
            _ => return Err(AppError::CodeRejected),
        };
        // Each try is counted before the code is checked, on the enrolment (at most
        // ENROLMENT_MAX_FAILURES) and on the login name's throttle, so concurrent guesses do not
        // slip through on the same count.
        if !self
            .inner
            .store
            .enrolment_attempt(e.id, ENROLMENT_MAX_FAILURES)
            .await?
        {
            return Err(AppError::CodeRejected);
        }
        self.reserve_attempt(&e.login_bidx).await?;
        if !self.use_code(&hash, code).await? {
            Audit::auth(None, "enrol_finish", "code_rejected")
                .write(self, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        }
        self.inner.store.clear_login_failures(&e.login_bidx).await?;
        let role = Role::parse(&e.role).ok_or(store::StoreError::Corrupt("enrolment role"))?;
        let phone = self.enrolment_phone(&e)?;
        let now = self.now().0;
        let (principal, account) = self.account_rows(
            role,
            (e.person_id, e.employer_id),
            e.login_bidx.clone(),
            e.password_hash.clone(),
            e.is_admin,
        )?;
        let principal_id = principal.id;
        let factor_id = self.new_id()?;
        let factor = FactorRow {
            id: factor_id,
            principal_id,
            kind: "sms".into(),
            secret: self
                .keyring()
                .encrypt(FACTOR_SECRET, factor_id, phone.as_str().as_bytes())?,
            last_step: 0,
            confirmed: true,
            created_at: now,
        };
        let p = Principal::from_row(principal.clone())?;
        Audit::auth(Some(&p), "account_created", "allow")
            .detail("factor=sms")
            .write(self, request_id)
            .await?;
        match self
            .inner
            .store
            .complete_enrolment(e.id, &principal, &account, &factor, now)
            .await
        {
            Ok(true) if is_staff(role) => Ok(Some(self.setup_token(principal_id).await?)),
            Ok(true) => Ok(None),
            // Not created after all: recorded as such.
            Ok(false) => {
                Audit::auth(Some(&p), "account_created", "aborted:used")
                    .write(self, request_id)
                    .await?;
                Err(AppError::CodeRejected)
            }
            Err(store::StoreError::Conflict(_)) => {
                Audit::auth(Some(&p), "account_created", "aborted:login_taken")
                    .write(self, request_id)
                    .await?;
                Err(AppError::Conflict(Clash::Login))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The rows of a new account: its principal (bound to a person or an employer, named by
    /// an opaque id) and its login.
    pub(crate) fn account_rows(
        &self,
        role: Role,
        (person_id, employer_id): (Option<i64>, Option<i64>),
        login_bidx: Vec<u8>,
        password_hash: Option<String>,
        is_admin: bool,
    ) -> Result<(PrincipalRow, AccountRow), AppError> {
        let now = self.now().0;
        let id = self.new_id()?;
        Ok((
            PrincipalRow {
                id,
                role: role.as_str().into(),
                label: format!("account:{id}"),
                person_id,
                employer_id,
                locked: false,
                created_at: now,
                review_lock: None,
            },
            AccountRow {
                principal_id: id,
                login_bidx,
                password_hash,
                is_admin,
                created_at: now,
            },
        ))
    }

    fn enrolment_is_live(&self, e: &EnrolmentRow) -> bool {
        e.used_at.is_none() && e.expires_at > self.now().0 && e.failures < ENROLMENT_MAX_FAILURES
    }

    async fn live_enrolment(&self, hash: &[u8]) -> Result<EnrolmentRow, AppError> {
        match self.inner.store.enrolment(hash).await? {
            Some(e) if self.enrolment_is_live(&e) && e.password_hash.is_none() => Ok(e),
            _ => Err(AppError::NotFound(Missing::Invitation)),
        }
    }

    fn enrolment_phone(&self, e: &EnrolmentRow) -> Result<Phone, AppError> {
        let ct = e
            .phone
            .as_deref()
            .ok_or(store::StoreError::Corrupt("enrolment without phone"))?;
        let plain = self.keyring().decrypt(ENROLMENT_PHONE, e.id, ct)?;
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
            .inner
            .store
            .account_by_login(&bidx)
            .await?
            .ok_or(AppError::NotFound(Missing::Account))?;
        let p = self
            .principal(account.principal_id)
            .await?
            .ok_or(AppError::NotFound(Missing::Account))?;
        let action = if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        };
        Audit::auth(Some(&p), action, "allow")
            .write(self, request_id)
            .await?;
        self.inner.store.set_locked(p.id, disabled).await?;
        if disabled {
            let n = self
                .inner
                .store
                .end_sessions(p.id, None, self.now().0, "disabled")
                .await?;
            Audit::auth(Some(&p), "sessions_ended", "allow")
                .detail(format!("reason=disabled count={n}"))
                .write(self, request_id)
                .await?;
        }
        self.forget_principal(p.id);
        Ok(())
    }
}

/// The text of a code message, in the reader's language, short enough for one SMS (Arabic goes as
/// UCS-2: 70 characters).
pub(crate) fn code_message(code: &str, lang: Lang) -> String {
    match lang {
        Lang::Ar => format!("رمزك في ضمان: {code} (صالح 10 دقائق). لا تعطه لأحد."),
        Lang::Fr => {
            format!("daman : votre code est {code} (valable 10 min). Ne le donnez a personne.")
        }
        Lang::En => format!("daman: your code is {code} (valid 10 min). Never share it."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_are_cins_or_user_names_that_cannot_look_like_one() {
        assert!(matches!(
            LoginName::parse(" ab123456 "),
            Ok(LoginName::Cin(_))
        ));
        assert_eq!(
            LoginName::parse("Paie.Atlas@Example.ma"),
            Ok(LoginName::User("paie.atlas@example.ma".into()))
        );
        assert!(LoginName::parse("plainname").is_err());
        assert!(LoginName::parse("a b.c").is_err());
        assert!(LoginName::parse("").is_err());
    }

    #[test]
    fn code_messages_fit_one_sms() {
        for lang in [Lang::Fr, Lang::Ar, Lang::En] {
            let m = code_message("123456", lang);
            assert!(m.contains("123456"));
            let limit = if m.is_ascii() { 160 } else { 70 };
            assert!(m.chars().count() <= limit, "{m}");
        }
    }
}
