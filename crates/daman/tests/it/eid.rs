//! E-ID: OpenID Connect against a real provider (npm `oidc-provider`) started on 127.0.0.1.

use crate::login::register;
use crate::on_both_backends;
use axum::http::Method;
use serde_json::json;
use store::Backend;
use testkit::TestApp;
use testkit::eid::{EidOp, log_in_at_provider};

async fn start_url(t: &TestApp) -> String {
    let r = t
        .call(Method::GET, "/api/v1/auth/eid/start?client=app", None, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["authorization_url"].as_str().unwrap().to_string()
}

async fn callback(t: &TestApp, query: &str) -> testkit::Reply {
    t.call(
        Method::GET,
        &format!("/api/v1/auth/eid/callback?{query}"),
        None,
        None,
    )
    .await
}

async fn eid_logs_in_the_registered_person(backend: Backend) {
    let op = EidOp::start(&[]);
    let cfg = op.config("daman");
    let t = TestApp::start_with(backend, move |c| c.auth.eid = Some(cfg), 100_000).await;
    register(&t, "ZA130", "+212600000130").await;
    // The authorization request carries PKCE (S256), a state and a nonce.
    let url = start_url(&t).await;
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(url.contains(part), "{part} missing from {url}");
    }
    let query = log_in_at_provider(&url, "za130").await;
    // A tampered state is refused, and does not use up the real one.
    let tampered = query.replace("state=", "state=x");
    let r = callback(&t, &tampered).await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (401, Some("login_failed"))
    );
    let r = callback(&t, &query).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["role"], "insured");
    let token = r.json["token"].as_str().unwrap().to_string();
    let s = t.get("/api/v1/auth/session", &token).await;
    assert_eq!(s.json["method"], "eid");
    let read = t
        .post(
            "/api/v1/persons/read",
            &token,
            json!({"cin": "ZA130", "purpose": "self_service", "fields": ["last_name"], "full": true}),
        )
        .await;
    assert_eq!(read.json["fields"]["last_name"], "BENNANI");
    // The same callback again (a replayed code and state) opens nothing.
    let r = callback(&t, &query).await;
    assert_eq!(r.status, 401);
    // A second E-ID login reaches the same account.
    let query = log_in_at_provider(&start_url(&t).await, "za130").await;
    let r = callback(&t, &query).await;
    assert_eq!(r.status, 200);
    let accounts = t.raw_blobs("SELECT login_bidx FROM accounts").await;
    assert_eq!(accounts.len(), 1);
    // A national ID that is not in the registry opens nothing.
    let query = log_in_at_provider(&start_url(&t).await, "zb999").await;
    let r = callback(&t, &query).await;
    assert_eq!(r.json["error"]["code"], "login_failed");
    // The provider's refusal (error=access_denied) opens nothing either.
    let r = callback(&t, "error=access_denied&state=whatever").await;
    assert_eq!(r.status, 401);
}

/// A browser's E-ID login completes only in the browser that started it (no login CSRF).
async fn eid_browser_logins_are_bound_to_their_browser(backend: Backend) {
    let op = EidOp::start(&[]);
    let cfg = op.config("daman");
    let t = TestApp::start_with(backend, move |c| c.auth.eid = Some(cfg), 100_000).await;
    register(&t, "ZA131", "+212600000131").await;
    let start = || async {
        let r = t
            .call(
                Method::GET,
                "/api/v1/auth/eid/start?client=browser",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 303);
        let url = r.headers["location"].to_str().unwrap().to_string();
        let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("__Host-daman_eid="), "{cookie}");
        (url, cookie.split(';').next().unwrap().to_string())
    };
    // The attacker's callback link, opened in the victim's browser (no cookie): nothing.
    let (url, _) = start().await;
    let query = log_in_at_provider(&url, "za131").await;
    let r = callback(&t, &query).await;
    assert_eq!(r.json["error"]["code"], "login_failed");
    // With another flow's cookie: nothing.
    let (url, _) = start().await;
    let (_, other_cookie) = start().await;
    let query = log_in_at_provider(&url, "za131").await;
    let r = t
        .call_with(
            Method::GET,
            &format!("/api/v1/auth/eid/callback?{query}"),
            None,
            None,
            &[("cookie", other_cookie.as_str())],
        )
        .await;
    assert_eq!(r.status, 401);
    // In the browser that started it: a session cookie.
    let (url, cookie) = start().await;
    let query = log_in_at_provider(&url, "za131").await;
    let r = t
        .call_with(
            Method::GET,
            &format!("/api/v1/auth/eid/callback?{query}"),
            None,
            None,
            &[("cookie", cookie.as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("__Host-daman_session=")),
        "{set:?}"
    );
}

