//! The HTTP server: the JSON API under `/api/v1`, its OpenAPI document, health endpoints.
//!
//! - Errors have one JSON shape (`{"error": {"code", "message", "details"}}`) with a stable code
//!   and a message in the caller's language (Accept-Language: fr, ar, en), mapped from
//!   [`kernel::AppError`] in exactly one place ([`error`]). No stack trace, SQL or personal data.
//! - Every response carries `x-request-id`; API responses carry `Cache-Control: no-store`.
//! - Identifiers travel in request bodies, never in URLs, so they are in no access log.
//! - Overload is shed with 503 and `Retry-After` instead of queueing without bound.

mod dev_tokens;
mod error;
mod extract;
mod limit;
mod routes;

pub use dev_tokens::DevTokens;
pub use error::ApiError;
pub use extract::SESSION_COOKIE;
pub use limit::RouteLimiter;
pub use routes::{API_ROUTES, OPENAPI_JSON};

use app::App;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

pub(crate) use vault::hex;

/// How the server behaves.
#[derive(Clone)]
pub struct ServerConfig {
    /// Development mode: accept bearer tokens minted by `daman dev-token`. Never in production.
    pub dev_tokens: Option<Arc<DevTokens>>,
    /// Requests in flight before new ones are shed with 503.
    pub max_in_flight: usize,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Requests a client address may make to each authentication route per minute.
    pub auth_per_ip_per_minute: u32,
}

#[derive(Clone)]
pub(crate) struct State {
    pub app: App,
    pub dev_tokens: Option<Arc<DevTokens>>,
}

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of this request: 96 random bits in hexadecimal, chosen by the server (a caller's
/// `x-request-id` is ignored), returned in `x-request-id` and recorded in audit events.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

async fn request_id(mut req: Request, next: Next) -> Response {
    // Always the server's own: a caller-chosen id would end up in the audit log.
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    let id = hex(&b);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = if tracing::enabled!(tracing::Level::DEBUG) {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let started = std::time::Instant::now();
        let res = next.run(req).await;
        tracing::debug!(request_id = %id, %method, %path, status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64, "request");
        res
    } else {
        next.run(req).await
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}

async fn shed(_: tower::BoxError) -> Response {
    let mut res = ApiError::unavailable().into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// The whole HTTP surface.
pub fn router(app: App, cfg: ServerConfig) -> Router {
    let state = State {
        app,
        dev_tokens: cfg.dev_tokens,
    };
    let limiter = RouteLimiter::new(cfg.auth_per_ip_per_minute);
    let api = routes::api(cfg.max_body, limiter)
        // Cross-site state-changing requests are refused (Sec-Fetch-Site / Origin): the session
        // cookie cannot be ridden from another site. Clients that send neither header (the app,
        // curl) carry a bearer token, which no other site can make them send.
        .layer(tower_http::csrf::CsrfLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state.clone());
    Router::new()
        .merge(routes::health().with_state(state))
        .merge(api)
        .fallback(|| async { ApiError::not_found_route() })
        .layer(middleware::from_fn(request_id))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed))
                .load_shed()
                .concurrency_limit(cfg.max_in_flight),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds the per-IP limits of the authentication routes.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// 200 when the status is fine, for the health routes.
pub(crate) fn ok_text(s: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s,
    )
        .into_response()
}
