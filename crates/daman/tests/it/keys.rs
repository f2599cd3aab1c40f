//! Data-key rotation while the application serves, and lockdown (docs/keys.md).

use crate::declarations::{
    accepted, bytes_of, declaration_from, employer, import, insured, preetabli,
};
use crate::login::{enrolled, login_sms, session_status};
use crate::{World, on_both_backends};
use domain::Role;
use kernel::Clash;
use kernel::{AppError, KeyProgress};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use store::Backend;
use testkit::TestApp;
use vault::Keyring;

on_both_backends!(
    rotation_re_encrypts_every_row_while_reads_go_on,
    re_encryption_never_overwrites_a_concurrent_change,
    lockdown_ends_sessions_by_role_then_all
);

/// The key id of every ciphertext in the database: each sealed column of each row (of a block
/// of declaration lines, its sealed part). Read straight from the database.
async fn key_ids(t: &TestApp) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for table in store::sealed_tables() {
        for c in &table.columns {
            let sql = format!("SELECT {c} FROM {} WHERE {c} IS NOT NULL", table.table);
            for blob in t.raw_blobs(&sql).await {
                let name = format!("{}.{c}", table.table);
                let sealed = if table.blocks {
                    store::blocks::sealed_part(&blob).unwrap().1
                } else {
                    &blob
                };
                out.push((name, Keyring::key_id_of(sealed).unwrap()));
            }
        }
    }
    out
}

async fn events(t: &TestApp, action: &str) -> Vec<String> {
    let events = t.audit_events_of(action).await;
    events
        .into_iter()
        .map(|e| format!("{} {}", e.role, e.detail.unwrap_or_default()))
        .collect()
}

