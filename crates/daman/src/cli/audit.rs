//! `daman audit`: seal, verify and prove the audit log (docs/audit.md).

use crate::failure::Failure;
use app::App;
use audit::{InclusionProof, NoteVerifier};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Seal the entries appended since the last checkpoint into a signed checkpoint now (the
    /// server does it every few seconds), and append it to the witness file.
    Checkpoint,
    /// Print the log's verifier key (`<origin>+<key id>+<public key>`), for auditors.
    Key,
    /// Check the whole log: every entry against the leaf recorded when it was sealed, every
    /// checkpoint in the database and in the witness file (signatures, roots recomputed from
    /// the entries, consistency from each to the next). Exit code 5 names the first bad entry.
    Verify {
        /// The witness file (default: the configured one).
        #[arg(long)]
        witness: Option<PathBuf>,
        /// The verifier key to trust (default: this installation's own key). An auditor passes
        /// the copy they were given.
        #[arg(long)]
        key: Option<String>,
    },
    /// Print an inclusion proof of entry N (from 1) in the latest checkpoint: what
    /// `daman audit check-proof` checks with the verifier key alone.
    Prove {
        #[arg(long)]
        entry: u64,
        /// Write the proof here instead of the standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Start a new witness file after the old one was lost (move a damaged one aside first):
    /// only if the log verifies from the database alone. The new file starts with the last
    /// checkpoint; what came before can only be checked against the old file.
    RestartWitness,
    /// Check an inclusion proof offline: needs only the proof file and the verifier key (no
    /// database, no key directory).
    CheckProof {
        file: PathBuf,
        #[arg(long)]
        key: String,
    },
}

/// `check-proof`: no application, no database.
pub fn check_proof(file: &PathBuf, key: &str) -> Result<(), Failure> {
    let verifier = NoteVerifier::parse(key).map_err(|e| Failure::Config(e.to_string()))?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Config(format!("cannot read {}: {e}", file.display())))?;
    let proof = InclusionProof::parse(&text).map_err(|e| Failure::Tampered(e.to_string()))?;
    let (e, c) = proof
        .check(&verifier)
        .map_err(|e| Failure::Tampered(format!("the proof does not hold: {e}")))?;
    println!(
        "entry {} is in the log {} of {} entries (checkpoint signed by {})",
        e.seq,
        c.origin,
        c.size,
        verifier.name()
    );
    let micros = e.at.rem_euclid(86_400_000_000) / 1_000_000;
    println!(
        "  at {} {:02}:{:02}:{:02} UTC · {} · {} · outcome {}{}{}",
        domain::Timestamp(e.at).date(),
        micros / 3600,
        micros / 60 % 60,
        micros % 60,
        e.role,
        e.action,
        e.outcome,
        e.purpose
            .map(|p| format!(" · purpose {p}"))
            .unwrap_or_default(),
        e.subject
            .map(|s| format!(" · subject {}", vault::hex(&s)))
            .unwrap_or_default()
    );
    Ok(())
}

pub async fn run(app: &App, command: AuditCommand, witness: PathBuf) -> Result<(), Failure> {
    match command {
        AuditCommand::Checkpoint => {
            match app.kernel().checkpoint_audit().await? {
                Some(c) => println!("sealed: {} entries", c.size),
                None => match app.kernel().last_checkpoint().await? {
                    Some(c) => {
                        println!("nothing new: the last checkpoint holds {} entries", c.size)
                    }
                    None => println!("nothing to seal: the log is empty"),
                },
            }
            if let Some(c) = app.kernel().last_checkpoint().await? {
                print!("{}", c.note);
            }
            Ok(())
        }
        AuditCommand::Key => {
            println!("{}", app.kernel().audit_verifier_key());
            Ok(())
        }
        AuditCommand::Verify { witness: w, key } => {
            let verifier =
                NoteVerifier::parse(&key.unwrap_or_else(|| app.kernel().audit_verifier_key()))
                    .map_err(|e| Failure::Config(e.to_string()))?;
            let witness = w.unwrap_or(witness);
            let started = std::time::Instant::now();
            let r = app.kernel().verify_audit(&witness, &verifier).await?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} entries read; {} checkpoints in the database and {} in {} recomputed; {:.2} s",
                r.entries,
                r.db_checkpoints,
                r.witness_checkpoints,
                witness.display(),
                secs
            );
            match r.problem {
                None => {
                    println!("the audit log verifies");
                    Ok(())
                }
                Some(p) => Err(Failure::Tampered(p.to_string())),
            }
        }
        AuditCommand::Prove { entry, out } => {
            let proof = app.kernel().prove_audit(entry).await?.to_text();
            match out {
                Some(path) => std::fs::write(&path, proof)
                    .map_err(|e| Failure::Run(format!("cannot write {}: {e}", path.display()))),
                None => {
                    print!("{proof}");
                    Ok(())
                }
            }
        }
        AuditCommand::RestartWitness => {
            let c = app.kernel().restart_witness().await?;
            println!(
                "a new witness file {} starts at the checkpoint of {} entries",
                app.kernel().audit_witness().display(),
                c.size
            );
            Ok(())
        }
        AuditCommand::CheckProof { file, key } => check_proof(&file, &key),
    }
}

#[derive(Subcommand)]
pub enum BreachCommand {
    /// From the audit log alone: every person whose data was revealed to these principals in
    /// the window, which fields, when and by whom, with totals per field and category.
    Report {
        /// A principal's id (repeat for several).
        #[arg(long = "principal", required = true)]
        principals: Vec<i64>,
        /// Start of the window, included: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.
        #[arg(long)]
        from: String,
        /// End of the window, excluded.
        #[arg(long)]
        to: String,
        /// Write the notification list (one pseudonym per line, with fields and dates) here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Print the whole report as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

pub async fn breach(app: &App, command: BreachCommand) -> Result<(), Failure> {
    let BreachCommand::Report {
        principals,
        from,
        to,
        csv,
        json,
    } = command;
    let parse = |field, s: &str| {
        domain::Timestamp::parse_utc(field, s)
            .map_err(|e| Failure::Config(format!("--{field}: {}", e.message(domain::Lang::En))))
    };
    let (from, to) = (parse("from", &from)?, parse("to", &to)?);
    let started = std::time::Instant::now();
    let r = app
        .registry()
        .breach_report(
            registry::Investigator::Operator,
            &principals,
            from,
            to,
            "cli",
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &csv {
        std::fs::write(path, r.csv())
            .map_err(|e| Failure::Run(format!("cannot write {}: {e}", path.display())))?;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| Failure::Run(e.to_string()))?
        );
        return Ok(());
    }
    println!(
        "{} audit entries of {} principal(s) examined in {secs:.2} s; {} reads refused",
        r.entries,
        r.principals.len(),
        r.refused
    );
    println!("{} person(s) whose data was revealed", r.persons.len());
    for (cat, n) in &r.per_category {
        println!("  {cat}: {n} person(s)");
    }
    for (field, n) in &r.per_field {
        println!("    {field}: {n}");
    }
    if let Some(path) = csv {
        println!("notification list: {}", path.display());
    }
    Ok(())
}
