//! Routes and handlers, one file per capability. Handlers only translate: HTTP in, one call to
//! the service the route belongs to, HTTP out.

mod contributions;
mod identity;
mod ledger;
mod registry;
mod security;

use crate::error::ApiError;
use crate::{State as AppState, ok_text};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The OpenAPI 3.1 document of the API, served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every API route as (method, path): the router and the OpenAPI document must both list exactly
/// these (a test checks it).
pub const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/employers"),
    ("post", "/api/v1/persons"),
    ("post", "/api/v1/persons/read"),
    ("post", "/api/v1/persons/contact"),
    ("post", "/api/v1/employments"),
    ("post", "/api/v1/cases"),
    ("post", "/api/v1/principals/unlock"),
    ("post", "/api/v1/breach/report"),
    ("post", "/api/v1/me/accesses"),
    ("post", "/api/v1/breach/contacts/request"),
    ("post", "/api/v1/breach/contacts/approve"),
    ("post", "/api/v1/breach/contacts"),
    ("post", "/api/v1/auth/enrol"),
    ("post", "/api/v1/auth/enrol/confirm"),
    ("post", "/api/v1/auth/invitations"),
    ("post", "/api/v1/auth/invitations/accept"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/login/sms"),
    ("post", "/api/v1/auth/login/passkey"),
    ("get", "/api/v1/auth/eid/start"),
    ("get", "/api/v1/auth/eid/callback"),
    ("post", "/api/v1/auth/login/verify"),
    ("post", "/api/v1/auth/passkeys/setup"),
    ("post", "/api/v1/auth/passkeys/setup/finish"),
    ("get", "/api/v1/auth/session"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/sessions/end-others"),
    ("post", "/api/v1/auth/step-up/sms"),
    ("post", "/api/v1/auth/step-up/passkey"),
    ("post", "/api/v1/auth/step-up"),
    ("get", "/api/v1/auth/factors"),
    ("post", "/api/v1/auth/factors/totp"),
    ("post", "/api/v1/auth/factors/totp/confirm"),
    ("post", "/api/v1/auth/factors/phone"),
    ("post", "/api/v1/auth/factors/phone/confirm"),
    ("post", "/api/v1/auth/factors/passkey"),
    ("post", "/api/v1/auth/factors/passkey/confirm"),
    ("post", "/api/v1/auth/factors/remove"),
    ("post", "/api/v1/persons/rib"),
    ("post", "/api/v1/rib-changes/cancel"),
    ("post", "/api/v1/declarations/preetabli"),
    ("post", "/api/v1/declarations"),
    ("post", "/api/v1/declarations/{id}/rectification"),
    ("post", "/api/v1/declarations/list"),
    ("post", "/api/v1/declarations/file"),
    ("post", "/api/v1/declarations/receipt"),
    ("post", "/api/v1/declarations/rejections"),
    ("post", "/api/v1/declarations/lines"),
    ("post", "/api/v1/statement"),
    ("post", "/api/v1/career"),
    ("post", "/api/v1/payments"),
    ("post", "/api/v1/ledger"),
];

pub(crate) fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { ok_text("ok") }))
        .route("/readyz", get(readyz))
}

pub(crate) fn api(max_body: usize, limiter: crate::RouteLimiter) -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .merge(registry::routes())
        .merge(security::routes())
        .merge(contributions::routes())
        .merge(ledger::routes())
        .merge(
            identity::routes().route_layer(axum::middleware::from_fn_with_state(
                limiter,
                crate::limit::per_ip,
            )),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .merge(contributions::upload())
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.app.kernel().ready().await {
        ok_text("ready")
    } else {
        ApiError::unavailable().into_response()
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}
