//! Application services: the registry commands and the gate, one transaction per command.
//!
//! Every read of personal data goes through [`App::reveal`] (the gate): it resolves the subject,
//! gathers the facts the policy needs, decides, makes the audit entry durable (group commit), and
//! only then decrypts, returning masked values unless a full reveal was asked for and allowed.

mod accesses;
mod account;
mod audit;
mod audit_log;
mod breach;
mod budget;
mod declarations;
mod eid;
mod error;
mod factors;
mod gate;
mod honeytoken;
mod keys;
mod login;
mod lookup;
mod passkey;
mod principal;
mod registry;
mod release;
mod rib;

pub use accesses::{ACCESS_PAGE_MAX, Access, AccessPage};
pub use account::{AuthConfig, Invitation, Inviter, LoginName};
pub use audit::AuditWriter;
pub use audit_log::{AuditLogConfig, CheckpointInfo, LogProblem, VerifyReport, audit_event};
pub use breach::{BreachReport, ExposedPerson, Investigator};
pub use budget::{Alert, LogNotifier, Notifier, ReadBudgets, WebhookNotifier};
pub use declarations::{
    AccountBalance, BatchCut, CareerLine, ControlSums, Declarant, DeclarationSummary, ErrorView,
    FundView, IMPORT_BATCH_BYTES, IMPORT_BATCH_FILES, IdPool, ImportFile, ImportOutcome, InFlight,
    NewPayment, ParsedFile, PaymentOutcome, PaymentView, PreparedImport, RejectionView, Statement,
    StatementPeriod, Unwritten, import_batches,
};
pub use eid::EidCallback;
pub use error::{AppError, Clash, Missing};
pub use factors::{FactorView, TotpEnrolment};
pub use gate::{PersonView, RevealInput, RevealRequest, Subject};
pub use keys::{KeyInfo, KeyProgress, NODE_LIVE_SECONDS, RekeyPass, Rotation};
pub use login::{
    Method, NewSession, PENDING_SECONDS, PendingLogin, STEP_UP_SECONDS, SessionInfo, StepUp,
    timeouts,
};
pub use principal::{Binding, PRINCIPAL_TTL_SECONDS, Principal, Registrar};
pub use registry::{
    CASE_DAYS, ContactChange, EmployerCreated, NewEmployer, NewPerson, PersonCreated,
};
pub use release::{Contact, ContactRelease, RELEASE_APPROVAL_HOURS};
pub use rib::RibChangePending;

use domain::{Clock, Parameters, PersonField, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use store::Store;
use vault::{Column, KeyDir, KeyEncryptionKey, KeyFileKek, Keyring, Random};

pub const PERSONS: &str = "persons";

/// The encrypted column of a person field.
pub fn person_column(f: PersonField) -> Column {
    Column {
        table: PERSONS,
        column: f.column(),
    }
}

/// Blind-indexed columns.
pub const CIN_INDEX: Column = Column {
    table: PERSONS,
    column: "cin",
};
pub const IMMATRICULATION_INDEX: Column = Column {
    table: PERSONS,
    column: "immatriculation",
};

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// What the application needs from the outside world.
pub struct AppConfig {
    pub store: Store,
    /// The key directory (apart from the database directory).
    pub key_dir: PathBuf,
    pub params: Parameters,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// The source of the nonces of field encryption (public values, millions per import):
    /// the binary gives `vault::ThreadRandom`; every secret (keys, tokens, codes, salts) comes
    /// from `random`.
    pub nonces: Arc<dyn Random>,
    /// Connections serving the gate's batched lookups (each its own batch at a time); 0 means
    /// half the processor cores, at least one.
    pub lookup_connections: usize,
    pub auth: AuthConfig,
    /// The verifiable audit log: its origin, witness file and checkpoint interval.
    pub audit_log: AuditLogConfig,
    /// Persons each role may have revealed per hour and per day.
    pub budgets: ReadBudgets,
    /// Where security alerts go besides the audit log.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// How often this process reloads the data keys and reports them (`key_nodes`); at most
    /// a few seconds, so that a rotation does not take it for gone.
    pub key_refresh: std::time::Duration,
    /// Whether "who read my data" names the reader's account (by default only the role, unit
    /// and purpose).
    pub access_log_names: bool,
}

/// The application: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) keys: keys::Keys,
    pub(crate) access_log_names: bool,
    pub(crate) params: Parameters,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
    pub(crate) audit: AuditWriter,
    pub(crate) log: audit_log::AuditLog,
    pub(crate) budgets: ReadBudgets,
    pub(crate) book: budget::BudgetBook,
    pub(crate) honeytokens: honeytoken::Honeytokens,
    pub(crate) notifiers: Vec<Arc<dyn Notifier>>,
    pub(crate) key_dir: KeyDir,
    pub(crate) principals: principal::PrincipalCache,
    pub(crate) lookups: lookup::LookupBatcher,
    pub(crate) auth: account::AuthState,
}

