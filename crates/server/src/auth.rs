//! Who is calling: a session token, from the `__Host-daman_session` cookie (browsers) or an
//! `Authorization: Bearer` header (the app, API clients). In development mode only, bearer tokens
//! minted by `daman dev-token` are accepted too (they carry no session, so no step-up).

use crate::error::ApiError;
use crate::{RequestId, State};
use app::App;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use domain::{Lang, Timestamp};
use kernel::{AppError, Principal, SessionInfo};
use vault::MacKey;

/// Signs and checks development tokens: `dev1.<principal id>.<expiry, unix s>.<hex HMAC>`.
/// The key is `dev-token.key` in the key directory, never in the database.
pub struct DevTokens {
    key: MacKey,
}

impl DevTokens {
    pub fn open(app: &App) -> Result<DevTokens, AppError> {
        let secret = app
            .kernel()
            .key_dir()
            .secret("dev-token", app.kernel().random())?;
        Ok(DevTokens {
            key: MacKey::new(&secret),
        })
    }

    pub fn mint(&self, principal_id: i64, expires: Timestamp) -> String {
        let body = format!("dev1.{principal_id}.{}", expires.0 / 1_000_000);
        let tag = crate::hex(&self.key.tag(body.as_bytes()));
        format!("{body}.{tag}")
    }

    /// The principal id of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<i64> {
        let (body, tag_hex) = token.rsplit_once('.')?;
        let tag = vault::unhex(tag_hex)?;
        if !self.key.verify(body.as_bytes(), &tag) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("dev1"), Some(id), Some(exp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let exp: i64 = exp.parse().ok()?;
        (now.0 / 1_000_000 < exp).then_some(())?;
        id.parse().ok()
    }
}

/// The caller's language.
pub(crate) fn lang(parts: &Parts) -> Lang {
    parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or_default()
}

/// The session cookie. `__Host-`: Secure, Path=/, no Domain, so no other host can set it.
pub const SESSION_COOKIE: &str = "__Host-daman_session";

/// The `Set-Cookie` value carrying a new session token. Its lifetime is the session's absolute
/// timeout; the server enforces both timeouts whatever the browser keeps.
pub(crate) fn session_cookie(token: &str, max_age: i64) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The session token of a request: the bearer token, else the session cookie.
pub(crate) fn presented_token(parts: &Parts) -> Option<String> {
    if let Some(t) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    cookie(&parts.headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// The context of an API call: who, in which language, under which request id, with which
/// session (none for a development token).
pub(crate) struct Ctx {
    pub principal: Principal,
    pub session: Option<SessionInfo>,
    pub lang: Lang,
    pub request_id: String,
}

impl Ctx {
    pub fn err(&self, e: AppError) -> ApiError {
        ApiError::new(e, self.lang)
    }

    /// The session, or 401.
    pub fn session(&self) -> Result<&SessionInfo, ApiError> {
        self.session
            .as_ref()
            .ok_or_else(|| self.err(AppError::Unauthenticated))
    }

    /// Proof of a recent second factor, or 401 `step_up_required`.
    pub fn step_up(&self, app: &App) -> Result<kernel::StepUp, ApiError> {
        self.session
            .as_ref()
            .ok_or(AppError::StepUpRequired)
            .and_then(|s| s.step_up(app.kernel().now()))
            .map_err(|e| self.err(e))
    }
}

impl FromRequestParts<State> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Ctx, ApiError> {
        let lang = lang(parts);
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let unauthenticated = || ApiError::new(AppError::Unauthenticated, lang);
        let token = presented_token(parts).ok_or_else(unauthenticated)?;
        if token.starts_with("dev1.") {
            let tokens = state.dev_tokens.as_ref().ok_or_else(unauthenticated)?;
            let id = tokens
                .verify(&token, state.app.kernel().now())
                .ok_or_else(unauthenticated)?;
            let principal = state
                .app
                .kernel()
                .principal(id)
                .await
                .map_err(|e| ApiError::new(e, lang))?
                .ok_or_else(unauthenticated)?;
            return Ok(Ctx {
                principal,
                session: None,
                lang,
                request_id,
            });
        }
        let (principal, session) = state
            .app
            .kernel()
            .authenticate(&token)
            .await
            .map_err(|e| ApiError::new(e, lang))?
            .ok_or_else(unauthenticated)?;
        Ok(Ctx {
            principal,
            session: Some(session),
            lang,
            request_id,
        })
    }
}
