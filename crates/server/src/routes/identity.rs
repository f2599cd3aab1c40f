//! The authentication API under `/api/v1/auth`: enrolment, invitations, login, sessions,
//! step-up, factors; and the RIB change, which needs a step-up and can be cancelled from its
//! notice. Handlers only translate, like the others.

use crate::State as AppState;
use crate::error::ApiError;
use crate::extract::{Anon, Body, Ctx, cleared_cookie, session_cookie};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get, routing::post};
use domain::{Lang, Role};
use identity::{FactorView, Invitation, Inviter, Method};
use kernel::AppError;
use kernel::Missing;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/enrol", post(enrol))
        .route("/api/v1/auth/enrol/confirm", post(enrol_confirm))
        .route("/api/v1/auth/invitations", post(invite))
        .route("/api/v1/auth/invitations/accept", post(accept_invitation))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/login/sms", post(login_sms))
        .route("/api/v1/auth/login/passkey", post(login_passkey))
        .route("/api/v1/auth/eid/start", get(eid_start))
        .route("/api/v1/auth/eid/callback", get(eid_callback))
        .route("/api/v1/auth/login/verify", post(login_verify))
        .route("/api/v1/auth/passkeys/setup", post(passkey_setup_start))
        .route(
            "/api/v1/auth/passkeys/setup/finish",
            post(passkey_setup_finish),
        )
        .route("/api/v1/auth/session", get(session))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/sessions/end-others", post(end_others))
        .route("/api/v1/auth/password", post(password_change))
        .route("/api/v1/auth/step-up/sms", post(step_up_sms))
        .route("/api/v1/auth/step-up/passkey", post(step_up_passkey))
        .route("/api/v1/auth/step-up", post(step_up))
        .route("/api/v1/auth/factors", get(factors))
        .route("/api/v1/auth/factors/totp", post(totp_start))
        .route("/api/v1/auth/factors/totp/confirm", post(totp_confirm))
        .route("/api/v1/auth/factors/phone", post(phone_start))
        .route("/api/v1/auth/factors/phone/confirm", post(phone_confirm))
        .route("/api/v1/auth/factors/passkey", post(passkey_start))
        .route(
            "/api/v1/auth/factors/passkey/confirm",
            post(passkey_confirm),
        )
        .route("/api/v1/auth/factors/remove", post(factor_remove))
        .route("/api/v1/persons/rib", post(rib_change))
        .route("/api/v1/rib-changes/cancel", post(rib_cancel))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolInput {
    cin: String,
    password: String,
}

#[derive(Serialize)]
struct EnrolmentStarted {
    enrolment: String,
}

