//! Renumbering a database whose persons have serial ids (migration 0025, docs/architecture.md
//! "What a dump reveals").

use crate::declarations::{
    accepted, bytes_of, declaration_from, employer, import, insured, period, preetabli,
    preetabli_of,
};
use crate::{World, on_both_backends};
use serde_json::json;
use store::{Backend, PERSON_ID_BASE, PERSON_REFERENCES};
use testkit::TestApp;

on_both_backends!(
    serial_ids_are_renumbered_and_every_read_answers_the_same,
    every_reference_to_a_person_is_renumbered
);

/// Every value of the dump's integer columns that is a person's id, by column.
async fn person_ids_in_dump(t: &TestApp) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (table, column, values) in t.raw_dump().await {
        let is_person = (table == "persons" && column == "id")
            || PERSON_REFERENCES
                .iter()
                .any(|(t, c)| *t == table && *c == column);
        if is_person {
            for v in values.iter().flatten() {
                out.push((format!("{table}.{column}"), v.parse().unwrap()));
            }
        }
    }
    out
}

/// The employer's kept rejections, person A's career and the employer's préétabli, as read.
async fn reads(w: &World, who: kernel::Declarant, number: u32) -> (String, String, String) {
    let c = w.t.app.contributions();
    let a = insured(w, 0, &w.a.immatriculation).await;
    (
        format!(
            "{:?}",
            c.declaration_rejections(who, number, domain::Lang::Fr, "t")
                .await
                .unwrap()
        ),
        format!("{:?}", c.career(&a, None, "t").await.unwrap()),
        format!("{:?}", preetabli_of(w, who, number, period()).await),
    )
}

