//! The verifiable audit log: sealing into signed checkpoints and the witness file, proofs an
//! auditor checks with the public key alone, and tampering with the database (an edited,
//! deleted or reordered entry; a truncated and rebuilt log) named by `verify`.

use crate::World;
use audit::merkle::leaf_hash;
use audit::{Checkpoint, Event, Frontier, InclusionProof, NoteSigner, NoteVerifier};
use kernel::{AppError, VerifyReport};
use serde_json::json;
use store::Backend;

crate::on_both_backends!(
    the_log_is_sealed_verified_and_proven,
    an_edited_deleted_or_reordered_entry_is_named,
    a_truncated_and_rebuilt_log_is_caught_by_the_witness,
    daman_signs_only_what_extends_what_it_signed,
);

fn verifier(w: &World) -> NoteVerifier {
    NoteVerifier::parse(&w.t.app.kernel().audit_verifier_key()).unwrap()
}

async fn verify(w: &World) -> VerifyReport {
    w.t.app
        .kernel()
        .verify_audit(w.t.app.kernel().audit_witness(), &verifier(w))
        .await
        .unwrap()
}

/// What an attacker with database access runs first: the triggers refuse changes otherwise.
fn drop_triggers(b: Backend) -> String {
    let mut sql = String::new();
    for t in ["audit_events", "audit_leaves", "audit_checkpoints"] {
        match b {
            Backend::Sqlite => {
                let schema = if t == "audit_events" { "audit" } else { "tree" };
                sql.push_str(&format!(
                    "DROP TRIGGER {schema}.{t}_no_update; DROP TRIGGER {schema}.{t}_no_delete; "
                ))
            }
            Backend::Postgres => sql.push_str(&format!(
                "DROP TRIGGER {t}_no_update ON {t}; DROP TRIGGER {t}_no_truncate ON {t}; "
            )),
        }
    }
    sql
}

