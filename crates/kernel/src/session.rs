//! Sessions as requests present them: a session token is looked up, its timeouts and stage
//! checked, its principal loaded ([`Kernel::authenticate`]); sensitive commands take a
//! [`StepUp`], which only a session whose second factor is recent enough gives. Logging in
//! (what creates sessions) is the identity crate's.

use crate::principal::Principal;
use crate::{AppError, Kernel};
use auth::token;
use domain::Role;

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

/// Staff (agents, security officers) follow the stricter rules: passkeys only, shorter sessions.
pub fn is_staff(role: Role) -> bool {
    matches!(role, Role::Agent | Role::SecurityOfficer)
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
    /// The hash of the session's token (what the store knows it by).
    pub fn token_hash(&self) -> &[u8] {
        &self.token_hash
    }

    /// The step-up proof, if the session's last second factor is recent enough.
    pub fn step_up(&self, now: domain::Timestamp) -> Result<StepUp, AppError> {
        match self.step_up_at {
            Some(at) if now.0 - at <= STEP_UP_SECONDS * S => Ok(StepUp(())),
            _ => Err(AppError::StepUpRequired),
        }
    }
}

impl Kernel {
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
}
