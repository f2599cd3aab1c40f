//! "Who read my data": an insured person's own accesses, from the audit log.

use crate::{World, on_both_backends};
use serde_json::{Value, json};
use store::Backend;

on_both_backends!(an_insured_person_sees_who_read_their_record);

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
    let pseudonym = vault::unhex(&w.t.app.person_pseudonym(a_id)).unwrap();
    let mut want: Vec<u64> =
        w.t.app
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
