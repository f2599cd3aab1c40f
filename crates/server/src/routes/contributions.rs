//! Contributions routes: the préétabli out, the declaration in (the e-BDS file as the request
//! body), rectifications, receipts, lines, rejections, the file back, careers.

use crate::State as AppState;
use crate::error::ApiError;
use crate::extract::{Body, Ctx, affiliate, declarant, period};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use contributions::{CareerLine, DeclarationSummary, ImportFile, ImportOutcome, RejectionView};
use kernel::Missing;
use serde::Deserialize;

/// The largest declaration file accepted through the API (about 250 000 lines).
pub const MAX_FILE: usize = 64 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/declarations/preetabli", post(preetabli))
        .route("/api/v1/declarations/list", post(list))
        .route("/api/v1/declarations/file", post(file))
        .route("/api/v1/declarations/receipt", post(receipt))
        .route("/api/v1/declarations/rejections", post(rejections))
        .route("/api/v1/declarations/lines", post(lines))
        .route("/api/v1/career", post(career))
}

/// The upload route, with its own body limit.
pub(super) fn upload() -> Router<AppState> {
    Router::new()
        .route("/api/v1/declarations", post(upload_file))
        .route(
            "/api/v1/declarations/{id}/rectification",
            post(rectification),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FILE))
}

fn ebds_file(name: String, bytes: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=us-ascii".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmployerPeriod {
    affiliate_number: String,
    period: String,
}

/// The employer's préétabli (AFFEBDS) for a period.
async fn preetabli(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<EmployerPeriod>,
) -> Result<Response, ApiError> {
    let (a, p) = (
        affiliate(&ctx, &b.affiliate_number)?,
        period(&ctx, &b.period)?,
    );
    let bytes = s
        .app
        .contributions()
        .preetabli_file(declarant(&s, &ctx)?, a, p, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(ebds_file(format!("AFFEBDS_{a:07}_{p}.txt"), bytes))
}

/// A declaration file (DS, main or complementary) as the request body: 201 when accepted,
/// 200 when the same file was already accepted, 422 with every error when rejected.
async fn upload_file(
    ctx: Ctx,
    State(s): State<AppState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let who = declarant(&s, &ctx)?;
    let mut out = s
        .app
        .contributions()
        .import_declarations(
            who,
            vec![ImportFile {
                name: "upload".into(),
                bytes: bytes.to_vec(),
            }],
            ctx.lang,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    match out.pop() {
        Some(o) => file_outcome(&ctx, o),
        None => Err(ctx.err(kernel::AppError::Internal("no outcome"))),
    }
}

/// Replaces an accepted declaration (its id in the path) with the corrected file (the body):
/// 201 with the new declaration's receipt, 200 if the file is one already accepted, 422 with
/// every error, 404 for a declaration the caller may not see, 409 if it was rectified already.
async fn rectification(
    ctx: Ctx,
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let who = declarant(&s, &ctx)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ctx.err(kernel::AppError::NotFound(Missing::Declaration)))?;
    let file = ImportFile {
        name: "upload".into(),
        bytes: bytes.to_vec(),
    };
    let outcome = s
        .app
        .contributions()
        .rectify_declaration(who, id, file, ctx.lang, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    file_outcome(&ctx, outcome)
}

/// The answer to an uploaded file: 201 accepted, 200 already accepted, 422 rejected.
fn file_outcome(ctx: &Ctx, outcome: ImportOutcome) -> Result<Response, ApiError> {
    match outcome {
        o @ ImportOutcome::Accepted(_) => Ok((StatusCode::CREATED, Json(o)).into_response()),
        o @ ImportOutcome::Duplicate(_) => Ok((StatusCode::OK, Json(o)).into_response()),
        ImportOutcome::Rejected { errors } => Err(ApiError::rejected_file(ctx.lang, errors)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmployerOnly {
    pub(super) affiliate_number: String,
}

/// The receipts of an employer's accepted declarations.
async fn list(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<EmployerOnly>,
) -> Result<Json<Vec<DeclarationSummary>>, ApiError> {
    let a = affiliate(&ctx, &b.affiliate_number)?;
    Ok(Json(
        s.app
            .contributions()
            .declarations_of(declarant(&s, &ctx)?, a, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclarationId {
    declaration_id: String,
}

fn declaration_id(ctx: &Ctx, s: &str) -> Result<i64, ApiError> {
    crate::extract::id(ctx, "declaration_id", s)
}

/// An accepted declaration as the e-BDS file that was accepted, byte for byte.
async fn file(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<DeclarationId>,
) -> Result<Response, ApiError> {
    let id = declaration_id(&ctx, &b.declaration_id)?;
    let bytes = s
        .app
        .contributions()
        .declaration_file(declarant(&s, &ctx)?, id, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(ebds_file(format!("DS_{id}.txt"), bytes))
}

/// The files the employer's users sent that were rejected, with their errors.
async fn rejections(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<EmployerOnly>,
) -> Result<Json<Vec<RejectionView>>, ApiError> {
    let a = affiliate(&ctx, &b.affiliate_number)?;
    Ok(Json(
        s.app
            .contributions()
            .declaration_rejections(declarant(&s, &ctx)?, a, ctx.lang, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

/// The receipt of one of the employer's own declarations: totals and control sums.
async fn receipt(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<DeclarationId>,
) -> Result<Json<DeclarationSummary>, ApiError> {
    let id = declaration_id(&ctx, &b.declaration_id)?;
    Ok(Json(
        s.app
            .contributions()
            .declaration_receipt(declarant(&s, &ctx)?, id, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

/// The lines of one of the employer's own declarations.
async fn lines(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<DeclarationId>,
) -> Result<Json<Vec<CareerLine>>, ApiError> {
    let id = declaration_id(&ctx, &b.declaration_id)?;
    Ok(Json(
        s.app
            .contributions()
            .declaration_lines(declarant(&s, &ctx)?, id, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CareerInput {
    /// For an agent with an open case; an insured person reads their own without it.
    #[serde(default)]
    person_id: Option<String>,
}

/// A person's career: their own for an insured person, within an open case for an agent.
async fn career(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<CareerInput>,
) -> Result<Json<Vec<CareerLine>>, ApiError> {
    let person = match b.person_id.as_deref() {
        Some(p) => Some(declaration_id(&ctx, p).map_err(|_| {
            ctx.err(domain::ValidationError::new("person_id", domain::Rule::Digits(19)).into())
        })?),
        None => None,
    };
    Ok(Json(
        s.app
            .contributions()
            .career(&ctx.principal, person, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

/// The JSON body each route of this file takes, for the test that holds the OpenAPI document
/// to the types (`routes::tests`).
#[cfg(test)]
pub(super) fn bodies() -> Vec<super::tests::BodyProbe> {
    use super::tests::probe;
    vec![
        (
            "post",
            "/api/v1/declarations/preetabli",
            probe::<EmployerPeriod>,
        ),
        ("post", "/api/v1/declarations/list", probe::<EmployerOnly>),
        ("post", "/api/v1/declarations/file", probe::<DeclarationId>),
        (
            "post",
            "/api/v1/declarations/receipt",
            probe::<DeclarationId>,
        ),
        (
            "post",
            "/api/v1/declarations/rejections",
            probe::<EmployerOnly>,
        ),
        ("post", "/api/v1/declarations/lines", probe::<DeclarationId>),
        ("post", "/api/v1/career", probe::<CareerInput>),
    ]
}