on_both_backends!(
    eid_logs_in_the_registered_person,
    eid_browser_logins_are_bound_to_their_browser,
    an_eid_login_as_a_decoy_is_refused_with_an_alert
);

/// Someone logging in at the E-ID as a decoy (whose identity leaked with the database, say):
/// the same answer as for someone not registered, and an alert.
async fn an_eid_login_as_a_decoy_is_refused_with_an_alert(backend: Backend) {
    let op = EidOp::start(&[]);
    let cfg = op.config("daman");
    let t = TestApp::start_with(backend, move |c| c.auth.eid = Some(cfg), 100_000).await;
    let decoy: registry::NewPerson =
        serde_json::from_value(crate::person_json("ZA133", "BERRADA", "Ilyas")).unwrap();
    t.app
        .registry()
        .seed_honeytokens(&[], std::slice::from_ref(&decoy))
        .await
        .unwrap();
    let query = log_in_at_provider(&start_url(&t).await, "za133").await;
    let r = callback(&t, &query).await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (401, Some("login_failed"))
    );
    assert_eq!(t.alerts("honeytoken").await, 1);
}

/// A login as ZA140 at `provider`: the authorization request and the code it brought back.
async fn code_from(provider: &auth::eid::EidProvider) -> (auth::eid::EidStart, String) {
    let start = provider.start();
    let query = log_in_at_provider(&start.url, "za140").await;
    let code = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap();
    (start, code)
}

/// A genuine raw ID token from `provider`, with its request and code.
async fn token_from(provider: &auth::eid::EidProvider) -> (String, auth::eid::EidStart, String) {
    let (start, code) = code_from(provider).await;
    let raw = provider
        .exchange(&code, &start.pkce_verifier)
        .await
        .unwrap();
    (raw, start, code)
}

/// ID tokens for another client, or expired, are refused by daman's verifier.
#[tokio::test]
async fn eid_tokens_for_another_audience_or_expired_are_refused() {
    use auth::eid::{EidError, EidProvider};
    let op = EidOp::start(&[]);
    let daman = EidProvider::discover(op.config("daman")).await.unwrap();
    let other = EidProvider::discover(op.config("other")).await.unwrap();
    // A genuine token, issued to another client: wrong audience.
    let (raw, start, _) = token_from(&other).await;
    assert_eq!(other.verify(&raw, &start.nonce).unwrap(), "ZA140");
    let e = daman.verify(&raw, &start.nonce).unwrap_err();
    assert!(
        matches!(&e, EidError::Token(m) if m.contains("audience")),
        "{e}"
    );
    // daman's own token with another nonce: refused.
    let (raw, start, code) = token_from(&daman).await;
    assert_eq!(daman.verify(&raw, &start.nonce).unwrap(), "ZA140");
    assert!(daman.verify(&raw, "another nonce").is_err());
    // The code was used: a second exchange is refused by the provider.
    assert!(matches!(
        daman.exchange(&code, &start.pkce_verifier).await,
        Err(EidError::Exchange(_))
    ));
    // A token once expired: from a provider that issues them for 1 second.
    let short = EidOp::start(&[("ID_TOKEN_TTL", "1")]);
    let daman_short = EidProvider::discover(short.config("daman")).await.unwrap();
    let (raw, start_short, _) = token_from(&daman_short).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let e = daman_short.verify(&raw, &start_short.nonce).unwrap_err();
    assert!(
        matches!(&e, EidError::Token(m) if m.to_lowercase().contains("expired")),
        "{e}"
    );
    // A wrong PKCE verifier: the provider refuses the code.
    let (_, code) = code_from(&daman).await;
    assert!(matches!(
        daman
            .exchange(&code, "not-the-verifier-0123456789012345678901234567")
            .await,
        Err(EidError::Exchange(_))
    ));
}
