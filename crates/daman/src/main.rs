//! `daman`: the command line of the fund's information system.
//!
//! Exit codes: 0 success; 1 failure while running; 2 bad usage; 3 bad configuration.

mod audit_cli;
mod config;
mod ebds_cli;
mod keys_cli;
mod load;

use app::{App, AppConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};
use config::Config;
use domain::{AffiliateNumber, Cin, Immatriculation, Parameters, Role};
use identity::{AuthConfig, Invitation, Inviter};
use kernel::{AppError, Binding, KernelConfig, SmsConfig, Subject, SystemClock};
use server::{DevTokens, ServerConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use store::Store;
use vault::{OsRandom, ThreadRandom};

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
        command: AccountCommand,
    },
    /// e-BDS declarations: préétablis, imports, exports, payments, statements, the ledger.
    Ebds {
        #[command(subcommand)]
        command: ebds_cli::EbdsCommand,
    },
    /// The verifiable audit log: seal, verify, prove, check a proof offline.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
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
        command: keys_cli::KeysCommand,
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
        command: audit_cli::BreachCommand,
    },
    /// Synthetic data helpers.
    Synth {
        #[command(subcommand)]
        command: SynthCommand,
    },
}

/// The size and seed of a synthetic population.
#[derive(Args, Clone, Copy)]
struct PopulationArgs {
    /// Employers (up to 500 000 and beyond).
    #[arg(long, default_value_t = 200)]
    employers: usize,
    /// Insured persons (up to 4 000 000 and beyond).
    #[arg(long, default_value_t = 5_000)]
    persons: usize,
    /// The same seed gives the same population.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum SynthCommand {
    /// Print the CINs of the first COUNT persons of a synthetic population (for benchmarks).
    Cins {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        count: usize,
    },
    /// Write a synthetic month of declarations: one DS file per AFFEBDS file (from `daman ebds
    /// preetabli --out`), as the employers' payroll software would.
    Month {
        #[command(flatten)]
        population: PopulationArgs,
        /// The directory of AFFEBDS files.
        #[arg(long)]
        preetablis: PathBuf,
        /// Where to write the DS files.
        #[arg(long)]
        out: PathBuf,
        /// Employers in a thousand that declare new employees (entrants without a number).
        #[arg(long, default_value_t = 50)]
        entrants_per_mille: u32,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Invite a user: prints the invitation token to hand over (valid 72 hours). The invitee
    /// accepts it with a password and a code sent to PHONE (POST /api/v1/auth/invitations/accept).
    Invite {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The login name (letters, digits and at least one of . _ @ -).
        #[arg(long)]
        login: String,
        /// The invitee's mobile number (+212…).
        #[arg(long)]
        phone: String,
        /// employer-user: the employer's affiliation number.
        #[arg(long)]
        affiliate: Option<String>,
        /// employer-user: may invite the employer's other users.
        #[arg(long)]
        admin: bool,
    },
    /// Disable an account: it can no longer log in and its sessions end at once.
    Disable {
        #[arg(long)]
        login: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[arg(long)]
        login: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Insured,
    EmployerUser,
    Agent,
    SecurityOfficer,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Insured => Role::Insured,
            RoleArg::EmployerUser => Role::EmployerUser,
            RoleArg::Agent => Role::Agent,
            RoleArg::SecurityOfficer => Role::SecurityOfficer,
        }
    }
}

enum Failure {
    Config(String),
    Run(String),
    /// Some imported files were rejected (exit code 4).
    Rejected(usize),
    /// The audit log or a proof does not verify (exit code 5).
    Tampered(String),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        let detail = match &e {
            AppError::Invalid(v) => v
                .iter()
                .map(|x| x.message(domain::Lang::En))
                .collect::<Vec<_>>()
                .join("; "),
            e => {
                // The whole chain of causes (database and I/O errors carry no values).
                let mut parts = Vec::new();
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    parts.push(c.to_string());
                    cause = c.source();
                }
                parts.join(": ")
            }
        };
        Failure::Run(if detail.is_empty() {
            e.to_string()
        } else {
            format!("{e}: {detail}")
        })
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Failure::Run(match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        })
    }
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

