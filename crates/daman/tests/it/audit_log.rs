//! The verifiable audit log: sealing into signed checkpoints and the witness file, proofs an
//! auditor checks with the public key alone, and tampering with the database (an edited,
//! deleted or reordered entry; a truncated and rebuilt log) named by `verify`.

use crate::World;
use app::{AppError, VerifyReport};
use audit::merkle::leaf_hash;
use audit::{Checkpoint, Event, Frontier, InclusionProof, NoteSigner, NoteVerifier};
use serde_json::json;
use store::Backend;

crate::on_both_backends!(
    the_log_is_sealed_verified_and_proven,
    an_edited_deleted_or_reordered_entry_is_named,
    a_truncated_and_rebuilt_log_is_caught_by_the_witness,
);

fn verifier(w: &World) -> NoteVerifier {
    NoteVerifier::parse(&w.t.app.audit_verifier_key()).unwrap()
}

async fn verify(w: &World) -> VerifyReport {
    w.t.app
        .verify_audit(w.t.app.audit_witness(), &verifier(w))
        .await
        .unwrap()
}

/// What an attacker with database access runs first: the triggers refuse changes otherwise.
fn drop_triggers(b: Backend) -> String {
    let mut sql = String::new();
    for t in ["audit_events", "audit_leaves", "audit_checkpoints"] {
        match b {
            Backend::Sqlite => sql.push_str(&format!(
                "DROP TRIGGER audit.{t}_no_update; DROP TRIGGER audit.{t}_no_delete; "
            )),
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
    let events = app.store().audit_events(0, 1_000_000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());

    let first = app.checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(first.size, n);
    assert_eq!(app.checkpoint_audit().await.unwrap(), None, "nothing new");
    let r = w
        .read(&w.agent, json!({"cin": w.a.cin, "purpose": "registration"}))
        .await;
    assert_eq!(r.status, 200, "the registering agent reads: audited");
    let second = app.checkpoint_audit().await.unwrap().unwrap();
    assert_eq!(second.size, n + 1);

    // The witness file holds both checkpoints, signed by the log's key, in order.
    let v = verifier(&w);
    let text = std::fs::read_to_string(app.audit_witness()).unwrap();
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
    // A witness file under another key is refused outright.
    let other = NoteSigner::new("daman.test/audit", &[9; 32]).unwrap();
    let other = NoteVerifier::parse(&other.verifier_key()).unwrap();
    assert!(matches!(
        app.verify_audit(app.audit_witness(), &other).await,
        Err(AppError::Witness(_))
    ));

    // Proofs check with the verifier key alone, and carry no personal data.
    for entry in [1, n / 2, n + 1] {
        let text = app.prove_audit(entry).await.unwrap().to_text();
        let proof = InclusionProof::parse(&text).unwrap();
        let (e, c) = proof.check(&v).unwrap();
        assert_eq!((e.seq, c.size), (entry, n + 1));
        let (_, row) = &app.store().audit_events(entry as i64 - 1, 1).await.unwrap()[0];
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
        app.prove_audit(n + 2).await,
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
        let n = w.t.app.checkpoint_audit().await.unwrap().unwrap().size;
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
                let (_, row) = &w.t.app.store().audit_events(4, 1).await.unwrap()[0];
                let edited = Event {
                    seq: 5,
                    at: row.at,
                    principal_id: row.principal_id,
                    role: row.role.clone(),
                    action: row.action.clone(),
                    purpose: row.purpose.clone(),
                    subject: row.subject.clone(),
                    fields: row.fields,
                    detail: Some("nothing to see".into()),
                    outcome: row.outcome.clone(),
                    request_id: row.request_id.clone(),
                };
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
                assert_eq!((p.first_entry, p.last_entry), (5, 5), "{tamper:?}");
                assert!(p.what.starts_with("changed"), "{tamper:?}: {p}");
            }
            Tamper::Delete => {
                assert_eq!((p.first_entry, p.last_entry), (5, 5));
                assert!(p.what.starts_with("missing"), "{p}");
                assert!(p.to_string().starts_with("entry 5: missing"), "{p}");
                // Sealing goes on from the tree as it was signed (entry 5 is still in it), and
                // the hole stays visible.
                w.read(&w.agent, json!({"cin": w.a.cin, "purpose": "registration"}))
                    .await;
                let c = w.t.app.checkpoint_audit().await.unwrap().unwrap();
                assert_eq!(c.size, n + 1);
                let p = verify(&w).await.problem.unwrap();
                assert_eq!((p.first_entry, p.what.starts_with("missing")), (5, true));
            }
            Tamper::EditWithItsLeaf => {
                assert_eq!((p.first_entry, p.last_entry), (1, n), "{p}");
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
    let n = w.t.app.checkpoint_audit().await.unwrap().unwrap().size;
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
    assert_eq!((p.first_entry, p.last_entry), (1, n), "{p}");
    assert!(p.what.contains("witness"), "{p}");
    // And daman refuses to sign anything over it.
    assert!(matches!(
        w.t.app.checkpoint_audit().await,
        Err(AppError::Witness(_))
    ));
    let text = std::fs::read_to_string(w.t.app.audit_witness()).unwrap();
    assert_eq!(audit::note::split_notes(&text).len(), 1, "nothing appended");
}