/// Always 202 with a token, whether or not the CIN is registered: the code arrives by SMS if it is.
async fn enrol(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<EnrolInput>,
) -> Result<(StatusCode, Json<EnrolmentStarted>), ApiError> {
    let enrolment = s
        .app
        .identity()
        .enrol_insured(&i.cin, &i.password, a.lang, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok((StatusCode::ACCEPTED, Json(EnrolmentStarted { enrolment })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeForEnrolment {
    enrolment: String,
    code: String,
}

/// 201; for staff, with the `passkey_setup` token that registers their first passkey.
async fn enrol_confirm(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<CodeForEnrolment>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let setup = s
        .app
        .identity()
        .complete_enrolment(&i.enrolment, &i.code, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok((StatusCode::CREATED, Json(json!({ "passkey_setup": setup }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteInput {
    login: String,
    phone: String,
    #[serde(default)]
    admin: bool,
}

async fn invite(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<InviteInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let inv = Invitation {
        login: i.login,
        phone: i.phone,
        role: Role::EmployerUser,
        affiliate: None,
        is_admin: i.admin,
    };
    let proof = ctx.step_up(&s.app)?;
    let token = s
        .app
        .identity()
        .invite(
            Inviter::EmployerAdmin(&ctx.principal, proof),
            &inv,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok((StatusCode::CREATED, Json(json!({ "invitation": token }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInput {
    invitation: String,
    password: String,
}

async fn accept_invitation(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<AcceptInput>,
) -> Result<(StatusCode, Json<EnrolmentStarted>), ApiError> {
    let enrolment = s
        .app
        .identity()
        .accept_invitation(&i.invitation, &i.password, a.lang, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok((StatusCode::ACCEPTED, Json(EnrolmentStarted { enrolment })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    login: String,
    password: String,
}

async fn login(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<LoginInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = s
        .app
        .identity()
        .login_password(&i.login, &i.password, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    let methods: Vec<&str> = p.methods.iter().map(|m| m.as_str()).collect();
    Ok(Json(json!({
        "pending": p.token,
        "methods": methods,
        "expires_at": p.expires_at / 1_000_000,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingInput {
    pending: String,
}

async fn login_sms(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<PendingInput>,
) -> Result<StatusCode, ApiError> {
    s.app
        .identity()
        .send_login_code(&i.pending, a.lang)
        .await
        .map_err(|e| a.err(e))?;
    Ok(StatusCode::ACCEPTED)
}

fn method(m: &str, lang: Lang) -> Result<Method, ApiError> {
    Method::parse(m).ok_or_else(|| {
        ApiError::new(
            domain::ValidationError::new("method", domain::Rule::UnknownValue).into(),
            lang,
        )
    })
}

async fn login_passkey(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<PendingInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        s.app
            .identity()
            .start_login_passkey(&i.pending)
            .await
            .map_err(|e| a.err(e))?,
    ))
}

/// A code (SMS, TOTP) or, for a passkey, the authenticator's answer.
fn proof(code: Option<String>, credential: Option<serde_json::Value>) -> String {
    match (code, credential) {
        (Some(c), _) => c,
        (None, Some(c)) => c.to_string(),
        (None, None) => String::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyInput {
    pending: String,
    method: String,
    #[serde(default)]
    code: Option<String>,
    /// For `passkey`: the `PublicKeyCredential` from `navigator.credentials.get`.
    #[serde(default)]
    credential: Option<serde_json::Value>,
    /// `browser`: the token goes in a `__Host-` cookie and not in the body; otherwise (the app,
    /// API clients) in the body as a bearer token.
    #[serde(default)]
    client: Option<String>,
}

async fn login_verify(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<VerifyInput>,
) -> Result<Response, ApiError> {
    let m = method(&i.method, a.lang)?;
    let n = s
        .app
        .identity()
        .login_second_factor(&i.pending, m, &proof(i.code, i.credential), &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok(session_response(
        &s,
        n,
        i.client.as_deref() == Some("browser"),
    ))
}

/// The answer that opens a session: the bearer token in the body, or for a browser a cookie.
fn session_response(s: &AppState, n: identity::NewSession, browser: bool) -> Response {
    let body = json!({
        "token": if browser { None } else { Some(&n.token) },
        "role": n.principal.role.as_str(),
        "idle_timeout_seconds": n.idle_seconds,
        "expires_at": n.expires_at / 1_000_000,
    });
    let mut res = Json(body).into_response();
    if browser {
        let max_age = (n.expires_at - s.app.kernel().now().0) / 1_000_000;
        set_cookie(&mut res, &session_cookie(&n.token, max_age));
    }
    res
}

#[derive(Deserialize)]
struct EidStartQuery {
    #[serde(default)]
    client: Option<String>,
}

/// A browser is sent to the provider (303); an app gets the URL to open.
async fn eid_start(
    a: Anon,
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<EidStartQuery>,
) -> Result<Response, ApiError> {
    let client = q.client.unwrap_or_default();
    let (url, state) = s
        .app
        .identity()
        .eid_start(&client)
        .await
        .map_err(|e| a.err(e))?;
    if client == "browser" {
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        set_cookie(
            &mut res,
            &format!("{EID_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"),
        );
        return Ok(res);
    }
    Ok(Json(json!({ "authorization_url": url })).into_response())
}

/// The cookie binding an E-ID login to the browser that started it.
const EID_COOKIE: &str = "__Host-daman_eid";

/// The provider sends the person back here with `code` and `state`.
async fn eid_callback(
    a: Anon,
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    q: Result<
        axum::extract::Query<identity::EidCallback>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let q = q.map(|q| q.0).unwrap_or_default();
    let bound = crate::extract::cookie(&headers, EID_COOKIE);
    let (n, client) = s
        .app
        .identity()
        .eid_callback(&q, bound.as_deref(), &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    let browser = client == "browser";
    let mut res = session_response(&s, n, browser);
    if browser {
        set_cookie(
            &mut res,
            &format!("{EID_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
    }
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupInput {
    setup: String,
}

async fn passkey_setup_start(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<SetupInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        s.app
            .identity()
            .start_passkey_setup(&i.setup)
            .await
            .map_err(|e| a.err(e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupFinishInput {
    setup: String,
    credential: serde_json::Value,
    #[serde(default)]
    client: Option<String>,
}

async fn passkey_setup_finish(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<SetupFinishInput>,
) -> Result<Response, ApiError> {
    let n = s
        .app
        .identity()
        .finish_passkey_setup(&i.setup, &i.credential, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok(session_response(
        &s,
        n,
        i.client.as_deref() == Some("browser"),
    ))
}

async fn step_up_passkey(
    ctx: Ctx,
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sess = ctx.session()?;
    Ok(Json(
        s.app
            .identity()
            .start_step_up_passkey(&ctx.principal, sess)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

async fn passkey_start(
    ctx: Ctx,
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sess = ctx.session()?;
    let proof = ctx.step_up(&s.app)?;
    Ok(Json(
        s.app
            .identity()
            .start_passkey_registration(&ctx.principal, sess, proof)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialInput {
    credential: serde_json::Value,
}

async fn passkey_confirm(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<CredentialInput>,
) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    s.app
        .identity()
        .finish_passkey_registration(&ctx.principal, sess, &i.credential, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn session(ctx: Ctx) -> Result<Json<serde_json::Value>, ApiError> {
    let sess = ctx.session()?;
    Ok(Json(json!({
        "role": ctx.principal.role.as_str(),
        "method": sess.method,
        "created_at": sess.created_at / 1_000_000,
        "step_up_at": sess.step_up_at.map(|t| t / 1_000_000),
    })))
}

async fn logout(ctx: Ctx, State(s): State<AppState>) -> Result<Response, ApiError> {
    let sess = ctx.session()?;
    s.app
        .identity()
        .logout(&ctx.principal, sess, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut res, &cleared_cookie());
    Ok(res)
}

async fn end_others(
    ctx: Ctx,
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sess = ctx.session()?;
    let n = s
        .app
        .identity()
        .logout_others(&ctx.principal, sess, "user_request", &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(json!({ "ended": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeInput {
    current_password: String,
    new_password: String,
}

async fn password_change(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<PasswordChangeInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = ctx.step_up(&s.app)?;
    let sess = ctx.session()?;
    let n = s
        .app
        .identity()
        .change_password(
            &ctx.principal,
            sess,
            proof,
            &i.current_password,
            &i.new_password,
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(json!({ "ended": n })))
}

async fn step_up_sms(ctx: Ctx, State(s): State<AppState>) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    s.app
        .identity()
        .send_step_up_code(&ctx.principal, sess, ctx.lang)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpInput {
    method: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    credential: Option<serde_json::Value>,
}

async fn step_up(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<StepUpInput>,
) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    let m = method(&i.method, ctx.lang)?;
    s.app
        .identity()
        .step_up(
            &ctx.principal,
            sess,
            m,
            &proof(i.code, i.credential),
            &ctx.request_id,
        )
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn factors(ctx: Ctx, State(s): State<AppState>) -> Result<Json<Vec<FactorView>>, ApiError> {
    ctx.session()?;
    Ok(Json(
        s.app
            .identity()
            .list_factors(&ctx.principal)
            .await
            .map_err(|e| ctx.err(e))?,
    ))
}

async fn totp_start(
    ctx: Ctx,
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = ctx.step_up(&s.app)?;
    let t = s
        .app
        .identity()
        .start_totp(&ctx.principal, proof)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Json(json!({ "secret": t.secret, "uri": t.uri })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeInput {
    code: String,
}

async fn totp_confirm(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<CodeInput>,
) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    s.app
        .identity()
        .confirm_totp(&ctx.principal, sess, &i.code, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneInput {
    phone: String,
}

async fn phone_start(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<PhoneInput>,
) -> Result<StatusCode, ApiError> {
    let proof = ctx.step_up(&s.app)?;
    s.app
        .identity()
        .start_phone_change(&ctx.principal, proof, &i.phone, ctx.lang)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::ACCEPTED)
}

async fn phone_confirm(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<CodeInput>,
) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    s.app
        .identity()
        .confirm_phone_change(&ctx.principal, sess, &i.code, ctx.lang, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactorIdInput {
    id: String,
}

async fn factor_remove(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<FactorIdInput>,
) -> Result<StatusCode, ApiError> {
    let sess = ctx.session()?;
    let proof = ctx.step_up(&s.app)?;
    let id: i64 =
        i.id.parse()
            .map_err(|_| ctx.err(AppError::NotFound(Missing::Factor)))?;
    s.app
        .identity()
        .remove_factor(&ctx.principal, sess, proof, id, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RibInput {
    rib: String,
}

async fn rib_change(
    ctx: Ctx,
    State(s): State<AppState>,
    Body(i): Body<RibInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let proof = ctx.step_up(&s.app)?;
    let p = s
        .app
        .identity()
        .request_rib_change(&ctx.principal, proof, &i.rib, ctx.lang, &ctx.request_id)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "effective_at": p.effective_at / 1_000_000 })),
    ))
}

async fn rib_cancel(
    a: Anon,
    State(s): State<AppState>,
    Body(i): Body<CodeInput>,
) -> Result<StatusCode, ApiError> {
    s.app
        .identity()
        .cancel_rib_change(&i.code, &a.request_id)
        .await
        .map_err(|e| a.err(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The JSON body each route of this file takes, for the test that holds the OpenAPI document
/// to the types (`routes::tests`).
#[cfg(test)]
pub(super) fn bodies() -> Vec<super::tests::BodyProbe> {
    use super::tests::probe;
    vec![
        ("post", "/api/v1/auth/enrol", probe::<EnrolInput>),
        (
            "post",
            "/api/v1/auth/enrol/confirm",
            probe::<CodeForEnrolment>,
        ),
        ("post", "/api/v1/auth/invitations", probe::<InviteInput>),
        (
            "post",
            "/api/v1/auth/invitations/accept",
            probe::<AcceptInput>,
        ),
        ("post", "/api/v1/auth/login", probe::<LoginInput>),
        ("post", "/api/v1/auth/login/sms", probe::<PendingInput>),
        ("post", "/api/v1/auth/login/passkey", probe::<PendingInput>),
        ("post", "/api/v1/auth/login/verify", probe::<VerifyInput>),
        ("post", "/api/v1/auth/passkeys/setup", probe::<SetupInput>),
        (
            "post",
            "/api/v1/auth/passkeys/setup/finish",
            probe::<SetupFinishInput>,
        ),
        ("post", "/api/v1/auth/step-up", probe::<StepUpInput>),
        (
            "post",
            "/api/v1/auth/password",
            probe::<PasswordChangeInput>,
        ),
        (
            "post",
            "/api/v1/auth/factors/totp/confirm",
            probe::<CodeInput>,
        ),
        ("post", "/api/v1/auth/factors/phone", probe::<PhoneInput>),
        (
            "post",
            "/api/v1/auth/factors/phone/confirm",
            probe::<CodeInput>,
        ),
        (
            "post",
            "/api/v1/auth/factors/passkey/confirm",
            probe::<CredentialInput>,
        ),
        (
            "post",
            "/api/v1/auth/factors/remove",
            probe::<FactorIdInput>,
        ),
        ("post", "/api/v1/persons/rib", probe::<RibInput>),
        ("post", "/api/v1/rib-changes/cancel", probe::<CodeInput>),
    ]
}
