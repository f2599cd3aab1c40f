//! Routes and handlers. Handlers only translate: HTTP in, one application call, HTTP out.

use crate::auth::{Ctx, lang};
use crate::error::ApiError;
use crate::{State as AppState, ok_text};
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kernel::{PersonView, RevealInput, Subject};
use registry::{EmployerCreated, NewEmployer, NewPerson, PersonCreated};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
        .route("/api/v1/employers", post(create_employer))
        .route("/api/v1/persons", post(create_person))
        .route("/api/v1/persons/read", post(read_person))
        .route("/api/v1/persons/contact", post(update_contact))
        .route("/api/v1/employments", post(create_employment))
        .route("/api/v1/cases", post(create_case))
        .route("/api/v1/principals/unlock", post(unlock_principal))
        .route("/api/v1/breach/report", post(breach_report))
        .route("/api/v1/me/accesses", post(my_accesses))
        .route("/api/v1/breach/contacts/request", post(request_contacts))
        .route("/api/v1/breach/contacts/approve", post(approve_contacts))
        .route("/api/v1/breach/contacts", post(release_contacts))
        .merge(crate::declarations::routes())
        .merge(
            crate::login::routes().route_layer(axum::middleware::from_fn_with_state(
                limiter,
                crate::limit::per_ip,
            )),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .merge(crate::declarations::upload())
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

async fn create_employer(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(e): Body<NewEmployer>,
) -> Result<(StatusCode, Json<EmployerCreated>), ApiError> {
    let reg = s
        .app
        .registry()
        .registrar(&ctx.principal, "affiliate_employer", &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut created = s
        .app
        .registry()
        .affiliate_employers(reg, &[e], &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let one = created
        .pop()
        .ok_or_else(|| ctx.err(kernel::AppError::Audit))?;
    Ok((StatusCode::CREATED, Json(one)))
}

async fn create_person(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(p): Body<NewPerson>,
) -> Result<(StatusCode, Json<PersonCreated>), ApiError> {
    let reg = s
        .app
        .registry()
        .registrar(&ctx.principal, "immatriculate", &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut created = s
        .app
        .registry()
        .immatriculate(reg, &[p], &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let one = created
        .pop()
        .ok_or_else(|| ctx.err(kernel::AppError::Audit))?;
    Ok((StatusCode::CREATED, Json(one)))
}

/// The gate: find by CIN or immatriculation (or read by id), masked unless `full`.
async fn read_person(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(input): Body<RevealInput>,
) -> Result<Json<PersonView>, ApiError> {
    let req = input.into_request().map_err(|e| ctx.err(e))?;
    let view = s
        .app
        .kernel()
        .reveal(&ctx.principal, &req, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactInput {
    #[serde(default)]
    person_id: Option<String>,
    #[serde(default)]
    cin: Option<String>,
    #[serde(default)]
    immatriculation: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

async fn update_contact(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(c): Body<ContactInput>,
) -> Result<StatusCode, ApiError> {
    let subject = Subject::from_parts(
        c.person_id.as_deref(),
        c.cin.as_deref(),
        c.immatriculation.as_deref(),
    )
    .map_err(|e| ctx.err(e))?;
    s.app
        .registry()
        .update_contact(
            &ctx.principal,
            &subject,
            &registry::ContactChange {
                phone: c.phone.as_deref(),
                email: c.email.as_deref(),
                address: c.address.as_deref(),
            },
            ctx.step_up(&s.app).ok(),
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmploymentInput {
    affiliate_number: String,
    immatriculation: String,
    /// Required from an employer user: the CIN on record for that number.
    #[serde(default)]
    cin: Option<String>,
    start_date: String,
}

async fn create_employment(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(e): Body<EmploymentInput>,
) -> Result<StatusCode, ApiError> {
    s.app
        .registry()
        .link_employment(
            &ctx.principal,
            &e.affiliate_number,
            &e.immatriculation,
            e.cin.as_deref(),
            &e.start_date,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::CREATED)
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
    release.parse().map_err(|_| {
        ctx.err(domain::ValidationError::new("release", domain::Rule::Digits(19)).into())
    })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

async fn my_accesses(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(q): Body<AccessQuery>,
) -> Result<Json<registry::AccessPage>, ApiError> {
    let page = s
        .app
        .registry()
        .my_accesses(&ctx.principal, q.before, q.limit, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseInput {
    immatriculation: String,
    reason: String,
}

#[derive(Serialize)]
struct CaseCreated {
    case_id: String,
}

async fn create_case(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(c): Body<CaseInput>,
) -> Result<(StatusCode, Json<CaseCreated>), ApiError> {
    let id = s
        .app
        .registry()
        .open_case(
            &ctx.principal,
            &c.immatriculation,
            &c.reason,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok((
        StatusCode::CREATED,
        Json(CaseCreated {
            case_id: id.to_string(),
        }),
    ))
}