fn blob(b: Backend, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    match b {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

async fn the_log_is_sealed_verified_and_proven(b: Backend) {
    let w = World::new(b).await;
    let app = &w.t.app;
    let n = w.t.audit_count().await as u64;
    assert!(n > 10, "the world's setup is audited: {n}");
    // Numbered densely from 1, in commit order.
    let events = app
        .kernel()
        .store()
        .audit_events(0, 1_000_000)
        .await
        .unwrap();
    let seqs: Vec<i64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());

    let first = app.kernel().checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(first.size, n);
    assert_eq!(
        app.kernel().checkpoint_audit().await.unwrap(),
        None,
        "nothing new"
    );
    let r = w
        .read(&w.agent, json!({"cin": w.a.cin, "purpose": "registration"}))
        .await;
    assert_eq!(r.status, 200, "the registering agent reads: audited");
    let second = app.kernel().checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(second.size, n + 1);

    // The witness file holds both checkpoints, signed by the log's key, in order.
    let v = verifier(&w);
    let text = std::fs::read_to_string(app.kernel().audit_witness()).unwrap();
    let notes = audit::note::split_notes(&text);
    assert_eq!(notes.len(), 2);
    assert_eq!(Checkpoint::open(notes[0], &v).unwrap().size, n);
    assert_eq!(Checkpoint::open(notes[1], &v).unwrap().root, second.root);
    assert_eq!(notes[1], second.note);

    let r = verify(&w).await;
    assert_eq!(
        r,
        VerifyReport {
            entries: n + 1,
            db_checkpoints: 2,
            witness_checkpoints: 2,
            problem: None
        }
    );
    // A witness file under another key does not verify: the witness file itself is named.
    let other = NoteSigner::new("daman.test/audit", &[9; 32]).unwrap();
    let other = NoteVerifier::parse(&other.verifier_key()).unwrap();
    let p = app
        .kernel()
        .verify_audit(app.kernel().audit_witness(), &other)
        .await
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(p.entries, None);
    assert!(p.what.starts_with("note 1 of the witness file"), "{p}");

    // Proofs check with the verifier key alone, and carry no personal data.
    for entry in [1, n / 2, n + 1] {
        let text = app.kernel().prove_audit(entry).await.unwrap().to_text();
        let proof = InclusionProof::parse(&text).unwrap();
        let (e, c) = proof.check(&v).unwrap();
        assert_eq!((e.seq, c.size), (entry, n + 1));
        let (_, row) = &app
            .kernel()
            .store()
            .audit_events(entry as i64 - 1, 1)
            .await
            .unwrap()[0];
        assert_eq!((&e.action, &e.outcome), (&row.action, &row.outcome));
        for secret in [&w.a.cin, &w.b.cin, "BENNANI", "Salma", &w.a.immatriculation] {
            assert!(!text.contains(secret), "{secret} in a proof");
            assert!(
                !proof
                    .entry
                    .windows(secret.len())
                    .any(|x| x == secret.as_bytes())
            );
        }
        // The same proof for another entry's content does not hold.
        let mut forged = e.clone();
        forged.outcome = "allow-forged".into();
        let q = InclusionProof {
            entry: forged.encode(),
            ..proof
        };
        assert!(q.check(&v).is_err());
    }
    assert!(matches!(
        app.kernel().prove_audit(n + 2).await,
        Err(AppError::NotFound(_))
    ));
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    Edit,
    Delete,
    Reorder,
    EditWithItsLeaf,
}

async fn an_edited_deleted_or_reordered_entry_is_named(b: Backend) {
    for tamper in [
        Tamper::Edit,
        Tamper::Delete,
        Tamper::Reorder,
        Tamper::EditWithItsLeaf,
    ] {
        let w = World::new(b).await;
        let n =
            w.t.app
                .kernel()
                .checkpoint_audit()
                .await
                .unwrap()
                .unwrap()
                .size;
        assert_eq!(verify(&w).await.problem, None);
        // Without dropping the triggers, the database refuses.
        for sql in [
            "UPDATE audit_events SET detail = 'x' WHERE seq = 5",
            "DELETE FROM audit_events WHERE seq = 5",
            "UPDATE audit_leaves SET hash = hash WHERE seq = 5",
            "DELETE FROM audit_checkpoints",
        ] {
            let e = w.t.raw_audit(sql).await.unwrap_err();
            assert!(e.contains("append-only"), "{sql}: {e}");
        }
        w.t.raw_audit(&drop_triggers(b)).await.unwrap();
        let sql = match tamper {
            Tamper::Edit => {
                "UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 5".into()
            }
            Tamper::Delete => "DELETE FROM audit_events WHERE seq = 5".into(),
            Tamper::Reorder => "UPDATE audit_events SET seq = -6 WHERE seq = 6; \
                                UPDATE audit_events SET seq = 6 WHERE seq = 5; \
                                UPDATE audit_events SET seq = 5 WHERE seq = -6"
                .into(),
            Tamper::EditWithItsLeaf => {
                // The edit and a leaf recomputed to match it: only the checkpoints catch it.
                let (_, row) = &w.t.app.kernel().store().audit_events(4, 1).await.unwrap()[0];
                let mut edited = kernel::audit_event(5, row);
                edited.detail = Some("nothing to see".into());
                format!(
                    "UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 5; \
                     UPDATE audit_leaves SET hash = {} WHERE seq = 5",
                    blob(b, &edited.leaf_hash())
                )
            }
        };
        assert_eq!(w.t.raw_audit(&sql).await.map(|_| ()), Ok(()), "{tamper:?}");
        let p = verify(&w).await.problem.expect("tampering found");
        match tamper {
            Tamper::Edit | Tamper::Reorder => {
                assert_eq!(p.entries, Some((5, 5)), "{tamper:?}");
                assert!(p.what.starts_with("changed"), "{tamper:?}: {p}");
            }
            Tamper::Delete => {
                assert_eq!(p.entries, Some((5, 5)));
                assert!(p.what.starts_with("missing"), "{p}");
                assert!(p.to_string().starts_with("entry 5: missing"), "{p}");
                // Sealing goes on from the tree as it was signed (entry 5 is still in it), and
                // the hole stays visible.
                w.read(&w.agent, json!({"cin": w.a.cin, "purpose": "registration"}))
                    .await;
                let c = w.t.app.kernel().checkpoint_audit().await.unwrap().unwrap();
                assert_eq!(c.size, n + 1);
                let p = verify(&w).await.problem.unwrap();
                assert_eq!(
                    (p.entries, p.what.starts_with("missing")),
                    (Some((5, 5)), true)
                );
            }
            Tamper::EditWithItsLeaf => {
                assert_eq!(p.entries, Some((1, n)), "{p}");
                assert!(p.what.contains("checkpoint"), "{p}");
                assert!(
                    p.to_string()
                        .starts_with(&format!("an entry between 1 and {n}"))
                );
            }
        }
    }
}

async fn a_truncated_and_rebuilt_log_is_caught_by_the_witness(b: Backend) {
    let w = World::new(b).await;
    let n =
        w.t.app
            .kernel()
            .checkpoint_audit()
            .await
            .unwrap()
            .unwrap()
            .size;
    // The attacker empties the log and writes a plausible one of their own, longer than the
    // real one, with its leaves and a checkpoint signed by a key of their own.
    let mut sql = drop_triggers(b);
    sql.push_str(
        "DELETE FROM audit_checkpoints; DELETE FROM audit_leaves; DELETE FROM audit_events; ",
    );
    let mut frontier = Frontier::new();
    for seq in 1..=n + 2 {
        let e = Event {
            seq,
            at: 1_795_428_000,
            principal_id: None,
            role: "agent".into(),
            action: "register_person".into(),
            purpose: None,
            subject: None,
            fields: 0,
            detail: None,
            outcome: "allow".into(),
            request_id: format!("fake-{seq}"),
        };
        let leaf = leaf_hash(&e.encode());
        frontier.push(leaf);
        sql.push_str(&format!(
            "INSERT INTO audit_events (seq, at, role, action, fields, outcome, request_id) \
             VALUES ({seq}, {}, 'agent', 'register_person', 0, 'allow', 'fake-{seq}'); \
             INSERT INTO audit_leaves (seq, hash) VALUES ({seq}, {}); ",
            e.at,
            blob(b, &leaf)
        ));
    }
    let forger = NoteSigner::new("daman.test/audit", &[7; 32]).unwrap();
    let c = Checkpoint {
        origin: "daman.test/audit".into(),
        size: frontier.size(),
        root: frontier.root(),
    };
    sql.push_str(&format!(
        "INSERT INTO audit_checkpoints (size, root, frontier, note, at) VALUES ({}, {}, {}, '{}', 0)",
        c.size,
        blob(b, &c.root),
        blob(b, &frontier.to_bytes()),
        forger.sign(&c.body()).unwrap()
    ));
    w.t.raw_audit(&sql).await.unwrap();
    assert_eq!(w.t.audit_count().await as u64, n + 2);

    // The witness file's checkpoint of the first n entries no longer matches.
    let p = verify(&w).await.problem.expect("the rebuilt log is caught");
    assert_eq!(p.entries, Some((1, n)), "{p}");
    assert!(p.what.contains("witness"), "{p}");
    // And daman refuses to sign anything over it.
    assert!(matches!(
        w.t.app.kernel().checkpoint_audit().await,
        Err(AppError::Witness(_))
    ));
    let text = std::fs::read_to_string(w.t.app.kernel().audit_witness()).unwrap();
    assert_eq!(audit::note::split_notes(&text).len(), 1, "nothing appended");
}

async fn daman_signs_only_what_extends_what_it_signed(b: Backend) {
    let refused = |r: Result<Option<kernel::CheckpointInfo>, AppError>, why: &str| match r {
        Err(AppError::Witness(m)) => assert!(m.contains(why), "{m}"),
        other => panic!("expected a refusal ({why}), got {other:?}"),
    };
    let w = World::new(b).await;
    let app = &w.t.app;
    let n = app.kernel().checkpoint_audit().await.unwrap().unwrap().size;
    let more = || async {
        w.read(&w.agent, json!({"cin": w.a.cin, "purpose": "registration"}))
            .await;
    };

    // Insert-only access (the triggers intact): a checkpoint row of the attacker's is not
    // signed by the key, and nothing is sealed over it.
    w.t.raw_audit(&format!(
        "INSERT INTO audit_checkpoints (size, root, frontier, note, at) VALUES ({}, {}, {}, 'forged', 0)",
        n + 5,
        blob(b, &[0; 32]),
        blob(b, &Frontier::new().to_bytes())
    ))
    .await
    .unwrap();
    more().await;
    refused(
        app.kernel().checkpoint_audit().await,
        "not signed by the log key",
    );
    w.t.raw_audit(&drop_triggers(b)).await.unwrap();
    w.t.raw_audit(&format!(
        "DELETE FROM audit_checkpoints WHERE size = {}",
        n + 5
    ))
    .await
    .unwrap();

    // The right edge of the last checkpoint swapped for a forged tree's of the same size: the
    // next checkpoint would extend the forgery. Refused, and verify names it.
    let mut forged = Frontier::new();
    for i in 0..n {
        forged.push(leaf_hash(&i.to_be_bytes()));
    }
    let set_frontier = |f: &[u8]| {
        format!(
            "UPDATE audit_checkpoints SET frontier = {} WHERE size = {n}",
            blob(b, f)
        )
    };
    w.t.raw_audit(&set_frontier(&forged.to_bytes()))
        .await
        .unwrap();
    refused(
        app.kernel().checkpoint_audit().await,
        "does not match its signed note",
    );
    let p = verify(&w).await.problem.unwrap();
    assert_eq!(p.entries, Some((1, n)), "{p}");
    assert!(p.what.contains("checkpoint of"), "{p}");
    // Put back, it seals again.
    let events = app
        .kernel()
        .store()
        .audit_events(0, n as i64)
        .await
        .unwrap();
    let mut real = Frontier::new();
    for (seq, row) in &events {
        real.push(kernel::audit_event(*seq, row).leaf_hash());
    }
    w.t.raw_audit(&set_frontier(&real.to_bytes()))
        .await
        .unwrap();
    let sealed = app.kernel().checkpoint_audit().await.unwrap().unwrap();
    assert!(sealed.size > n);
    assert_eq!(verify(&w).await.problem, None);

    // The witness file gone (an unmounted disk, a deletion): nothing is sealed, and no new
    // file is started behind the operator's back.
    let witness = app.kernel().audit_witness().to_path_buf();
    let aside = witness.with_extension("lost");
    std::fs::rename(&witness, &aside).unwrap();
    more().await;
    refused(app.kernel().checkpoint_audit().await, "missing or empty");
    assert!(!witness.exists());
    // The operator starts a new one after the log verifies from the database alone.
    let restarted = app.kernel().restart_witness().await.unwrap();
    assert_eq!(restarted.size, sealed.size);
    assert!(matches!(
        app.kernel().restart_witness().await,
        Err(AppError::Witness(_))
    ));
    let again = app.kernel().checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(again.size, sealed.size + 1);
    // The old file, found again, still checks the whole log.
    let r = app
        .kernel()
        .verify_audit(&aside, &verifier(&w))
        .await
        .unwrap();
    assert_eq!(r.problem, None);

    // A write cut short at the end of the witness file: sealing stops, verify says where.
    let mut text = std::fs::read_to_string(&witness).unwrap();
    text.push_str("daman.test/audit\n99");
    std::fs::write(&witness, &text).unwrap();
    more().await;
    refused(app.kernel().checkpoint_audit().await, "does not verify");
    let p = verify(&w).await.problem.unwrap();
    assert_eq!(p.entries, None);
    assert!(p.what.starts_with("note 3 of the witness file"), "{p}");
}
