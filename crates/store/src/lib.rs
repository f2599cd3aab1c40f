//! Storage: SQLite (embedded, WAL) and PostgreSQL behind one [`Store`].
//!
//! The store sees only ciphertext and blind indexes for personal fields: it has no key and no
//! way to decrypt. Each backend has its own migration set (`migrations/sqlite`,
//! `migrations/postgres`); [`Store::schema`] describes the live schema so a test can prove the two
//! never drift. SQL is written once in the dialect both accept (`$n` placeholders, `RETURNING`).

mod auth;
mod blocks;
mod declarations;
mod repo;
mod schema;
mod session;

pub use auth::*;
pub use declarations::*;
pub use repo::*;
pub use schema::{ColumnInfo, normalise_type};
pub use session::Session;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
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
}

/// How often the background checkpointer copies the write-ahead logs into the database files.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// SQLite: copies what was committed to the write-ahead logs (the registry's and the audit
/// log's) into the database files, every [`CHECKPOINT_EVERY`], on a connection of its own
/// from the pool. PASSIVE: it never waits for a reader or a writer, and never makes one wait;
/// a writer keeps appending to the log meanwhile. This is what SQLite recommends for a busy
/// writer: the cost of the checkpoint (copying and syncing the pages) leaves the commit path.
/// Ends with the pool.
async fn checkpointer(pool: sqlx::SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "background checkpoint failed");
        }
    }
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
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Statements are logged without their values; slow ones at debug level.
                .log_statements(log::LevelFilter::Trace)
                .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
                // A larger page cache per connection (32 MiB) keeps the indexes the gate searches
                // in memory, and the registry is read through a memory map (no read() call per
                // page). The audit log, which grows all the time, is not mapped.
                .pragma("cache_size", "-32768")
                // After a checkpoint, the write-ahead log shrinks back to 64 MiB at most.
                .pragma("journal_size_limit", "67108864")
                .pragma("mmap_size", "17179869184")
                // No commit copies the write-ahead log into the database file (SQLite's default
                // makes the commit that crosses 1 000 pages do it, inside the writer's time):
                // `checkpointer` does it in the background.
                .pragma("wal_autocheckpoint", "0");
            // The audit log lives in its own file beside the registry (`audit.db`), attached to
            // every connection: appending to it then does not invalidate the page cache of the
            // connections reading the registry, and it can be placed on its own volume.
            let audit = opts.get_filename().with_file_name("audit.db");
            let attach = format!(
                "ATTACH DATABASE '{}' AS audit; PRAGMA audit.journal_mode = WAL; PRAGMA audit.synchronous = FULL; PRAGMA audit.mmap_size = 0; PRAGMA audit.journal_size_limit = 67108864;",
                audit.display().to_string().replace('\'', "''")
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
            tokio::spawn(checkpointer(pool.clone()));
            Ok(Store {
                pool: Pool::Sqlite(pool),
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
            })
        } else {
            Err(StoreError::BadUrl)
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
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres")
                .run(p)
                .await
                .map_err(StoreError::Migrate),
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

    /// SQLite: copies the write-ahead logs into the database files and truncates them (after a
    /// bulk load, so the files on disk are the data). PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA main.wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
            sqlx::query("PRAGMA audit.wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }
}
