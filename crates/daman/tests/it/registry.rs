//! Registry commands: validation, duplicates, nothing half-done.

use crate::{World, on_both_backends, person_json};
use serde_json::json;
use store::Backend;

on_both_backends!(
    bad_identifiers_are_refused_with_every_reason_and_change_nothing,
    duplicates_are_refused,
    decoys_are_spread_through_the_number_space,
);

async fn bad_identifiers_are_refused_with_every_reason_and_change_nothing(b: Backend) {
    let w = World::new(b).await;
    let store = w.t.app.kernel().store().clone();
    let persons = store.count_persons().await.unwrap();
    let mut bad = person_json("12345678", "", "Salma");
    bad["rib"] = json!("999001000001205000534904");
    bad["phone"] = json!("+33600123456");
    bad["birth_date"] = json!("1988-02-30");
    bad["email"] = json!("salma at example.org");
    let r = w.t.post("/api/v1/persons", &w.agent, bad).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["error"]["code"], "invalid_input");
    let rules: Vec<(String, String)> = r.json["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().into(),
                d["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("cin", "cin_shape"),
        ("last_name", "required"),
        ("birth_date", "date_shape"),
        ("phone", "phone_shape"),
        ("email", "email_shape"),
        ("rib", "rib_key"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rules, expected);
    // The message names the field and the rule, in French by default; it never echoes the value.
    let msg = r.json["error"]["details"][5]["message"].as_str().unwrap();
    assert!(msg.starts_with("rib : clé RIB invalide"), "{msg}");
    assert!(!r.json.to_string().contains("999001000001205000534904"));
    // Bad identifiers on every other command.
    for (path, body) in [
        (
            "/api/v1/persons/read",
            json!({"cin": "1234", "purpose": "registration"}),
        ),
        (
            "/api/v1/persons/read",
            json!({"immatriculation": "12345678", "purpose": "registration"}),
        ),
        (
            "/api/v1/persons/read",
            json!({"cin": "AB1", "immatriculation": "123456789", "purpose": "registration"}),
        ),
        (
            "/api/v1/employments",
            json!({"affiliate_number": "12", "immatriculation": "x", "start_date": "2024"}),
        ),
        (
            "/api/v1/employers",
            json!({"name": "X", "activity": "Y", "city": "Z", "ice": "123"}),
        ),
        (
            "/api/v1/cases",
            json!({"immatriculation": "1", "reason": ""}),
        ),
        (
            "/api/v1/persons/contact",
            json!({"person_id": w.a.id, "phone": "12"}),
        ),
    ] {
        let r = w.t.post(path, &w.agent, body.clone()).await;
        assert_eq!(r.status, 422, "{path} {body}");
        assert_eq!(r.json["error"]["code"], "invalid_input");
    }
    // Nothing changed: no person, and the next number is the one that would have come anyway.
    assert_eq!(store.count_persons().await.unwrap(), persons);
    let ok =
        w.t.post(
            "/api/v1/persons",
            &w.agent,
            person_json("ZK12", "NACIRI", "Hajar"),
        )
        .await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.json["immatriculation"], "100000005");
    // In Arabic on request.
    let r =
        w.t.call_with(
            axum::http::Method::POST,
            "/api/v1/persons/read",
            Some(&w.agent),
            Some(json!({"cin": "1234", "purpose": "registration"})),
            &[("accept-language", "ar-MA, fr;q=0.5")],
        )
        .await;
    assert_eq!(r.json["error"]["message"], "بيانات غير صحيحة.");
}

