//! Entrants, tried as an attacker holding one employer user's credential: lines that name
//! registered persons by number only, by CIN only, by number with a wrong CIN, or by their real
//! number, CIN and name link nobody and reveal nothing; rejections say the same whether an
//! identifier is anyone's; the person (or an agent within a case) decides
//! (docs/declarations.md, "Entrants").

use crate::declarations::{
    accepted, bytes_of, counts, declaration_from, employer, errors, import, insured, preetabli,
    preetabli_of,
};
use crate::{World, on_both_backends};
use domain::{Centimes, Lang};
use ebds::{Entrant, Form};
use serde_json::{Value, json};
use store::Backend;

on_both_backends!(
    entrants_link_nobody_until_the_person_or_an_agent_decides,
    a_rejection_says_the_same_for_a_registered_and_an_unregistered_identifier,
    an_employers_reads_name_each_person_they_show,
);

pub(crate) fn entrant(number: Option<&str>, cin: &str, name: &str, days: u8) -> Entrant {
    Entrant {
        immatriculation: number.map(|n| n.parse().unwrap()),
        name: name.into(),
        cin: cin.into(),
        days,
        gross: Centimes(250_000),
        capped: Centimes(250_000),
    }
}

/// The immatriculation numbers employer 1's préétabli of `period` lists (issued now).
async fn listed(w: &World, period: &str) -> Vec<String> {
    let (_, who, number) = employer(w, 1).await;
    let period = domain::Period::parse(period).unwrap();
    w.t.app
        .contributions()
        .issue_preetablis(kernel::Registrar::operator(), period, &[], "t")
        .await
        .unwrap();
    let mut l: Vec<String> = preetabli_of(w, who, number, period)
        .await
        .employees
        .iter()
        .map(|e| format!("{:09}", e.immatriculation))
        .collect();
    l.sort();
    l
}

async fn claims(w: &World, token: &str) -> Vec<Value> {
    let r =
        w.t.post("/api/v1/employments/claims", token, json!({}))
            .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["claims"].as_array().unwrap().clone()
}

async fn decide(w: &World, token: &str, body: Value) -> testkit::Reply {
    w.t.post("/api/v1/employments/claims/decide", token, body)
        .await
}