async fn open_store(cfg: &Config) -> Result<Store, Failure> {
    if let Some(dir) = cfg.sqlite_dir() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let store = Store::connect(&cfg.database_url(), cfg.max_connections).await?;
    match &cfg.database_owner_url {
        Some(owner) => {
            // Migrate as the owner; the application's role gets only what it needs.
            let role = store.role().await?.ok_or_else(|| {
                Failure::Config("database_owner_url is for PostgreSQL only".into())
            })?;
            let owner = Store::connect(owner, 1).await?;
            owner.migrate().await?;
            owner.grant_app_role(&role).await?;
        }
        None => store.migrate().await?,
    }
    Ok(store)
}

/// The parameter tables: the configured file, or the Moroccan tables shipped with daman.
fn load_params(cfg: &Config) -> Result<Parameters, Failure> {
    match &cfg.parameters_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))?;
            Parameters::from_toml(&text)
        }
        None => Parameters::morocco(),
    }
    .map_err(|e| Failure::Config(e.to_string()))
}

async fn open_app(cfg: &Config) -> Result<App, Failure> {
    let params = load_params(cfg)?;
    let store = open_store(cfg).await?;
    let auth = AuthConfig {
        cost: auth::HashCost {
            memory_kib: cfg.argon2_memory_kib,
            passes: cfg.argon2_passes,
        }
        .checked()
        .map_err(|e| Failure::Config(e.to_string()))?,
        rib_cooling_off_hours: cfg.rib_cooling_off_hours,
        public_url: cfg.public_url.clone(),
        rp_id: cfg.rp_id(),
        eid: match &cfg.eid_issuer {
            Some(issuer) => Some(auth::eid::EidConfig {
                issuer: issuer.clone(),
                client_id: cfg.eid_client_id.clone(),
                client_secret: read_secret_file(&cfg.eid_client_secret_file)?.into(),
                redirect_url: cfg.eid_redirect_url(),
                national_id_claim: cfg.eid_national_id_claim.clone(),
                scopes: cfg.eid_scopes.clone(),
            }),
            None => None,
        },
        ..AuthConfig::default()
    };
    let kernel = KernelConfig {
        store,
        key_dir: cfg.key_dir(),
        params,
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        nonces: Arc::new(ThreadRandom),
        lookup_connections: cfg.lookup_connections,
        sms: SmsConfig {
            sender: sms_sender(cfg)?,
            per_number_hour: cfg.sms_per_number_hour,
            per_number_day: cfg.sms_per_number_day,
            global_hour: cfg.sms_global_hour,
        },
        audit_log: kernel::AuditLogConfig {
            origin: cfg.audit_origin(),
            witness: cfg.audit_witness(),
            interval: std::time::Duration::from_millis(cfg.audit_checkpoint_ms),
        },
        key_refresh: std::time::Duration::from_millis(cfg.key_refresh_ms),
        access_log_names: cfg.access_log_names,
        budgets: kernel::ReadBudgets {
            agent: Some((cfg.read_budget_agent_hour, cfg.read_budget_agent_day)),
            employer_user: Some((cfg.read_budget_employer_hour, cfg.read_budget_employer_day)),
        },
        notifiers: {
            let mut n: Vec<Arc<dyn kernel::Notifier>> = vec![Arc::new(kernel::LogNotifier)];
            if let Some(url) = &cfg.alert_webhook {
                n.push(Arc::new(
                    kernel::WebhookNotifier::new(url)
                        .map_err(|e| Failure::Config(e.to_string()))?,
                ));
            }
            n
        },
    };
    Ok(App::open(AppConfig { kernel, auth }).await?)
}