impl App {
    /// Opens the key store, loads (or creates, at first start) the data keys, derives the column
    /// keys, and starts the audit writer. Must run inside a Tokio runtime.
    pub async fn open(cfg: AppConfig) -> Result<App, AppError> {
        let key_dir = KeyDir::open(&cfg.key_dir)?;
        let honeytokens = honeytoken::Honeytokens::load(&cfg.key_dir)?;
        let kek = KeyFileKek::open(&key_dir, cfg.random.clone())?;
        let rows =
            load_or_create_keys(&cfg.store, &kek, cfg.random.as_ref(), cfg.clock.now()).await?;
        let keys = keys::Keys::open(
            kek,
            &rows,
            encrypted_columns(),
            vec![
                CIN_INDEX,
                IMMATRICULATION_INDEX,
                account::LOGIN_INDEX,
                account::SMS_PHONE_INDEX,
                declarations::DECLARATION_DIGEST,
            ],
            cfg.nonces.clone(),
        )?;
        let auth = account::AuthState::open(cfg.auth, &key_dir, cfg.random.as_ref())?;
        let (committed, to_seal) = tokio::sync::mpsc::channel(4_096);
        let audit = AuditWriter::start(cfg.store.clone(), committed);
        let seed = key_dir.secret(audit_log::SIGNING_KEY, cfg.random.as_ref())?;
        let log = audit_log::AuditLog::open(cfg.audit_log, seed.expose(), to_seal)?;
        let lookup_connections = match cfg.lookup_connections {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        let lookups = lookup::LookupBatcher::start(cfg.store.clone(), lookup_connections);
        let app = App {
            inner: Arc::new(Inner {
                store: cfg.store,
                keys,
                access_log_names: cfg.access_log_names,
                params: cfg.params,
                clock: cfg.clock,
                random: cfg.random,
                audit,
                log,
                budgets: cfg.budgets,
                book: budget::BudgetBook::default(),
                honeytokens,
                notifiers: cfg.notifiers,
                key_dir,
                principals: principal::PrincipalCache::default(),
                lookups,
                auth,
            }),
        };
        audit_log::start_sequencer(&app);
        budget::start_sharing(&app);
        app.refresh_keys().await?;
        every(&app, cfg.key_refresh, |app| async move {
            if let Err(e) = app.refresh_keys().await {
                tracing::warn!(error = %e, "data keys not refreshed");
            }
        });
        Ok(app)
    }

    /// Ready to serve: the database answers and the audit writer and lookup tasks run.
    pub async fn ready(&self) -> bool {
        self.inner.audit.is_running()
            && self.inner.lookups.is_running()
            && self.inner.store.ping().await.is_ok()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn params(&self) -> &Parameters {
        &self.inner.params
    }

    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub fn key_dir(&self) -> &KeyDir {
        &self.inner.key_dir
    }

    pub fn random(&self) -> &dyn Random {
        self.inner.random.as_ref()
    }

    /// A fresh random id in 1..2^63 (not sequential, not time-ordered), for rows created one at
    /// a time. Persons and employments, préétablis, declarations and ledger entries are numbered
    /// from counters instead (`Store::allocate`): rows created together are then neighbours in
    /// their tables and indexes. No id is a secret: the gate decides who reads what.
    pub(crate) fn new_id(&self) -> Result<i64, AppError> {
        let mut b = [0u8; 8];
        self.inner.random.fill(&mut b)?;
        Ok((u64::from_be_bytes(b) >> 1).max(1) as i64)
    }
}

async fn load_or_create_keys(
    store: &Store,
    kek: &dyn KeyEncryptionKey,
    random: &dyn Random,
    now: Timestamp,
) -> Result<Vec<store::DataKeyRow>, AppError> {
    let mut stored = store.data_keys().await?;
    if stored.is_empty() {
        let k = Keyring::new_data_key(kek, 1, random)?;
        match store.insert_data_key(k.id, &k.wrapped, now.0, true).await {
            // Another node created it first: use theirs.
            Ok(()) | Err(store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        stored = store.data_keys().await?;
    }
    Ok(stored)
}

/// Every encrypted column, as bound into its ciphertexts.
pub(crate) fn encrypted_columns() -> Vec<Column> {
    let mut encrypted: Vec<Column> = PersonField::ALL.iter().map(|f| person_column(*f)).collect();
    encrypted.extend([
        registry::CASE_REASON,
        account::FACTOR_SECRET,
        account::ENROLMENT_PHONE,
        rib::RIB_CHANGE,
        eid::EID_SECRET,
        declarations::PREETABLI_HEADER,
        declarations::PREETABLI_LINE,
        declarations::PREETABLI_EMPLOYEES,
        declarations::DECLARATION_HEADER,
        declarations::DECLARATION_LINE_BLOCK,
        declarations::DECLARATION_REJECTION,
    ]);
    encrypted
}

/// Runs `job` every `period` for as long as the application lives (a weak handle: it stops
/// when the last [`App`] is dropped), the first time after one period.
pub(crate) fn every<F, Fut>(app: &App, period: std::time::Duration, job: F)
where
    F: Fn(App) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(&app.inner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            job(App { inner }).await;
        }
    });
}

/// Lets the requests already running reach the queue before the group is closed: one yield to
/// the scheduler, then whatever arrived. Fewer, larger commits; no timer, so no added latency
/// when the server is idle.
pub(crate) async fn gather_more<T>(
    rx: &mut tokio::sync::mpsc::Receiver<T>,
    group: &mut Vec<T>,
    max: usize,
) {
    tokio::task::yield_now().await;
    while group.len() < max {
        match rx.try_recv() {
            Ok(x) => group.push(x),
            Err(_) => break,
        }
    }
}