/// A database made before ids were keyed (marked as migration 0025 marks one), with persons,
/// employments, cases, accounts, a préétabli, a declaration's blocks and a kept rejection:
/// after the renumbering no serial is left anywhere, each person's record, career, préétabli,
/// declaration file and rejections read the same, and new persons get keyed ids.
async fn serial_ids_are_renumbered_and_every_read_answers_the_same(b: Backend) {
    let t = TestApp::start(b).await;
    t.app
        .kernel()
        .store()
        .mark_person_ids_serial()
        .await
        .unwrap();
    let w = World::on(t).await;
    // The old scheme: a row id is the number minus 100 000 000.
    for p in [&w.a, &w.b, &w.c, &w.d] {
        let id: i64 = p.id.parse().unwrap();
        assert_eq!(id + 100_000_000, p.immatriculation.parse::<i64>().unwrap());
    }
    let pre = preetabli(&w).await;
    // The declaration has two entrants besides A and B: claims, whose lines its blocks hold
    // under the claims' own (negative) ids, which no renumbering touches.
    let mut d = declaration_from(&pre);
    d.entrants = vec![
        crate::entrants::entrant(None, "QE999001", "INVENTE UN", 1),
        crate::entrants::entrant(Some(&w.d.immatriculation), &w.d.cin, "FASSI KENZA", 2),
    ];
    let bytes = bytes_of(&d);
    let (_, who, number) = employer(&w, 1).await;
    let declared = accepted(import(&w, who, &bytes).await);
    // A rejected file quoting C's number (employer 2's employee) on a line, which its kept
    // errors name.
    let mut bad = declaration_from(&pre);
    bad.lines[1].employee.immatriculation = w.c.immatriculation.parse().unwrap();
    assert!(matches!(
        import(&w, who, &bytes_of(&bad)).await,
        contributions::ImportOutcome::Rejected { .. }
    ));
    // Employer 2's préétabli as one issued before migration 0024: no person list, its
    // employees' ids only inside its sealed value.
    assert_eq!(
        w.t.raw_execute(
            "UPDATE preetablis SET persons = NULL WHERE employer_id <> \
             (SELECT employer_id FROM preetablis ORDER BY id LIMIT 1)",
            &[]
        )
        .await
        .unwrap(),
        1
    );
    let everything = json!({"immatriculation": w.a.immatriculation, "purpose": "self_service", "fields": ["immatriculation", "cin", "last_name", "first_name", "last_name_ar", "first_name_ar", "birth_date", "phone", "email", "address", "rib", "children"], "full": true});
    let record = w.read(&w.a.token, everything.clone()).await;
    assert_eq!(record.status, 200, "{:?}", record.json);
    let before = reads(&w, who, number).await;
    assert!(
        before.1.contains("800000") || before.1.contains("8000"),
        "{}",
        before.1
    );
    let serials = person_ids_in_dump(&w.t).await;
    assert!(serials.iter().all(|(_, id)| *id < PERSON_ID_BASE));
    for c in [
        "persons.id",
        "employments.person_id",
        "cases.person_id",
        "principals.person_id",
    ] {
        assert!(serials.iter().any(|(col, _)| col == c), "{c} holds persons");
    }

    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |p: kernel::RenumberProgress| seen.lock().unwrap().push(p);
    // As the database's owner, as `daman migrate` does: a declaration's blocks are rewritten.
    let owner = w.t.as_owner().await;
    assert!(owner.renumber_persons(&progress, "t").await.unwrap());
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen.first(),
        Some(&kernel::RenumberProgress::Begin {
            what: "persons",
            total: 4
        })
    );
    assert!(seen.contains(&kernel::RenumberProgress::Begin {
        what: "declarations",
        total: 1
    }));

    // No serial is left: not as a row id, not in a reference, not in a block's directory or
    // a préétabli's or a rejection's list of persons.
    let keyed = person_ids_in_dump(&w.t).await;
    assert_eq!(keyed.len(), serials.len());
    assert!(
        keyed.iter().all(|(_, id)| *id >= PERSON_ID_BASE),
        "{keyed:?}"
    );
    for sql in [
        "SELECT data FROM declaration_line_blocks",
        "SELECT persons FROM preetablis WHERE persons IS NOT NULL",
        "SELECT persons FROM declaration_rejections WHERE persons IS NOT NULL",
    ] {
        let blobs = w.t.raw_blobs(sql).await;
        assert!(!blobs.is_empty(), "{sql}");
        for blob in blobs {
            let ids = if sql.contains("line_blocks") {
                store::blocks::persons(&blob).unwrap()
            } else {
                store::persons_of_bytes(&blob).unwrap()
            };
            assert!(!ids.is_empty(), "{sql}");
            // (A claim's line keeps its negative id.)
            assert!(
                ids.iter().all(|id| *id >= PERSON_ID_BASE || *id < 0),
                "{sql}: {ids:?}"
            );
        }
    }
    let claim_lines =
        w.t.raw_blobs("SELECT data FROM declaration_line_blocks")
            .await
            .iter()
            .flat_map(|b| store::blocks::persons(b).unwrap())
            .filter(|id| *id < 0)
            .count();
    assert_eq!(claim_lines, 2, "the entrants' lines are kept");
    assert!(!w.t.app.kernel().person_ids_serial().await.unwrap());

    // Every read answers as before: the person's own record (their session still works, their
    // account moved with them), their career, the employer's préétabli, its declaration file
    // byte for byte, and its kept rejections.
    // (The serving node loads principals again after a second: in production the
    // renumbering runs before anything serves.)
    w.t.clock.advance_seconds(kernel::PRINCIPAL_TTL_SECONDS + 1);
    let again = w.read(&w.a.token, everything).await;
    assert_eq!(again.status, 200, "{:?}", again.json);
    assert_eq!(again.json["fields"], record.json["fields"]);
    let after = reads(&w, who, number).await;
    assert_eq!(after, before);
    assert_eq!(
        w.t.app
            .contributions()
            .declaration_file(who, declared.declaration_id, "t")
            .await
            .unwrap(),
        bytes
    );
    // Employer 2's préétabli (no person list) knows C under the new id: C's declaration
    // against it is accepted, and the line is in C's career.
    let (_, who2, _) = employer(&w, 2).await;
    let pre2 = preetabli_of(
        &w,
        who2,
        w.employer2.affiliate_number.parse().unwrap(),
        period(),
    )
    .await;
    accepted(import(&w, who2, &bytes_of(&declaration_from(&pre2))).await);
    let c = insured(&w, 2, &w.c.immatriculation).await;
    let career = w.t.app.contributions().career(&c, None, "t").await.unwrap();
    assert_eq!(career.len(), 1, "{career:?}");
    // The employer's next préétabli lists its employees under their new ids.
    let next = crate::declarations::next_preetabli(&w, who, number).await;
    assert_eq!(next.employees.len(), 2);

    // Nothing is left to do, and new persons are keyed.
    assert!(!owner.renumber_persons(&|_| {}, "t").await.unwrap());
    let r =
        w.t.post(
            "/api/v1/persons",
            &w.agent,
            crate::person_json("ZV1234", "BERRADA", "Nadia"),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id: i64 = r.json["person_id"].as_str().unwrap().parse().unwrap();
    assert!(id >= PERSON_ID_BASE);
    // The operator's acts are in the audit log.
    for action in ["renumber_persons", "renumber_declared", "person_ids_keyed"] {
        assert_eq!(w.t.audit_events_of(action).await.len(), 1, "{action}");
    }
}

