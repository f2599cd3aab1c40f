//! What logging in, enrolment, passkeys and the E-ID share: login names and their blind
//! index, one-time codes sent by SMS, the failure throttle, pending and full sessions. The
//! modules of this crate use this one and [`crate::state`], never each other.

use crate::state::Identity;
use auth::{otp, throttle, token};
use domain::{Cin, Lang, Phone, Role, Rule, ValidationError};
use kernel::columns::{FACTOR_SECRET, LOGIN_INDEX};
use kernel::sms::SmsUse;
use kernel::{AppError, Audit, Principal, timeouts};
use store::{AccountRow, PrincipalRow, SessionRow};

/// Microseconds in a second.
pub(crate) const S: i64 = 1_000_000;

/// How long a pending login waits for its second factor.
pub const PENDING_SECONDS: i64 = 600;
/// A second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sms,
    Totp,
    Passkey,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Sms => "sms",
            Method::Totp => "totp",
            Method::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "sms" => Some(Method::Sms),
            "totp" => Some(Method::Totp),
            "passkey" => Some(Method::Passkey),
            _ => None,
        }
    }
}

/// The password was right: the second factor is awaited.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub token: String,
    /// The second factors this account may use now.
    pub methods: Vec<Method>,
    pub expires_at: i64,
}

/// A new session: hand the token to the client once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub principal: Principal,
    pub idle_seconds: i64,
    pub expires_at: i64,
}