/// Runs a command's result through a final seal of the audit log: what the command appended
/// is in a signed checkpoint (and the witness file) before the process exits. A seal that
/// fails (the log needs an operator: see `daman audit verify`) is reported on stderr; the exit
/// code stays the command's, whose work is committed either way.
async fn sealed(app: &App, result: Result<(), Failure>) -> Result<(), Failure> {
    if let Err(e) = app.kernel().share_read_budgets().await
        && let Failure::Run(e) = Failure::from(e)
    {
        eprintln!("daman: warning: the read budgets were not saved: {e}");
    }
    if let Err(e) = app.kernel().checkpoint_audit().await
        && let Failure::Run(e) = Failure::from(e)
    {
        eprintln!("daman: warning: the audit log was not sealed: {e}");
    }
    // Best effort: a process not taken off the list ages out of it.
    let _ = app.kernel().leave_key_nodes().await;
    result
}

/// A secret from a file named in the configuration (first line, trimmed).
fn read_secret_file(p: &Option<PathBuf>) -> Result<String, Failure> {
    let p = p
        .as_ref()
        .ok_or_else(|| Failure::Config("missing secret file".into()))?;
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))
}

/// The SMS sender the configuration names.
fn sms_sender(cfg: &Config) -> Result<Option<Arc<dyn auth::SmsSender>>, Failure> {
    let read_secret = read_secret_file;
    let bad = |e: auth::SmsError| Failure::Config(e.to_string());
    Ok(match cfg.sms_sender() {
        "file" => Some(Arc::new(auth::sms::FileSender::new(&cfg.sms_file()))),
        "http" => Some(Arc::new(
            auth::sms::HttpSender::new(
                cfg.sms_http_url.as_deref().unwrap_or_default(),
                &read_secret(&cfg.sms_http_key_file)?,
            )
            .map_err(bad)?,
        )),
        "smpp" => Some(Arc::new(
            auth::sms::SmppSender::new(auth::sms::SmppConfig {
                address: cfg.smpp_address.clone().unwrap_or_default(),
                system_id: cfg.smpp_system_id.clone().unwrap_or_default(),
                password: read_secret(&cfg.smpp_password_file)?.into(),
                source: cfg.smpp_source.clone(),
            })
            .map_err(bad)?,
        )),
        _ => None,
    })
}