/// [`PERSON_REFERENCES`] is every foreign key to `persons`: a new table that names persons
/// cannot be left out of a renumbering.
async fn every_reference_to_a_person_is_renumbered(b: Backend) {
    let t = TestApp::start(b).await;
    let mut fks: Vec<String> = t
        .app
        .kernel()
        .store()
        .constraints()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.starts_with("fk ") && c.ends_with("-> persons(id)"))
        .collect();
    fks.sort();
    let mut listed: Vec<String> = PERSON_REFERENCES
        .iter()
        .map(|(t, c)| format!("fk {t}({c}) -> persons(id)"))
        .collect();
    listed.sort();
    assert_eq!(fks, listed);
}

/// `daman migrate` on a PostgreSQL database marked serial, as the application's role alone:
/// the persons move (that role may), the blocks of declaration lines cannot (it may not
/// rewrite a declaration), the command fails and the mark stays. Run again with the owner's
/// URL, it goes on where it stopped and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daman_migrate_renumbers_as_the_owner_and_resumes() {
    let t = TestApp::start(Backend::Postgres).await;
    t.app
        .kernel()
        .store()
        .mark_person_ids_serial()
        .await
        .unwrap();
    let w = World::on(t).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    w.t.app.kernel().checkpoint_audit().await.unwrap();
    let run = |args: &[&str], owner: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_daman"));
        c.args(args)
            .env("DAMAN_DATA_DIR", w.t.dir.path())
            .env("DAMAN_DATABASE_URL", &w.t.url)
            .env("DAMAN_AUDIT_ORIGIN", "daman.test/audit")
            .env("DAMAN_LOG", "warn");
        if owner {
            c.env("DAMAN_DATABASE_OWNER_URL", &w.t.owner_url);
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let serial_blocks = || async {
        w.t.raw_blobs("SELECT data FROM declaration_line_blocks")
            .await
            .iter()
            .filter(|b| store::blocks::persons(b).unwrap()[0] < PERSON_ID_BASE)
            .count()
    };
    assert_eq!(serial_blocks().await, 1);
    let (code, err) = run(&["migrate"], false);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("renumbering"), "{err}");
    assert!(err.contains("DAMAN_DATABASE_OWNER_URL"), "{err}");
    assert!(
        person_ids_in_dump(&w.t)
            .await
            .iter()
            .all(|(_, id)| *id >= PERSON_ID_BASE)
    );
    assert_eq!(serial_blocks().await, 1, "the blocks wait for the owner");
    assert!(w.t.app.kernel().person_ids_serial().await.unwrap());
    // An incident's commands still work meanwhile, and say what is left.
    let (code, err) = run(&["lockdown"], false);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not all renumbered"), "{err}");
    let (code, err) = run(&["migrate"], true);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serial_blocks().await, 0);
    assert!(!w.t.app.kernel().person_ids_serial().await.unwrap());
    let (code, err) = run(&["migrate"], true);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("renumbering"), "{err}");
}