/// The flow a step-up code belongs to: distinct from the session's own token hash.
pub(crate) fn step_up_flow(session_hash: &[u8]) -> Vec<u8> {
    let mut f = b"step-up:".to_vec();
    f.extend_from_slice(session_hash);
    f
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

impl Identity {
    /// The failure throttle of a login name: refused with the wait left, if any (read only).
    pub(crate) async fn check_throttle(&self, bidx: &[u8]) -> Result<(), AppError> {
        let (failures, last) = self.k.store().login_failures(bidx).await?;
        match throttle::retry_after(failures, last, self.k.now().0) {
            Some(wait) => Err(AppError::Throttled(wait)),
            None => Ok(()),
        }
    }

    /// Reserves an attempt against a login name (counted as a failure until proven right), or
    /// refuses it with the wait left. Returns the reservation's time.
    pub(crate) async fn reserve_attempt(&self, bidx: &[u8]) -> Result<i64, AppError> {
        let now = self.k.now().0;
        let wait = throttle::sql_wait_seconds("login_throttle.failures");
        if self
            .k
            .store()
            .reserve_login_attempt(bidx, now, &wait)
            .await?
            .is_some()
        {
            return Ok(now);
        }
        self.check_throttle(bidx).await?;
        // Refused by a concurrent attempt that just counted: wait at least a second.
        Err(AppError::Throttled(1))
    }

    /// The pending login behind `token`, and its principal.
    pub(crate) async fn pending(&self, token: &str) -> Result<(SessionRow, Principal), AppError> {
        self.staged(token, "pending").await
    }

    /// The live session of this stage (`pending`, `setup`) behind `token`, and its principal.
    pub(crate) async fn staged(
        &self,
        token: &str,
        stage: &str,
    ) -> Result<(SessionRow, Principal), AppError> {
        let hash = token::token_hash(token);
        let now = self.k.now().0;
        let s = self
            .k
            .store()
            .login_session(&hash)
            .await?
            .filter(|s| s.stage == stage && s.ended_at.is_none() && now < s.expires_at)
            .ok_or(AppError::Unauthenticated)?;
        let p = self
            .k
            .principal(s.principal_id)
            .await?
            .filter(|p| !p.locked)
            .ok_or(AppError::Unauthenticated)?;
        Ok((s, p))
    }

    /// The phone number of a principal's confirmed SMS factor.
    pub(crate) async fn sms_factor_phone(
        &self,
        principal_id: i64,
    ) -> Result<Option<Phone>, AppError> {
        for f in self.k.store().factors(principal_id).await? {
            if f.kind == "sms" && f.confirmed {
                let plain = self.k.unseal_secret(FACTOR_SECRET, f.id, &f.secret)?;
                return Ok(Some(Phone::parse(&String::from_utf8_lossy(&plain))?));
            }
        }
        Ok(None)
    }

    /// Records a new session (of stage `pending`, `setup` or `full`) and returns its token, given
    /// once, and its absolute expiry. A full session starts stepped up: logging in with a second
    /// factor is a fresh one.
    pub(crate) async fn new_session(
        &self,
        principal_id: i64,
        stage: &str,
        method: &str,
        idle_seconds: i64,
        lifetime_seconds: i64,
    ) -> Result<(String, i64), AppError> {
        let now = self.k.now().0;
        let (tok, hash) = token::new_token(self.k.random())?;
        let expires_at = now + lifetime_seconds * S;
        self.k
            .store()
            .insert_session(&SessionRow {
                token_hash: hash.to_vec(),
                principal_id,
                stage: stage.into(),
                method: method.into(),
                idle_seconds,
                created_at: now,
                last_seen_at: now,
                expires_at,
                step_up_at: (stage == "full").then_some(now),
                ended_at: None,
            })
            .await?;
        Ok((tok, expires_at))
    }

    /// Ends the pending session, if any, and opens a full one.
    pub(crate) async fn open_session(
        &self,
        p: &Principal,
        pending_hash: Option<&[u8]>,
        method: &str,
        request_id: &str,
    ) -> Result<NewSession, AppError> {
        let now = self.k.now().0;
        if let Some(pending) = pending_hash
            && !self
                .k
                .store()
                .end_session(pending, now, "completed")
                .await?
        {
            // The same pending login completed twice at once: only the first opens a session.
            return Err(AppError::Unauthenticated);
        }
        let (idle, absolute) = timeouts(p.role);
        let (tok, expires_at) = self
            .new_session(p.id, "full", method, idle, absolute)
            .await?;
        Audit::auth(Some(p), "login", "ok")
            .detail(format!("method={method}"))
            .write(&self.k, request_id)
            .await?;
        Ok(NewSession {
            token: tok,
            principal: p.clone(),
            idle_seconds: idle,
            expires_at,
        })
    }

    /// The blind index of a login as typed. A string that is not a valid login still gets an
    /// index (of its lower-cased form), so it is throttled like any other.
    pub(crate) fn login_bidx(&self, login: &str) -> Result<Vec<u8>, AppError> {
        let input = match LoginName::parse(login) {
            Ok(l) => l.index_input(),
            Err(_) => format!("raw:{}", login.trim().to_lowercase()),
        };
        Ok(self
            .k
            .keyring()
            .blind_index(LOGIN_INDEX, input.as_bytes())?
            .to_vec())
    }

    /// Issues a one-time code for `flow` (at most [`otp::MAX_LIVE_CODES`] live at once) and sends
    /// it to `to`. The limits are checked first: no code exists that was not sent.
    pub(crate) async fn send_code(
        &self,
        flow: &[u8],
        to: &Phone,
        lang: Lang,
        use_: SmsUse,
    ) -> Result<(), AppError> {
        let ticket = self.k.sms_quota(to, use_).await?;
        let now = self.k.now().0;
        if self.k.store().live_otps(flow, now).await? >= otp::MAX_LIVE_CODES {
            return Err(AppError::SmsLimit);
        }
        let code = otp::new_code(self.k.random())?;
        let mac = self.auth().codes.mac(flow, &code);
        self.k
            .store()
            .insert_otp(
                self.k.new_id()?,
                flow,
                &mac,
                now,
                now + otp::CODE_TTL_SECONDS * 1_000_000,
            )
            .await?;
        self.k
            .deliver_sms(ticket, to, &code_message(&code, lang))
            .await
    }

    /// Uses a code of `flow`: true once for a valid one.
    pub(crate) async fn use_code(&self, flow: &[u8], code: &str) -> Result<bool, AppError> {
        if !otp::well_formed(code) {
            return Ok(false);
        }
        let mac = self.auth().codes.mac(flow, code);
        Ok(self.k.store().use_otp(flow, &mac, self.k.now().0).await?)
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
        let now = self.k.now().0;
        let id = self.k.new_id()?;
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