async fn run(command: Command, mut cfg: Config) -> Result<(), Failure> {
    match command {
        Command::Migrate => {
            open_store(&cfg).await?;
            println!("migrations applied to {}", redact_url(&cfg.database_url()));
            Ok(())
        }
        Command::Serve { listen, dev } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            cfg.dev_mode |= dev;
            let app = open_app(&cfg).await?;
            let r = serve(app.clone(), &cfg).await;
            sealed(&app, r).await
        }
        Command::Load {
            population:
                PopulationArgs {
                    employers,
                    persons,
                    seed,
                },
            quiet,
        } => {
            let app = open_app(&cfg).await?;
            let loaded = load_population(&app, seed, employers, persons, quiet).await?;
            println!(
                "loaded {} employers and {} persons in {:.1} s ({:.0} persons/s)",
                loaded.employers,
                loaded.persons,
                loaded.seconds,
                loaded.persons as f64 / loaded.seconds.max(1e-9)
            );
            sealed(&app, Ok(())).await
        }
        Command::DevToken {
            role,
            subject,
            hours,
        } => {
            let app = open_app(&cfg).await?;
            let token = dev_token(&app, role.role(), subject.as_deref(), hours).await;
            if let Ok(t) = &token {
                println!("{t}");
            }
            sealed(&app, token.map(|_| ())).await
        }
        Command::Account { command } => {
            let app = open_app(&cfg).await?;
            let r = account(&app, command).await;
            sealed(&app, r).await
        }
        Command::Ebds { command } => {
            let app = open_app(&cfg).await?;
            let r = ebds_cli::run(&app, command).await;
            sealed(&app, r).await
        }
        Command::Audit {
            command: audit_cli::AuditCommand::CheckProof { file, key },
        } => audit_cli::check_proof(&file, &key),
        Command::Honeytokens {
            persons,
            employers,
            seed,
        } => {
            let app = open_app(&cfg).await?;
            let seed = match seed {
                Some(s) => s,
                None => {
                    let mut b = [0u8; 8];
                    vault::Random::fill(&OsRandom, &mut b)
                        .map_err(|e| Failure::Run(e.to_string()))?;
                    u64::from_le_bytes(b)
                }
            };
            let pop = synth::Population::new(seed, employers, persons, domain::Centimes(0));
            // Identities in ranges the synthetic population never uses: CINs with the prefix
            // ZG, company numbers from 11 000 000.
            let e: Vec<registry::NewEmployer> = (0..employers)
                .map(|i| load::new_employer(pop.employer(10_000_000 + i)))
                .collect();
            let p: Vec<registry::NewPerson> = (0..persons)
                .map(|i| {
                    let mut p = load::new_person(&pop.person(i));
                    p.cin = format!(
                        "ZG{:06}",
                        seed.wrapping_add((i as u64).wrapping_mul(7_919)) % 1_000_000
                    );
                    p
                })
                .collect();
            let r = app.registry().seed_honeytokens(&e, &p).await.map(|(e, p)| {
                println!(
                    "seeded {} decoy employers and {} decoy persons; their list is in {}",
                    e.len(),
                    p.len(),
                    app.kernel().honeytoken_list().display()
                );
            });
            sealed(&app, r.map_err(Failure::from)).await
        }
        Command::Keys { command } => {
            let app = open_app(&cfg).await?;
            let r = keys_cli::run(&app, command).await;
            sealed(&app, r).await
        }
        Command::Lockdown { role } => {
            let app = open_app(&cfg).await?;
            let r = app
                .kernel()
                .lockdown(role.map(RoleArg::role), "cli")
                .await
                .map(|n| {
                    println!(
                        "ended {n} sessions ({}): they must sign in again",
                        role.map_or("every role", |r| r.role().as_str())
                    )
                })
                .map_err(Failure::from);
            sealed(&app, r).await
        }
        Command::Breach { command } => {
            let app = open_app(&cfg).await?;
            let r = audit_cli::breach(&app, command).await;
            sealed(&app, r).await
        }
        Command::Audit { command } => {
            let app = open_app(&cfg).await?;
            audit_cli::run(&app, command, cfg.audit_witness()).await
        }
        Command::Synth {
            command:
                SynthCommand::Month {
                    population:
                        PopulationArgs {
                            employers,
                            persons,
                            seed,
                        },
                    preetablis,
                    out,
                    entrants_per_mille,
                },
        } => {
            let params = load_params(&cfg)?;
            let smig = params
                .smig_at(domain::Clock::now(&SystemClock).period())
                .map(|s| s.monthly)
                .ok_or_else(|| Failure::Config("no SMIG for the current period".into()))?;
            let pop = synth::Population::new(seed, employers, persons, smig);
            let (n, lines) =
                ebds_cli::synth_month(&pop, &params, &preetablis, &out, entrants_per_mille)?;
            println!(
                "wrote {n} declarations ({lines} lines) to {}",
                out.display()
            );
            Ok(())
        }
        Command::Synth {
            command: SynthCommand::Cins { seed, count },
        } => {
            let pop = synth::Population::new(seed, 1, count, domain::Centimes(0));
            let mut out = String::with_capacity(count * 9);
            for i in 0..count {
                out.push_str(&pop.cin(i));
                out.push('\n');
            }
            print!("{out}");
            Ok(())
        }
        Command::Demo {
            population:
                PopulationArgs {
                    employers,
                    persons,
                    seed,
                },
            listen,
        } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            cfg.dev_mode = true;
            let app = open_app(&cfg).await?;
            if app.kernel().store().count_persons().await? == 0 {
                println!(
                    "Loading a synthetic population: {employers} employers, {persons} persons (seed {seed})…"
                );
                let loaded = load_population(&app, seed, employers, persons, false).await?;
                println!("Loaded in {:.1} s.", loaded.seconds);
            } else {
                println!(
                    "Using the population already in {}.",
                    cfg.data_dir.display()
                );
            }
            print_guide(&app, &cfg, seed, employers, persons).await?;
            let r = serve(app.clone(), &cfg).await;
            sealed(&app, r).await
        }
    }
}

