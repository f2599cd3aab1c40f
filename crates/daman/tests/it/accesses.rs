//! "Who read my data": an insured person's own accesses, from the audit log.

use crate::{World, on_both_backends};
use domain::Role;
use kernel::Binding;
use serde_json::{Value, json};
use store::Backend;

on_both_backends!(
    an_insured_person_sees_who_read_their_record,
    contact_data_for_notification_needs_a_second_officer
);

/// (role, outcome) of each audit event of `action`.
async fn outcomes(t: &testkit::TestApp, action: &str) -> Vec<String> {
    let events = t.audit_events_of(action).await;
    events
        .iter()
        .map(|e| format!("{} {}", e.role, e.outcome))
        .collect()
}

async fn page(w: &World, token: &str, body: Value) -> testkit::Reply {
    w.t.post("/api/v1/me/accesses", token, body).await
}

/// (action, role, unit, purpose, fields, outcome, by_you) of an access.
fn summary(a: &Value) -> (String, String, String, String, String, String, bool) {
    let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
    (
        s("action"),
        s("role"),
        s("unit"),
        s("purpose"),
        a["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(","),
        s("outcome"),
        a["by_you"].as_bool().unwrap(),
    )
}

async fn an_insured_person_sees_who_read_their_record(b: Backend) {
    let w = World::new(b).await;
    // A's record is read by an agent, by A's employer, refused to another employer, and read
    // by A; B's record is read by the agent too (not A's business).
    let agent = w
        .read(
            &w.agent,
            json!({"cin": w.a.cin, "purpose": "registration", "fields": ["last_name", "cin"]}),
        )
        .await;
    assert_eq!(agent.status, 200, "{:?}", agent.json);
    let e1 = w
        .read(
            &w.employer1.token,
            json!({"immatriculation": w.a.immatriculation, "purpose": "payroll"}),
        )
        .await;
    assert_eq!(e1.status, 200, "{:?}", e1.json);
    // What came so far is sealed (found through audit_subjects); the rest is still the log's
    // unsealed tail: the list joins both.
    w.t.app.kernel().checkpoint_audit().await.unwrap();
    let e2 = w
        .read(
            &w.employer2.token,
            json!({"immatriculation": w.a.immatriculation, "purpose": "payroll"}),
        )
        .await;
    assert_eq!(e2.status, 403, "{:?}", e2.json);
    let own = w.read(&w.a.token, json!({"person_id": w.a.id, "purpose": "self_service", "fields": ["rib"], "full": true})).await;
    assert_eq!(own.status, 200);
    let other = w
        .read(&w.agent, json!({"cin": w.b.cin, "purpose": "registration"}))
        .await;
    assert_eq!(other.status, 200);

    let r = page(&w, &w.a.token, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let list = r.json["accesses"].as_array().unwrap().clone();
    assert!(r.json.get("next_before").is_none(), "one page holds it all");
    let s = |role: &str, unit: &str, purpose: &str, fields: &str, outcome: &str, by_you| {
        (
            "read".to_string(),
            role.to_string(),
            unit.to_string(),
            purpose.to_string(),
            fields.to_string(),
            outcome.to_string(),
            by_you,
        )
    };
    let employer_fields = "immatriculation,last_name,first_name,last_name_ar,first_name_ar";
    let newest: Vec<_> = list.iter().take(5).map(summary).collect();
    assert_eq!(
        newest,
        [
            (
                "read_access_log".into(),
                "insured".into(),
                "-".into(),
                "-".into(),
                "".into(),
                "allowed".into(),
                true
            ),
            (
                "reveal".into(),
                "insured".into(),
                "-".into(),
                "self_service".into(),
                "rib".into(),
                "allowed".into(),
                true
            ),
            s(
                "employer_user",
                "SOUSS AGRO SA",
                "payroll",
                employer_fields,
                "denied",
                false
            ),
            s(
                "employer_user",
                "ATLAS TEXTILE SARL",
                "payroll",
                employer_fields,
                "allowed",
                false
            ),
            s(
                "agent",
                "-",
                "registration",
                "cin,last_name",
                "allowed",
                false
            ),
        ]
    );
    // Exactly the events that name A, newest first; none about B; no reader's name.
    let a_id: i64 = w.a.id.parse().unwrap();
    let pseudonym = vault::unhex(&w.t.app.kernel().person_pseudonym(a_id)).unwrap();
    let mut want: Vec<u64> =
        w.t.app
            .kernel()
            .store()
            .audit_events(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, e)| e.subject.as_deref() == Some(&pseudonym[..]))
            .map(|(seq, _)| seq as u64)
            .collect();
    want.reverse();
    let got: Vec<u64> = list.iter().map(|a| a["entry"].as_u64().unwrap()).collect();
    assert_eq!(got, want);
    assert!(list.len() > 5, "the registration of A is listed too");
    assert!(list.iter().all(|a| a.get("reader").is_none()));
    assert!(!r.json.to_string().contains("agent-1"));

    // Pages: two at a time, each continuing where the last stopped, add up to the whole list.
    let mut paged = Vec::new();
    let mut before: Option<u64> = list.first().map(|a| a["entry"].as_u64().unwrap() + 1);
    while let Some(b) = before {
        let r = page(&w, &w.a.token, json!({"before": b, "limit": 2})).await;
        let items = r.json["accesses"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|a| a["entry"].as_u64().unwrap()));
        before = r.json["next_before"].as_u64();
    }
    assert_eq!(paged, got);

    // Only an insured person, for themself: an agent, an employer are refused (and audited).
    for token in [&w.agent, &w.employer1.token] {
        let r = page(&w, token, json!({})).await;
        assert_eq!(r.status, 403, "{:?}", r.json);
        assert_eq!(r.json["error"]["code"], "access_denied");
    }
    let r = page(&w, &w.a.token, json!({"person_id": w.b.id})).await;
    assert_eq!(r.status, 422, "no other person can be named: {:?}", r.json);
    assert_eq!(r.json["error"]["code"], "bad_request");
}

