//! The HTTP surface: authentication, error shape, headers, OpenAPI.

use crate::{World, on_both_backends};
use axum::http::Method;
use serde_json::{Value, json};
use store::Backend;

on_both_backends!(
    requests_without_a_valid_token_are_refused,
    responses_carry_request_ids_and_no_store,
    health_and_readiness
);

async fn requests_without_a_valid_token_are_refused(b: Backend) {
    let w = World::new(b).await;
    let body = json!({"cin": w.a.cin, "purpose": "self_service"});
    let tampered = {
        // Change the last hex digit of the signature (to another digit, whatever it was).
        let (head, last) = w.a.token.split_at(w.a.token.len() - 1);
        format!("{head}{}", if last == "0" { "1" } else { "0" })
    };
    let forged = w.a.token.replacen(
        &w.a.token.split('.').nth(1).unwrap().to_string(),
        w.b.token.split('.').nth(1).unwrap(),
        1,
    );
    for token in [
        None,
        Some("nonsense"),
        Some(tampered.as_str()),
        Some(forged.as_str()),
    ] {
        let r =
            w.t.call(
                Method::POST,
                "/api/v1/persons/read",
                token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.json["error"]["code"], "unauthenticated");
    }
    // Expired.
    w.t.clock.advance_seconds(3601);
    let r = w.read(&w.a.token, body).await;
    assert_eq!(r.status, 401);
}

async fn responses_carry_request_ids_and_no_store(b: Backend) {
    let w = World::new(b).await;
    let r =
        w.t.call_with(
            Method::POST,
            "/api/v1/persons/read",
            Some(&w.a.token),
            Some(json!({"cin": w.a.cin, "purpose": "self_service"})),
            &[("x-request-id", "test-req-1")],
        )
        .await;
    assert_eq!(r.status, 200);
    // The server chooses request ids (they go into the audit log): the caller's is ignored.
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    // A hostile request id is not echoed either.
    let r =
        w.t.call_with(
            Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[("x-request-id", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(r.headers["x-request-id"].len(), 24);
    // Malformed JSON: our error shape, and the input is not echoed.
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/persons/read")
        .header("authorization", format!("Bearer {}", w.a.token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            "{\"cin\": \"ZZ123456\", \"purpose\": 7",
        ))
        .unwrap();
    let res = tower::ServiceExt::oneshot(w.t.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("\"bad_request\"") && !text.contains("ZZ123456"),
        "{text}"
    );
    let r = w.t.call(Method::GET, "/no/such/thing", None, None).await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (404, Some("no_such_route"))
    );
}

async fn health_and_readiness(b: Backend) {
    let w = World::new(b).await;
    for path in ["/healthz", "/readyz"] {
        let r = w.t.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_router_serves() {
    let doc: Value = serde_json::from_str(server::OPENAPI_JSON).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = server::API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // And each one is really routed: without a token, 401 (or 200 for the document, and the
    // refusal of an empty body for the routes that need no session); never 405 or an unknown route.
    let t = testkit::TestApp::start(Backend::Sqlite).await;
    for (m, p) in server::API_ROUTES {
        let method: Method = m.to_uppercase().parse().unwrap();
        let p = &p.replace("{id}", "1");
        let r = t.call(method, p, None, Some(json!({}))).await;
        assert!(
            [200, 401, 422].contains(&r.status.as_u16())
                // E-ID is not configured in this test app.
                || (p.starts_with("/api/v1/auth/eid/") && r.json["error"]["code"] == "not_found"),
            "{m} {p}: {} {}",
            r.status,
            r.json
        );
    }
}