async fn account(app: &App, command: AccountCommand) -> Result<(), Failure> {
    match command {
        AccountCommand::Invite {
            role,
            login,
            phone,
            affiliate,
            admin,
        } => {
            let affiliate = affiliate
                .as_deref()
                .map(AffiliateNumber::parse)
                .transpose()
                .map_err(AppError::from)?;
            let token = app
                .identity()
                .invite(
                    Inviter::Operator,
                    &Invitation {
                        login,
                        phone,
                        role: role.role(),
                        affiliate,
                        is_admin: admin,
                    },
                    "cli",
                )
                .await?;
            println!("{token}");
            Ok(())
        }
        AccountCommand::Disable { login } => {
            app.identity()
                .set_account_disabled(&login, true, "cli")
                .await?;
            println!("disabled; its sessions have ended");
            Ok(())
        }
        AccountCommand::Enable { login } => {
            app.identity()
                .set_account_disabled(&login, false, "cli")
                .await?;
            println!("enabled");
            Ok(())
        }
    }
}

async fn load_population(
    app: &App,
    seed: u64,
    employers: usize,
    persons: usize,
    quiet: bool,
) -> Result<load::Loaded, Failure> {
    let smig = app
        .kernel()
        .params()
        .smig_at(app.kernel().now().period())
        .map(|s| s.monthly)
        .ok_or_else(|| {
            Failure::Config("no SMIG in the parameter tables for the current period".into())
        })?;
    Ok(load::load(
        app,
        synth::Population::new(seed, employers, persons, smig),
        quiet,
    )
    .await?)
}

async fn dev_token(
    app: &App,
    role: Role,
    subject: Option<&str>,
    hours: i64,
) -> Result<String, Failure> {
    let usage = |m: &str| Failure::Config(m.to_string());
    let (binding, label) = match role {
        Role::Insured => {
            let s = subject.ok_or_else(|| {
                usage("--subject (immatriculation or CIN) is required for an insured person")
            })?;
            let subj = match Immatriculation::parse(s) {
                Ok(i) => Subject::Immatriculation(i),
                Err(_) => {
                    Subject::Cin(Cin::parse(s).map_err(|e| usage(&e.message(domain::Lang::En)))?)
                }
            };
            // Named after the opaque person id, never the identifier.
            (Binding::Person(subj), None)
        }
        Role::EmployerUser => {
            let s = subject.ok_or_else(|| {
                usage("--subject (affiliation number) is required for an employer user")
            })?;
            let a = AffiliateNumber::parse(s).map_err(|e| usage(&e.message(domain::Lang::En)))?;
            (Binding::Employer(a), None)
        }
        Role::Agent | Role::SecurityOfficer => (
            Binding::None,
            Some(format!(
                "dev:{}:{}",
                role.as_str(),
                subject.unwrap_or("default")
            )),
        ),
    };
    let principal = app
        .kernel()
        .ensure_principal(label.as_deref(), role, &binding)
        .await?;
    let tokens = DevTokens::open(app)?;
    Ok(tokens.mint(
        principal.id,
        app.kernel()
            .now()
            .plus_seconds(hours.clamp(1, 24 * 30) * 3600),
    ))
}

