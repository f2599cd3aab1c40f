//! The application, composed: the kernel and every capability service over it, opened
//! together. The server and the command line hold an [`App`] and call the service a command
//! belongs to (`app.contributions().import_declarations(…)`); nothing here decides anything.

use contributions::Contributions;
use identity::{AuthConfig, Identity};
use kernel::{AppError, Kernel, KernelConfig, RenumberProgress};
use ledger::Ledger;
use registry::Registry;

/// What the application needs from the outside world: the kernel's configuration and the
/// authentication layer's.
pub struct AppConfig {
    pub kernel: KernelConfig,
    pub auth: AuthConfig,
}

/// The application: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    kernel: Kernel,
    identity: Identity,
    registry: Registry,
    contributions: Contributions,
    ledger: Ledger,
}

impl App {
    /// Opens the kernel (keys, audit log, lookups) and the services over it. Must run inside a
    /// Tokio runtime.
    pub async fn open(cfg: AppConfig) -> Result<App, AppError> {
        let kernel = Kernel::open(cfg.kernel).await?;
        Ok(App {
            identity: Identity::open(kernel.clone(), cfg.auth)?,
            registry: Registry::new(kernel.clone()),
            contributions: Contributions::new(kernel.clone()),
            ledger: Ledger::new(kernel.clone()),
            kernel,
        })
    }

    /// Renumbers a database whose persons still have serial ids (migration 0025): the
    /// persons and every reference to them, then what the contributions service keeps, then
    /// the mark. Nothing to do (and `false`) on a database already keyed. Cut short, the next
    /// run goes on where it stopped. Run before serving: no request may meet a half-moved
    /// person.
    pub async fn renumber_persons(
        &self,
        progress: &(dyn Fn(RenumberProgress) + Sync),
        request_id: &str,
    ) -> Result<bool, AppError> {
        if !self.kernel.person_ids_serial().await? {
            return Ok(false);
        }
        self.kernel.renumber_persons(progress, request_id).await?;
        self.contributions
            .renumber_persons(progress, request_id)
            .await?;
        self.kernel.end_serial_person_ids(request_id).await?;
        Ok(true)
    }

    /// The gate, principals, capabilities, the audit log, budgets, keys.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Accounts, logins, sessions, factors, passkeys, the E-ID, RIB changes.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Employers, persons, employment links, contacts, cases, breach reports, who read my data.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Préétablis, declarations, rectifications, rejections, careers.
    pub fn contributions(&self) -> &Contributions {
        &self.contributions
    }

    /// Payments, surcharges, statements, the fund's check.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}
