//! What every handler extracts from a request:
//!
//! - [`Ctx`]: who is calling. A session token, from the `__Host-daman_session` cookie
//!   (browsers) or an `Authorization: Bearer` header (the app, API clients); in development
//!   mode only, tokens minted by `daman dev-token` too (they carry no session, so no step-up).
//! - [`Anon`]: the language and request id of a route that needs no session.
//! - [`Body`]: a JSON body whose rejection is the one error shape, never echoing the input.
//! - The declarant capability and the identifiers most routes parse.

use crate::error::ApiError;
use crate::{RequestId, State};
use app::App;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use domain::{AffiliateNumber, Lang, Period};
use kernel::{AppError, Declarant, Principal, SessionInfo};
use serde::de::DeserializeOwned;

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

/// Language and request id, for routes that need no session.
pub(crate) struct Anon {
    pub(crate) lang: Lang,
    pub(crate) request_id: String,
}

impl Anon {
    pub(crate) fn err(&self, e: AppError) -> ApiError {
        ApiError::new(e, self.lang)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Anon {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Anon, ApiError> {
        Ok(Anon {
            lang: lang(parts),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
        })
    }
}

/// A JSON body whose rejection is our error shape, without echoing the input.
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let lang = lang(&parts);
        let req = Request::from_parts(parts, body);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(ApiError::bad_body(lang, rejection.status())),
        }
    }
}

pub(crate) fn declarant(s: &State, ctx: &Ctx) -> Result<Declarant, ApiError> {
    s.app
        .kernel()
        .declarant(&ctx.principal)
        .map_err(|e| ctx.err(e))
}

pub(crate) fn affiliate(ctx: &Ctx, s: &str) -> Result<u32, ApiError> {
    AffiliateNumber::parse(s)
        .map(|a| a.value())
        .map_err(|e| ctx.err(e.into()))
}

pub(crate) fn period(ctx: &Ctx, s: &str) -> Result<Period, ApiError> {
    Period::parse(s).map_err(|e| ctx.err(e.into()))
}

/// A row id sent as a string in field `field` (ids travel as strings: JavaScript's numbers
/// lose precision): digits, positive.
pub(crate) fn id(ctx: &Ctx, field: &'static str, s: &str) -> Result<i64, ApiError> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ctx.err(domain::ValidationError::new(field, domain::Rule::Digits(19)).into())
        })
}