async fn rotation_re_encrypts_every_row_while_reads_go_on(b: Backend) {
    let w = World::new(b).await;
    // Every kind of sealed row: persons (World), a préétabli and its lines, a declaration and
    // its blocks of lines.
    let pre = preetabli(&w).await;
    let bytes = bytes_of(&declaration_from(&pre));
    let (_, who, _) = employer(&w, 1).await;
    let declared = accepted(import(&w, who, &bytes).await);
    // A rejected file's errors, kept for the employer.
    let mut bad = bytes.clone();
    bad[2 * 262 + 111] = b'9';
    assert!(matches!(
        import(&w, who, &bad).await,
        contributions::ImportOutcome::Rejected { .. }
    ));
    let number: u32 = w.employer1.affiliate_number.parse().unwrap();
    let rejections = format!(
        "{:?}",
        w.t.app
            .contributions()
            .declaration_rejections(who, number, domain::Lang::Ar, "t")
            .await
            .unwrap()
    );
    let a = insured(&w, 0, &w.a.immatriculation).await;
    let career = format!(
        "{:?}",
        w.t.app.contributions().career(&a, None, "t").await.unwrap()
    );
    let everything = json!({"person_id": w.a.id, "purpose": "self_service", "fields": ["immatriculation", "cin", "last_name", "first_name", "last_name_ar", "first_name_ar", "birth_date", "phone", "email", "address", "rib", "children"], "full": true});
    let before = w.read(&w.a.token, everything.clone()).await;
    assert_eq!(before.status, 200, "{:?}", before.json);
    let old = key_ids(&w.t).await;
    assert!(old.iter().all(|(_, k)| *k == 1));
    let tables: std::collections::BTreeSet<&str> = old
        .iter()
        .map(|(n, _)| n.split('.').next().unwrap())
        .collect();
    for t in [
        "persons",
        "preetablis",
        "declarations",
        "declaration_line_blocks",
        "declaration_rejections",
    ] {
        assert!(tables.contains(t), "{t} has ciphertext to rotate");
    }

    // A second daman on the same database: the rotation waits for it at each step.
    let node2 = w.t.another_node().await;
    let done = AtomicBool::new(false);
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |p: KeyProgress| seen.lock().unwrap().push(p);
    let rotate = async {
        let r =
            w.t.app
                .kernel()
                .rotate_keys(false, Duration::from_secs(30), &progress, "t")
                .await;
        done.store(true, Ordering::SeqCst);
        r
    };
    // Meanwhile the person reads their record, again and again: every read succeeds, whole.
    let reads = async {
        let mut n = 0;
        while !done.load(Ordering::SeqCst) {
            let r = w.read(&w.a.token, everything.clone()).await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            assert_eq!(r.json["fields"], before.json["fields"]);
            n += 1;
        }
        n
    };
    let (rotation, reads) = tokio::join!(rotate, reads);
    let rotation = rotation.unwrap();
    assert!(reads > 0);
    assert_eq!((rotation.key, rotation.nodes, rotation.left), (2, 2, 0));
    // The first pass re-encrypted every row; the next found nothing left.
    assert_eq!(rotation.passes.len(), 2, "{rotation:?}");
    assert_eq!(rotation.passes[1].rekeyed, 0);
    assert_eq!(rotation.passes[0].lines, 2, "the declaration's two lines");
    let progress = seen.into_inner().unwrap();
    assert!(progress.contains(&KeyProgress::Waiting {
        what: "loaded the new key",
        nodes: 2,
        behind: 0
    }));
    assert!(matches!(progress.last(), Some(KeyProgress::Rows(_))));

    // Every ciphertext, of every column of every row, is under key 2 now; the same ones.
    let new = key_ids(&w.t).await;
    assert_eq!(new.len(), old.len());
    assert!(new.iter().all(|(_, k)| *k == 2), "{new:?}");
    assert_eq!(
        rotation.passes[0].rekeyed,
        {
            let mut rows = 0;
            for t in store::sealed_tables() {
                rows += w.t.app.kernel().store().count_rows(t.table).await.unwrap();
            }
            rows
        },
        "every sealed row had ciphertext to move"
    );
    // What it decrypts to did not change: on this node and on the other one.
    let after = w.read(&w.a.token, everything.clone()).await;
    assert_eq!(after.json["fields"], before.json["fields"]);
    assert_eq!(
        format!(
            "{:?}",
            node2.contributions().career(&a, None, "t").await.unwrap()
        ),
        career
    );
    assert_eq!(
        node2
            .contributions()
            .declaration_file(who, declared.declaration_id, "t")
            .await
            .unwrap(),
        bytes,
        "the declaration still comes back byte for byte"
    );
    assert_eq!(
        format!(
            "{:?}",
            node2
                .contributions()
                .declaration_rejections(who, number, domain::Lang::Ar, "t")
                .await
                .unwrap()
        ),
        rejections
    );
    // New writes use key 2 on both nodes.
    let r =
        w.t.post(
            "/api/v1/persons",
            &w.agent,
            crate::person_json("ZV1234", "BERRADA", "Nadia"),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(key_ids(&w.t).await.iter().all(|(_, k)| *k == 2));
    // Each step is in the audit log, as the operator's.
    assert_eq!(events(&w.t, "key_add").await, ["operator key=2"]);
    assert_eq!(
        events(&w.t, "key_primary").await,
        ["operator key=2 nodes=2"]
    );
    assert_eq!(
        events(&w.t, "key_rekey").await,
        [format!(
            "operator key=2 passes=2 rekeyed={} left=0",
            rotation.passes[0].rekeyed
        )]
    );
    // Declarations are still immutable: only a re-encryption to a newer key may touch them.
    for sql in [
        "UPDATE declarations SET header = header",
        "UPDATE declarations SET gross = gross + 1",
        "UPDATE declaration_line_blocks SET period = period + 1",
        "UPDATE declaration_line_blocks SET lines = lines + 1",
        // The same ciphertext again is not a re-encryption to the primary key.
        "UPDATE declaration_line_blocks SET data = data",
        "DELETE FROM declaration_line_blocks",
    ] {
        let e = w.t.raw_execute(sql, &[]).await.unwrap_err();
        assert!(e.contains("a declaration is immutable"), "{sql}: {e}");
    }

    if b == Backend::Postgres {
        // A header, or a block of lines, "re-encrypted" to a key that is not the primary one
        // is refused (the key id forged in place).
        for sql in [
            "UPDATE declarations SET header = overlay(header PLACING '\\x000000ff'::bytea FROM 2 FOR 4)",
            "UPDATE declaration_line_blocks SET data = overlay(data PLACING '\\x000000ff'::bytea FROM (7 + 16 * lines)::int FOR 4)",
        ] {
            let e = w.t.raw_execute(sql, &[]).await.unwrap_err();
            assert!(e.contains("a declaration is immutable"), "{sql}: {e}");
        }
    }

    // A node that does not load the new key stops the rotation before the key is primary
    // (this one reports as seen far in the future: always live).
    w.t.raw_execute(
        "INSERT INTO key_nodes (node, newest_key, primary_key, seen_at) VALUES ('ghost:1:00', 2, 2, $1)",
        &[4_000_000_000_000_000],
    )
    .await
    .unwrap();
    let e =
        w.t.app
            .kernel()
            .rotate_keys(false, Duration::from_millis(500), &|_| {}, "t")
            .await
            .unwrap_err();
    assert!(
        matches!(&e, AppError::Keys(m) if m.contains("ghost:1:00") && m.contains("have not loaded the new key")),
        "{e:?}"
    );
    let keys = w.t.app.kernel().key_list().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.id, k.primary, k.primary_since.is_some()))
            .collect::<Vec<_>>(),
        [(1, false, true), (2, true, true), (3, false, false)]
    );
    assert!(key_ids(&w.t).await.iter().all(|(_, k)| *k == 2));
    assert!(matches!(
        w.t.app
            .kernel()
            .rotate_keys(false, Duration::from_secs(5), &|_| {}, "t")
            .await,
        Err(AppError::Conflict(Clash::RotationUnfinished))
    ));
    // Once it is gone, the rotation is resumed to its end.
    w.t.raw_execute("DELETE FROM key_nodes WHERE node = 'ghost:1:00'", &[])
        .await
        .unwrap();
    let r =
        w.t.app
            .kernel()
            .rotate_keys(true, Duration::from_secs(30), &|_| {}, "t")
            .await
            .unwrap();
    assert_eq!((r.key, r.nodes, r.left), (3, 2, 0));
    assert!(key_ids(&w.t).await.iter().all(|(_, k)| *k == 3));
    let after = w.read(&w.a.token, everything).await;
    assert_eq!(after.json["fields"], before.json["fields"]);
}

