//! Read budgets: a scripted extraction is stopped at its budget, the account locked, the alert
//! raised (audit log and a real webhook), and the breach report lists exactly the persons read.

use crate::person_json;
use axum::extract::State;
use axum::routing::post;
use domain::Role;
use kernel::{Binding, ReadBudgets, WebhookNotifier};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use store::Backend;
use testkit::{TEST_NOW, TestApp};

crate::on_both_backends!(
    a_scripted_extraction_is_stopped_locked_alerted_and_reported,
    careers_are_read_from_the_same_budget,
    an_employers_users_share_one_budget_from_its_headcount,
);

type Received = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on 127.0.0.1: every JSON body posted to /hook.
async fn webhook() -> (String, Received) {
    let received: Received = Arc::default();
    let router = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Received>, axum::Json(v): axum::Json<Value>| async move {
                    r.lock().unwrap().push(v);
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

/// The webhook calls once `n` have arrived (alerts are sent in the background), within 10 s.
async fn arrived(received: &Received, n: usize) -> Vec<Value> {
    for _ in 0..1_000 {
        let got = received.lock().unwrap().clone();
        if got.len() >= n {
            assert_eq!(got.len(), n, "no more alerts than crossings");
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} alerts expected");
}

async fn a_scripted_extraction_is_stopped_locked_alerted_and_reported(b: Backend) {
    let (url, received) = webhook().await;
    let t = TestApp::start_full(
        b,
        |_| {},
        1_000,
        ReadBudgets {
            agent: Some((5, 8)),
            employer_user: Some((500, 5_000)),
        },
        vec![Arc::new(WebhookNotifier::new(&url).unwrap())],
    )
    .await;
    let (_, registrar) = t.login("registrar", Role::Agent, Binding::None).await;
    let (extractor, token) = t.login("extractor", Role::Agent, Binding::None).await;
    let (_, officer) = t
        .login("officer", Role::SecurityOfficer, Binding::None)
        .await;
    let mut persons = Vec::new();
    for i in 0..12 {
        let cin = format!("ZT{i:04}");
        let r = t
            .post(
                "/api/v1/persons",
                &registrar,
                person_json(&cin, "BENJELLOUN", "Amine"),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let id: i64 = r.json["person_id"].as_str().unwrap().parse().unwrap();
        persons.push((cin, id));
    }
    let read = |token: &str, cin: &str| {
        let body = json!({"cin": cin, "purpose": "registration"});
        let token = token.to_string();
        let t = &t;
        async move { t.post("/api/v1/persons/read", &token, body).await }
    };

    // Person after person: five go through, the sixth crosses the hourly budget.
    for (cin, _) in &persons[..5] {
        assert_eq!(read(&token, cin).await.status, 200);
    }
    let r = read(&token, &persons[5].0).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["error"]["code"], "read_budget_exceeded");
    assert!(!r.json.to_string().contains(&persons[5].0));
    // Locked: nothing more, not even a person read before.
    for (cin, _) in persons[6..].iter().chain(&persons[..1]) {
        let r = read(&token, cin).await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (403, Some("access_denied"))
        );
    }
    assert!(
        t.app
            .kernel()
            .principal(extractor.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );
    // Enabling the account (what `daman account enable` does) does not lift a review lock.
    t.app
        .kernel()
        .store()
        .set_locked(extractor.id, false)
        .await
        .unwrap();
    t.app.kernel().forget_principal(extractor.id);
    assert!(
        t.app
            .kernel()
            .principal(extractor.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );

    // The alert: one audit event, one webhook call, ids and counts only.
    let alerts: Vec<_> = t
        .app
        .kernel()
        .store()
        .audit_events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.action == "alert")
        .collect();
    assert_eq!(alerts.len(), 1);
    let (_, a) = &alerts[0];
    assert_eq!(
        (a.principal_id, a.outcome.as_str()),
        (Some(extractor.id), "read_budget_exceeded")
    );
    assert_eq!(
        a.detail.as_deref(),
        Some("locked; 6 persons this hour, budget 5")
    );
    let hooks = arrived(&received, 1).await;
    assert_eq!(hooks[0]["kind"], "read_budget_exceeded");
    assert_eq!(hooks[0]["principal_id"], extractor.id.to_string());
    assert_eq!(hooks[0]["role"], "agent");
    for (cin, _) in &persons {
        assert!(!hooks[0].to_string().contains(cin.as_str()));
    }

    // The breach report for the account: exactly the five persons it read, from the log.
    let window = json!({
        "principals": [extractor.id.to_string()],
        "from": "2026-11-23T09:00:00Z",
        "to": "2026-11-23T11:00:00Z",
    });
    let r = t
        .post("/api/v1/breach/report", &token, window.clone())
        .await;
    assert_eq!(r.status, 403, "the extractor may not ask");
    let r = t
        .post("/api/v1/breach/report", &registrar, window.clone())
        .await;
    assert_eq!(r.status, 403, "nor any agent");
    let r = t
        .post("/api/v1/breach/report", &officer, window.clone())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let reported: BTreeSet<String> = r.json["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["subject"].as_str().unwrap().to_string())
        .collect();
    let read_ones: BTreeSet<String> = persons[..5]
        .iter()
        .map(|(_, id)| t.app.kernel().person_pseudonym(*id))
        .collect();
    assert_eq!(reported, read_ones);
    assert_eq!(
        r.json["refused"], 8,
        "the crossing read and seven while locked"
    );
    assert_eq!(r.json["per_category"]["identity"], 5);
    assert_eq!(
        r.json["per_category"]["bank"], 5,
        "the masked view shows the RIB's last digits"
    );
    for p in r.json["persons"].as_array().unwrap() {
        assert_eq!(p["by"], json!([extractor.id.to_string()]));
        assert_eq!(p["reads"], 1);
        assert_eq!(p["full"], false);
    }
    for (cin, _) in &persons {
        assert!(!r.json.to_string().contains(cin.as_str()));
    }
    // Outside the window, nothing.
    let r = t
        .post(
            "/api/v1/breach/report",
            &officer,
            json!({"principals": [extractor.id.to_string()], "from": "2026-11-22", "to": "2026-11-23"}),
        )
        .await;
    assert_eq!(r.json["persons"], json!([]));
    let r = t
        .post(
            "/api/v1/breach/report",
            &officer,
            json!({"principals": ["x"], "from": "2026-11-22T25:00:00Z", "to": "2026-11-23"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let fields: Vec<&str> = r.json["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["principals", "from"]);

    // Only a security officer unlocks. The hourly budget is not reset: a person already read
    // this hour is free, a new one locks the account again.
    let unlock = json!({"principal_id": extractor.id.to_string()});
    assert_eq!(
        t.post("/api/v1/principals/unlock", &registrar, unlock.clone())
            .await
            .status,
        403
    );
    let r = t
        .post("/api/v1/principals/unlock", &officer, unlock.clone())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(read(&token, &persons[0].0).await.status, 200);
    assert_eq!(
        read(&token, &persons[6].0).await.json["error"]["code"],
        "read_budget_exceeded"
    );

    // An hour later the hourly budget is fresh; the daily one (8) is not: three more persons,
    // then the fourth crosses it.
    t.clock.advance_seconds(3_600);
    assert_eq!(TEST_NOW.plus_seconds(3_600).date(), TEST_NOW.date());
    let (_, token) = t.login("extractor", Role::Agent, Binding::None).await;
    let (_, officer) = t
        .login("officer", Role::SecurityOfficer, Binding::None)
        .await;
    let r = t
        .post("/api/v1/principals/unlock", &officer, unlock.clone())
        .await;
    assert_eq!(r.status, 200);
    for (cin, _) in &persons[5..8] {
        assert_eq!(read(&token, cin).await.status, 200);
    }
    let r = read(&token, &persons[8].0).await;
    assert_eq!(r.json["error"]["code"], "read_budget_exceeded");
    let last = arrived(&received, 3).await[2].clone();
    assert_eq!(last["detail"], "9 persons today, budget 8");
}

/// A career is read through the gate: an agent's career reads and reveals share one budget of
/// distinct persons, and the read that crosses it locks the agent.
async fn careers_are_read_from_the_same_budget(b: Backend) {
    let t = TestApp::start_full(
        b,
        |_| {},
        1_000,
        ReadBudgets {
            agent: Some((2, 10)),
            employer_user: Some((500, 5_000)),
        },
        Vec::new(),
    )
    .await;
    let (_, mut registrar) = t.login("registrar", Role::Agent, Binding::None).await;
    let (agent, mut token) = t.login("caseworker", Role::Agent, Binding::None).await;
    let mut persons = Vec::new();
    // Opening a case counts like a read: two cases this hour, the third in the next, and the
    // reads below in the hour after (new sessions: an hour idle ends one).
    for i in 0..3 {
        if i == 2 {
            t.clock.advance_seconds(3_600);
            registrar = t.login("registrar", Role::Agent, Binding::None).await.1;
            token = t.login("caseworker", Role::Agent, Binding::None).await.1;
        }
        let cin = format!("ZS{i:04}");
        let r = t
            .post(
                "/api/v1/persons",
                &registrar,
                person_json(&cin, "EL IDRISSI", "Nadia"),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let id: i64 = r.json["person_id"].as_str().unwrap().parse().unwrap();
        let imma = r.json["immatriculation"].as_str().unwrap().to_string();
        let r = t
            .post(
                "/api/v1/cases",
                &token,
                json!({"immatriculation": imma, "reason": "AMO claim 2026-3"}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        persons.push((cin, id));
    }
    t.clock.advance_seconds(3_600);
    let token = t.login("caseworker", Role::Agent, Binding::None).await.1;
    // The first person's career, twice (one person), then the second person revealed: two.
    for _ in 0..2 {
        assert!(
            t.app
                .contributions()
                .career(&agent, Some(persons[0].1), "t")
                .await
                .is_ok()
        );
    }
    let r = t
        .post(
            "/api/v1/persons/read",
            &token,
            json!({"cin": persons[1].0, "purpose": "case_review"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The third person's career crosses the budget: refused, locked, alerted.
    assert!(matches!(
        t.app
            .contributions()
            .career(&agent, Some(persons[2].1), "t")
            .await,
        Err(kernel::AppError::Denied(domain::DenyReason::ReadBudget))
    ));
    let agent = t.app.kernel().principal(agent.id).await.unwrap().unwrap();
    assert!(agent.locked);
    assert_eq!(t.alerts("read_budget_exceeded").await, 1);
    // Locked: not even the person read before.
    assert!(matches!(
        t.app
            .contributions()
            .career(&agent, Some(persons[0].1), "t")
            .await,
        Err(kernel::AppError::Denied(domain::DenyReason::Locked))
    ));
    // The breach report for the agent lists the career read (twice) and the person revealed,
    // and counts the two refusals.
    let (_, officer) = t
        .login("officer", Role::SecurityOfficer, Binding::None)
        .await;
    let r = t
        .post(
            "/api/v1/breach/report",
            &officer,
            json!({"principals": [agent.id.to_string()], "from": "2026-11-23T09:00:00Z", "to": "2026-11-23T14:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["refused"], 2);
    let exposed: BTreeSet<(String, i64, usize)> = r.json["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["subject"].as_str().unwrap().to_string(),
                p["reads"].as_i64().unwrap(),
                p["fields"].as_array().unwrap().len(),
            )
        })
        .collect();
    let subject = |i: usize| t.app.kernel().person_pseudonym(persons[i].1);
    // The career reads name the person by number; the reveal showed every field.
    assert_eq!(
        exposed,
        BTreeSet::from([(subject(0), 2, 1), (subject(1), 1, 12)])
    );
    assert_eq!(r.json["per_category"]["career"], 1);
    assert_eq!(r.json["per_category"]["identity"], 2);
}

/// An employer's users spend one budget, its headcount (when the day's first read was counted)
/// and a slack of ten: once a user crosses it, every user of that employer is locked and one
/// alert raised; another employer's users go on.
async fn an_employers_users_share_one_budget_from_its_headcount(b: Backend) {
    let (url, received) = webhook().await;
    let t = TestApp::start_full(
        b,
        |_| {},
        1_000,
        ReadBudgets {
            agent: Some((500, 5_000)),
            employer_user: Some((500, 5_000)),
        },
        vec![Arc::new(WebhookNotifier::new(&url).unwrap())],
    )
    .await;
    let (_, registrar) = t.login("registrar", Role::Agent, Binding::None).await;
    let mut employers = Vec::new();
    for ice in ["001525478000088", "001525479000012"] {
        let r = t
            .post(
                "/api/v1/employers",
                &registrar,
                json!({"name": "ATLAS", "activity": "Textile", "city": "Rabat", "ice": ice}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let id: i64 = r.json["employer_id"].as_str().unwrap().parse().unwrap();
        let number = r.json["affiliate_number"].as_str().unwrap().to_string();
        employers.push((id, number));
    }
    let mut persons = Vec::new();
    for i in 0..16 {
        let cin = format!("ZT{i:04}");
        let r = t
            .post(
                "/api/v1/persons",
                &registrar,
                person_json(&cin, "BENJELLOUN", "Amine"),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let id: i64 = r.json["person_id"].as_str().unwrap().parse().unwrap();
        persons.push((cin, id));
    }
    let link = |who: usize, range: std::ops::Range<usize>| {
        persons[range]
            .iter()
            .map(|(_, p)| (employers[who].0, *p, "2024-01-01".to_string()))
            .collect::<Vec<_>>()
    };
    let reg = kernel::Registrar::operator();
    let registry = t.app.registry();
    registry
        .link_employments(reg, &link(0, 0..2), "t")
        .await
        .unwrap();
    registry
        .link_employments(reg, &link(1, 15..16), "t")
        .await
        .unwrap();
    let user = |label: &'static str, n: usize| {
        let number = domain::AffiliateNumber::parse(&employers[n].1).unwrap();
        let t = &t;
        async move {
            t.login(label, Role::EmployerUser, Binding::Employer(number))
                .await
        }
    };
    let (first, first_token) = user("payroll-1", 0).await;
    let (second, second_token) = user("payroll-2", 0).await;
    let (_, other_token) = user("payroll-other", 1).await;
    let read = |token: &str, cin: &str| {
        let body = json!({"cin": cin, "purpose": "payroll", "fields": ["last_name"]});
        let token = token.to_string();
        let t = &t;
        async move { t.post("/api/v1/persons/read", &token, body).await }
    };
    // Two employees when the day's first read is counted: a budget of 12 for both users.
    assert_eq!(read(&first_token, &persons[0].0).await.status, 200);
    // Thirteen more hired the same day: readable (employees), up to the budget.
    registry
        .link_employments(reg, &link(0, 2..15), "t")
        .await
        .unwrap();
    for (k, (cin, _)) in persons[1..12].iter().enumerate() {
        let token = if k % 2 == 0 {
            &first_token
        } else {
            &second_token
        };
        assert_eq!(read(token, cin).await.status, 200, "{k}");
    }
    // The second user's thirteenth person of the employer crosses it: both are locked.
    let r = read(&second_token, &persons[12].0).await;
    assert_eq!(r.json["error"]["code"], "read_budget_exceeded");
    for p in [&first, &second] {
        assert!(
            t.app
                .kernel()
                .principal(p.id)
                .await
                .unwrap()
                .unwrap()
                .locked
        );
    }
    let r = read(&first_token, &persons[0].0).await;
    assert_eq!(r.status, 403, "the first user is locked too");
    assert_eq!(
        arrived(&received, 1).await[0]["kind"],
        "read_budget_exceeded"
    );
    // Another employer's user is not.
    assert_eq!(read(&other_token, &persons[15].0).await.status, 200);
}