async fn contact_data_for_notification_needs_a_second_officer(b: Backend) {
    let w = World::new(b).await;
    let (agent, _) = w.t.login("agent-1", Role::Agent, Binding::None).await;
    let (_, officer2) =
        w.t.login("officer-2", Role::SecurityOfficer, Binding::None)
            .await;
    // The agent reads A and B: the breach report on the agent lists exactly them.
    for cin in [&w.a.cin, &w.b.cin] {
        let r = w
            .read(&w.agent, json!({"cin": cin, "purpose": "registration"}))
            .await;
        assert_eq!(r.status, 200);
    }
    // The question is about a window that is over (the reads were at 10:00).
    w.t.clock.advance_seconds(40 * 60);
    let question = json!({"principals": [agent.id.to_string()], "from": "2026-11-01", "to": "2026-11-23T10:30:00Z"});
    let report =
        w.t.post("/api/v1/breach/report", &w.officer, question.clone())
            .await;
    let mut exposed: Vec<String> = report.json["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["subject"].as_str().unwrap().to_string())
        .collect();
    exposed.sort();
    assert_eq!(exposed.len(), 2);

    // An officer asks (about a window that is over); only another officer may approve, and
    // repeats the question; only the asker receives, once.
    let request = "/api/v1/breach/contacts/request";
    let r = w.t.post(request, &w.agent, question.clone()).await;
    assert_eq!(r.status, 403, "an agent may not ask");
    let future =
        json!({"principals": [agent.id.to_string()], "from": "2026-11-01", "to": "2026-11-24"});
    let r = w.t.post(request, &w.officer, future).await;
    assert_eq!(r.status, 422, "a window not over: {:?}", r.json);
    assert_eq!(r.json["error"]["details"][0]["rule"], "past_window");
    let r = w.t.post(request, &w.officer, question.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let release = json!({"release": r.json["release"].as_str().unwrap()});
    let approval = |q: &Value| {
        let mut a = q.clone();
        a["release"] = release["release"].clone();
        a
    };
    let r =
        w.t.post("/api/v1/breach/contacts", &w.officer, release.clone())
            .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("second")
    );
    let approve = "/api/v1/breach/contacts/approve";
    for (token, who) in [(&w.officer, "the asker"), (&w.agent, "an agent")] {
        let r = w.t.post(approve, token, approval(&question)).await;
        assert_eq!(r.status, 403, "{who} may not approve");
    }
    let mut other = question.clone();
    other["from"] = json!("2026-01-01");
    let r = w.t.post(approve, &officer2, approval(&other)).await;
    assert_eq!(r.status, 409, "not the request's window: {:?}", r.json);
    let r = w.t.post(approve, &officer2, approval(&question)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["approved"], true);
    let r =
        w.t.post("/api/v1/breach/contacts", &officer2, release.clone())
            .await;
    assert_eq!(r.status, 403, "the approver does not receive the data");
    let r =
        w.t.post("/api/v1/breach/contacts", &w.officer, release.clone())
            .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let contacts = r.json["contacts"].as_array().unwrap();
    let mut subjects: Vec<String> = contacts
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_string())
        .collect();
    subjects.sort();
    assert_eq!(subjects, exposed, "exactly the persons of the report");
    for c in contacts {
        assert_eq!(c["email"], "salma@example.org");
        assert_eq!(c["address"], "N° 12, Rue Ibn Sina, Rabat");
        assert!(c["phone"].as_str().unwrap().ends_with("600123456"), "{c}");
        assert!(c.get("cin").is_none() && c.get("rib").is_none());
    }
    let r =
        w.t.post("/api/v1/breach/contacts", &w.officer, release.clone())
            .await;
    assert_eq!(r.status, 409, "released once");
    // A sees the notification read in who read my data.
    let r = page(&w, &w.a.token, json!({"limit": 3})).await;
    let notified = r.json["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["purpose"] == "breach_notification")
        .cloned()
        .unwrap();
    assert_eq!(
        summary(&notified),
        (
            "reveal".into(),
            "security_officer".into(),
            "-".into(),
            "breach_notification".into(),
            "phone,email,address".into(),
            "allowed".into(),
            false
        )
    );
    // Every step is in the audit log, the refused approval as a four-eyes refusal.
    assert_eq!(
        outcomes(&w.t, "contact_release_request").await,
        ["agent deny:role_has_no_access", "security_officer allow"]
    );
    assert_eq!(
        outcomes(&w.t, "contact_release_approve").await,
        [
            "security_officer deny:four_eyes",
            "agent deny:role_has_no_access",
            "security_officer allow"
        ]
    );
    assert_eq!(
        outcomes(&w.t, "contact_release").await,
        [
            "security_officer deny:role_has_no_access",
            "security_officer allow"
        ]
    );
    // An approval is good for 24 hours.
    let r = w.t.post(request, &w.officer, question.clone()).await;
    let release = json!({"release": r.json["release"].as_str().unwrap()});
    let mut a = question;
    a["release"] = release["release"].clone();
    let r = w.t.post(approve, &officer2, a).await;
    assert_eq!(r.status, 200);
    w.t.clock.advance_seconds(25 * 3600);
    let (_, officer) =
        w.t.login("officer-1", Role::SecurityOfficer, Binding::None)
            .await;
    let r = w.t.post("/api/v1/breach/contacts", &officer, release).await;
    assert_eq!(r.status, 409);
    assert!(r.json["error"]["message"].as_str().unwrap().contains("24"));
}
