//! Logging in (a password, then a second factor), sessions and step-up.
//!
//! - The password step answers the same for an unknown login, a wrong password and a disabled
//!   account ([`AppError::LoginFailed`]), after the same Argon2 work; consecutive failures are
//!   counted per login name whether or not an account has it ([`auth::throttle`]).
//! - A right password opens a *pending* session (10 minutes) good only for the second factor:
//!   an SMS code or a TOTP code for insured persons and employer users; a passkey for staff,
//!   who cannot complete a login with anything else.
//! - The second factor ends the pending session and opens a new one with a new token (ASVS
//!   7.2.4), with server-enforced idle and absolute timeouts: AAL2 1 h / 24 h, staff 15 min / 12 h.
//! - Sensitive acts need a step-up: a second factor presented in the last [`STEP_UP_SECONDS`].

use crate::account::is_staff;
use crate::gate::Audit;
use crate::{App, AppError, Principal};
use auth::{throttle, token, totp};
use domain::{DenyReason, Lang, Phone, Role};
use store::SessionRow;

/// How long a pending login waits for its second factor.
pub const PENDING_SECONDS: i64 = 600;
/// How recent a step-up must be for a sensitive act.
pub const STEP_UP_SECONDS: i64 = 300;
/// A session's last-seen time is written at most this often (idle timeouts are that coarse).
pub const TOUCH_SECONDS: i64 = 60;

const S: i64 = 1_000_000;

/// (idle, absolute) session timeouts in seconds for a role.
pub fn timeouts(role: Role) -> (i64, i64) {
    if is_staff(role) {
        (15 * 60, 12 * 3600)
    } else {
        (3600, 24 * 3600)
    }
}

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

/// The session a request came with.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub(crate) token_hash: Vec<u8>,
    pub method: String,
    pub created_at: i64,
    pub step_up_at: Option<i64>,
}

/// Proof that the caller presented a second factor within [`STEP_UP_SECONDS`]; sensitive
/// commands take one.
#[derive(Debug, Clone, Copy)]
pub struct StepUp(());

impl SessionInfo {
    /// The step-up proof, if the session's last second factor is recent enough.
    pub fn step_up(&self, now: domain::Timestamp) -> Result<StepUp, AppError> {
        match self.step_up_at {
            Some(at) if now.0 - at <= STEP_UP_SECONDS * S => Ok(StepUp(())),
            _ => Err(AppError::StepUpRequired),
        }
    }
}

impl App {
    /// The failure throttle of a login name: refused with the wait left, if any (read only).
    pub(crate) async fn check_throttle(&self, bidx: &[u8]) -> Result<(), AppError> {
        let (failures, last) = self.inner.store.login_failures(bidx).await?;
        match throttle::retry_after(failures, last, self.now().0) {
            Some(wait) => Err(AppError::Throttled(wait)),
            None => Ok(()),
        }
    }

