//! Ledger routes: employers' statements, payments, the fund's check.

use super::contributions::EmployerOnly;
use crate::State as AppState;
use crate::error::ApiError;
use crate::extract::{Body, Ctx};
use crate::extract::{affiliate, declarant, period};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use domain::{Centimes, Date};
use ledger::{FundView, NewPayment, PaymentOutcome, Statement};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/statement", post(statement))
        .route("/api/v1/payments", post(payment))
        .route("/api/v1/ledger", post(ledger))
}

/// What an employer owes and has paid, per period.
async fn statement(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<EmployerOnly>,
) -> Result<Json<Statement>, ApiError> {
    let a = affiliate(&ctx, &b.affiliate_number)?;
    Ok(Json(
        s.app
            .ledger()
            .statement(declarant(&s, &ctx)?, a, &ctx.request_id)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentInput {
    affiliate_number: String,
    period: String,
    /// Centimes.
    amount: i64,
    bank_reference: String,
    /// YYYY-MM-DD.
    paid_on: String,
}

/// Records a payment (agent); the same bank reference again changes nothing.
async fn payment(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<PaymentInput>,
) -> Result<Response, ApiError> {
    let reg = s
        .app
        .registry()
        .registrar(&ctx.principal, "record_payment", &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let p = NewPayment {
        affiliate_number: affiliate(&ctx, &b.affiliate_number)?,
        period: period(&ctx, &b.period)?,
        amount: Centimes(b.amount),
        bank_reference: b.bank_reference,
        paid_on: Date::parse("paid_on", &b.paid_on).map_err(|e| ctx.err(e.into()))?,
    };
    let out = s
        .app
        .ledger()
        .record_payment(reg, &p, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let status = match out {
        PaymentOutcome::Recorded(_) => StatusCode::CREATED,
        PaymentOutcome::AlreadyRecorded(_) => StatusCode::OK,
    };
    Ok((status, Json(out)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerInput {
    #[serde(default)]
    period: Option<String>,
}

/// The whole fund's accounts, and whether the ledger balances (agents, security officers).
async fn ledger(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(b): Body<LedgerInput>,
) -> Result<Json<FundView>, ApiError> {
    let p = b.period.as_deref().map(|p| period(&ctx, p)).transpose()?;
    Ok(Json(
        s.app
            .ledger()
            .fund_view(&ctx.principal, p)
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
        ("post", "/api/v1/statement", probe::<EmployerOnly>),
        ("post", "/api/v1/payments", probe::<PaymentInput>),
        ("post", "/api/v1/ledger", probe::<LedgerInput>),
    ]
}
