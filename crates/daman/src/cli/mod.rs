//! One module per command (or family of commands); what they share is here: opening the
//! store and the application, sealing the audit log before a command exits, and the
//! arguments several commands take.

pub mod account;
pub mod audit;
pub mod ebds;
pub mod keys;
pub mod population;
pub mod serve;

use crate::config::Config;
use crate::failure::Failure;
use app::{App, AppConfig};
use clap::{Args, ValueEnum};
use domain::Role;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use store::Store;

/// The size and seed of a synthetic population.
#[derive(Args, Clone, Copy)]
pub struct PopulationArgs {
    /// Employers (up to 500 000 and beyond).
    #[arg(long, default_value_t = 200)]
    pub employers: usize,
    /// Insured persons (up to 4 000 000 and beyond).
    #[arg(long, default_value_t = 5_000)]
    pub persons: usize,
    /// The same seed gives the same population.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Insured,
    EmployerUser,
    Agent,
    SecurityOfficer,
}

impl RoleArg {
    pub fn role(self) -> Role {
        match self {
            RoleArg::Insured => Role::Insured,
            RoleArg::EmployerUser => Role::EmployerUser,
            RoleArg::Agent => Role::Agent,
            RoleArg::SecurityOfficer => Role::SecurityOfficer,
        }
    }
}

pub(crate) async fn open_store(cfg: &Config) -> Result<Store, Failure> {
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

/// Opens the store (migrated, persons renumbered) and the application over it.
pub(crate) async fn open_app(cfg: &Config) -> Result<App, Failure> {
    let store = open_store(cfg).await?;
    renumber_persons(cfg, &store).await?;
    let kernel = cfg.kernel(store)?;
    let auth = cfg.auth()?;
    Ok(App::open(AppConfig { kernel, auth }).await?)
}

/// [`open_app`] without renumbering, for what must work whatever state the persons are in
/// (a lockdown, the audit log, a breach report, the keys): a renumbering that cannot finish
/// must not stop an incident's response. Says so when persons are left to renumber.
pub(crate) async fn open_app_as_is(cfg: &Config) -> Result<App, Failure> {
    let store = open_store(cfg).await?;
    if store.person_ids_serial().await? {
        eprintln!(
            "daman: warning: this database's persons are not all renumbered yet (keyed ids); `daman migrate` finishes it"
        );
    }
    let kernel = cfg.kernel(store)?;
    let auth = cfg.auth()?;
    Ok(App::open(AppConfig { kernel, auth }).await?)
}

/// A database made before person ids were keyed (migration 0025): every person moved to
/// their keyed id, with a progress bar, before anything serves. As the database's owner where
/// one is configured: a declaration's blocks are rewritten, which the application's role may
/// not do.
async fn renumber_persons(cfg: &Config, store: &Store) -> Result<(), Failure> {
    if !store.person_ids_serial().await? {
        return Ok(());
    }
    let store = match &cfg.database_owner_url {
        Some(owner) => Store::connect(owner, 2).await?,
        None => store.clone(),
    };
    let app = App::open(AppConfig {
        kernel: cfg.kernel(store)?,
        auth: cfg.auth()?,
    })
    .await?;
    let pb = bar(0, "", false);
    let progress = |p: kernel::RenumberProgress| match p {
        kernel::RenumberProgress::Begin { what, total } => {
            pb.set_message(what);
            pb.set_length(total);
            pb.set_position(0);
        }
        kernel::RenumberProgress::Done(n) => pb.inc(n),
    };
    eprintln!("daman: this database numbers persons by serial; renumbering them (keyed ids)");
    let renumbered = app.renumber_persons(&progress, "renumber").await;
    pb.finish();
    if renumbered.is_err()
        && cfg.database_owner_url.is_none()
        && !cfg.database_url().starts_with("sqlite:")
    {
        eprintln!(
            "daman: renumbering rewrites the blocks of declaration lines, which only the database's owner may: set database_owner_url (DAMAN_DATABASE_OWNER_URL) and run `daman migrate` again; it goes on where it stopped"
        );
    }
    sealed(&app, renumbered.map(|_| ()).map_err(Failure::from)).await
}

/// Runs a command's result through a final seal of the audit log: what the command appended
/// is in a signed checkpoint (and the witness file) before the process exits. A seal that
/// fails (the log needs an operator: see `daman audit verify`) is reported on stderr; the exit
/// code stays the command's, whose work is committed either way.
pub(crate) async fn sealed(app: &App, result: Result<(), Failure>) -> Result<(), Failure> {
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

pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// `daman migrate`: the store, migrated.
pub(crate) async fn migrate(cfg: &Config) -> Result<(), Failure> {
    let store = open_store(cfg).await?;
    renumber_persons(cfg, &store).await?;
    println!("migrations applied to {}", redact_url(&cfg.database_url()));
    Ok(())
}

/// A progress bar: `what`, position, rate and time left; none when `quiet`.
pub(crate) fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Every file under the paths (directories one level deep), sorted by path. A directory's
/// regular files are known from the directory itself, without a `stat` each (a country's month
/// is 500 000 files); a link is followed, as reading the file will.
pub(crate) fn files_under(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|_| Failure::Config(format!("{}: no such file or directory", p.display())))?;
        if meta.is_dir() {
            let rd = std::fs::read_dir(p)
                .map_err(|e| Failure::Config(format!("{}: {e}", p.display())))?;
            for entry in rd {
                let entry = entry.map_err(|e| Failure::Config(e.to_string()))?;
                let is_file = match entry.file_type() {
                    Ok(t) if t.is_file() => true,
                    Ok(t) if t.is_symlink() => {
                        std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
                    }
                    _ => false,
                };
                if is_file {
                    out.push(entry.path());
                }
            }
        } else if meta.is_file() {
            out.push(p.clone());
        } else {
            return Err(Failure::Config(format!(
                "{}: not a file or directory",
                p.display()
            )));
        }
    }
    // Byte by byte: comparing paths component by component took most of a second for
    // 500 000 files, before anything else could start.
    out.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(out)
}