async fn serve(app: App, cfg: &Config) -> Result<(), Failure> {
    let dev_tokens = if cfg.dev_mode {
        tracing::warn!("development mode: bearer tokens from `daman dev-token` are accepted");
        Some(Arc::new(DevTokens::open(&app)?))
    } else {
        None
    };
    let router = server::router(
        app.clone(),
        ServerConfig {
            dev_tokens,
            max_in_flight: cfg.max_in_flight,
            max_body: cfg.max_body,
            auth_per_ip_per_minute: cfg.auth_per_ip_per_minute,
        },
    );
    // Every minute, RIB changes whose cooling-off period is over take effect; every hour,
    // expired authentication rows go.
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        for minute in 0u64.. {
            tick.tick().await;
            match sweeper.identity().apply_due_rib_changes().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(applied = n, "RIB changes applied"),
                Err(e) => tracing::error!(error = %e, "RIB changes not applied"),
            }
            if minute % 60 == 0 {
                match sweeper.identity().purge_expired().await {
                    Ok(n) => tracing::debug!(rows = n, "expired authentication rows purged"),
                    Err(e) => tracing::error!(error = %e, "purge failed"),
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| Failure::Config(format!("cannot listen on {}: {e}", cfg.listen)))?;
    tracing::info!(listen = %cfg.listen, "serving");
    server::serve(listener, router, shutdown_signal())
        .await
        .map_err(|e| Failure::Run(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

async fn print_guide(
    app: &App,
    cfg: &Config,
    seed: u64,
    employers: usize,
    persons: usize,
) -> Result<(), Failure> {
    let smig = app
        .kernel()
        .params()
        .smig_at(app.kernel().now().period())
        .map(|s| s.monthly)
        .unwrap_or_default();
    let pop = synth::Population::new(seed, employers, persons, smig);
    let me = pop.person(0);
    let other = pop.person(1);
    let affiliate = format!("{:07}", 1_000_001 + me.employer);
    let agent = dev_token(app, Role::Agent, Some("demo"), 8).await?;
    let insured = dev_token(app, Role::Insured, Some(&me.cin), 8).await?;
    let employer = dev_token(app, Role::EmployerUser, Some(&affiliate), 8).await?;
    let officer = dev_token(app, Role::SecurityOfficer, Some("demo"), 8).await?;
    let base = format!("http://{}", cfg.listen);
    let read = |token: &str, body: String| {
        format!(
            "curl -s {base}/api/v1/persons/read -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}'"
        )
    };
    println!(
        "\ndaman is serving on {base} (development mode; all data is synthetic)\n\
         \n  Health:   {base}/healthz   {base}/readyz\n  OpenAPI:  {base}/api/v1/openapi.json\n\
         \nTry (tokens are valid 8 hours; mint more with `daman dev-token --help`):\n\
         \n# An agent finds a person by CIN (masked view, audited):\n{}\n\
         \n# The insured person reads their own record in full:\n{}\n\
         \n# ...but not someone else's (403, and the refusal is audited):\n{}\n\
         \n# Their employer reads the names and number of its employee:\n{}\n\
         \n# A security officer reads no personal data (403):\n{}\n\
         \n# Errors are in the caller's language (Accept-Language: ar):\n{} -H 'Accept-Language: ar'\n\
         ",
        read(
            &agent,
            format!("{{\"cin\":\"{}\",\"purpose\":\"registration\"}}", me.cin)
        ),
        read(
            &insured,
            format!(
                "{{\"cin\":\"{}\",\"purpose\":\"self_service\",\"full\":true}}",
                me.cin
            )
        ),
        read(
            &insured,
            format!("{{\"cin\":\"{}\",\"purpose\":\"self_service\"}}", other.cin)
        ),
        read(
            &employer,
            format!(
                "{{\"cin\":\"{}\",\"purpose\":\"payroll\",\"fields\":[\"last_name\",\"first_name\",\"immatriculation\"],\"full\":true}}",
                me.cin
            )
        ),
        read(
            &officer,
            format!("{{\"cin\":\"{}\",\"purpose\":\"case_review\"}}", me.cin)
        ),
        read(
            &agent,
            "{\"cin\":\"12345\",\"purpose\":\"registration\"}".to_string()
        ),
    );
    print_login_guide(app, cfg, &me.cin, &affiliate).await?;
    println!(
        "\nStop with Ctrl-C. Data stays in {} (keys in {}).",
        cfg.data_dir.display(),
        cfg.key_dir().display()
    );
    Ok(())
}

/// How to log in for real (not with development tokens): the insured person enrols with the
/// phone on record; an employer admin and an agent accept invitations made here.
async fn print_login_guide(
    app: &App,
    cfg: &Config,
    cin: &str,
    affiliate: &str,
) -> Result<(), Failure> {
    const PASSWORD: &str = "olive tree by the sea";
    let base = format!("http://{}", cfg.listen);
    let sms = cfg.sms_file();
    let post = |path: &str, body: &str| {
        format!("curl -s {base}{path} -H 'Content-Type: application/json' -d '{body}'")
    };
    let invite = |role: Role, login: &str, phone: &str, affiliate: Option<&str>| {
        let inv = Invitation {
            login: login.into(),
            phone: phone.into(),
            role,
            affiliate: affiliate.and_then(|a| AffiliateNumber::parse(a).ok()),
            is_admin: role == Role::EmployerUser,
        };
        async move {
            match app.identity().invite(Inviter::Operator, &inv, "demo").await {
                Ok(token) => Ok(token),
                // Run again on the same data: the account exists already.
                Err(AppError::Conflict(_)) => Ok("(already accepted: log in)".to_string()),
                Err(e) => Err(Failure::from(e)),
            }
        }
    };
    let employer_login = format!("rh.{affiliate}@example.ma");
    let employer_invitation = invite(
        Role::EmployerUser,
        &employer_login,
        "+212600000900",
        Some(affiliate),
    )
    .await?;
    let agent_invitation =
        invite(Role::Agent, "agent.demo@example.ma", "+212600000901", None).await?;
    let lines = [
        format!(
            "\nLogging in for real (SMS codes appear in {}, one JSON line each):",
            sms.display()
        ),
        format!("\n# The insured person enrols once, with the phone on record (CIN {cin}):"),
        post(
            "/api/v1/auth/enrol",
            &format!(r#"{{"cin":"{cin}","password":"{PASSWORD}"}}"#),
        ),
        post(
            "/api/v1/auth/enrol/confirm",
            r#"{"enrolment":"ENROLMENT","code":"CODE"}"#,
        ),
        "\n# Then logs in: password, then the code sent by SMS; the answer holds a bearer token"
            .into(),
        r#"# (add "client":"browser" for a __Host- cookie instead):"#.into(),
        post(
            "/api/v1/auth/login",
            &format!(r#"{{"login":"{cin}","password":"{PASSWORD}"}}"#),
        ),
        post("/api/v1/auth/login/sms", r#"{"pending":"PENDING"}"#),
        post(
            "/api/v1/auth/login/verify",
            r#"{"pending":"PENDING","method":"sms","code":"CODE"}"#,
        ),
        format!(
            "\n# A user of employer {affiliate} (its admin, who can invite others) accepts this"
        ),
        format!(
            "# invitation, confirms the code sent to +212600000900, and logs in as {employer_login}:"
        ),
        post(
            "/api/v1/auth/invitations/accept",
            &format!(r#"{{"invitation":"{employer_invitation}","password":"{PASSWORD}"}}"#),
        ),
        post(
            "/api/v1/auth/enrol/confirm",
            &format!(r#"{{"enrolment":"{employer_invitation}","code":"CODE"}}"#),
        ),
        "\n# An agent accepts an invitation the same way (agent.demo@example.ma). Confirming the code"
            .into(),
        "# answers with a passkey_setup token: POST it to /api/v1/auth/passkeys/setup for the options"
            .into(),
        "# of navigator.credentials.create, and the result to /api/v1/auth/passkeys/setup/finish."
            .into(),
        "# Staff log in only with a passkey (a browser or a security key); on the command line, use"
            .into(),
        "# the development token above.".into(),
        post(
            "/api/v1/auth/invitations/accept",
            &format!(r#"{{"invitation":"{agent_invitation}","password":"{PASSWORD}"}}"#),
        ),
        "\nMore invitations: `daman account invite --help`. Details: docs/authentication.md."
            .into(),
    ];
    println!("{}", lines.join("\n"));
    Ok(())
}