/// The write-back of a re-encryption is a compare-and-set: a row a request changed between
/// the read and the write keeps the request's change, whole; the others take the new bytes.
async fn re_encryption_never_overwrites_a_concurrent_change(b: Backend) {
    let w = World::new(b).await;
    let store = w.t.app.kernel().store();
    let persons = store::sealed_tables()
        .into_iter()
        .find(|t| t.table == "persons")
        .unwrap();
    let rows = store.sealed_rows(&persons, None, 100).await.unwrap();
    assert_eq!(rows.len(), 4);
    // New "ciphertexts" (the store sees only bytes): each old one with a byte added.
    let new: Vec<store::Resealed> = rows
        .iter()
        .map(|r| {
            let values = r
                .values
                .iter()
                .map(|v| {
                    v.clone().map(|mut b| {
                        b.push(0);
                        b
                    })
                })
                .collect();
            (r.clone(), values)
        })
        .collect();
    // Meanwhile a request changes the first person's e-mail.
    let first = rows[0].key[0];
    w.t.raw_execute("UPDATE persons SET email = NULL WHERE id = $1", &[first])
        .await
        .unwrap();
    let written = store.replace_sealed(&persons, &new).await.unwrap();
    assert_eq!(written, 3);
    let after = store.sealed_rows(&persons, None, 100).await.unwrap();
    let email = persons.columns.iter().position(|c| *c == "email").unwrap();
    let mut kept = rows[0].values.clone();
    kept[email] = None;
    assert_eq!(
        after[0].values, kept,
        "the request's change, and nothing of the rewrite"
    );
    for k in 1..4 {
        assert_eq!(after[k].values, new[k].1);
    }
}

async fn lockdown_ends_sessions_by_role_then_all(b: Backend) {
    let t = TestApp::start(b).await;
    let phone = "+212600000301";
    enrolled(&t, "ZA301", phone).await;
    let one = login_sms(&t, "ZA301", phone).await;
    let two = login_sms(&t, "ZA301", phone).await;
    assert_eq!(session_status(&t, &one).await, 200);
    // Another role's lockdown leaves insured persons signed in.
    assert_eq!(
        t.app
            .kernel()
            .lockdown(Some(Role::Agent), "t")
            .await
            .unwrap(),
        0
    );
    assert_eq!(session_status(&t, &one).await, 200);
    // Their role's ends both sessions at once; signing in again works.
    assert_eq!(
        t.app
            .kernel()
            .lockdown(Some(Role::Insured), "t")
            .await
            .unwrap(),
        2
    );
    assert_eq!(session_status(&t, &one).await, 401);
    assert_eq!(session_status(&t, &two).await, 401);
    let three = login_sms(&t, "ZA301", phone).await;
    assert_eq!(session_status(&t, &three).await, 200);
    // Everyone's.
    assert_eq!(t.app.kernel().lockdown(None, "t").await.unwrap(), 1);
    assert_eq!(session_status(&t, &three).await, 401);
    assert_eq!(
        events(&t, "lockdown").await,
        [
            "operator role=agent sessions=0",
            "operator role=insured sessions=2",
            "operator role=all sessions=1"
        ]
    );
}