    /// Reserves an attempt against a login name (counted as a failure until proven right), or
    /// refuses it with the wait left. Returns the reservation's time.
    pub(crate) async fn reserve_attempt(&self, bidx: &[u8]) -> Result<i64, AppError> {
        let now = self.now().0;
        let wait = throttle::sql_wait_seconds("login_throttle.failures");
        if self
            .inner
            .store
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

    /// Step one: login name and password.
    pub async fn login_password(
        &self,
        login: &str,
        password: &str,
        request_id: &str,
    ) -> Result<PendingLogin, AppError> {
        // Refused before any other work when the hashing pool is full (a flood).
        if self.auth().hasher.saturated() {
            return Err(AppError::Busy);
        }
        let bidx = self.login_bidx(login)?;
        // The time of the last failure before this attempt, to restore if the password is right.
        let (_, previous_failure) = self.inner.store.login_failures(&bidx).await?;
        let reserved = match self.reserve_attempt(&bidx).await {
            Ok(r) => r,
            Err(e) => {
                Audit::auth(None, "login_password", "throttled")
                    .write(self, request_id)
                    .await?;
                return Err(e);
            }
        };
        let account = self.inner.store.account_by_login(&bidx).await?;
        let principal = match &account {
            Some(a) => self.principal(a.principal_id).await?,
            None => None,
        };
        let verified = self
            .auth()
            .hasher
            .verify(
                account.as_ref().and_then(|a| a.password_hash.as_deref()),
                password,
                self.random(),
            )
            .await?;
        let (principal, rehash) = match (verified, principal) {
            (auth::Verified::Yes { rehash }, Some(p)) if !p.locked => (p, rehash),
            (_, p) => {
                // The reserved attempt stays counted as a failure.
                Audit::auth(p.as_ref(), "login_password", "failed")
                    .write(self, request_id)
                    .await?;
                return Err(AppError::LoginFailed);
            }
        };
        // A right password is not a failure; the counter is cleared only by a completed login.
        self.inner
            .store
            .release_login_attempt(&bidx, reserved, previous_failure)
            .await?;
        let now = self.now().0;
        if let Some(phc) = rehash {
            self.inner
                .store
                .set_password_hash(principal.id, &phc, now)
                .await?;
        }
        let methods = self.usable_methods(&principal).await?;
        let (tok, expires_at) = self
            .new_session(
                principal.id,
                "pending",
                "password",
                PENDING_SECONDS,
                PENDING_SECONDS,
            )
            .await?;
        Audit::auth(Some(&principal), "login_password", "ok")
            .write(self, request_id)
            .await?;
        Ok(PendingLogin {
            token: tok,
            methods,
            expires_at,
        })
    }

    /// The confirmed second factors of a principal that its role may use.
    async fn usable_methods(&self, p: &Principal) -> Result<Vec<Method>, AppError> {
        let mut out = Vec::new();
        for f in self.inner.store.factors(p.id).await? {
            let Some(m) = Method::parse(&f.kind) else {
                continue;
            };
            if f.confirmed && (m == Method::Passkey || !is_staff(p.role)) && !out.contains(&m) {
                out.push(m);
            }
        }
        out.sort_by_key(|m| *m as u8);
        Ok(out)
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
        let now = self.now().0;
        let s = self
            .inner
            .store
            .login_session(&hash)
            .await?
            .filter(|s| s.stage == stage && s.ended_at.is_none() && now < s.expires_at)
            .ok_or(AppError::Unauthenticated)?;
        let p = self
            .principal(s.principal_id)
            .await?
            .filter(|p| !p.locked)
            .ok_or(AppError::Unauthenticated)?;
        Ok((s, p))
    }

    /// Sends an SMS code for a pending login (or a step-up) to the account's phone.
    async fn send_factor_code(
        &self,
        p: &Principal,
        flow: &[u8],
        lang: Lang,
    ) -> Result<(), AppError> {
        if is_staff(p.role) {
            return Err(AppError::Denied(DenyReason::PasskeyRequired));
        }
        let account = self
            .inner
            .store
            .account(p.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        self.check_throttle(&account.login_bidx).await?;
        let phone = self
            .sms_factor_phone(p.id)
            .await?
            .ok_or(AppError::Denied(DenyReason::FieldNotAllowed))?;
        self.send_code(flow, &phone, lang).await
    }

    /// The phone number of a principal's confirmed SMS factor.
    pub(crate) async fn sms_factor_phone(
        &self,
        principal_id: i64,
    ) -> Result<Option<Phone>, AppError> {
        for f in self.inner.store.factors(principal_id).await? {
            if f.kind == "sms" && f.confirmed {
                let plain =
                    self.keyring()
                        .decrypt(crate::account::FACTOR_SECRET, f.id, &f.secret)?;
                return Ok(Some(Phone::parse(&String::from_utf8_lossy(&plain))?));
            }
        }
        Ok(None)
    }

    /// Sends the SMS code of a pending login.
    pub async fn send_login_code(&self, pending: &str, lang: Lang) -> Result<(), AppError> {
        let (s, p) = self.pending(pending).await?;
        self.send_factor_code(&p, &s.token_hash, lang).await
    }

    /// Checks a second factor for `flow` (a pending login or a session asking to step up).
    /// Every failure counts against the account's login name.
    async fn check_factor(
        &self,
        p: &Principal,
        flow: &[u8],
        method: Method,
        code: &str,
        action: &'static str,
        request_id: &str,
    ) -> Result<(), AppError> {
        let account = self
            .inner
            .store
            .account(p.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if is_staff(p.role) && method != Method::Passkey {
            Audit::auth(Some(p), action, "deny:passkey_required")
                .write(self, request_id)
                .await?;
            return Err(AppError::Denied(DenyReason::PasskeyRequired));
        }
        if let Err(e) = self.reserve_attempt(&account.login_bidx).await {
            Audit::auth(Some(p), action, "throttled")
                .write(self, request_id)
                .await?;
            return Err(e);
        }
        let ok = match method {
            Method::Sms => self.use_code(flow, code).await?,
            Method::Totp => self.use_totp(p.id, code).await?,
            // The "code" of a passkey is the authenticator's assertion (JSON).
            Method::Passkey => self.use_passkey(p, flow, code).await?,
        };
        if !ok {
            // The reserved attempt stays counted as a failure.
            Audit::auth(Some(p), action, "failed")
                .detail(format!("method={}", method.as_str()))
                .write(self, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        }
        self.inner
            .store
            .clear_login_failures(&account.login_bidx)
            .await?;
        Ok(())
    }

    /// Checks a TOTP code against the principal's confirmed TOTP factor, once per time step.
    async fn use_totp(&self, principal_id: i64, code: &str) -> Result<bool, AppError> {
        let now_s = self.now().0.div_euclid(S);
        for f in self.inner.store.factors(principal_id).await? {
            if f.kind != "totp" || !f.confirmed {
                continue;
            }
            let seed = zeroize::Zeroizing::new(self.keyring().decrypt(
                crate::account::FACTOR_SECRET,
                f.id,
                &f.secret,
            )?);
            if let Some(step) = totp::verify(&seed, code, now_s, f.last_step) {
                // A concurrent use of the same code loses here.
                return Ok(self.inner.store.advance_factor_step(f.id, step).await?);
            }
        }
        Ok(false)
    }

    /// Step two: the second factor. Opens the session.
    pub async fn login_second_factor(
        &self,
        pending: &str,
        method: Method,
        code: &str,
        request_id: &str,
    ) -> Result<NewSession, AppError> {
        let (s, p) = self.pending(pending).await?;
        self.check_factor(&p, &s.token_hash, method, code, "login", request_id)
            .await?;
        self.open_session(&p, Some(&s.token_hash), method.as_str(), request_id)
            .await
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
        let now = self.now().0;
        let (tok, hash) = token::new_token(self.random())?;
        let expires_at = now + lifetime_seconds * S;
        self.inner
            .store
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
        let now = self.now().0;
        if let Some(pending) = pending_hash
            && !self
                .inner
                .store
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
            .write(self, request_id)
            .await?;
        Ok(NewSession {
            token: tok,
            principal: p.clone(),
            idle_seconds: idle,
            expires_at,
        })
    }

    /// The principal and session of a session token, if the session is live: not ended, within
    /// its absolute and idle timeouts, and its account not disabled. Refreshes the idle timer.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(Principal, SessionInfo)>, AppError> {
        let hash = token::token_hash(token);
        let now = self.now().0;
        let Some(s) = self.inner.store.login_session(&hash).await? else {
            return Ok(None);
        };
        if s.stage != "full"
            || s.ended_at.is_some()
            || now >= s.expires_at
            || now - s.last_seen_at >= s.idle_seconds * S
        {
            return Ok(None);
        }
        let Some(p) = self.principal(s.principal_id).await?.filter(|p| !p.locked) else {
            return Ok(None);
        };
        if now - s.last_seen_at >= TOUCH_SECONDS * S {
            self.inner.store.touch_session(&hash, now).await?;
        }
        Ok(Some((
            p,
            SessionInfo {
                token_hash: s.token_hash,
                method: s.method,
                created_at: s.created_at,
                step_up_at: s.step_up_at,
            },
        )))
    }

    /// Ends this session.
    pub async fn logout(
        &self,
        p: &Principal,
        s: &SessionInfo,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.inner
            .store
            .end_session(&s.token_hash, self.now().0, "logout")
            .await?;
        Audit::auth(Some(p), "logout", "ok")
            .write(self, request_id)
            .await
    }

    /// Ends every other session of the caller; returns how many.
    pub async fn logout_others(
        &self,
        p: &Principal,
        s: &SessionInfo,
        reason: &'static str,
        request_id: &str,
    ) -> Result<u64, AppError> {
        let n = self
            .inner
            .store
            .end_sessions(p.id, Some(&s.token_hash), self.now().0, reason)
            .await?;
        Audit::auth(Some(p), "sessions_ended", "ok")
            .detail(format!("reason={reason} count={n}"))
            .write(self, request_id)
            .await?;
        Ok(n)
    }

    /// Sends an SMS code to step up this session.
    pub async fn send_step_up_code(
        &self,
        p: &Principal,
        s: &SessionInfo,
        lang: Lang,
    ) -> Result<(), AppError> {
        self.send_factor_code(p, &step_up_flow(&s.token_hash), lang)
            .await
    }

    /// Steps up this session with a second factor.
    pub async fn step_up(
        &self,
        p: &Principal,
        s: &SessionInfo,
        method: Method,
        code: &str,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.check_factor(
            p,
            &step_up_flow(&s.token_hash),
            method,
            code,
            "step_up",
            request_id,
        )
        .await?;
        self.inner
            .store
            .set_step_up(&s.token_hash, self.now().0)
            .await?;
        Audit::auth(Some(p), "step_up", "ok")
            .detail(format!("method={}", method.as_str()))
            .write(self, request_id)
            .await
    }
}

/// The flow a step-up code belongs to: distinct from the session's own token hash.
pub(crate) fn step_up_flow(session_hash: &[u8]) -> Vec<u8> {
    let mut f = b"step-up:".to_vec();
    f.extend_from_slice(session_hash);
    f
}
