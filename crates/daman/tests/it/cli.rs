//! The command line: exit codes and messages that mean something.

use domain::{Branch, Centimes, Parameters};
use std::collections::BTreeMap;
use std::process::Command;
use store::Backend;

fn daman(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_daman"));
    c.args(args)
        .current_dir(dir)
        .env("DAMAN_DATA_DIR", dir.join("daman-data"))
        .env("DAMAN_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = daman(dir.path(), &["migrate"], &[("DAMAN_LISTN", "x")]);
    assert_eq!(code, 3, "unknown variable is a configuration error: {err}");
    assert!(err.contains("DAMAN_LISTN"));
    let (code, _, err) = daman(dir.path(), &["frobnicate"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = daman(dir.path(), &["migrate"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("migrations applied"));
    let (code, _, err) = daman(dir.path(), &["dev-token", "--role", "insured"], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--subject"));
    let (code, _, err) = daman(
        dir.path(),
        &["dev-token", "--role", "insured", "--subject", "ZZ1"],
        &[],
    );
    assert_eq!(code, 1, "no such person: {err}");
    assert!(!err.contains("ZZ1"), "the identifier is not echoed");
    let (code, out, _) = daman(
        dir.path(),
        &["dev-token", "--role", "agent", "--subject", "cli"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("dev1."));
    let (code, out, _) = daman(dir.path(), &["synth", "cins", "--count", "3"], &[]);
    assert_eq!((code, out.lines().count()), (0, 3));
}

crate::on_both_backends!(the_demo_month_from_the_command_line_totals_what_the_rate_table_says);

/// Each account's share of every line of these declaration files, rounded half up to the
/// centime per line and branch, from the dated rate table alone (not daman's code).
fn independent_accounts(files: &[std::path::PathBuf]) -> BTreeMap<String, i64> {
    let params = Parameters::morocco().unwrap();
    let mut accounts = BTreeMap::new();
    for f in files {
        let d = ebds::read_declaration(std::fs::read(f).unwrap().as_slice(), None).unwrap();
        let p = d.identity.period;
        let (rates, ceiling) = (params.rates_at(p).unwrap(), params.ceiling_at(p).unwrap().0);
        let gross = d.lines.iter().map(|l| l.gross.0);
        for g in gross.chain(d.entrants.iter().map(|e| e.gross.0)) {
            for b in Branch::ALL {
                let r = rates.rate(b);
                let base = if r.capped { g.min(ceiling) } else { g };
                for (side, bp) in [("employer", r.employer), ("employee", r.employee)] {
                    let share = (base * i64::from(bp) + 5_000) / 10_000;
                    *accounts
                        .entry(format!("contribution:{}:{side}", b.as_str()))
                        .or_insert(0) += share;
                }
            }
        }
    }
    accounts
}

/// The whole demo population (`daman demo`'s: 200 employers, 5 000 persons) declares a month
/// as real e-BDS files (`daman synth month`), imported with `daman ebds import` as the
/// benchmark runs it: every file accepted, and the shares daman prints and posts equal, to the
/// centime and for each branch, those computed here from the rate table. Imported again, every
/// file is a duplicate and nothing changes.
async fn the_demo_month_from_the_command_line_totals_what_the_rate_table_says(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut env: Vec<(&str, String)> = Vec::new();
    if b == Backend::Postgres {
        let (owner_url, _, url) = testkit::fresh_pg_with_role().await;
        env.push(("DAMAN_DATABASE_URL", url));
        env.push(("DAMAN_DATABASE_OWNER_URL", owner_url));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = |args: &[&str]| {
        let (code, out, err) = daman(d, args, &env);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    ok(&["load", "--quiet"]);
    ok(&["ebds", "preetabli", "--period", "202610", "--out", "pre"]);
    ok(&["synth", "month", "--preetablis", "pre", "--out", "ds"]);
    let mut files: Vec<_> = std::fs::read_dir(d.join("ds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let n = files.len();
    assert!(n > 150, "{n} files: one for each employer with employees");
    let want = independent_accounts(&files);
    let side = |s: &str| -> i64 {
        want.iter()
            .filter(|(a, _)| a.ends_with(s))
            .map(|(_, v)| v)
            .sum()
    };
    let (employer, employee) = (side(":employer"), side(":employee"));
    assert!(employer > 0 && employee > 0);
    let first = ok(&["ebds", "import", "ds", "--quiet"]);
    assert!(
        first.starts_with(&format!(
            "{n} files: {n} accepted, 0 duplicates, 0 rejected"
        )),
        "{first}"
    );
    assert!(
        first.trim_end().ends_with(&format!(
            "employer share {}, employee share {}, total {} MAD",
            Centimes(employer),
            Centimes(employee),
            Centimes(employer + employee)
        )),
        "{first}"
    );
    // The ledger: each branch holds what the table says; the employers owe the total.
    let check = ok(&["ebds", "check", "--period", "202610"]);
    let posted: BTreeMap<String, i64> = check
        .lines()
        .filter_map(|l| {
            let (account, amount) = l.split_once(' ')?;
            let centimes = amount.trim().replace('.', "").parse::<i64>().ok()?;
            Some((account.to_string(), centimes))
        })
        .collect();
    // (A branch's side with no rate, such as AMO solidarity for employees, has no account.)
    for (account, amount) in &want {
        assert_eq!(
            posted.get(account).copied().unwrap_or(0),
            -amount,
            "{account}"
        );
    }
    assert_eq!(want.values().filter(|v| **v > 0).count(), 9, "{want:?}");
    assert_eq!(posted.get("receivable"), Some(&(employer + employee)));
    assert_eq!(posted.get("contribution:declared"), Some(&0));
    assert!(check.contains("the ledger balances"), "{check}");
    let again = ok(&["ebds", "import", "ds", "--quiet"]);
    assert!(
        again.starts_with(&format!(
            "{n} files: 0 accepted, {n} duplicates, 0 rejected; 0 lines"
        )),
        "{again}"
    );
    assert_eq!(ok(&["ebds", "check", "--period", "202610"]), check);
}

#[test]
fn the_audit_log_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = daman(
        d,
        &["load", "--persons", "30", "--employers", "3", "--quiet"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    // The load sealed what it appended before it exited.
    let (code, out, err) = daman(d, &["audit", "checkpoint"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("nothing new: the last checkpoint holds"),
        "{out}"
    );
    assert!(
        out.contains("\n\n— localhost/audit "),
        "the signed note: {out}"
    );
    let witness = std::fs::read_to_string(d.join("daman-data/witness/audit-checkpoints")).unwrap();
    assert!(witness.starts_with("localhost/audit\n"), "{witness}");

    let (code, key, _) = daman(d, &["audit", "key"], &[]);
    assert_eq!(code, 0);
    let key = key.trim().to_string();
    assert!(key.starts_with("localhost/audit+"), "{key}");
    let (code, out, err) = daman(d, &["audit", "verify", "--key", &key], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the audit log verifies"), "{out}");

    // A proof, checked with the key alone; a forged one is refused with exit code 5.
    for n in ["1", "2"] {
        let (code, _, err) = daman(
            d,
            &[
                "audit",
                "prove",
                "--entry",
                n,
                "--out",
                &format!("p{n}.txt"),
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = daman(d, &["audit", "check-proof", "p1.txt", "--key", &key], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("entry 1 is in the log localhost/audit of "),
        "{out}"
    );
    let p1 = std::fs::read_to_string(d.join("p1.txt")).unwrap();
    let p2 = std::fs::read_to_string(d.join("p2.txt")).unwrap();
    let entry2 = p2.lines().nth(1).unwrap();
    let forged = p1.replacen(p1.lines().nth(1).unwrap(), entry2, 1);
    std::fs::write(d.join("forged.txt"), forged).unwrap();
    let (code, _, err) = daman(
        d,
        &["audit", "check-proof", "forged.txt", "--key", &key],
        &[],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("entry says it is number 2"), "{err}");
    let other = "localhost/audit+00000000+AQ==";
    let (code, _, err) = daman(d, &["audit", "check-proof", "p1.txt", "--key", other], &[]);
    assert_eq!(code, 3, "a malformed key is a usage error: {err}");
    let (code, _, err) = daman(d, &["audit", "prove", "--entry", "100000"], &[]);
    assert_eq!(code, 1, "{err}");
}

/// PostgreSQL with the schema's owner apart from the application's role: `daman migrate`
/// migrates through `database_owner_url` and grants the application's role only what it needs;
/// the application then works as that role, which cannot change or delete audit entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_as_the_owner_and_the_application_as_a_lesser_role() {
    let dir = tempfile::tempdir().unwrap();
    let (owner, _, app) = testkit::fresh_pg_with_role().await;
    let as_app = [("DAMAN_DATABASE_URL", app.as_str())];
    // The application's role alone cannot create the schema.
    let (code, _, err) = daman(dir.path(), &["migrate"], &as_app);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    let with_owner = [
        ("DAMAN_DATABASE_URL", app.as_str()),
        ("DAMAN_DATABASE_OWNER_URL", owner.as_str()),
    ];
    let (code, out, err) = daman(dir.path(), &["migrate"], &with_owner);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrations applied"), "{out}");
    // The application works as its role: a population loaded, the audit log sealed and
    // verified.
    let (code, _, err) = daman(
        dir.path(),
        &["load", "--persons", "30", "--employers", "3", "--quiet"],
        &with_owner,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daman(dir.path(), &["audit", "verify"], &as_app);
    assert_eq!(code, 0, "{out}{err}");
    // It may add to the audit log, never change or delete it.
    let pool = sqlx::PgPool::connect(&app).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(n > 0);
    for sql in [
        "DELETE FROM audit_events",
        "UPDATE audit_leaves SET seq = seq",
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("permission denied"), "{sql}: {e}");
    }
}
