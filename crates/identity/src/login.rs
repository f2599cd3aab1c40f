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

use crate::session::{Method, NewSession, PENDING_SECONDS, PendingLogin, S, step_up_flow};
use crate::state::Identity;
use auth::totp;
use domain::{DenyReason, Lang};
use kernel::columns::FACTOR_SECRET;
use kernel::sms::SmsUse;
use kernel::{AppError, Audit, Principal, SessionInfo, is_staff};

impl Identity {
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
        let (_, previous_failure) = self.k.store().login_failures(&bidx).await?;
        let reserved = match self.reserve_attempt(&bidx).await {
            Ok(r) => r,
            Err(e) => {
                Audit::auth(None, "login_password", "throttled")
                    .write(&self.k, request_id)
                    .await?;
                return Err(e);
            }
        };
        let account = self.k.store().account_by_login(&bidx).await?;
        let principal = match &account {
            Some(a) => self.k.principal(a.principal_id).await?,
            None => None,
        };
        let verified = self
            .auth()
            .hasher
            .verify(
                account.as_ref().and_then(|a| a.password_hash.as_deref()),
                password,
                self.k.random(),
            )
            .await?;
        let (principal, rehash) = match (verified, principal) {
            (auth::Verified::Yes { rehash }, Some(p)) if !p.locked => (p, rehash),
            (_, p) => {
                // The reserved attempt stays counted as a failure.
                Audit::auth(p.as_ref(), "login_password", "failed")
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::LoginFailed);
            }
        };
        // A right password is not a failure; the counter is cleared only by a completed login.
        self.k
            .store()
            .release_login_attempt(&bidx, reserved, previous_failure)
            .await?;
        let now = self.k.now().0;
        if let Some(phc) = rehash {
            self.k
                .store()
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
            .write(&self.k, request_id)
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
        for f in self.k.store().factors(p.id).await? {
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
            .k
            .store()
            .account(p.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        self.check_throttle(&account.login_bidx).await?;
        let phone = self
            .sms_factor_phone(p.id)
            .await?
            .ok_or(AppError::Denied(DenyReason::FieldNotAllowed))?;
        self.send_code(flow, &phone, lang, SmsUse::Account).await
    }

    /// Sends the SMS code of a pending login.
    pub async fn send_login_code(&self, pending: &str, lang: Lang) -> Result<(), AppError> {
        let (s, p) = self.pending(pending).await?;
        self.send_factor_code(&p, &s.token_hash, lang).await
    }

    /// The signed-in principal's account, with one attempt reserved on its login's throttle
    /// before a secret it gives is checked: a wrong one stays a failure, its own success
    /// clears it. When the wait is not over, `throttled` is audited and the wait returned.
    pub(crate) async fn account_attempt(
        &self,
        p: &Principal,
        throttled: Audit,
        request_id: &str,
    ) -> Result<store::AccountRow, AppError> {
        let account = self
            .k
            .store()
            .account(p.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if let Err(e) = self.reserve_attempt(&account.login_bidx).await {
            throttled.write(&self.k, request_id).await?;
            return Err(e);
        }
        Ok(account)
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
        if is_staff(p.role) && method != Method::Passkey {
            Audit::auth(Some(p), action, "deny:passkey_required")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Denied(DenyReason::PasskeyRequired));
        }
        let account = self
            .account_attempt(p, Audit::auth(Some(p), action, "throttled"), request_id)
            .await?;
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
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        }
        self.k
            .store()
            .clear_login_failures(&account.login_bidx)
            .await?;
        Ok(())
    }

    /// Checks a TOTP code against the principal's confirmed TOTP factor, once per time step.
    async fn use_totp(&self, principal_id: i64, code: &str) -> Result<bool, AppError> {
        let now_s = self.k.now().0.div_euclid(S);
        for f in self.k.store().factors(principal_id).await? {
            if f.kind != "totp" || !f.confirmed {
                continue;
            }
            let seed = self.k.unseal_secret(FACTOR_SECRET, f.id, &f.secret)?;
            if let Some(step) = totp::verify(&seed, code, now_s, f.last_step) {
                // A concurrent use of the same code loses here.
                return Ok(self.k.store().advance_factor_step(f.id, step).await?);
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

    /// Ends this session.
    pub async fn logout(
        &self,
        p: &Principal,
        s: &SessionInfo,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.k
            .store()
            .end_session(s.token_hash(), self.k.now().0, "logout")
            .await?;
        Audit::auth(Some(p), "logout", "ok")
            .write(&self.k, request_id)
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
            .k
            .store()
            .end_sessions(p.id, Some(s.token_hash()), self.k.now().0, reason)
            .await?;
        Audit::auth(Some(p), "sessions_ended", "ok")
            .detail(format!("reason={reason} count={n}"))
            .write(&self.k, request_id)
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
        self.send_factor_code(p, &step_up_flow(s.token_hash()), lang)
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
            &step_up_flow(s.token_hash()),
            method,
            code,
            "step_up",
            request_id,
        )
        .await?;
        self.k
            .store()
            .set_step_up(s.token_hash(), self.k.now().0)
            .await?;
        Audit::auth(Some(p), "step_up", "ok")
            .detail(format!("method={}", method.as_str()))
            .write(&self.k, request_id)
            .await
    }
}
