//! Login end to end: enrolment, password + SMS (through a real SMPP peer), password + TOTP,
//! throttling, sessions, step-up and the RIB cooling-off period, on both backends.

use crate::{on_both_backends, person_json};
use domain::{Clock, Role};
use kernel::Binding;
use serde_json::{Value, json};
use store::Backend;
use testkit::TestApp;

pub const PASSWORD: &str = "olive tree by the sea";

/// The first run of six digits in `text`.
pub fn code_in(text: &str) -> String {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(5))
        .find(|&i| {
            b[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !b[i - 1].is_ascii_digit())
                && b.get(i + 6).is_none_or(|c| !c.is_ascii_digit())
        })
        .map(|i| text[i..i + 6].to_string())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

/// The last text sent to `phone` through the file sender, waiting for it (enrolment codes are
/// sent in the background) until there are more than `seen`.
pub async fn next_sms(t: &TestApp, phone: &str, seen: usize) -> String {
    for _ in 0..200 {
        let texts = t.sms_texts(phone);
        if texts.len() > seen {
            return texts.last().unwrap().clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no SMS to {phone}");
}

/// Registers a person with this CIN and phone (through an agent) and returns the agent's token.
pub async fn register(t: &TestApp, cin: &str, phone: &str) {
    let (_, agent) = t.login("agent-reg", Role::Agent, Binding::None).await;
    let mut p = person_json(cin, "BENNANI", "Salma");
    p["phone"] = json!(phone);
    let r = t.post("/api/v1/persons", &agent, p).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
}

/// Registers and enrols an insured person (password + the phone on record).
pub async fn enrolled(t: &TestApp, cin: &str, phone: &str) {
    register(t, cin, phone).await;
    let seen = t.sms_texts(phone).len();
    let r = t
        .post_anon(
            "/api/v1/auth/enrol",
            json!({"cin": cin, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let enrolment = r.json["enrolment"].as_str().unwrap().to_string();
    let code = code_in(&next_sms(t, phone, seen).await);
    let r = t
        .post_anon(
            "/api/v1/auth/enrol/confirm",
            json!({"enrolment": enrolment, "code": code}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
}

pub async fn password_step(t: &TestApp, login: &str, password: &str) -> testkit::Reply {
    t.post_anon(
        "/api/v1/auth/login",
        json!({"login": login, "password": password}),
    )
    .await
}

/// Logs in with password + SMS; the bearer token.
pub async fn login_sms(t: &TestApp, login: &str, phone: &str) -> String {
    let r = password_step(t, login, PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let pending = r.json["pending"].as_str().unwrap().to_string();
    let seen = t.sms_texts(phone).len();
    let r = t
        .post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let code = code_in(&next_sms(t, phone, seen).await);
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": code}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["token"].as_str().unwrap().to_string()
}

pub(crate) async fn session_status(t: &TestApp, token: &str) -> u16 {
    t.get("/api/v1/auth/session", token).await.status.as_u16()
}

async fn password_and_sms_through_smpp(backend: Backend) {
    let smsc = testkit::smsc::Smsc::start();
    let address = smsc.address();
    let t = TestApp::start_with(
        backend,
        move |c| {
            c.kernel.sms.sender = Some(std::sync::Arc::new(
                auth::sms::SmppSender::new(auth::sms::SmppConfig {
                    address,
                    system_id: "daman".into(),
                    password: "secret".to_string().into(),
                    source: "DAMAN".into(),
                })
                .unwrap(),
            ));
        },
        100_000,
    )
    .await;
    let phone = "+212600000101";
    register(&t, "ZA101", phone).await;
    // Enrolment: the code goes to the phone on record, through the SMSC, in Arabic (UCS-2).
    let r = t
        .call_with(
            axum::http::Method::POST,
            "/api/v1/auth/enrol",
            None,
            Some(json!({"cin": "ZA101", "password": PASSWORD})),
            &[("accept-language", "ar")],
        )
        .await;
    assert_eq!(r.status, 202);
    let enrolment = r.json["enrolment"].as_str().unwrap().to_string();
    let mut received = Vec::new();
    for _ in 0..200 {
        received = smsc.texts_to(phone);
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (text, coding) = received.last().cloned().expect("SMS through SMPP");
    assert!(text.starts_with("رمزك في ضمان"), "{text}");
    assert_eq!(coding, 8, "Arabic goes as UCS-2");
    let r = t
        .post_anon(
            "/api/v1/auth/enrol/confirm",
            json!({"enrolment": enrolment, "code": code_in(&text)}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    // Login: password, then the SMS code (French, GSM).
    let r = password_step(&t, "za101", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["methods"], json!(["sms"]));
    let pending = r.json["pending"].as_str().unwrap().to_string();
    // The pending token is not a session.
    assert_eq!(session_status(&t, &pending).await, 401);
    let r = t
        .post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    assert_eq!(r.status, 202);
    let (text, coding) = smsc.texts_to(phone).last().cloned().unwrap();
    assert!(text.starts_with("daman : votre code est"), "{text}");
    assert_eq!(coding, 0);
    let code = code_in(&text);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": wrong}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (401, Some("code_rejected"))
    );
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": code}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["role"], "insured");
    assert_eq!(r.json["idle_timeout_seconds"], 3600);
    let token = r.json["token"].as_str().unwrap().to_string();
    assert_eq!(session_status(&t, &token).await, 200);
    // The person reads their own record with the session.
    let r = t
        .post(
            "/api/v1/persons/read",
            &token,
            json!({"cin": "ZA101", "purpose": "self_service", "fields": ["last_name"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // A used code is refused: the pending login is over, and the code does not open a step-up.
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": code}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .post(
            "/api/v1/auth/step-up",
            &token,
            json!({"method": "sms", "code": code}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "code_rejected");
    // A step-up code works once.
    let r = t.post("/api/v1/auth/step-up/sms", &token, json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let step = code_in(&smsc.texts_to(phone).last().unwrap().0);
    let r = t
        .post(
            "/api/v1/auth/step-up",
            &token,
            json!({"method": "sms", "code": step}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let r = t
        .post(
            "/api/v1/auth/step-up",
            &token,
            json!({"method": "sms", "code": step}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "code_rejected");
}

/// Decodes RFC 4648 base32 (no padding).
fn base32_decode(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("base32"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

async fn password_and_totp(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000102";
    enrolled(&t, "ZA102", phone).await;
    let token = login_sms(&t, "ZA102", phone).await;
    let other = login_sms(&t, "ZA102", phone).await;
    // Adding a TOTP app needs a recent second factor: logging in was one.
    let r = t.post("/api/v1/auth/factors/totp", &token, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let seed = base32_decode(r.json["secret"].as_str().unwrap());
    assert_eq!(seed.len(), 20);
    assert!(
        r.json["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/daman:")
    );
    let now = || t.clock.now().0 / 1_000_000;
    let r = t
        .post(
            "/api/v1/auth/factors/totp/confirm",
            &token,
            json!({"code": auth::totp::code_at(&seed, now())}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    // A factor change ends the other sessions.
    assert_eq!(session_status(&t, &other).await, 401);
    assert_eq!(session_status(&t, &token).await, 200);
    let r = t.get("/api/v1/auth/factors", &token).await;
    let kinds: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sms", "totp"]);
    // The phone is shown masked.
    assert_eq!(r.json[0]["label"], "••••02");
    // The code used to confirm the app cannot log in (same time step): replay refused.
    t.clock.advance_seconds(1);
    let login = |code: String| {
        let t = &t;
        async move {
            let r = password_step(t, "ZA102", PASSWORD).await;
            assert_eq!(r.json["methods"], json!(["sms", "totp"]));
            t.post_anon(
                "/api/v1/auth/login/verify",
                json!({"pending": r.json["pending"], "method": "totp", "code": code}),
            )
            .await
        }
    };
    let r = login(auth::totp::code_at(&seed, now())).await;
    assert_eq!(r.json["error"]["code"], "code_rejected", "{:?}", r.json);
    // The next time step's code logs in, once.
    t.clock.advance_seconds(30);
    let code = auth::totp::code_at(&seed, now());
    let r = login(code.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let totp_session = r.json["token"].as_str().unwrap().to_string();
    let r = t.get("/api/v1/auth/session", &totp_session).await;
    assert_eq!(r.json["method"], "totp");
    let r = login(code).await;
    assert_eq!(r.json["error"]["code"], "code_rejected");
}

async fn unknown_and_known_accounts_fail_alike(backend: Backend) {
    let t = TestApp::start(backend).await;
    enrolled(&t, "ZA103", "+212600000103").await;
    let known = password_step(&t, "ZA103", "not the password at all").await;
    let unknown = password_step(&t, "ZA999", "not the password at all").await;
    let garbage = password_step(&t, "nobody", "not the password at all").await;
    assert_eq!(known.status, 401);
    for r in [&unknown, &garbage] {
        assert_eq!(r.status, known.status);
        assert_eq!(r.json.to_string(), known.json.to_string());
        let names = |r: &testkit::Reply| {
            let mut h: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
            h.sort();
            h
        };
        assert_eq!(names(r), names(&known));
    }
    assert_eq!(known.json["error"]["code"], "login_failed");
    // Enrolment answers alike for a registered CIN, an unknown one and one that has an account.
    register(&t, "ZA104", "+212600000104").await;
    let mut shapes = Vec::new();
    for cin in ["ZA104", "ZA998", "ZA103"] {
        let r = t
            .post_anon(
                "/api/v1/auth/enrol",
                json!({"cin": cin, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 202);
        let tok = r.json["enrolment"].as_str().unwrap();
        assert_eq!(tok.len(), 32);
        shapes.push(
            r.json
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]));
    // A common password is refused with the reason, in the caller's language.
    let r = t
        .call_with(
            axum::http::Method::POST,
            "/api/v1/auth/enrol",
            None,
            Some(json!({"cin": "ZA104", "password": "iloveyou123"})),
            &[("accept-language", "fr")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["error"]["details"][0]["rule"], "common_password");
    assert!(
        r.json["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fuites")
    );
}

async fn the_101st_failure_is_refused_even_with_the_right_password(backend: Backend) {
    let t = TestApp::start(backend).await;
    enrolled(&t, "ZA105", "+212600000105").await;
    let mut waited = 0;
    for i in 1..=100 {
        for login in ["ZA105", "ZA997"] {
            let r = password_step(&t, login, "wrong password here").await;
            assert_eq!(
                r.json["error"]["code"], "login_failed",
                "attempt {i} {login}"
            );
        }
        // Waits grow: the right password is refused while one runs.
        let wait = auth::throttle::wait_seconds(i);
        if wait > 0 && i < 100 {
            let r = password_step(&t, "ZA105", PASSWORD).await;
            assert_eq!(r.status, 429, "attempt {i}");
            assert_eq!(r.json["error"]["code"], "too_many_attempts");
            let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry <= wait && retry > 0);
            t.clock.advance_seconds(wait);
            waited += wait;
        }
    }
    assert!(waited > 3600 * 80, "{waited}");
    // After 100 consecutive failures, the right password is refused, for a day; an unknown
    // login gets the same answer.
    t.clock.advance_seconds(3600);
    let right = password_step(&t, "ZA105", PASSWORD).await;
    let unknown = password_step(&t, "ZA997", PASSWORD).await;
    assert_eq!(right.status, 429);
    assert_eq!(right.json.to_string(), unknown.json.to_string());
    assert_eq!(right.headers["retry-after"], unknown.headers["retry-after"]);
    t.clock.advance_seconds(23 * 3600);
    let r = password_step(&t, "ZA105", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // A completed login resets the counter.
    let token = login_sms(&t, "ZA105", "+212600000105").await;
    assert_eq!(session_status(&t, &token).await, 200);
    let r = password_step(&t, "ZA105", "wrong password here").await;
    assert_eq!(r.json["error"]["code"], "login_failed");
    let r = password_step(&t, "ZA105", PASSWORD).await;
    assert_eq!(r.status, 200);
}

/// An invitation made by the operator (`daman account invite`); an employer user's is for an admin.
async fn operator_invites(
    t: &TestApp,
    login: &str,
    phone: &str,
    role: Role,
    affiliate: Option<domain::AffiliateNumber>,
) -> String {
    t.app
        .identity()
        .invite(
            identity::Inviter::Operator,
            &identity::Invitation {
                login: login.into(),
                phone: phone.into(),
                role,
                affiliate,
                is_admin: affiliate.is_some(),
            },
            "test",
        )
        .await
        .unwrap()
}

/// The invitee accepts with [`PASSWORD`] (202) and confirms with the code sent to `phone`;
/// the confirmation's reply.
async fn accept_invitation(t: &TestApp, invitation: &str, phone: &str) -> testkit::Reply {
    let seen = t.sms_texts(phone).len();
    let r = t
        .post_anon(
            "/api/v1/auth/invitations/accept",
            json!({"invitation": invitation, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let code = code_in(&next_sms(t, phone, seen).await);
    t.post_anon(
        "/api/v1/auth/enrol/confirm",
        json!({"enrolment": invitation, "code": code}),
    )
    .await
}

async fn staff_cannot_log_in_without_a_passkey(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000106";
    let invitation = operator_invites(&t, "k.agent@cnss.example", phone, Role::Agent, None).await;
    let r = accept_invitation(&t, &invitation, phone).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    // The password is right, but no second factor a staff member may use exists.
    let r = password_step(&t, "k.agent@cnss.example", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["methods"], json!([]));
    let pending = r.json["pending"].as_str().unwrap().to_string();
    let r = t
        .post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (403, Some("passkey_required"))
    );
    for method in ["sms", "totp"] {
        let r = t
            .post_anon(
                "/api/v1/auth/login/verify",
                json!({"pending": pending, "method": method, "code": "123456"}),
            )
            .await;
        assert_eq!(r.json["error"]["code"], "passkey_required");
    }
    assert_eq!(session_status(&t, &pending).await, 401);
    // The invitation was used.
    let r = t
        .post_anon(
            "/api/v1/auth/invitations/accept",
            json!({"invitation": invitation, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 404);
}

async fn sessions_end_at_logout_timeout_and_disabling(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000107";
    enrolled(&t, "ZA107", phone).await;
    // Logout.
    let token = login_sms(&t, "ZA107", phone).await;
    assert_eq!(session_status(&t, &token).await, 200);
    let r = t.post("/api/v1/auth/logout", &token, json!({})).await;
    assert_eq!(r.status, 204);
    assert_eq!(session_status(&t, &token).await, 401);
    // Idle timeout: 1 hour without a request.
    let token = login_sms(&t, "ZA107", phone).await;
    t.clock.advance_seconds(3599);
    assert_eq!(session_status(&t, &token).await, 200);
    t.clock.advance_seconds(3600);
    assert_eq!(session_status(&t, &token).await, 401);
    // Absolute timeout: 24 hours even when active.
    let token = login_sms(&t, "ZA107", phone).await;
    for _ in 0..30 {
        t.clock.advance_seconds(50 * 60);
        if session_status(&t, &token).await != 200 {
            break;
        }
    }
    assert_eq!(session_status(&t, &token).await, 401);
    // "Log out my other sessions".
    let one = login_sms(&t, "ZA107", phone).await;
    let two = login_sms(&t, "ZA107", phone).await;
    let r = t
        .post("/api/v1/auth/sessions/end-others", &one, json!({}))
        .await;
    assert_eq!(r.json["ended"], 1);
    assert_eq!(session_status(&t, &two).await, 401);
    assert_eq!(session_status(&t, &one).await, 200);
    // Disabling the account ends its sessions and its logins.
    t.app
        .identity()
        .set_account_disabled("ZA107", true, "test")
        .await
        .unwrap();
    assert_eq!(session_status(&t, &one).await, 401);
    let r = password_step(&t, "ZA107", PASSWORD).await;
    assert_eq!(r.json["error"]["code"], "login_failed");
    // The audit log has the events, without secrets.
    let events = t
        .app
        .kernel()
        .store()
        .audit_events(0, 10_000)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|(_, e)| e.action.as_str()).collect();
    for a in [
        "enrol_start",
        "account_created",
        "login_password",
        "login",
        "logout",
        "sessions_ended",
        "account_disabled",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let dump = format!("{events:?}");
    for secret in [PASSWORD, "ZA107", "600000107"] {
        assert!(!dump.contains(secret), "{secret} in the audit log");
    }
}

/// Passwords built of what the 2025 leak published: the CIN the person types is refused at
/// once, with its reason in French and Arabic, registered or not; the person's names, number,
/// birth date and phone are checked in the background, once the CIN is known to be theirs, and
/// only the person hears of a refusal (an SMS to the phone on record, no code, no enrolment).
async fn passwords_built_from_the_record_are_refused(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000170";
    register(&t, "ZA170", phone).await;
    for (cin, lang, reason) in [
        ("ZA170", "fr", "CIN"),
        ("ZA170", "ar", "بطاقتك الوطنية"),
        ("ZU999", "fr", "CIN"),
    ] {
        for pw in [
            format!("{cin}2025!!"),
            format!("2025{}xy", cin.to_lowercase()),
        ] {
            let r = t
                .call_with(
                    axum::http::Method::POST,
                    "/api/v1/auth/enrol",
                    None,
                    Some(json!({"cin": cin, "password": pw})),
                    &[("accept-language", lang)],
                )
                .await;
            assert_eq!(r.status, 422, "{pw}: {:?}", r.json);
            let d = &r.json["error"]["details"][0];
            assert_eq!(d["rule"], "context_password", "{pw}");
            assert!(
                d["message"].as_str().unwrap().contains(reason),
                "{:?}",
                r.json
            );
        }
    }
    // Names and birth year (BENNANI Salma, سلمى, 1988-04-12): the same 202 as any enrolment;
    // the person gets the notice, not a code, and no code confirms it.
    for pw in [
        "Bennani1988!",
        "salma.bennani.88",
        "سلمى1988",
        "0600000170x",
    ] {
        let seen = t.sms_texts(phone).len();
        let r = t
            .post_anon(
                "/api/v1/auth/enrol",
                json!({"cin": "ZA170", "password": pw}),
            )
            .await;
        assert_eq!(r.status, 202, "{pw}: {:?}", r.json);
        let text = next_sms(&t, phone, seen).await;
        assert!(text.contains("trop proche"), "{pw}: {text}");
        let r = t
            .post_anon(
                "/api/v1/auth/enrol/confirm",
                json!({"enrolment": r.json["enrolment"], "code": "000000"}),
            )
            .await;
        assert_eq!(r.json["error"]["code"], "code_rejected");
    }
    assert_eq!(t.sms_texts(phone).len(), 4, "a notice each, no code");
    // A password of the person's own: a code, and the account.
    let seen = t.sms_texts(phone).len();
    let r = t
        .post_anon(
            "/api/v1/auth/enrol",
            json!({"cin": "ZA170", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let code = code_in(&next_sms(&t, phone, seen).await);
    let r = t
        .post_anon(
            "/api/v1/auth/enrol/confirm",
            json!({"enrolment": r.json["enrolment"], "code": code}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
}

/// Confirming an enrolment answers alike whether its CIN is registered (an enrolment was
/// recorded and a code sent) or not (nothing was): the same statuses and bodies, try after
/// try, the throttle's 429 included (it once came only for a registered CIN).
async fn enrolment_confirmation_says_nothing_of_the_cin(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000180";
    register(&t, "ZA180", phone).await;
    let mut answers = Vec::new();
    for cin in ["ZA180", "ZU180"] {
        let seen = t.sms_texts(phone).len();
        let r = t
            .post_anon(
                "/api/v1/auth/enrol",
                json!({"cin": cin, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        if cin == "ZA180" {
            next_sms(&t, phone, seen).await;
        }
        let mut seq = Vec::new();
        for _ in 0..7 {
            let c = t
                .post_anon(
                    "/api/v1/auth/enrol/confirm",
                    json!({"enrolment": r.json["enrolment"], "code": "000000"}),
                )
                .await;
            seq.push((c.status.as_u16(), c.json.to_string()));
        }
        answers.push(seq);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][0].0, 401);
    assert_eq!(answers[0][6].0, 429, "{:?}", answers[0]);
}

/// A password change needs a fresh second factor and the current password, refuses a new one
/// built of the person's record, and ends every other session; the old password no longer
/// logs in, the new one does.
async fn password_change_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000190";
    enrolled(&t, "ZA190", phone).await;
    let token = login_sms(&t, "ZA190", phone).await;
    let other = login_sms(&t, "ZA190", phone).await;
    let change = |current: &str, new: &str| {
        t.post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": current, "new_password": new}),
        )
    };
    let r = change("not my password", "a brand new passphrase").await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.json["error"]["details"][0]["field"], "current_password");
    let r = change(PASSWORD, "Bennani1988!").await;
    assert_eq!(r.json["error"]["details"][0]["rule"], "context_password");
    let r = change(PASSWORD, "a brand new passphrase").await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["ended"], 1);
    assert_eq!(session_status(&t, &other).await, 401);
    assert_eq!(session_status(&t, &token).await, 200);
    let r = password_step(&t, "ZA190", PASSWORD).await;
    assert_eq!(r.json["error"]["code"], "login_failed");
    let r = password_step(&t, "ZA190", "a brand new passphrase").await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // A session whose second factor is no longer fresh steps up first.
    t.clock.advance_seconds(600);
    let r = change("a brand new passphrase", "another new passphrase").await;
    assert_eq!(r.json["error"]["code"], "step_up_required");
}

/// Anonymous enrolments may use 80 % of the fund-wide hourly SMS cap, no more: the rest is
/// kept for logins and security notices (it once let six addresses silence everyone).
async fn anonymous_enrolments_leave_the_sms_reserve_alone(backend: Backend) {
    let t = TestApp::start_with(backend, |c| c.kernel.sms.global_hour = 10, 100_000).await;
    enrolled(&t, "ZA200", "+212600000200").await; // 1 of the 8 anonymous ones
    for i in 1..=8 {
        let (cin, phone) = (format!("ZA2{i:02}"), format!("+2126000002{i:02}"));
        register(&t, &cin, &phone).await;
        let r = t
            .post_anon(
                "/api/v1/auth/enrol",
                json!({"cin": cin, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 202, "the same answer: {:?}", r.json);
        if i < 8 {
            next_sms(&t, &phone, 0).await;
        } else {
            // The eighth anonymous code of the hour was the last (80 % of 10).
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            assert!(t.sms_texts(&phone).is_empty(), "a ninth anonymous code");
        }
    }
    // The account's own login code still goes: the reserve.
    let token = login_sms(&t, "ZA200", "+212600000200").await;
    assert_eq!(session_status(&t, &token).await, 200);
}

async fn rib_change_needs_step_up_and_waits(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000108";
    enrolled(&t, "ZA108", phone).await;
    let token = login_sms(&t, "ZA108", phone).await;
    // Another valid RIB than the one on record (another bank).
    let first22 = "9990020000012050005349";
    let new_rib = format!("{first22}{:02}", domain::Rib::key_for(first22).unwrap());
    // Reads through a development token minted afresh (sessions time out while the clock runs).
    let read_rib = || async {
        let (_, dev) = t
            .login(
                "dev-insured",
                Role::Insured,
                Binding::Person(kernel::Subject::Cin(domain::Cin::parse("ZA108").unwrap())),
            )
            .await;
        t.post(
            "/api/v1/persons/read",
            &dev,
            json!({"cin": "ZA108", "purpose": "self_service", "fields": ["rib"], "full": true}),
        )
        .await
        .json["fields"]["rib"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let old = read_rib().await;
    // Ten minutes after login, the login's second factor is no longer fresh.
    t.clock.advance_seconds(600);
    let r = t
        .post("/api/v1/persons/rib", &token, json!({"rib": new_rib}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (401, Some("step_up_required"))
    );
    let seen = t.sms_texts(phone).len();
    t.post("/api/v1/auth/step-up/sms", &token, json!({})).await;
    let code = code_in(&next_sms(&t, phone, seen).await);
    let r = t
        .post(
            "/api/v1/auth/step-up",
            &token,
            json!({"method": "sms", "code": code}),
        )
        .await;
    assert_eq!(r.status, 204);
    let seen = t.sms_texts(phone).len();
    let r = t
        .post("/api/v1/persons/rib", &token, json!({"rib": new_rib}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let requested = t.clock.now().0 / 1_000_000;
    assert_eq!(r.json["effective_at"], requested + 72 * 3600);
    // The old phone got a notice with a cancellation code.
    let notice = next_sms(&t, phone, seen).await;
    assert!(notice.contains("RIB"), "{notice}");
    // Not before 72 hours.
    t.clock.advance_seconds(71 * 3600);
    assert_eq!(t.app.identity().apply_due_rib_changes().await.unwrap(), 0);
    assert_eq!(read_rib().await, old);
    t.clock.advance_seconds(3600);
    assert_eq!(t.app.identity().apply_due_rib_changes().await.unwrap(), 1);
    assert_eq!(read_rib().await, new_rib);
    // (A new session: the first one has timed out meanwhile.)
    let token2 = login_sms(&t, "ZA108", phone).await;
    // A second change, cancelled from its notice, never applies.
    let seen = t.sms_texts(phone).len();
    let r = t
        .post("/api/v1/persons/rib", &token2, json!({"rib": old}))
        .await;
    assert_eq!(r.status, 202);
    let notice = next_sms(&t, phone, seen).await;
    let cancel = notice.split_whitespace().last().unwrap().to_string();
    assert_eq!(cancel.len(), 32);
    let r = t
        .post_anon("/api/v1/rib-changes/cancel", json!({"code": cancel}))
        .await;
    assert_eq!(r.status, 204);
    let r = t
        .post_anon("/api/v1/rib-changes/cancel", json!({"code": cancel}))
        .await;
    assert_eq!(r.status, 404);
    t.clock.advance_seconds(73 * 3600);
    assert_eq!(t.app.identity().apply_due_rib_changes().await.unwrap(), 0);
    // A development token has no session, hence no step-up.
    let (_, dev) = t
        .login(
            "dev-insured",
            Role::Insured,
            Binding::Person(kernel::Subject::Cin(domain::Cin::parse("ZA108").unwrap())),
        )
        .await;
    let r = t
        .post("/api/v1/persons/rib", &dev, json!({"rib": old}))
        .await;
    assert_eq!(r.json["error"]["code"], "step_up_required");
    // The new RIB never sat in the database in clear.
    for blob in t.raw_blobs("SELECT rib FROM rib_changes").await {
        assert!(!String::from_utf8_lossy(&blob).contains(&new_rib[4..]));
    }
}

async fn browser_sessions_use_host_cookies_and_refuse_cross_site_posts(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000109";
    enrolled(&t, "ZA109", phone).await;
    let r = password_step(&t, "ZA109", PASSWORD).await;
    let pending = r.json["pending"].as_str().unwrap().to_string();
    t.post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    let code = code_in(t.sms_texts(phone).last().unwrap());
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": code, "client": "browser"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["token"], Value::Null);
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-daman_session="), "{cookie}");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let with_cookie = |extra: &'static [(&'static str, &'static str)], method, path| {
        let t = &t;
        let pair = pair.clone();
        async move {
            let mut headers: Vec<(&str, &str)> = vec![("cookie", pair.as_str())];
            headers.extend_from_slice(extra);
            t.call_with(method, path, None, Some(json!({})), &headers)
                .await
        }
    };
    use axum::http::Method;
    let r = with_cookie(&[], Method::GET, "/api/v1/auth/session").await;
    assert_eq!(r.status, 200);
    let r = with_cookie(
        &[("sec-fetch-site", "cross-site")],
        Method::POST,
        "/api/v1/auth/logout",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = with_cookie(
        &[
            ("origin", "https://evil.example"),
            ("host", "daman.example"),
        ],
        Method::POST,
        "/api/v1/auth/logout",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = with_cookie(
        &[("sec-fetch-site", "same-origin")],
        Method::POST,
        "/api/v1/auth/logout",
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = with_cookie(&[], Method::GET, "/api/v1/auth/session").await;
    assert_eq!(r.status, 401);
}

async fn employer_admins_invite_their_users(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (_, agent) = t.login("agent-e", Role::Agent, Binding::None).await;
    let r = t
        .post(
            "/api/v1/employers",
            &agent,
            json!({"name": "ATLAS TEXTILE SARL", "activity": "Textile", "city": "Casablanca", "ice": "001525478000088"}),
        )
        .await;
    let affiliate =
        domain::AffiliateNumber::parse(r.json["affiliate_number"].as_str().unwrap()).unwrap();
    let admin_invitation = operator_invites(
        &t,
        "rh@atlas.example",
        "+212600000110",
        Role::EmployerUser,
        Some(affiliate),
    )
    .await;
    let r = accept_invitation(&t, &admin_invitation, "+212600000110").await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let admin = login_sms(&t, "rh@atlas.example", "+212600000110").await;
    let r = t
        .post(
            "/api/v1/auth/invitations",
            &admin,
            json!({"login": "paie@atlas.example", "phone": "0600000111"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let r = accept_invitation(&t, r.json["invitation"].as_str().unwrap(), "+212600000111").await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let user = login_sms(&t, "paie@atlas.example", "+212600000111").await;
    let r = t.get("/api/v1/auth/session", &user).await;
    assert_eq!(r.json["role"], "employer_user");
    // A user who is not an admin cannot invite; a taken login cannot be invited twice.
    let r = t
        .post(
            "/api/v1/auth/invitations",
            &user,
            json!({"login": "autre@atlas.example", "phone": "0600000112"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // An admin cannot probe which logins exist: inviting a taken login succeeds, and only the
    // invitee learns, on confirming, that the login is taken. The taken login's failure
    // counter (its five free failures spent) is as it was: neither the invitee's wrong code
    // nor the right one touches it (it once was cleared, so an admin could reset anyone's
    // throttle), so its next wrong password is still held back.
    for _ in 0..5 {
        let r = password_step(&t, "paie@atlas.example", "wrong password 123").await;
        assert_eq!(r.status, 401, "{:?}", r.json);
    }
    let r = t
        .post(
            "/api/v1/auth/invitations",
            &admin,
            json!({"login": "paie@atlas.example", "phone": "0600000112"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let invitation = r.json["invitation"].as_str().unwrap().to_string();
    let seen = t.sms_texts("+212600000112").len();
    let r = t
        .post_anon(
            "/api/v1/auth/invitations/accept",
            json!({"invitation": invitation, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let code = code_in(&next_sms(&t, "+212600000112", seen).await);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = t
        .post_anon(
            "/api/v1/auth/enrol/confirm",
            json!({"enrolment": invitation, "code": wrong}),
        )
        .await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    let r = t
        .post_anon(
            "/api/v1/auth/enrol/confirm",
            json!({"enrolment": invitation, "code": code}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let r = password_step(&t, "paie@atlas.example", "wrong password 123").await;
    assert_eq!(r.status, 429, "the taken login's counter: {:?}", r.json);
    // Inviting needs a fresh second factor.
    t.clock.advance_seconds(600);
    let r = t
        .post(
            "/api/v1/auth/invitations",
            &admin,
            json!({"login": "compta@atlas.example", "phone": "0600000113"}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "step_up_required");
}

async fn sms_and_per_ip_limits(backend: Backend) {
    let t = TestApp::start_with(backend, |c| c.kernel.sms.per_number_hour = 3, 8).await;
    let phone = "+212600000113";
    enrolled(&t, "ZA113", phone).await; // 1 SMS
    let r = password_step(&t, "ZA113", PASSWORD).await;
    let pending = r.json["pending"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let r = t
            .post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
            .await;
        assert_eq!(r.status, 202);
    }
    let r = t
        .post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (429, Some("sms_limit"))
    );
    assert_eq!(t.sms_texts(phone).len(), 3);
    // The earlier codes still work: a resend does not invalidate them.
    let first = code_in(&t.sms_texts(phone)[1]);
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": first}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // One address: 8 requests a minute on each authentication route.
    // (Each attempt names another login, so the per-login throttle stays out of the way.)
    let mut limited = 0;
    for i in 0..10 {
        let r = password_step(&t, &format!("ZB{i}"), "whatever it is").await;
        if r.status == 429 {
            assert_eq!(r.json["error"]["code"], "too_many_requests");
            assert!(r.headers.contains_key("retry-after"));
            limited += 1;
        } else {
            assert_eq!(r.json["error"]["code"], "login_failed");
        }
    }
    assert_eq!(limited, 3);
}

const ORIGIN: &str = "http://localhost:8080";

/// Invites and enrols a staff member; returns the setup token for their first passkey.
async fn staff_enrolled(t: &TestApp, login: &str, phone: &str, role: Role) -> String {
    let invitation = operator_invites(t, login, phone, role, None).await;
    let r = accept_invitation(t, &invitation, phone).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json["passkey_setup"].as_str().unwrap().to_string()
}

async fn staff_log_in_with_a_passkey(backend: Backend) {
    let t = TestApp::start(backend).await;
    let setup = staff_enrolled(&t, "n.agent@cnss.example", "+212600000120", Role::Agent).await;
    let mut key = testkit::soft_passkey::SoftPasskey::new();
    // The setup token is not a session.
    assert_eq!(session_status(&t, &setup).await, 401);
    let options = t
        .post_anon("/api/v1/auth/passkeys/setup", json!({"setup": setup}))
        .await;
    assert_eq!(options.status, 200, "{:?}", options.json);
    let credential = key.register(&options.json, ORIGIN);
    let r = t
        .post_anon(
            "/api/v1/auth/passkeys/setup/finish",
            json!({"setup": setup, "credential": credential}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["role"], "agent");
    assert_eq!(r.json["idle_timeout_seconds"], 900);
    let first = r.json["token"].as_str().unwrap().to_string();
    assert_eq!(
        t.get("/api/v1/auth/session", &first).await.json["method"],
        "passkey"
    );
    // The setup token served once.
    let r = t
        .post_anon("/api/v1/auth/passkeys/setup", json!({"setup": setup}))
        .await;
    assert_eq!(r.status, 401);
    // Later logins: password, then the passkey.
    let r = password_step(&t, "n.agent@cnss.example", PASSWORD).await;
    assert_eq!(r.json["methods"], json!(["passkey"]));
    let pending = r.json["pending"].as_str().unwrap().to_string();
    let options = t
        .post_anon("/api/v1/auth/login/passkey", json!({"pending": pending}))
        .await;
    assert_eq!(options.status, 200, "{:?}", options.json);
    let assertion = key.authenticate(&options.json, ORIGIN);
    // An assertion made for another origin (a phishing site) is refused.
    let mut phished = key.clone();
    let wrong = phished.authenticate(&options.json, "https://daman-login.example");
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "passkey", "credential": wrong}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "code_rejected");
    // Each challenge answers once: the refused attempt used it up; ask again.
    let options = t
        .post_anon("/api/v1/auth/login/passkey", json!({"pending": pending}))
        .await;
    let assertion2 = key.authenticate(&options.json, ORIGIN);
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "passkey", "credential": assertion}),
        )
        .await;
    assert_eq!(
        r.json["error"]["code"], "code_rejected",
        "an answer to an older challenge"
    );
    let options = t
        .post_anon("/api/v1/auth/login/passkey", json!({"pending": pending}))
        .await;
    let _ = assertion2;
    let assertion3 = key.authenticate(&options.json, ORIGIN);
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "passkey", "credential": assertion3}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let token = r.json["token"].as_str().unwrap().to_string();
    // The same assertion again (a replay) opens nothing.
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "passkey", "credential": assertion3}),
        )
        .await;
    assert_eq!(r.status, 401);
    // The agent's session works through the gate like a development token did.
    let r = t
        .post(
            "/api/v1/employers",
            &token,
            json!({"name": "ATLAS", "activity": "Textile", "city": "Rabat", "ice": "001525478000088"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    // Step-up with the passkey.
    t.clock.advance_seconds(600);
    let options = t
        .post("/api/v1/auth/step-up/passkey", &token, json!({}))
        .await;
    let assertion = key.authenticate(&options.json, ORIGIN);
    let r = t
        .post(
            "/api/v1/auth/step-up",
            &token,
            json!({"method": "passkey", "credential": assertion}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    // Staff sessions idle out after 15 minutes.
    t.clock.advance_seconds(15 * 60);
    assert_eq!(session_status(&t, &token).await, 401);
}

async fn insured_persons_add_list_and_remove_passkeys(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000121";
    enrolled(&t, "ZA121", phone).await;
    let token = login_sms(&t, "ZA121", phone).await;
    let mut key = testkit::soft_passkey::SoftPasskey::new();
    let options = t
        .post("/api/v1/auth/factors/passkey", &token, json!({}))
        .await;
    assert_eq!(options.status, 200, "{:?}", options.json);
    // Nothing on the device names the person.
    assert_eq!(options.json["publicKey"]["user"]["name"], "daman");
    let credential = key.register(&options.json, ORIGIN);
    let r = t
        .post(
            "/api/v1/auth/factors/passkey/confirm",
            &token,
            json!({"credential": credential}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let factors = t.get("/api/v1/auth/factors", &token).await.json;
    let kinds: Vec<&str> = factors
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sms", "passkey"]);
    // Log in with it.
    let r = password_step(&t, "ZA121", PASSWORD).await;
    assert_eq!(r.json["methods"], json!(["sms", "passkey"]));
    let pending = r.json["pending"].as_str().unwrap().to_string();
    let options = t
        .post_anon("/api/v1/auth/login/passkey", json!({"pending": pending}))
        .await;
    let r = t
        .post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "passkey", "credential": key.authenticate(&options.json, ORIGIN), "client": "app"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let second = r.json["token"].as_str().unwrap().to_string();
    // Remove it (a fresh second factor: the login just now).
    let id = factors[1]["id"].as_str().unwrap();
    let r = t
        .post("/api/v1/auth/factors/remove", &second, json!({"id": id}))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let r = password_step(&t, "ZA121", PASSWORD).await;
    assert_eq!(r.json["methods"], json!(["sms"]));
    // The last factor stays.
    let sms_id = factors[0]["id"].as_str().unwrap();
    let r = t
        .post(
            "/api/v1/auth/factors/remove",
            &second,
            json!({"id": sms_id}),
        )
        .await;
    assert_eq!(r.status, 409);
}

async fn phone_changes_need_step_up_and_the_new_number(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (old, new) = ("+212600000150", "+212600000151");
    enrolled(&t, "ZA150", old).await;
    let token = login_sms(&t, "ZA150", old).await;
    let other = login_sms(&t, "ZA150", old).await;
    t.clock.advance_seconds(600);
    let r = t
        .post("/api/v1/auth/factors/phone", &token, json!({"phone": new}))
        .await;
    assert_eq!(r.json["error"]["code"], "step_up_required");
    let seen = t.sms_texts(old).len();
    t.post("/api/v1/auth/step-up/sms", &token, json!({})).await;
    let code = code_in(&next_sms(&t, old, seen).await);
    t.post(
        "/api/v1/auth/step-up",
        &token,
        json!({"method": "sms", "code": code}),
    )
    .await;
    let r = t
        .post("/api/v1/auth/factors/phone", &token, json!({"phone": new}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    // The code went to the new number; a code from the old one does not confirm it.
    let code = code_in(&next_sms(&t, new, 0).await);
    let r = t
        .post(
            "/api/v1/auth/factors/phone/confirm",
            &token,
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "code_rejected");
    // Guesses count on the account's login throttle, as a login's codes do: past the free
    // five, the next is refused before it is checked (it once took 300 guesses in 1.4 s).
    let mut refused = None;
    for n in 2..=10 {
        let r = t
            .post(
                "/api/v1/auth/factors/phone/confirm",
                &token,
                json!({"code": "000000"}),
            )
            .await;
        if r.status == 429 {
            assert_eq!(r.json["error"]["code"], "too_many_attempts");
            refused = Some(n);
            break;
        }
        assert_eq!(r.json["error"]["code"], "code_rejected");
    }
    assert_eq!(refused, Some(6), "throttled after the free five");
    t.clock.advance_seconds(60);
    let seen_old = t.sms_texts(old).len();
    let r = t
        .post(
            "/api/v1/auth/factors/phone/confirm",
            &token,
            json!({"code": code}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    // The old number is told; the other session ended; the registry has the new number; the
    // next login's code goes to the new number.
    assert!(next_sms(&t, old, seen_old).await.contains("change"));
    assert_eq!(session_status(&t, &other).await, 401);
    let r = t
        .post(
            "/api/v1/persons/read",
            &token,
            json!({"cin": "ZA150", "purpose": "self_service", "fields": ["phone"], "full": true}),
        )
        .await;
    assert_eq!(r.json["fields"]["phone"], new);
    let fresh = login_sms(&t, "ZA150", new).await;
    assert_eq!(session_status(&t, &fresh).await, 200);
    // Right after a phone change, the RIB cannot change (its notice would go to the new phone).
    let first22 = "9990020000012050005349";
    let rib = format!("{first22}{:02}", domain::Rib::key_for(first22).unwrap());
    let r = t
        .post("/api/v1/persons/rib", &fresh, json!({"rib": rib}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    // An hourly purge removes what expired, not what lives.
    t.clock.advance_seconds(8 * 86_400);
    let live = login_sms(&t, "ZA150", new).await;
    let purged = t.app.identity().purge_expired().await.unwrap();
    assert!(purged > 0);
    assert_eq!(session_status(&t, &live).await, 200);
}

/// Forty guesses at once at one account's code: each is counted before it is checked, so only
/// the first few are checked at all; the rest wait their turn (429).
async fn concurrent_guesses_do_not_slip_past_the_throttle(backend: Backend) {
    let t = TestApp::start(backend).await;
    let phone = "+212600000160";
    enrolled(&t, "ZA160", phone).await;
    let r = password_step(&t, "ZA160", PASSWORD).await;
    let pending = r.json["pending"].as_str().unwrap().to_string();
    t.post_anon("/api/v1/auth/login/sms", json!({"pending": pending}))
        .await;
    let real = code_in(&next_sms(&t, phone, 1).await);
    let guesses = (0..40).map(|i| {
        let code = format!("{:06}", (real.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        t.post_anon(
            "/api/v1/auth/login/verify",
            json!({"pending": pending, "method": "sms", "code": code}),
        )
    });
    let replies = futures_util::future::join_all(guesses).await;
    let checked = replies
        .iter()
        .filter(|r| r.json["error"]["code"] == "code_rejected")
        .count();
    let throttled = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(checked + throttled, 40);
    assert!(
        checked <= auth::throttle::FREE_FAILURES as usize + 1,
        "{checked} checked"
    );
}

on_both_backends!(
    concurrent_guesses_do_not_slip_past_the_throttle,
    phone_changes_need_step_up_and_the_new_number,
    staff_log_in_with_a_passkey,
    insured_persons_add_list_and_remove_passkeys,
    password_and_sms_through_smpp,
    password_and_totp,
    unknown_and_known_accounts_fail_alike,
    the_101st_failure_is_refused_even_with_the_right_password,
    staff_cannot_log_in_without_a_passkey,
    sessions_end_at_logout_timeout_and_disabling,
    passwords_built_from_the_record_are_refused,
    enrolment_confirmation_says_nothing_of_the_cin,
    password_change_needs_the_current_one_and_ends_other_sessions,
    anonymous_enrolments_leave_the_sms_reserve_alone,
    rib_change_needs_step_up_and_waits,
    browser_sessions_use_host_cookies_and_refuse_cross_site_posts,
    employer_admins_invite_their_users,
    sms_and_per_ip_limits,
);

/// The HTTP gateway sender posts `{"to", "text"}` with its bearer key, and reports a refusal.
#[tokio::test]
async fn http_sms_gateway_receives_json_with_the_key() {
    use auth::SmsSender;
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                let auth = headers["authorization"].to_str().unwrap().to_string();
                let refuse = body.0["to"] == "+212600000199";
                record.lock().unwrap().push((auth, body.0));
                if refuse {
                    axum::http::StatusCode::BAD_REQUEST
                } else {
                    axum::http::StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let sender =
        auth::sms::HttpSender::new(&format!("http://127.0.0.1:{port}/send"), "gateway-key")
            .unwrap();
    let to = domain::Phone::parse("+212600000198").unwrap();
    sender.send(&to, "رمزك في ضمان: 123456").await.unwrap();
    let refused = domain::Phone::parse("+212600000199").unwrap();
    let e = sender.send(&refused, "x").await.unwrap_err();
    assert_eq!(e.to_string(), "SMS refused by the gateway: HTTP 400");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got[0].0, "Bearer gateway-key");
    assert_eq!(
        got[0].1,
        json!({"to": "+212600000198", "text": "رمزك في ضمان: 123456"})
    );
    // Plain HTTP is refused except to the loopback address (tests).
    assert!(auth::sms::HttpSender::new("http://gateway.example/send", "k").is_err());
    server.abort();
}
