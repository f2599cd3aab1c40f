//! Who is calling. Until the auth layer exists, development bearer tokens minted by
//! `daman dev-token` and accepted only in development mode.

use crate::error::ApiError;
use crate::{RequestId, State};
use app::{App, AppError, Principal};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use domain::{Lang, Timestamp};
use vault::MacKey;

/// Signs and checks development tokens: `dev1.<principal id>.<expiry, unix s>.<hex HMAC>`.
/// The key is `dev-token.key` in the key directory, never in the database.
pub struct DevTokens {
    key: MacKey,
}

impl DevTokens {
    pub fn open(app: &App) -> Result<DevTokens, AppError> {
        let secret = app.key_dir().secret("dev-token", app.random())?;
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
        let tag = decode_hex(tag_hex)?;
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

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
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

/// The context of an API call: who, in which language, under which request id.
pub(crate) struct Ctx {
    pub principal: Principal,
    pub lang: Lang,
    pub request_id: String,
}

impl Ctx {
    pub fn err(&self, e: AppError) -> ApiError {
        ApiError::new(e, self.lang)
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
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthenticated)?;
        let tokens = state.dev_tokens.as_ref().ok_or_else(unauthenticated)?;
        let id = tokens
            .verify(token.trim(), state.app.now())
            .ok_or_else(unauthenticated)?;
        let principal = state
            .app
            .principal(id)
            .await
            .map_err(|e| ApiError::new(e, lang))?
            .ok_or_else(unauthenticated)?;
        Ok(Ctx {
            principal,
            lang,
            request_id,
        })
    }
}
