//! `daman`: the command line of the fund's information system.
//!
//! Exit codes: 0 success; 1 failure while running; 2 bad usage; 3 bad configuration.

mod cli;
mod config;
mod failure;

use clap::{Parser, Subcommand};
use cli::{PopulationArgs, RoleArg, open_app, sealed};
use config::Config;
use failure::Failure;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc: the gate allocates many small buffers (ciphertexts, plaintexts, JSON) per request,
/// and an import builds and drops tens of megabytes a batch. mimalloc (before) served the gate as
/// fast, but handed an import's freed memory back to the system after a second and took it
/// again: 0.9 million page faults and a tenth of the import's CPU zeroing pages. jemalloc keeps
/// freed memory for about ten seconds (`dirty_decay_ms`) and needs no option set at run time
/// (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "daman",
    version,
    about = "daman (ضمان): the information system of a social-security fund"
)]
struct Cli {
    /// Configuration file (TOML; see daman.example.toml). DAMAN_* variables override it.
    #[arg(long, global = true, env = "DAMAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (JSON under /api/v1, health at /healthz and /readyz).
    Serve {
        /// Address to listen on (overrides the configuration).
        #[arg(long)]
        listen: Option<String>,
        /// Development mode: accept tokens from `daman dev-token`.
        #[arg(long)]
        dev: bool,
    },
    /// Create ./daman-data if missing, load a synthetic population, and serve it in development
    /// mode on 127.0.0.1:8080, printing ready-to-run example requests.
    Demo {
        #[command(flatten)]
        population: PopulationArgs,
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply the database migrations.
    Migrate,
    /// Load a synthetic population (up to 500 000 employers and 4 000 000 persons) with a
    /// progress bar.
    Load {
        #[command(flatten)]
        population: PopulationArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Mint a development bearer token (accepted only by a server in development mode).
    DevToken {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// insured: immatriculation number or CIN; employer-user: affiliation number; staff:
        /// a name for the account.
        #[arg(long)]
        subject: Option<String>,
        /// Hours the token stays valid.
        #[arg(long, default_value_t = 8)]
        hours: i64,
    },
    /// Accounts: invite staff and employer users, disable and enable accounts.
    Account {
        #[command(subcommand)]
        command: cli::account::AccountCommand,
    },
    /// e-BDS declarations: préétablis, imports, exports, payments, statements, the ledger.
    Ebds {
        #[command(subcommand)]
        command: cli::ebds::EbdsCommand,
    },
    /// The verifiable audit log: seal, verify, prove, check a proof offline.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCommand,
    },
    /// Seed decoy persons and employers (honeytokens): registered like anyone, listed only in
    /// the key directory; reading or declaring one locks the principal and raises an alert.
    Honeytokens {
        /// Decoy persons.
        #[arg(long, default_value_t = 20)]
        persons: usize,
        /// Decoy employers.
        #[arg(long, default_value_t = 5)]
        employers: usize,
        /// Seed of the synthetic identities (default: random, so nobody can compute them).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Data keys: list them, rotate them while the servers keep serving.
    Keys {
        #[command(subcommand)]
        command: cli::keys::KeysCommand,
    },
    /// End every live session (or those of one role) at once: everyone signs in again.
    /// Audited.
    Lockdown {
        /// Only the sessions of this role.
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
    },
    /// Breach response: who was exposed, from the audit log alone.
    Breach {
        #[command(subcommand)]
        command: cli::audit::BreachCommand,
    },
    /// Synthetic data helpers.
    Synth {
        #[command(subcommand)]
        command: cli::population::SynthCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("daman: {e}");
            return ExitCode::from(3);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.log))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("daman: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("daman: {e}");
            ExitCode::from(3)
        }
        Err(Failure::Run(e)) => {
            eprintln!("daman: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Rejected(n)) => {
            eprintln!("daman: {n} file(s) rejected (the others were imported)");
            ExitCode::from(4)
        }
        Err(Failure::Tampered(e)) => {
            eprintln!("daman: the audit log does not verify: {e}");
            ExitCode::from(5)
        }
    }
}

/// Runs one command, each in its module (`cli/`); commands that change anything seal the
/// audit log before they return ([`sealed`]).
async fn run(command: Command, mut cfg: Config) -> Result<(), Failure> {
    match command {
        Command::Migrate => cli::migrate(&cfg).await,
        Command::Serve { listen, dev } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            cfg.dev_mode |= dev;
            let app = open_app(&cfg).await?;
            let r = cli::serve::serve(app.clone(), &cfg).await;
            sealed(&app, r).await
        }
        Command::Demo { population, listen } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            cfg.dev_mode = true;
            cli::serve::demo(&cfg, population).await
        }
        Command::Load { population, quiet } => {
            let app = open_app(&cfg).await?;
            let r = cli::population::load(&app, population, quiet).await;
            sealed(&app, r).await
        }
        Command::DevToken {
            role,
            subject,
            hours,
        } => {
            let app = open_app(&cfg).await?;
            let token = cli::account::dev_token(&app, role.role(), subject.as_deref(), hours).await;
            if let Ok(t) = &token {
                println!("{t}");
            }
            sealed(&app, token.map(|_| ())).await
        }
        Command::Account { command } => {
            let app = open_app(&cfg).await?;
            let r = cli::account::account(&app, command).await;
            sealed(&app, r).await
        }
        Command::Ebds { command } => {
            let app = open_app(&cfg).await?;
            let r = cli::ebds::run(&app, command).await;
            sealed(&app, r).await
        }
        Command::Audit {
            command: cli::audit::AuditCommand::CheckProof { file, key },
        } => cli::audit::check_proof(&file, &key),
        Command::Audit { command } => {
            let app = cli::open_app_as_is(&cfg).await?;
            cli::audit::run(&app, command, cfg.audit_witness()).await
        }
        Command::Honeytokens {
            persons,
            employers,
            seed,
        } => {
            let app = open_app(&cfg).await?;
            let r = cli::population::honeytokens(&app, persons, employers, seed).await;
            sealed(&app, r).await
        }
        Command::Keys { command } => {
            let app = cli::open_app_as_is(&cfg).await?;
            let r = cli::keys::run(&app, command).await;
            sealed(&app, r).await
        }
        Command::Lockdown { role } => {
            let app = cli::open_app_as_is(&cfg).await?;
            let r = cli::keys::lockdown(&app, role).await;
            sealed(&app, r).await
        }
        Command::Breach { command } => {
            let app = cli::open_app_as_is(&cfg).await?;
            let r = cli::audit::breach(&app, command).await;
            sealed(&app, r).await
        }
        Command::Synth { command } => cli::population::synth(&cfg, command),
    }
}
