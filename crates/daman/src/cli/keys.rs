//! `daman keys` and `daman lockdown` (docs/keys.md).

use crate::cli::RoleArg;
use crate::failure::Failure;
use app::App;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use kernel::KeyProgress;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the data keys (ids, dates, which is primary; never a key).
    List,
    /// Rotate the data key while the servers keep serving: add a new key, wait until every
    /// running daman has loaded it, make it primary, wait until every one encrypts with it,
    /// then re-encrypt every row in batches (a progress bar shows them). Audited.
    Rotate {
        /// Finish the last rotation (interrupted, or stopped waiting for a node) instead of
        /// starting one.
        #[arg(long)]
        resume: bool,
        /// Seconds to wait for the running daman processes at each step before stopping (the
        /// rotation can then be resumed).
        #[arg(long, default_value_t = 60)]
        wait: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

pub async fn run(app: &App, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::List => {
            for k in app.kernel().key_list().await? {
                println!(
                    "key {:>3}  created {}  {}",
                    k.id,
                    domain::Timestamp(k.created_at).date(),
                    match (k.primary, k.primary_since) {
                        (true, _) => "primary".to_string(),
                        (false, Some(_)) => "older (decrypts only)".to_string(),
                        (false, None) =>
                            "added, not yet primary (run `daman keys rotate --resume`)".to_string(),
                    }
                );
            }
            Ok(())
        }
        KeysCommand::Rotate {
            resume,
            wait,
            quiet,
        } => {
            let bar = Mutex::new(None::<ProgressBar>);
            let progress = |p: KeyProgress| {
                if quiet {
                    return;
                }
                let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
                match p {
                    KeyProgress::Waiting {
                        what,
                        nodes,
                        behind,
                    } => {
                        let b = bar.get_or_insert_with(ProgressBar::new_spinner);
                        b.set_message(format!(
                            "waiting until every running daman has {what}: {} of {nodes}",
                            nodes - behind
                        ));
                        b.tick();
                    }
                    KeyProgress::Pass { pass, rows } => {
                        if let Some(b) = bar.take() {
                            b.finish_and_clear();
                        }
                        let b = ProgressBar::new(rows);
                        b.set_style(
                            ProgressStyle::with_template(
                                "{msg} {wide_bar} {pos}/{len} rows, {per_sec}, {eta} left",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        b.set_message(format!("re-encrypting, pass {pass}"));
                        *bar = Some(b);
                    }
                    KeyProgress::Rows(n) => {
                        if let Some(b) = bar.as_ref() {
                            b.inc(n);
                        }
                    }
                }
            };
            let started = std::time::Instant::now();
            let r = app
                .kernel()
                .rotate_keys(resume, Duration::from_secs(wait), &progress, "cli")
                .await;
            if let Some(b) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
                b.finish_and_clear();
            }
            let r = r?;
            let rekeyed: u64 = r.passes.iter().map(|p| p.rekeyed).sum();
            let lines: u64 = r.passes.iter().map(|p| p.lines).sum();
            println!(
                "key {} is primary (loaded by {} running daman); {rekeyed} rows re-encrypted ({lines} declaration lines) in {} pass(es), {:.1} s",
                r.key,
                r.nodes,
                r.passes.len(),
                started.elapsed().as_secs_f64()
            );
            if r.left > 0 {
                return Err(Failure::Run(format!(
                    "{} rows changed during every pass and are still under an older key: run `daman keys rotate --resume`",
                    r.left
                )));
            }
            Ok(())
        }
    }
}

/// `daman lockdown`: every live session ends (or those of one role).
pub async fn lockdown(app: &App, role: Option<RoleArg>) -> Result<(), Failure> {
    let n = app
        .kernel()
        .lockdown(role.map(RoleArg::role), "cli")
        .await?;
    println!(
        "ended {n} sessions ({}): they must sign in again",
        role.map_or("every role", |r| r.role().as_str())
    );
    Ok(())
}
