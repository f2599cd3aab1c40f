//! The command line: exit codes and messages that mean something.

use std::process::Command;

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