async fn entrants_link_nobody_until_the_person_or_an_agent_decides(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    let before = counts(&w).await;
    // D works for nobody; C works for employer 2. The main declaration: D by CIN alone, an
    // invented CIN, an unregistered number with an invented CIN, D's number with a wrong CIN.
    // The complementary one: C's real number, CIN and name.
    let mut main = declaration_from(&pre);
    main.entrants = vec![
        entrant(None, &w.d.cin, "FASSI KENZA", 10),
        entrant(None, "QE999001", "INVENTE UN", 1),
        entrant(Some("199999999"), "QE999002", "INVENTE DEUX", 0),
        entrant(Some(&w.d.immatriculation), "QE999003", "FASSI KENZA", 0),
    ];
    let s = accepted(import(&w, who, &bytes_of(&main)).await);
    assert_eq!((s.lines, s.entrants), (2, 4));
    let mut e1 = declaration_from(&pre);
    e1.form = Form::Complementary(1);
    e1.lines.clear();
    e1.entrants = vec![entrant(
        Some(&w.c.immatriculation),
        &w.c.cin,
        "TAZI OMAR",
        0,
    )];
    accepted(import(&w, who, &bytes_of(&e1)).await);
    // Nobody created, nobody linked: five claims.
    let after = counts(&w).await;
    assert_eq!(
        (after.persons, after.employments, after.claims),
        (before.persons, before.employments, before.claims + 5)
    );
    // The next préétabli lists employer 1's own employees only; the gate refuses the others;
    // their careers carry none of the attacker's lines.
    let own = {
        let mut v = vec![w.a.immatriculation.clone(), w.b.immatriculation.clone()];
        v.sort();
        v
    };
    assert_eq!(listed(&w, "202611").await, own);
    for p in [&w.c, &w.d] {
        let r = w
            .read(
                &w.employer1.token,
                json!({"cin": p.cin, "purpose": "payroll", "fields": ["last_name"]}),
            )
            .await;
        assert_eq!(r.status, 403, "{}", p.cin);
    }
    for (i, p) in [(2, &w.c), (3, &w.d)] {
        let who = insured(&w, i, &p.immatriculation).await;
        let career =
            w.t.app
                .contributions()
                .career(&who, None, "t")
                .await
                .unwrap();
        assert!(career.is_empty(), "{}: {career:?}", p.cin);
    }
    // C was named by number, CIN and name: C is told by SMS and sees the claim (D was not:
    // a CIN alone, or a wrong CIN, is a request for an agent). The notice is queued with the
    // claim, not sent while the file is imported; the sweeper sends it, once.
    // (Every person of the world has the same phone: one notice was sent, for C.)
    let notices = || -> Vec<String> {
        w.t.sms_texts("+212600123456")
            .into_iter()
            .filter(|t| t.contains("employeur"))
            .collect()
    };
    assert!(notices().is_empty(), "sent during the import");
    assert_eq!(w.t.app.registry().send_claim_notices().await.unwrap(), 1);
    assert_eq!(w.t.app.registry().send_claim_notices().await.unwrap(), 0);
    assert_eq!(notices().len(), 1, "{:?}", notices());
    let c_claims = claims(&w, &w.c.token).await;
    assert_eq!(c_claims.len(), 1, "{c_claims:?}");
    assert_eq!(
        c_claims[0]["affiliate_number"],
        json!(w.employer1.affiliate_number)
    );
    assert!(claims(&w, &w.d.token).await.is_empty());
    // The employer itself sees no claims; C refuses: still nobody linked.
    let r =
        w.t.post("/api/v1/employments/claims", &w.employer1.token, json!({}))
            .await;
    assert_eq!(r.status, 403);
    let r = decide(
        &w,
        &w.c.token,
        json!({"claim_id": c_claims[0]["claim_id"], "decision": "refuse"}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json["state"].as_str()),
        (200, Some("refused"))
    );
    assert_eq!(listed(&w, "202612").await, own);
    // The agent's queue: the four requests, with what was declared.
    let queue = claims(&w, &w.agent).await;
    let requests: Vec<(&str, &str)> = queue
        .iter()
        .filter(|c| c["kind"] == "request")
        .map(|c| {
            (
                c["declared_cin"].as_str().unwrap(),
                c["declared_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(requests.len(), 4, "{queue:?}");
    assert!(requests.contains(&(w.d.cin.as_str(), "FASSI KENZA")));
    let claim_of =
        |cin: &str| queue.iter().find(|c| c["declared_cin"] == cin).unwrap()["claim_id"].clone();
    // D's request, confirmed as D: only within a case on D.
    let as_d = json!({"claim_id": claim_of(&w.d.cin), "decision": "confirm", "immatriculation": w.d.immatriculation});
    let r = decide(&w, &w.agent, as_d.clone()).await;
    assert_eq!(r.status, 403, "no case on D: {:?}", r.json);
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.agent,
            json!({"immatriculation": w.d.immatriculation, "reason": "entrant request"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = decide(&w, &w.agent, as_d.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.json["state"].as_str()),
        (200, Some("confirmed"))
    );
    assert_eq!(decide(&w, &w.agent, as_d).await.status, 404, "decided once");
    // An invented CIN becomes a new person; a registered CIN cannot be immatriculated again.
    let r = decide(
        &w,
        &w.agent,
        json!({"claim_id": claim_of("QE999001"), "decision": "confirm"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["immatriculation"].as_str().unwrap().len(), 9);
    assert_eq!(counts(&w).await.persons, before.persons + 1);
    // D is employer 1's from the period: on the next préétabli, with the B04 line in D's career.
    let l = listed(&w, "202701").await;
    assert!(l.contains(&w.d.immatriculation), "{l:?}");
    assert!(!l.contains(&w.c.immatriculation), "{l:?}");
    let d = insured(&w, 3, &w.d.immatriculation).await;
    let career = w.t.app.contributions().career(&d, None, "t").await.unwrap();
    assert_eq!(
        career
            .iter()
            .map(|l| (l.record.as_str(), l.days, l.affiliate_number.as_str()))
            .collect::<Vec<_>>(),
        vec![("B04", 10, w.employer1.affiliate_number.as_str())]
    );
}

async fn a_rejection_says_the_same_for_a_registered_and_an_unregistered_identifier(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    // The same file twice but for one identifier: C's (registered, employer 2's) or nobody's.
    let file = |known: &str, entrant_number: &str| {
        let mut d = declaration_from(&pre);
        d.lines[1].employee.immatriculation = known.parse().unwrap();
        d.entrants = vec![entrant(Some(entrant_number), "", "X", 1)];
        d
    };
    let registered = errors(
        import(
            &w,
            who,
            &bytes_of(&file(&w.c.immatriculation, &w.d.immatriculation)),
        )
        .await,
    );
    let unregistered = errors(import(&w, who, &bytes_of(&file("199999999", "199999998"))).await);
    assert_eq!(registered, unregistered);
    assert_eq!(
        registered.iter().map(|e| e.3.as_str()).collect::<Vec<_>>(),
        [
            "not_in_preetabli",
            "missing_employee",
            "entrant_cin_required"
        ]
    );
    // Kept, and read again, alike but for the value found (what the employer sent).
    let kept =
        w.t.app
            .contributions()
            .declaration_rejections(who, number, Lang::Fr, "t")
            .await
            .unwrap();
    let mut shown: Vec<Vec<(u64, String, String, String)>> = kept
        .iter()
        .map(|r| {
            r.errors
                .iter()
                .map(|e| (e.line, e.field.clone(), e.code.clone(), e.message.clone()))
                .collect()
        })
        .collect();
    shown.dedup();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0][0].3.contains("ne correspond pas au registre"),
        "{:?}",
        shown[0][0]
    );
}

/// An employer's own reads that name persons (its préétabli, a declaration's file, lines and
/// receipt, its kept rejections) go through the gate: each person named is in the breach report
/// and in their "who read my data", and is spent from the employer's budget.
async fn an_employers_reads_name_each_person_they_show(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await; // downloaded by employer 1's user: A and B
    let (user, who, number) = employer(&w, 1).await;
    let s = accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    let c = w.t.app.contributions();
    c.declaration_file(who, s.declaration_id, "t")
        .await
        .unwrap();
    c.declaration_lines(who, s.declaration_id, "t")
        .await
        .unwrap();
    c.declaration_receipt(who, s.declaration_id, "t")
        .await
        .unwrap();
    // A rejected file quoting C's number (employer 2's employee) on a B02 line, and leaving B
    // out (which its errors say, with B's number).
    let mut bad = declaration_from(&pre);
    bad.lines[1].employee.immatriculation = w.c.immatriculation.parse().unwrap();
    errors(import(&w, who, &bytes_of(&bad)).await);
    c.declaration_rejections(who, number, Lang::Fr, "t")
        .await
        .unwrap();
    let r = w
        .t
        .post(
            "/api/v1/breach/report",
            &w.officer,
            json!({"principals": [user.id.to_string()], "from": "2020-01-01T00:00:00Z", "to": "2040-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let k = w.t.app.kernel();
    let pseudonym = |p: &crate::Person| k.person_pseudonym(p.id.parse().unwrap());
    let mut named: Vec<(String, i64)> = r.json["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["subject"].as_str().unwrap().to_string(),
                p["reads"].as_i64().unwrap(),
            )
        })
        .collect();
    named.sort();
    // A and B: the préétabli, the file, the lines, the receipt; B and C: the rejection.
    let mut want = vec![
        (pseudonym(&w.a), 4),
        (pseudonym(&w.b), 5),
        (pseudonym(&w.c), 1),
    ];
    want.sort();
    assert_eq!(named, want);
    // A's "who read my data" shows the four reads.
    let r = w.t.post("/api/v1/me/accesses", &w.a.token, json!({})).await;
    let actions: Vec<&str> = r.json["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "download_preetabli",
        "export_declaration",
        "read_declaration_lines",
        "read_declaration_receipt",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    // Three persons spent from employer 1's budget.
    k.share_read_budgets().await.unwrap();
    let day = testkit::TEST_NOW.0.div_euclid(3_600_000_000 * 24);
    assert_eq!(k.store().reads_of(user.id, day).await.unwrap().len(), 3);
}