async fn duplicates_are_refused(b: Backend) {
    let w = World::new(b).await;
    let persons = w.t.app.kernel().store().count_persons().await.unwrap();
    let r =
        w.t.post(
            "/api/v1/persons",
            &w.agent,
            person_json(" zz123456 ", "AUTRE", "Nom"),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json["error"]["code"], "conflict");
    assert_eq!(
        w.t.app.kernel().store().count_persons().await.unwrap(),
        persons
    );
    let r =
        w.t.post(
            "/api/v1/employers",
            &w.agent,
            json!({"name": "COPIE", "activity": "X", "city": "Fes", "ice": "001525478000088"}),
        )
        .await;
    assert_eq!(r.status, 409);
    // An agent links only within a case on the person.
    let link = json!({"affiliate_number": w.employer1.affiliate_number, "immatriculation": w.a.immatriculation, "start_date": "2024-01-01"});
    let r =
        w.t.post("/api/v1/employments", &w.agent, link.clone())
            .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (403, Some("access_denied")),
        "{:?}",
        r.json
    );
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.agent,
            json!({"immatriculation": w.a.immatriculation, "reason": "employment"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = w.t.post("/api/v1/employments", &w.agent, link).await;
    assert_eq!(r.status, 409);
    let r = w
        .t
        .post("/api/v1/employments", &w.agent, json!({"affiliate_number": "9999999", "immatriculation": w.a.immatriculation, "start_date": "2024-01-01"}))
        .await;
    assert_eq!(r.status, 404);
}

/// With one decoy in every 25 numbers, 400 persons immatriculated leave one decoy in each block
/// of 25 the counter passed, at a place the keys chose: every gap in the persons' numbers is a
/// decoy, two decoys are never more than two blocks apart, and a sweep from the first number up
/// or from the last down meets one within two blocks; reading it locks the reader.
async fn decoys_are_spread_through_the_number_space(b: Backend) {
    // Two blocks (50) stay under an agent's hourly budget (60): the decoy stops the sweep first.
    const EVERY: u32 = 25;
    let t = testkit::TestApp::start_with(b, |c| c.kernel.decoy_every = EVERY, 1_000).await;
    let persons: Vec<registry::NewPerson> = (0..400)
        .map(|i| {
            serde_json::from_value(person_json(&format!("ZT{i:04}"), "NACIRI", "Aya")).unwrap()
        })
        .collect();
    let created = t
        .app
        .registry()
        .immatriculate(kernel::Registrar::operator(), &persons, "t")
        .await
        .unwrap();
    let real: Vec<u32> = created
        .iter()
        .map(|c| c.immatriculation.parse().unwrap())
        .collect();
    let (lo, hi) = (real[0], *real.last().unwrap());
    let taken: std::collections::BTreeSet<u32> = real.iter().copied().collect();
    let decoys: Vec<u32> = (lo..=hi).filter(|n| !taken.contains(n)).collect();
    // One decoy per block of numbers; the first and the last block's may fall outside the
    // numbers handed out (the keys, so the places, are new each run).
    let blocks = (hi / EVERY - lo / EVERY + 1) as usize;
    assert!(
        decoys.len() + 2 >= blocks && decoys.len() <= blocks,
        "{decoys:?}"
    );
    for pair in decoys.windows(2) {
        assert!(pair[1] - pair[0] < 2 * EVERY, "{pair:?}");
    }
    assert!(decoys[0] - lo < 2 * EVERY);
    assert!(hi - decoys.last().unwrap() < 2 * EVERY);
    // Each is a registered person the kernel knows as a decoy.
    let k = t.app.kernel();
    for n in &decoys {
        let subject =
            kernel::Subject::Immatriculation(domain::Immatriculation::from_number(*n).unwrap());
        let id = k.resolve(&subject).await.unwrap().expect("registered");
        assert!(k.is_decoy_person(id), "{n}");
    }
    // An agent sweeping the numbers up from the first meets the first decoy and is locked.
    let (agent, token) = t
        .login("sweeper", domain::Role::Agent, kernel::Binding::None)
        .await;
    for n in lo..=decoys[0] {
        let r = t
            .post(
                "/api/v1/persons/read",
                &token,
                json!({"immatriculation": format!("{n:09}"), "purpose": "registration"}),
            )
            .await;
        if n == decoys[0] {
            assert_eq!(r.status, 403);
        }
    }
    assert!(k.principal(agent.id).await.unwrap().unwrap().locked);
    assert_eq!(
        (
            t.alerts("honeytoken").await,
            t.alerts("read_budget_exceeded").await
        ),
        (1, 0),
        "locked by the decoy, not by the budget"
    );
}
