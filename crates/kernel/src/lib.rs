//! The kernel of the application layer: what every capability shares and nothing else.
//!
//! - **The gate** ([`Kernel::reveal`], [`gate`]): the one way a person's fields leave storage in
//!   plaintext. It resolves the subject, gathers the facts the pure policy
//!   (`domain::access::decide`) needs, decides, makes the audit entry durable, and only then
//!   decrypts, masked unless a full reveal was asked for and allowed.
//! - **Principals and capabilities** ([`principal`], [`capability`]): who is asking, and the
//!   rights only the kernel can hand out ([`Registrar`], [`Declarant`]).
//! - **The audit log**: the event builder ([`event`]), group commit ([`writer`]) and the
//!   sequencer that seals, verifies and proves ([`sequencer`]).
//! - **Read budgets and honeytokens** ([`budget`], [`honeytoken`]), **keys** ([`keys`]: the live
//!   keyring, rotation, lockdown; [`columns`]: every sealed column), **batched lookups**
//!   ([`lookup`]), **sessions** as requests present them ([`session`]), **SMS** ([`sms`]).
//!
//! Capability crates (identity, registry, contributions, ledger) are services over a
//! [`Kernel`]; they depend on it, never it on them.

pub mod budget;
pub mod capability;
mod claim;
pub mod columns;
pub mod employer;
mod error;
pub mod event;
pub mod gate;
pub mod honeytoken;
pub mod keys;
mod lookup;
pub mod principal;
pub mod principals;
mod renumber;
pub mod sequencer;
pub mod session;
pub mod sms;
mod verify;
pub mod writer;

pub use budget::{Alert, LogNotifier, Notifier, ReadBudgets, WebhookNotifier};
pub use capability::{Actor, Declarant, Registrar};
pub use columns::{CIN_INDEX, IMMATRICULATION_INDEX, PERSONS, person_column};
pub use error::{AppError, Clash, Missing, stored_period};
pub use event::Audit;
pub use gate::{CASE_DAYS, PersonView, RevealInput, RevealRequest, Subject, id_string};
pub use keys::{KeyInfo, KeyProgress, NODE_LIVE_SECONDS, RekeyPass, Rotation};
pub use principal::Principal;
pub use principals::{Binding, PRINCIPAL_TTL_SECONDS};
pub use renumber::RenumberProgress;
pub use sequencer::{AuditLogConfig, CheckpointInfo, LogProblem, VerifyReport, audit_event};
pub use session::{STEP_UP_SECONDS, SessionInfo, StepUp, is_staff, timeouts};
pub use sms::SmsConfig;
/// What the capability crates need of the vault, which they do not depend on: they hold keys
/// only as a [`keys::Sealer`] and never a keyring (docs/architecture.md, "One gate").
pub use vault::{KeyDir, MacKey, Random, hex};
pub use writer::AuditWriter;

use domain::{Clock, Parameters, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use store::Store;
use vault::{KeyEncryptionKey, KeyFileKek, Keyring};

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

/// What the kernel needs from the outside world.
pub struct KernelConfig {
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
    /// Where SMS go and how many may go.
    pub sms: SmsConfig,
    /// One immatriculation number in every this many is a decoy's, at a keyed place in its
    /// block ([`Kernel::decoy_slot`]); 0: none.
    pub decoy_every: u32,
}

/// The kernel: cheap to clone, shared by every service and request.
#[derive(Clone)]
pub struct Kernel {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) keys: keys::Keys,
    pub(crate) access_log_names: bool,
    pub(crate) decoy_every: u32,
    pub(crate) params: Parameters,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
    pub(crate) audit: AuditWriter,
    pub(crate) log: sequencer::AuditLog,
    pub(crate) budgets: ReadBudgets,
    pub(crate) book: budget::BudgetBook,
    pub(crate) honeytokens: honeytoken::Honeytokens,
    pub(crate) notifiers: Vec<Arc<dyn Notifier>>,
    pub(crate) key_dir: KeyDir,
    pub(crate) principals: principals::PrincipalCache,
    pub(crate) lookups: lookup::LookupBatcher,
    pub(crate) sms: SmsConfig,
}

impl Kernel {
    /// Opens the key store, loads (or creates, at first start) the data keys, derives the column
    /// keys, and starts the audit writer, the sequencer, the lookups and the budget exchange.
    /// Must run inside a Tokio runtime.
    pub async fn open(cfg: KernelConfig) -> Result<Kernel, AppError> {
        let key_dir = KeyDir::open(&cfg.key_dir)?;
        let honeytokens = honeytoken::Honeytokens::load(&cfg.key_dir)?;
        let kek = KeyFileKek::open(&key_dir, cfg.random.clone())?;
        let rows =
            load_or_create_keys(&cfg.store, &kek, cfg.random.as_ref(), cfg.clock.now()).await?;
        let keys = keys::Keys::open(
            kek,
            &rows,
            columns::encrypted(),
            columns::BLIND_INDEXES.to_vec(),
            cfg.nonces.clone(),
        )?;
        let (committed, to_seal) = tokio::sync::mpsc::channel(4_096);
        let audit = AuditWriter::start(cfg.store.clone(), committed);
        let seed = key_dir.secret(sequencer::SIGNING_KEY, cfg.random.as_ref())?;
        let log = sequencer::AuditLog::open(cfg.audit_log, seed.expose(), to_seal)?;
        let lookup_connections = match cfg.lookup_connections {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        let lookups = lookup::LookupBatcher::start(cfg.store.clone(), lookup_connections);
        let kernel = Kernel {
            inner: Arc::new(Inner {
                store: cfg.store,
                keys,
                access_log_names: cfg.access_log_names,
                decoy_every: cfg.decoy_every,
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
                principals: principals::PrincipalCache::default(),
                lookups,
                sms: cfg.sms,
            }),
        };
        sequencer::start_sequencer(&kernel);
        budget::start_sharing(&kernel);
        kernel.refresh_keys().await?;
        kernel.every(cfg.key_refresh, |k| async move {
            if let Err(e) = k.refresh_keys().await {
                tracing::warn!(error = %e, "data keys not refreshed");
            }
        });
        Ok(kernel)
    }

    /// Ready to serve: the database answers and the audit writer and lookup tasks run.
    pub async fn ready(&self) -> bool {
        self.inner.audit.is_running()
            && self.inner.lookups.is_running()
            && self.inner.store.ping().await.is_ok()
    }

    /// The store: ciphertext only. Capability crates read and write their rows through it.
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

    /// The source of secrets (keys, tokens, codes, salts).
    pub fn random(&self) -> &dyn Random {
        self.inner.random.as_ref()
    }

    /// Whether "who read my data" names the reader's account.
    pub fn access_log_names(&self) -> bool {
        self.inner.access_log_names
    }

    /// A fresh random id in 1..2^63 (not sequential, not time-ordered), for rows created one at
    /// a time. Persons and employments, préétablis, declarations and ledger entries are numbered
    /// from counters instead (`Store::allocate`): rows created together are then neighbours in
    /// their tables and indexes. No id is a secret: the gate decides who reads what.
    pub fn new_id(&self) -> Result<i64, AppError> {
        let mut b = [0u8; 8];
        self.inner.random.fill(&mut b)?;
        Ok((u64::from_be_bytes(b) >> 1).max(1) as i64)
    }

    /// Runs `job` every `period` for as long as the kernel lives (a weak handle: it stops
    /// when the last [`Kernel`] is dropped), the first time after one period.
    pub fn every<F, Fut>(&self, period: std::time::Duration, job: F)
    where
        F: Fn(Kernel) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                job(Kernel { inner }).await;
            }
        });
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
