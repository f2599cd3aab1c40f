//! Storage: SQLite (embedded, WAL) and PostgreSQL behind one [`Store`].
//!
//! The store sees only ciphertext and blind indexes for personal fields: it has no key and no
//! way to decrypt. Each backend has its own migration set (`migrations/sqlite`,
//! `migrations/postgres`); [`Store::schema`] describes the live schema so a test can prove the two
//! never drift. SQL is written once in the dialect both accept (`$n` placeholders, `RETURNING`).

mod audit_log;
mod auth;
pub mod blocks;
mod claims;
mod declarations;
mod keys;
mod ledger;
mod releases;
mod renumber;
mod repo;
mod schema;
mod session;

pub use audit_log::{AuditCheckpointRow, ReadRow};
pub use auth::*;
pub use blocks::{LineBlock, LineBlocks, OpenedBlock};
pub use claims::{ClaimDecision, ClaimKind, ClaimRow, ClaimState, claim_line_subject};
pub use declarations::*;
pub use keys::*;
pub use ledger::*;
pub use releases::ContactReleaseRow;
pub use renumber::{PERSON_ID_BASE, PERSON_REFERENCES, PreetabliPersons, StoredPerson};
pub use repo::*;
pub use schema::{ColumnInfo, Constraint, normalise_type};
pub use session::Session;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Storage errors. `Display` never includes values (they could be personal data or SQL).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database refused a duplicate ({0})")]
    Conflict(&'static str),
    #[error("database URL not understood: use sqlite://PATH or postgres://…")]
    BadUrl,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(&'static str),
    #[error("the database stayed busy: {0}")]
    Busy(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error()
            && db.is_unique_violation()
        {
            return StoreError::Conflict("unique");
        }
        StoreError::Database(e)
    }
}

impl StoreError {
    /// The database is overloaded (no connection free in time): worth a 503 and a retry.
    pub fn is_overload(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body on whichever pool the store holds: `$p` is bound to the concrete pool.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A connection pool to one database, SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// SQLite: dropped with the last clone of the store, which stops the background
    /// checkpointer (and lets the pool close).
    _checkpointer: Option<std::sync::Arc<tokio::sync::oneshot::Sender<()>>>,
    /// SQLite: the frames in the registry's write-ahead log when the checkpointer last looked.
    log_frames: std::sync::Arc<AtomicI64>,
}

/// How often the background checkpointer copies the write-ahead logs into the database files.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How much of the registry's file SQLite reads through a memory map: 16 GiB.
const MMAP_SIZE: &str = "17179869184";

/// Frames in the registry's write-ahead log beyond which a bulk writer rewinds it between two
/// transactions ([`Store::fold_long_log`]): 256 MiB of 8 KiB pages.
const WAL_FOLD_FRAMES: i64 = 32_768;

/// Frames beyond which the checkpointer rewinds a log itself (RESTART), for writers that do not
/// fold it: 512 MiB, what the log's file keeps ([`WAL_KEEP_BYTES`]).
const WAL_RESTART_FRAMES: i64 = 2 * WAL_FOLD_FRAMES;

/// The most disk a registry's write-ahead log keeps once rewound: 512 MiB. The log is rewound,
/// not emptied, so the next frames overwrite blocks the file already has (see `checkpointer`);
/// an import's log peaks at 340–470 MiB at 4 million persons, so it keeps all of them.
const WAL_KEEP_BYTES: &str = "536870912";

/// SQLite: copies what was committed to the write-ahead logs (the registry's and the audit
/// log's) into the database files, every [`CHECKPOINT_EVERY`], on a connection of its own
/// from the pool. PASSIVE: it never waits for a reader or a writer, and never makes one wait;
/// a writer keeps appending to the log meanwhile. This is what SQLite recommends for a busy
/// writer: the cost of copying and syncing pages leaves the commit path.
///
/// A log is rewound only when a write starts after all of it was copied; a writer that
/// starts its next transaction right after committing (a bulk import) never gives it that
/// moment. Such a writer folds the log itself between two transactions
/// ([`Store::fold_long_log`], from the frame count the checkpointer last saw, kept in
/// `frames`). For any other writer, once a log holds more than [`WAL_RESTART_FRAMES`], the
/// checkpointer runs a RESTART checkpoint: it polls for the write lock (the busy timeout),
/// then holds writers back while it copies what PASSIVE checkpoints left (everything written
/// while it polled) and readers leave the log, and rewinds it (its time is logged at debug
/// level). During an import that took 0.2–5.3 s each time and held the writer up to a second.
/// The file keeps its size (up to [`WAL_KEEP_BYTES`]): emptying it (TRUNCATE) made every
/// frame after it grow the file again, and ext4 then allocates each new block and zeroes the
/// part of it a frame (24 + 8 192 bytes) does not cover, on the writer's thread: two fifths
/// of the time the kernel spent in an import's `pwrite`s (docs/performance.md). The end of an
/// import still empties the log ([`Store::checkpoint`]).
/// Stops when the last clone of the store is dropped.
async fn checkpointer(
    pool: sqlx::SqlitePool,
    frames: std::sync::Arc<AtomicI64>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if pool.is_closed() {
            return;
        }
        let Ok(c) = wal_checkpoint(&pool, LOGS, "PASSIVE").await else {
            continue;
        };
        frames.store(c.registry, Ordering::Relaxed);
        if c.longest > WAL_RESTART_FRAMES {
            let started = std::time::Instant::now();
            let rewound = wal_checkpoint(&pool, LOGS, "RESTART").await;
            tracing::debug!(
                frames = c.longest,
                busy = rewound.is_ok_and(|r| r.busy),
                ms = started.elapsed().as_millis() as u64,
                "write-ahead log rewound"
            );
        }
    }
}

/// What one checkpoint of every attached database reported.
struct Checkpointed {
    /// Another checkpoint or a writer held one of them off.
    busy: bool,
    /// Frames in the longest of the logs.
    longest: i64,
    /// Frames in the registry's log (`main`).
    registry: i64,
}

/// The write-ahead logs of a connection: the registry's and those of the attached audit log
/// and its tree.
const LOGS: &[&str] = &["main", "audit", "tree"];

/// One checkpoint of each of `schemas` (`registry` is 0 unless `main` is one of them).
async fn wal_checkpoint(
    pool: &sqlx::SqlitePool,
    schemas: &[&str],
    mode: &str,
) -> Result<Checkpointed> {
    use sqlx::Row;
    let mut out = Checkpointed {
        busy: false,
        longest: 0,
        registry: 0,
    };
    for &schema in schemas {
        let sql = format!("PRAGMA {schema}.wal_checkpoint({mode})");
        match sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await {
            Ok(r) => {
                let busy: i64 = r.try_get(0)?;
                let log: i64 = r.try_get(1)?;
                out.busy |= busy != 0;
                out.longest = out.longest.max(log);
                if schema == "main" {
                    out.registry = log;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, mode, "checkpoint failed");
                return Err(e.into());
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Opens `url` (`sqlite://PATH` creates the file; `postgres://…` must exist).
    /// SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged commit survives a crash.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::BadUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                // A new registry gets 8 KiB pages (one already created keeps its own).
                .page_size(8192)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // A query's rows reach the caller in runs of up to 4 096, not 50: a bulk read
                // (an import's préétablis) no longer wakes the caller every few rows.
                .row_buffer_size(4096)
                // Statements are logged without their values; slow ones at debug level.
                .log_statements(log::LevelFilter::Trace)
                .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
                // A larger page cache per connection (32 MiB) keeps the indexes the gate searches
                // in memory, and the registry is read through a memory map of up to 16 GiB (no
                // read() call per page; SQLite's compile-time cap is raised to allow it in
                // .cargo/config.toml). The audit log, which grows all the time, is not mapped.
                .pragma("cache_size", "-32768")
                // A rewound write-ahead log keeps at most this much of its file.
                .pragma("journal_size_limit", WAL_KEEP_BYTES)
                .pragma("mmap_size", MMAP_SIZE)
                // Statement journals (the undo of one statement inside a transaction: every
                // multi-row insert of an import) stay in memory instead of spilling to a
                // temporary file past 64 KiB (1 s of an import at 4 million lines, measured).
                // Temporary tables, large sorts (a migration's CREATE INDEX) and a VACUUM's
                // copy then stay in memory too; daman runs no VACUUM.
                .pragma("temp_store", "memory")
                // No commit copies the write-ahead log into the database file (SQLite's default
                // makes the commit that crosses 1 000 pages do it, inside the writer's time):
                // `checkpointer` does it in the background.
                .pragma("wal_autocheckpoint", "0");
            // The audit log lives in its own file beside the registry (`audit.db`), attached to
            // every connection: appending to it then does not invalidate the page cache of the
            // connections reading the registry, and it can be placed on its own volume.
            // The audit log's tree (leaf hashes, signed checkpoints) has a file of its own too
            // (`audit-tree.db`, schema `tree`): sealing writes there, so it never holds the audit
            // log's write lock while requests append.
            let audit = opts.get_filename().with_file_name("audit.db");
            let tree = opts.get_filename().with_file_name("audit-tree.db");
            let attach = format!(
                "ATTACH DATABASE '{}' AS audit; PRAGMA audit.journal_mode = WAL; PRAGMA audit.synchronous = FULL; PRAGMA audit.mmap_size = 0; PRAGMA audit.journal_size_limit = 67108864; \
                 ATTACH DATABASE '{}' AS tree; PRAGMA tree.journal_mode = WAL; PRAGMA tree.synchronous = FULL; PRAGMA tree.mmap_size = 0; PRAGMA tree.journal_size_limit = 67108864;",
                audit.display().to_string().replace('\'', "''"),
                tree.display().to_string().replace('\'', "''")
            );
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                // A local file does not drop connections: no ping round trip before each use.
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    let attach = attach.clone();
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute(sqlx::AssertSqlSafe(attach)).await.map(|_| ())
                    })
                })
                .connect_with(opts)
                .await?;
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let log_frames = std::sync::Arc::new(AtomicI64::new(0));
            tokio::spawn(checkpointer(pool.clone(), log_frames.clone(), stopped));
            Ok(Store {
                pool: Pool::Sqlite(pool),
                _checkpointer: Some(std::sync::Arc::new(stop)),
                log_frames,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::BadUrl)?
                .log_statements(log::LevelFilter::Trace)
                .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Store {
                pool: Pool::Postgres(pool),
                _checkpointer: None,
                log_frames: Default::default(),
            })
        } else {
            Err(StoreError::BadUrl)
        }
    }

    /// Closes every connection of the pool (SQLite folds its write-ahead logs into the
    /// database files as the last one closes).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the backend's migrations.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite")
                .run(p)
                .await
                .map_err(StoreError::Migrate),
            Pool::Postgres(p) => {
                let migrator = sqlx::migrate!("./migrations/postgres");
                match migrator.run(p).await {
                    Ok(()) => Ok(()),
                    // The application's own role may not create anything (the owner migrates:
                    // `database_owner_url`): it starts if every migration is already applied.
                    // Only a refusal for lack of rights, and only if the applied migrations
                    // are exactly these (versions and checksums).
                    Err(e) => {
                        let denied = matches!(
                            &e,
                            sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(d))
                                if d.code().as_deref() == Some("42501")
                        );
                        if !denied {
                            return Err(StoreError::Migrate(e));
                        }
                        let want: Vec<(i64, Vec<u8>)> = migrator
                            .iter()
                            .filter(|m| !m.migration_type.is_down_migration())
                            .map(|m| (m.version, m.checksum.to_vec()))
                            .collect();
                        let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                            "SELECT version, checksum FROM _sqlx_migrations \
                             WHERE success ORDER BY version",
                        )
                        .fetch_all(p)
                        .await
                        .unwrap_or_default();
                        if applied == want {
                            Ok(())
                        } else {
                            Err(StoreError::Migrate(e))
                        }
                    }
                }
            }
        }
    }

    /// PostgreSQL, run by the role that owns the schema after [`Store::migrate`]: grants the
    /// application's role `role` what it needs and nothing more. It reads and writes the
    /// registry, but cannot change or delete an audit event, leaf or checkpoint or a ledger
    /// entry, nor delete a declaration or change more of one than its status and ciphertexts
    /// (the triggers refuse these to the owner as well, and narrow the rest; the missing right
    /// stops the application's own connections even without them). SQLite has no roles:
    /// nothing to do.
    pub async fn grant_app_role(&self, role: &str) -> Result<()> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(());
        };
        if role.is_empty()
            || !role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(StoreError::Corrupt("application role name"));
        }
        let r = format!("\"{role}\"");
        let sql = format!(
            "GRANT USAGE ON SCHEMA public TO {r}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}; \
             REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_leaves, audit_checkpoints, audit_subjects, audit_subjects_upto, \
                 ledger_entries, ledger_postings, ledger_accounts FROM {r}; \
             REVOKE UPDATE, DELETE, TRUNCATE ON declarations, declaration_line_blocks FROM {r}; \
             GRANT UPDATE (status, header) ON declarations TO {r}; \
             GRANT UPDATE (data) ON declaration_line_blocks TO {r}; \
             REVOKE ALL ON _sqlx_migrations FROM {r}; GRANT SELECT ON _sqlx_migrations TO {r};"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(p).await?;
        Ok(())
    }

    /// The database role this store connects as (PostgreSQL), or `None` (SQLite).
    pub async fn role(&self) -> Result<Option<String>> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(p) => Ok(Some(
                sqlx::query_scalar("SELECT current_user::TEXT")
                    .fetch_one(p)
                    .await?,
            )),
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// SQLite, for a writer that starts each transaction right after the one before (a bulk
    /// import), between two of its transactions: when the registry's write-ahead log is longer
    /// than [`WAL_FOLD_FRAMES`], rewinds it with a RESTART checkpoint. The writer's lock is
    /// free at that moment, so the checkpoint takes it at once; it copies what the background
    /// checkpointer has not copied yet (about the last transaction), waits for the readers
    /// still on the log, and the next write starts the log again from its beginning.
    /// PostgreSQL: nothing to do.
    pub(crate) async fn fold_long_log(&self) -> Result<()> {
        let Pool::Sqlite(p) = &self.pool else {
            return Ok(());
        };
        let log = self.log_frames.load(Ordering::Relaxed);
        if log <= WAL_FOLD_FRAMES {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let busy = wal_checkpoint(p, &["main"], "RESTART").await?.busy;
        if !busy {
            // Rewound: no batch folds it again before the checkpointer has counted anew.
            self.log_frames.store(0, Ordering::Relaxed);
        }
        tracing::debug!(
            frames = log,
            busy,
            ms = started.elapsed().as_millis() as u64,
            "write-ahead log folded"
        );
        Ok(())
    }

    /// SQLite: copies the write-ahead logs into the database files and truncates them (after a
    /// bulk load, so the files on disk are the data). PostgreSQL: nothing to do.
    /// Retried while the background checkpointer holds the checkpoint lock.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.pool {
            for _ in 0..200 {
                if !wal_checkpoint(p, LOGS, "TRUNCATE").await?.busy {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Err(StoreError::Busy(
                "the write-ahead log could not be checkpointed",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new SQLite store on one connection, in a temporary directory that lives as long as
    /// the returned guard.
    async fn new_sqlite_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("daman.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        (dir, store)
    }

    fn sqlite_pool(store: &Store) -> &SqlitePool {
        let Pool::Sqlite(p) = &store.pool else {
            panic!("a SQLite store")
        };
        p
    }

    /// Commits `rows` rows of a table `filler` (created if need be), one page each: as many
    /// frames in the write-ahead log.
    async fn fill(p: &SqlitePool, rows: i64) {
        sqlx::query("CREATE TABLE IF NOT EXISTS filler (data BLOB NOT NULL)")
            .execute(p)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO filler SELECT zeroblob(7000) FROM n",
        )
        .bind(rows)
        .execute(p)
        .await
        .unwrap();
    }

    /// SQLite keeps the smaller of `mmap_size` and the cap it was compiled with (2 GiB by
    /// default on Linux): a build without the raised cap (.cargo/config.toml) would read a
    /// registry past its first 2 GiB one read() call a page. A new registry has 8 KiB pages.
    #[tokio::test]
    async fn the_registry_is_mapped_up_to_16_gib() {
        let (_dir, store) = new_sqlite_store().await;
        let p = sqlite_pool(&store);
        let mapped = pragma_number(p, "mmap_size").await;
        assert_eq!(mapped.to_string(), MMAP_SIZE);
        let page = pragma_number(p, "page_size").await;
        assert_eq!(page, 8192, "a new registry's page size");
    }

    /// A write-ahead log is rewound without emptying its file: once the checkpointer has
    /// copied all of it, the next commit writes over the start of the file, which keeps its
    /// size (and its blocks on disk).
    #[tokio::test]
    async fn a_long_log_is_rewound_and_keeps_its_file() {
        let (dir, store) = new_sqlite_store().await;
        let p = sqlite_pool(&store);
        let wal = dir.path().join("daman.db-wal");
        // 17 384 frames (136 MiB) in one commit.
        let rows = 17_384;
        fill(p, rows).await;
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > rows as u64 * 8192, "the log holds the commit");
        // Small commits until one lands at the start of a rewound log.
        let mut rewound = false;
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sqlx::query("INSERT INTO filler VALUES (x'00')")
                .execute(p)
                .await
                .unwrap();
            let frames = wal_checkpoint(p, LOGS, "PASSIVE").await.unwrap().registry;
            if frames < 100 {
                rewound = true;
                break;
            }
        }
        assert!(rewound, "the checkpointer rewound the log");
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            grown,
            "a rewound log keeps its file"
        );
    }

    /// A bulk writer that folds a long log between two transactions writes its next one at the
    /// start of the log: it does not wait for the checkpointer to find a moment when the log
    /// is all copied and no one writes.
    #[tokio::test]
    async fn a_bulk_writer_folds_a_long_log_between_its_transactions() {
        let (_dir, store) = new_sqlite_store().await;
        let p = sqlite_pool(&store);
        fill(p, 2_000).await;
        // As the checkpointer would have seen a log past the threshold.
        store
            .log_frames
            .store(WAL_FOLD_FRAMES + 1, Ordering::Relaxed);
        store.fold_long_log().await.unwrap();
        assert_eq!(
            store.log_frames.load(Ordering::Relaxed),
            0,
            "the fold rewound the log"
        );
        fill(p, 10).await;
        let frames = wal_checkpoint(p, LOGS, "PASSIVE").await.unwrap().registry;
        assert!(
            frames < 100,
            "the next commit starts the log again: {frames} frames in it"
        );
        // Below the threshold, nothing is done.
        fill(p, 2_000).await;
        store.log_frames.store(WAL_FOLD_FRAMES, Ordering::Relaxed);
        store.fold_long_log().await.unwrap();
        assert_eq!(store.log_frames.load(Ordering::Relaxed), WAL_FOLD_FRAMES);
    }

    /// Migration 0019 rebuilds SQLite's employments in the order of their key: every row and
    /// value is kept, `id` stays unique, and the table has no rowid left.
    #[tokio::test]
    async fn migration_0019_keeps_every_employment() {
        let (_dir, store) = new_sqlite_store().await;
        let pool = sqlite_pool(&store);
        // One connection: employments without their employers and persons.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(pool)
            .await
            .unwrap();
        migrate_up_to(pool, 18).await;
        // Created in person order, as `daman load` registers them: employers interleaved.
        /// id, employer, person, start, end, created.
        type Given = (i64, i64, i64, &'static str, Option<&'static str>, i64);
        let rows: Vec<Given> = vec![
            (7, 30, 1, "2020-01-01", Some("2021-06-30"), 100),
            (3, 10, 1, "2022-03-01", None, 101),
            (9, 30, 2, "2019-05-01", None, 102),
            (4, 10, 3, "2018-01-01", Some("2019-01-01"), 103),
            (5, 10, 3, "2023-02-01", None, 104),
            (8, 20, 4, "2024-07-01", None, 105),
        ];
        for (id, employer, person, start, end, at) in &rows {
            sqlx::query(
                "INSERT INTO employments (id, employer_id, person_id, start_date, end_date, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(employer)
            .bind(person)
            .bind(start)
            .bind(end)
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();
        type Row = (i64, i64, i64, String, Option<String>, i64);
        let after: Vec<Row> = sqlx::query_as(
            "SELECT id, employer_id, person_id, start_date, end_date, created_at FROM employments",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        // Read back in key order, which is now the table's own order.
        let mut expected: Vec<Row> = rows
            .iter()
            .map(|(i, e, p, s, x, a)| (*i, *e, *p, s.to_string(), x.map(str::to_string), *a))
            .collect();
        expected.sort_by(|a, b| (a.1, a.2, &a.3).cmp(&(b.1, b.2, &b.3)));
        assert_eq!(after, expected);
        let no_rowid = sqlx::query("SELECT rowid FROM employments")
            .fetch_all(pool)
            .await;
        assert!(no_rowid.is_err(), "employments still has a rowid");
        let same_id = sqlx::query(
            "INSERT INTO employments (id, employer_id, person_id, start_date, end_date, created_at) \
             VALUES (5, 99, 99, '2025-01-01', NULL, 1)",
        )
        .execute(pool)
        .await;
        assert!(
            same_id.is_err(),
            "a second employment with id 5 was accepted"
        );
    }

    /// Migration 0020 rebuilds SQLite's ledger entries so that an entry of the whole fund (an
    /// allocation) has no employer: every entry is kept, postings and payments still refer to
    /// them, the ledger stays append-only, and foreign keys are on again after it.
    #[tokio::test]
    async fn migration_0020_keeps_the_ledger_and_lets_an_entry_have_no_employer() {
        let (_dir, store) = new_sqlite_store().await;
        let pool = sqlite_pool(&store);
        migrate_up_to(pool, 19).await;
        let exec = |sql: &'static str| sqlx::query(sql).execute(pool);
        exec("INSERT INTO employers (id, affiliate_number, ice, name, activity, city, created_at) VALUES (1, 1000001, '001', 'E', 'A', 'C', 0)")
            .await
            .unwrap();
        exec("INSERT INTO ledger_accounts (id, name) VALUES (1, 'receivable'), (2, 'bank')")
            .await
            .unwrap();
        exec(
            "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) VALUES \
             (7, 'declaration:3', 'declaration', 1, 202610, 100), \
             (9, 'payment:REF-1', 'payment', 1, 202610, 101)",
        )
        .await
        .unwrap();
        exec(
            "INSERT INTO ledger_postings (entry_id, account_id, amount) VALUES \
             (7, 1, 500), (7, 2, -500), (9, 2, 500), (9, 1, -500)",
        )
        .await
        .unwrap();
        exec(
            "INSERT INTO payments (id, employer_id, period, bank_reference, amount, paid_on, entry_id, received_at) \
             VALUES (1, 1, 202610, 'REF-1', 500, '2026-11-05', 9, 101)",
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        type Entry = (i64, String, String, Option<i64>, i64, i64);
        let entries: Vec<Entry> = sqlx::query_as(
            "SELECT id, key, kind, employer_id, period, at FROM ledger_entries ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(
            entries,
            vec![
                (
                    7,
                    "declaration:3".into(),
                    "declaration".into(),
                    Some(1),
                    202610,
                    100
                ),
                (
                    9,
                    "payment:REF-1".into(),
                    "payment".into(),
                    Some(1),
                    202610,
                    101
                ),
            ]
        );
        let joined: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id \
             JOIN payments y ON y.entry_id = e.id",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(joined, 2);
        assert_eq!(pragma_number(pool, "foreign_keys").await, 1);
        let index: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' \
             AND name = 'ledger_entries_employer' AND tbl_name = 'ledger_entries'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(index, 1);
        // An allocation has no employer; an entry still cannot name an unknown one, nor be
        // changed or removed, and its key is still unique.
        exec(
            "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) \
             VALUES (10, 'allocation:10', 'allocation', NULL, 202610, 102)",
        )
        .await
        .unwrap();
        for (sql, why) in [
            (
                "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) \
                 VALUES (11, 'allocation:11', 'allocation', 2, 202610, 102)",
                "FOREIGN KEY",
            ),
            (
                "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) \
                 VALUES (12, 'allocation:10', 'allocation', NULL, 202610, 102)",
                "UNIQUE",
            ),
            ("UPDATE ledger_entries SET period = 1", "append-only"),
            ("DELETE FROM ledger_entries", "append-only"),
        ] {
            let e = exec(sql).await.unwrap_err().to_string();
            assert!(e.contains(why), "{sql}: {e}");
        }
    }

    /// Applies SQLite's migrations up to `version` (the database as it was before a later one).
    async fn migrate_up_to(pool: &SqlitePool, version: i64) {
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        before.run(pool).await.unwrap();
    }

    /// The value of a numeric pragma on one of the pool's connections.
    async fn pragma_number(p: &sqlx::SqlitePool, name: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(p)
            .await
            .unwrap()
    }

    /// The options the bundled SQLite was compiled with (`PRAGMA compile_options`).
    async fn compile_options(p: &sqlx::SqlitePool) -> Vec<String> {
        sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(p)
            .await
            .unwrap()
    }

    /// SQLite is built without its two process-wide locks (.cargo/config.toml): memory
    /// statistics (a global mutex around every allocation) and memory management (one page
    /// cache group, behind one mutex, for every connection).
    #[tokio::test]
    async fn sqlite_takes_no_global_lock_to_allocate() {
        let (_dir, store) = new_sqlite_store().await;
        let options = compile_options(sqlite_pool(&store)).await;
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    /// SQLite takes each connection's page cache from the allocator in one block the size of
    /// the cache (.cargo/config.toml), not page by page: freed and taken again a page at a
    /// time, it made the allocator give memory back and fault it in again at every import
    /// batch (docs/performance.md).
    #[tokio::test]
    async fn sqlite_allocates_a_page_cache_whole() {
        let (_dir, store) = new_sqlite_store().await;
        let p = sqlite_pool(&store);
        let cache = pragma_number(p, "cache_size").await;
        let whole = format!("DEFAULT_PCACHE_INITSZ={cache}");
        let options = compile_options(p).await;
        assert!(options.contains(&whole), "{whole} not in {options:?}");
    }
}
