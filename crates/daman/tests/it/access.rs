//! Who may read whom, through every endpoint; and that every read and refusal is audited.

use crate::{World, on_both_backends};
use serde_json::{Value, json};
use store::Backend;

on_both_backends!(
    insured_reads_self_masked_by_default_and_full_on_request,
    insured_cannot_read_or_change_another_insured,
    employer_reads_only_names_and_numbers_of_its_own_employees,
    employer_cannot_touch_another_employers_employee,
    agent_needs_a_case_for_full_values,
    security_officer_reads_no_personal_data,
    every_read_and_every_refusal_is_audited_before_the_answer,
    unknown_and_forbidden_persons_look_the_same_to_non_agents,
);

async fn insured_reads_self_masked_by_default_and_full_on_request(b: Backend) {
    let w = World::new(b).await;
    let r = w
        .read(
            &w.a.token,
            json!({"cin": w.a.cin, "purpose": "self_service"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["full"], false);
    assert_eq!(r.json["fields"]["cin"], "••••3456");
    assert_eq!(r.json["fields"]["rib"], "••••4903");
    assert_eq!(r.json["fields"]["last_name"], "B••••");
    assert_eq!(r.json["fields"]["phone"], "••••56");
    let r = w.read(&w.a.token, json!({"immatriculation": w.a.immatriculation, "purpose": "self_service", "full": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["fields"]["cin"], "ZZ123456");
    assert_eq!(r.json["fields"]["rib"], "999001000001205000534903");
    assert_eq!(r.json["fields"]["phone"], "+212600123456");
    assert_eq!(r.json["fields"]["last_name_ar"], "بناني");
    assert_eq!(r.json["person_id"], w.a.id.as_str());
    let r = w.read(&w.a.token, json!({"person_id": w.a.id, "purpose": "self_service", "fields": ["birth_date"], "full": true})).await;
    assert_eq!(r.json["fields"], json!({"birth_date": "1988-04-12"}));
}

async fn insured_cannot_read_or_change_another_insured(b: Backend) {
    let w = World::new(b).await;
    for body in [
        json!({"cin": w.b.cin, "purpose": "self_service"}),
        json!({"immatriculation": w.b.immatriculation, "purpose": "self_service", "full": true}),
        json!({"person_id": w.b.id, "purpose": "self_service", "fields": ["last_name"]}),
        json!({"cin": w.b.cin, "purpose": "case_review"}),
        json!({"cin": w.b.cin, "purpose": "payroll"}),
    ] {
        let r = w.read(&w.a.token, body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (403, Some("access_denied")),
            "{body}"
        );
        assert!(!r.json.to_string().contains("ALAOUI") && !r.json.to_string().contains("ZY654321"));
    }
    let r =
        w.t.post(
            "/api/v1/persons/contact",
            &w.a.token,
            json!({"person_id": w.b.id, "phone": "0600000061"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // Their own phone takes a step-up (a development token has none); their e-mail does not.
    let r =
        w.t.post(
            "/api/v1/persons/contact",
            &w.a.token,
            json!({"person_id": w.a.id, "phone": "0600000061"}),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "step_up_required");
    let r =
        w.t.post(
            "/api/v1/persons/contact",
            &w.a.token,
            json!({"person_id": w.a.id, "email": "nouvelle@example.org"}),
        )
        .await;
    assert_eq!(r.status, 204);
    // B's phone did not change, nor A's; A's e-mail did.
    let rb = w.read(&w.b.token, json!({"person_id": w.b.id, "purpose": "self_service", "fields": ["phone"], "full": true})).await;
    assert_eq!(rb.json["fields"]["phone"], "+212600123456");
    let ra = w.read(&w.a.token, json!({"person_id": w.a.id, "purpose": "self_service", "fields": ["phone", "email"], "full": true})).await;
    assert_eq!(ra.json["fields"]["phone"], "+212600123456");
    assert_eq!(ra.json["fields"]["email"], "nouvelle@example.org");
    // Registry commands are for agents.
    let r =
        w.t.post(
            "/api/v1/persons",
            &w.a.token,
            crate::person_json("ZK1", "X", "Y"),
        )
        .await;
    assert_eq!(r.status, 403);
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.a.token,
            json!({"immatriculation": w.b.immatriculation, "reason": "curious"}),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn employer_reads_only_names_and_numbers_of_its_own_employees(b: Backend) {
    let w = World::new(b).await;
    let names = json!(["last_name", "first_name", "immatriculation"]);
    let r = w
        .read(
            &w.employer1.token,
            json!({"cin": w.a.cin, "purpose": "payroll", "fields": names, "full": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json["fields"],
        json!({"last_name": "BENNANI", "first_name": "Salma", "immatriculation": w.a.immatriculation})
    );
    // By default: only the employer-visible fields, masked.
    let r = w
        .read(
            &w.employer1.token,
            json!({"immatriculation": w.b.immatriculation, "purpose": "payroll"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let keys: std::collections::BTreeSet<&str> = r.json["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "immatriculation",
            "last_name",
            "first_name",
            "last_name_ar",
            "first_name_ar"
        ]
        .into()
    );
    for field in ["cin", "rib", "phone", "birth_date", "address", "email"] {
        let r = w
            .read(
                &w.employer1.token,
                json!({"cin": w.a.cin, "purpose": "payroll", "fields": [field]}),
            )
            .await;
        assert_eq!(r.status, 403, "{field}");
    }
}

async fn employer_cannot_touch_another_employers_employee(b: Backend) {
    let w = World::new(b).await;
    for (who, subject) in [
        (&w.employer1.token, &w.c),
        (&w.employer2.token, &w.a),
        (&w.employer1.token, &w.d),
    ] {
        let r = w
            .read(
                who,
                json!({"cin": subject.cin, "purpose": "payroll", "fields": ["last_name"]}),
            )
            .await;
        assert_eq!(r.status, 403);
        let r =
            w.t.post(
                "/api/v1/persons/contact",
                who,
                json!({"person_id": subject.id, "address": "ailleurs"}),
            )
            .await;
        assert_eq!(r.status, 403);
    }
    // An employer user only claims an employee, for its own employer, by number, CIN and name
    // together; the person confirms. A number alone (they are allocated in sequence) is not
    // enough, and no answer says whether the number, CIN or name is anyone's.
    let link = |affiliate: &str, immatriculation: &str, cin: Option<&str>, name: &str| {
        let mut body = json!({"affiliate_number": affiliate, "immatriculation": immatriculation, "name": name, "start_date": "2025-01-01"});
        if let Some(c) = cin {
            body["cin"] = json!(c);
        }
        body
    };
    let e1 = w.employer1.affiliate_number.clone();
    let e2 = w.employer2.affiliate_number.clone();
    let r =
        w.t.post(
            "/api/v1/employments",
            &w.employer1.token,
            link(&e1, &w.d.immatriculation, None, "FASSI KENZA"),
        )
        .await;
    assert_eq!(
        (
            r.status.as_u16(),
            r.json["error"]["details"][0]["field"].as_str()
        ),
        (422, Some("cin"))
    );
    for body in [
        link(&e2, &w.d.immatriculation, Some(&w.d.cin), "FASSI KENZA"),
        link(
            "9999999",
            &w.d.immatriculation,
            Some(&w.d.cin),
            "FASSI KENZA",
        ),
    ] {
        let r =
            w.t.post("/api/v1/employments", &w.employer1.token, body.clone())
                .await;
        assert_eq!(r.status, 403, "not its employer: {body}");
    }
    let mut answers = Vec::new();
    for body in [
        link(&e1, &w.d.immatriculation, Some(&w.c.cin), "FASSI KENZA"),
        link(&e1, "199999999", Some(&w.d.cin), "FASSI KENZA"),
        link(&e1, &w.d.immatriculation, Some(&w.d.cin), "FASSI OMAR"),
        link(&e1, &w.d.immatriculation, Some(&w.d.cin), "Fassi  Kenza"),
    ] {
        let r =
            w.t.post("/api/v1/employments", &w.employer1.token, body.clone())
                .await;
        assert_eq!(r.status, 202, "{body}");
        answers.push(r.json.to_string());
    }
    answers.dedup();
    assert_eq!(answers, vec![r#"{"status":"pending"}"#.to_string()]);
    let r = w
        .read(
            &w.employer1.token,
            json!({"cin": w.d.cin, "purpose": "payroll", "fields": ["last_name"]}),
        )
        .await;
    assert_eq!(r.status, 403, "a claim is no link");
    // D sees one claim (the one whose number, CIN and name are D's, written either way), and
    // confirms it; the others wait for an agent as requests.
    let r =
        w.t.post("/api/v1/employments/claims", &w.d.token, json!({}))
            .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let claims = r.json["claims"].as_array().unwrap().clone();
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0]["affiliate_number"], json!(e1));
    assert_eq!(
        claims[0]["declared_cin"],
        Value::Null,
        "D knows their own CIN"
    );
    let id = claims[0]["claim_id"].as_str().unwrap().to_string();
    // Someone else's claim is the same 404 as none.
    for (who, claim) in [(&w.a.token, id.as_str()), (&w.d.token, "987654321")] {
        let r =
            w.t.post(
                "/api/v1/employments/claims/decide",
                who,
                json!({"claim_id": claim, "decision": "confirm"}),
            )
            .await;
        assert_eq!(r.status, 404, "{:?}", r.json);
    }
    let r =
        w.t.post(
            "/api/v1/employments/claims/decide",
            &w.d.token,
            json!({"claim_id": id, "decision": "confirm"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["state"], "confirmed");
    let r = w
        .read(
            &w.employer1.token,
            json!({"cin": w.d.cin, "purpose": "payroll", "fields": ["last_name"], "full": true}),
        )
        .await;
    assert_eq!(r.json["fields"]["last_name"], "FASSI");
    let r =
        w.t.post(
            "/api/v1/employments/claims/decide",
            &w.d.token,
            json!({"claim_id": id, "decision": "refuse"}),
        )
        .await;
    assert_eq!(r.status, 404, "decided once");
    // A link starting in the future gives no access today.
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.agent,
            json!({"immatriculation": w.a.immatriculation, "reason": "second employer"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = w
        .t
        .post(
            "/api/v1/employments",
            &w.agent,
            json!({"affiliate_number": w.employer2.affiliate_number, "immatriculation": w.a.immatriculation, "start_date": "2030-01-01"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = w
        .read(
            &w.employer2.token,
            json!({"cin": w.a.cin, "purpose": "payroll", "fields": ["last_name"]}),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn agent_needs_a_case_for_full_values(b: Backend) {
    let w = World::new(b).await;
    let r = w
        .read(&w.agent, json!({"cin": w.b.cin, "purpose": "registration"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["fields"]["cin"], "••••4321");
    let r = w
        .read(
            &w.agent,
            json!({"cin": w.b.cin, "purpose": "registration", "full": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = w
        .read(
            &w.agent,
            json!({"cin": w.b.cin, "purpose": "case_review", "full": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.agent,
            json!({"immatriculation": w.b.immatriculation, "reason": "AMO claim 2026-118"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let r = w
        .read(
            &w.agent,
            json!({"cin": w.b.cin, "purpose": "case_review", "full": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["fields"]["cin"], "ZY654321");
    // The case is about B only; and another agent has no case.
    let r = w
        .read(
            &w.agent,
            json!({"cin": w.a.cin, "purpose": "case_review", "full": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    let (_, other) =
        w.t.login("agent-2", domain::Role::Agent, kernel::Binding::None)
            .await;
    let r = w
        .read(
            &other,
            json!({"cin": w.b.cin, "purpose": "case_review", "full": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    // The agent with the case may update contact data; without one, not.
    let r =
        w.t.post(
            "/api/v1/persons/contact",
            &w.agent,
            json!({"cin": w.b.cin, "email": "y@example.net"}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r =
        w.t.post(
            "/api/v1/persons/contact",
            &other,
            json!({"cin": w.b.cin, "email": "z@example.net"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // The case's reason is stored encrypted.
    let reasons = w.t.raw_blobs("SELECT reason FROM cases").await;
    assert_eq!(
        reasons.len(),
        4,
        "the world's three (to link employees) and this one"
    );
    assert!(
        reasons
            .iter()
            .all(|r| !String::from_utf8_lossy(r).contains("AMO claim"))
    );
    // A case opens full reads for 30 days, then no more.
    w.t.clock.advance_seconds(31 * 86_400);
    let (_, agent) =
        w.t.login("agent-1", domain::Role::Agent, kernel::Binding::None)
            .await;
    let r = w
        .read(
            &agent,
            json!({"cin": w.b.cin, "purpose": "case_review", "full": true}),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn security_officer_reads_no_personal_data(b: Backend) {
    let w = World::new(b).await;
    for purpose in ["self_service", "payroll", "case_review", "registration"] {
        let r = w
            .read(&w.officer, json!({"cin": w.a.cin, "purpose": purpose}))
            .await;
        assert_eq!(r.status, 403, "{purpose}");
    }
    // Registry commands are refused, and the refusal is audited.
    let before = w.t.audit_count().await;
    let r =
        w.t.post(
            "/api/v1/persons",
            &w.officer,
            crate::person_json("ZK1", "X", "Y"),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(w.t.audit_count().await, before + 1);
    let events =
        w.t.app
            .kernel()
            .store()
            .audit_events(0, 1_000_000)
            .await
            .unwrap();
    let (_, e) = events.last().unwrap();
    assert_eq!(
        (e.action.as_str(), e.outcome.as_str()),
        ("immatriculate", "deny:role_has_no_access")
    );
}

async fn every_read_and_every_refusal_is_audited_before_the_answer(b: Backend) {
    let w = World::new(b).await;
    let store = w.t.app.kernel().store().clone();
    let before = store.count_audit().await.unwrap();
    let last_seq = store
        .audit_events(0, 1_000_000)
        .await
        .unwrap()
        .last()
        .map(|(s, _)| *s)
        .unwrap();
    let calls = [
        (
            &w.a.token,
            json!({"cin": w.a.cin, "purpose": "self_service"}),
            200,
            "allow",
            "read",
        ),
        (
            &w.a.token,
            json!({"cin": w.a.cin, "purpose": "self_service", "full": true}),
            200,
            "allow",
            "reveal",
        ),
        (
            &w.a.token,
            json!({"cin": w.b.cin, "purpose": "self_service"}),
            403,
            "deny:not_self",
            "read",
        ),
        (
            &w.employer1.token,
            json!({"cin": w.a.cin, "purpose": "payroll", "fields": ["rib"]}),
            403,
            "deny:field_not_allowed",
            "read",
        ),
        (
            &w.officer,
            json!({"cin": w.a.cin, "purpose": "case_review"}),
            403,
            "deny:role_has_no_access",
            "read",
        ),
        (
            &w.agent,
            json!({"cin": "ZZ1", "purpose": "registration"}),
            404,
            "not_found",
            "read",
        ),
        (
            &w.a.token,
            json!({"cin": "ZZ1", "purpose": "self_service"}),
            403,
            "not_found",
            "read",
        ),
    ];
    for (i, (token, body, status, outcome, action)) in calls.iter().enumerate() {
        let r = w.read(token, body.clone()).await;
        assert_eq!(r.status.as_u16(), *status, "{body}");
        let events = store.audit_events(last_seq, 100).await.unwrap();
        assert_eq!(events.len(), i + 1, "one event per call");
        let (_, e) = events.last().unwrap();
        assert_eq!(
            (e.outcome.as_str(), e.action.as_str()),
            (*outcome, *action),
            "{body}"
        );
        assert_eq!(e.request_id, r.headers["x-request-id"].to_str().unwrap());
        // The event names the subject by pseudonym only.
        let text = format!("{e:?}");
        assert!(
            !text.contains("ZZ123456")
                && !text.contains(&w.a.immatriculation)
                && !text.contains("BENNANI")
        );
        // The calls above ask either for the RIB alone or for every field.
        let expected_fields = if body.get("fields").is_some() {
            vec![domain::PersonField::Rib]
        } else {
            domain::PersonField::ALL.to_vec()
        };
        assert_eq!(
            domain::PersonField::from_bits(e.fields),
            expected_fields,
            "{body}"
        );
        if *outcome != "not_found" {
            assert_eq!(e.subject.as_ref().map(Vec::len), Some(16));
        }
    }
    assert_eq!(
        store.count_audit().await.unwrap(),
        before + calls.len() as i64
    );
    // Audit rows cannot be changed or removed, on either backend (the refusal is the
    // triggers', not a missing table: the audit file is attached on SQLite).
    for sql in [
        "UPDATE audit_events SET outcome = 'allow'",
        "DELETE FROM audit_events",
    ] {
        let e = w.t.raw_audit(sql).await.unwrap_err();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    if b == Backend::Postgres {
        let e = w.t.raw_audit("TRUNCATE audit_events").await.unwrap_err();
        assert!(e.contains("append-only"), "{e}");
        // And the application's own role lacks the right altogether (even were the triggers
        // dropped): it may add to the audit log and the ledger, never change or delete.
        let app = sqlx::PgPool::connect(&w.t.url).await.unwrap();
        for sql in [
            "UPDATE audit_events SET outcome = 'allow'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "DELETE FROM audit_leaves",
            "UPDATE audit_checkpoints SET size = 0",
            "UPDATE ledger_postings SET amount = 0",
            "UPDATE ledger_accounts SET name = 'bank'",
            "DELETE FROM ledger_entries",
            "DELETE FROM declarations",
            "UPDATE declarations SET gross = 0",
            "UPDATE declaration_line_blocks SET period = 0",
            "DROP TRIGGER audit_events_no_update ON audit_events",
        ] {
            let e = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&app)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("permission denied") || e.contains("must be owner"),
                "{sql}: {e}"
            );
        }
    }
    assert_eq!(
        store.count_audit().await.unwrap(),
        before + calls.len() as i64
    );
}

async fn unknown_and_forbidden_persons_look_the_same_to_non_agents(b: Backend) {
    let w = World::new(b).await;
    for token in [&w.a.token, &w.employer1.token] {
        let purpose = if token == &w.a.token {
            "self_service"
        } else {
            "payroll"
        };
        let known = w
            .read(
                token,
                json!({"cin": w.c.cin, "purpose": purpose, "fields": ["last_name"]}),
            )
            .await;
        let unknown = w
            .read(
                token,
                json!({"cin": "QQ424242", "purpose": purpose, "fields": ["last_name"]}),
            )
            .await;
        assert_eq!(known.status, unknown.status);
        assert_eq!(known.json.to_string(), unknown.json.to_string());
    }
}
