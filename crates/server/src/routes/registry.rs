//! Registry routes: employers, persons, the gate's reads, contact data, employment links,
//! cases, and "who read my data".

use crate::State as AppState;
use crate::error::ApiError;
use crate::extract::{Body, Ctx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use kernel::{PersonView, RevealInput, Subject};
use registry::{EmployerCreated, NewEmployer, NewPerson, PersonCreated};
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/employers", post(create_employer))
        .route("/api/v1/persons", post(create_person))
        .route("/api/v1/persons/read", post(read_person))
        .route("/api/v1/persons/contact", post(update_contact))
        .route("/api/v1/employments", post(create_employment))
        .route("/api/v1/employments/claims", post(pending_claims))
        .route("/api/v1/employments/claims/decide", post(decide_claim))
        .route("/api/v1/cases", post(create_case))
        .route("/api/v1/me/accesses", post(my_accesses))
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
    /// Required from an employer user: the person's CIN.
    #[serde(default)]
    cin: Option<String>,
    /// Required from an employer user: the person's name (last name, then first name).
    #[serde(default)]
    name: Option<String>,
    start_date: String,
}

#[derive(Serialize)]
struct ClaimPending {
    status: &'static str,
}

/// 201: an agent's link, made. 202: an employer user's claim, waiting for the person or an
/// agent, with the same answer whoever the number, CIN and name are.
async fn create_employment(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(e): Body<EmploymentInput>,
) -> Result<(StatusCode, Json<ClaimPending>), ApiError> {
    let linked = s
        .app
        .registry()
        .link_employment(
            &ctx.principal,
            &e.affiliate_number,
            &e.immatriculation,
            e.cin.as_deref(),
            e.name.as_deref(),
            &e.start_date,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(match linked {
        registry::Linked::Linked => (StatusCode::CREATED, Json(ClaimPending { status: "linked" })),
        registry::Linked::Claimed => (
            StatusCode::ACCEPTED,
            Json(ClaimPending { status: "pending" }),
        ),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsQuery {
    /// An agent's next page: the last claim id of the page before.
    #[serde(default)]
    after: Option<String>,
}

#[derive(Serialize)]
struct ClaimsPage {
    claims: Vec<registry::ClaimView>,
}

async fn pending_claims(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(q): Body<ClaimsQuery>,
) -> Result<Json<ClaimsPage>, ApiError> {
    let after = match q.after.as_deref() {
        Some(a) => Some(crate::extract::id(&ctx, "after", a)?),
        None => None,
    };
    let claims = s
        .app
        .registry()
        .pending_claims(&ctx.principal, after, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(ClaimsPage { claims }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum ClaimVerdict {
    Confirm,
    Refuse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideInput {
    claim_id: String,
    decision: ClaimVerdict,
    /// An agent confirming a request as a registered person: that person's number.
    #[serde(default)]
    immatriculation: Option<String>,
}

async fn decide_claim(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(d): Body<DecideInput>,
) -> Result<Json<registry::ClaimOutcome>, ApiError> {
    let id = crate::extract::id(&ctx, "claim_id", &d.claim_id)?;
    let verdict = match d.decision {
        ClaimVerdict::Refuse => registry::Verdict::Refuse,
        ClaimVerdict::Confirm => registry::Verdict::Confirm(d.immatriculation.as_deref()),
    };
    let outcome = s
        .app
        .registry()
        .decide_claim(&ctx.principal, id, verdict, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(outcome))
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

/// The JSON body each route of this file takes, for the test that holds the OpenAPI document
/// to the types (`routes::tests`).
#[cfg(test)]
pub(super) fn bodies() -> Vec<super::tests::BodyProbe> {
    use super::tests::probe;
    vec![
        ("post", "/api/v1/employers", probe::<NewEmployer>),
        ("post", "/api/v1/persons", probe::<NewPerson>),
        ("post", "/api/v1/persons/read", probe::<RevealInput>),
        ("post", "/api/v1/persons/contact", probe::<ContactInput>),
        ("post", "/api/v1/employments", probe::<EmploymentInput>),
        ("post", "/api/v1/employments/claims", probe::<ClaimsQuery>),
        (
            "post",
            "/api/v1/employments/claims/decide",
            probe::<DecideInput>,
        ),
        ("post", "/api/v1/cases", probe::<CaseInput>),
        ("post", "/api/v1/me/accesses", probe::<AccessQuery>),
    ]
}
