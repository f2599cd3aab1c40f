//! Security officers' routes: unlocking a principal after review, the breach-impact report,
//! and the four-eyes release of contact data for notifications.

use crate::State as AppState;
use crate::error::ApiError;
use crate::extract::{Body, Ctx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/principals/unlock", post(unlock_principal))
        .route("/api/v1/breach/report", post(breach_report))
        .route("/api/v1/breach/contacts/request", post(request_contacts))
        .route("/api/v1/breach/contacts/approve", post(approve_contacts))
        .route("/api/v1/breach/contacts", post(release_contacts))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockInput {
    principal_id: String,
}

#[derive(Serialize)]
struct Unlocked {
    principal_id: String,
    unlocked: bool,
}

async fn unlock_principal(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(u): Body<UnlockInput>,
) -> Result<Json<Unlocked>, ApiError> {
    let id: i64 = u.principal_id.parse().map_err(|_| {
        ctx.err(kernel::AppError::Invalid(vec![
            domain::ValidationError::new("principal_id", domain::Rule::UnknownValue),
        ]))
    })?;
    s.app
        .kernel()
        .unlock_principal(&ctx.principal, id, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(Unlocked {
        principal_id: id.to_string(),
        unlocked: true,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreachQuery {
    principals: Vec<String>,
    from: String,
    to: String,
}

/// The principals and window of a breach question, checked.
fn breach_question(
    ctx: &Ctx,
    q: &BreachQuery,
) -> Result<(Vec<i64>, domain::Timestamp, domain::Timestamp), ApiError> {
    let mut errors = Vec::new();
    let principals: Vec<i64> = q.principals.iter().filter_map(|p| p.parse().ok()).collect();
    if principals.len() != q.principals.len() || principals.is_empty() {
        errors.push(domain::ValidationError::new(
            "principals",
            domain::Rule::UnknownValue,
        ));
    }
    let from = domain::Timestamp::parse_utc("from", &q.from).map_err(|e| errors.push(e));
    let to = domain::Timestamp::parse_utc("to", &q.to).map_err(|e| errors.push(e));
    match (from, to, errors.is_empty()) {
        (Ok(from), Ok(to), true) => Ok((principals, from, to)),
        _ => Err(ctx.err(kernel::AppError::Invalid(errors))),
    }
}

async fn breach_report(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(q): Body<BreachQuery>,
) -> Result<Json<registry::BreachReport>, ApiError> {
    let (principals, from, to) = breach_question(&ctx, &q)?;
    let r = s
        .app
        .registry()
        .breach_report(
            registry::Investigator::Officer(&ctx.principal),
            &principals,
            from,
            to,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(r))
}

#[derive(Serialize)]
struct ReleaseRequested {
    release: String,
}

async fn request_contacts(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(q): Body<BreachQuery>,
) -> Result<(StatusCode, Json<ReleaseRequested>), ApiError> {
    let (principals, from, to) = breach_question(&ctx, &q)?;
    let id = s
        .app
        .registry()
        .request_contact_release(&ctx.principal, &principals, from, to, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok((
        StatusCode::CREATED,
        Json(ReleaseRequested {
            release: id.to_string(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseInput {
    release: String,
}

fn release_id(ctx: &Ctx, release: &str) -> Result<i64, ApiError> {
    crate::extract::id(ctx, "release", release)
}

#[derive(Serialize)]
struct ReleaseApproved {
    release: String,
    approved: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalInput {
    release: String,
    principals: Vec<String>,
    from: String,
    to: String,
}

async fn approve_contacts(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(a): Body<ApprovalInput>,
) -> Result<Json<ReleaseApproved>, ApiError> {
    let id = release_id(&ctx, &a.release)?;
    let (principals, from, to) = breach_question(
        &ctx,
        &BreachQuery {
            principals: a.principals,
            from: a.from,
            to: a.to,
        },
    )?;
    s.app
        .registry()
        .approve_contact_release(&ctx.principal, id, &principals, from, to, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(ReleaseApproved {
        release: id.to_string(),
        approved: true,
    }))
}

async fn release_contacts(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(r): Body<ReleaseInput>,
) -> Result<Json<registry::ContactRelease>, ApiError> {
    let id = release_id(&ctx, &r.release)?;
    let out = s
        .app
        .registry()
        .release_contacts(&ctx.principal, id, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(out))
}

/// The JSON body each route of this file takes, for the test that holds the OpenAPI document
/// to the types (`routes::tests`).
#[cfg(test)]
pub(super) fn bodies() -> Vec<super::tests::BodyProbe> {
    use super::tests::probe;
    vec![
        ("post", "/api/v1/principals/unlock", probe::<UnlockInput>),
        ("post", "/api/v1/breach/report", probe::<BreachQuery>),
        (
            "post",
            "/api/v1/breach/contacts/request",
            probe::<BreachQuery>,
        ),
        (
            "post",
            "/api/v1/breach/contacts/approve",
            probe::<ApprovalInput>,
        ),
        ("post", "/api/v1/breach/contacts", probe::<ReleaseInput>),
    ]
}
