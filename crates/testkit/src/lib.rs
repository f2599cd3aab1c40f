//! Boots the whole application on SQLite or PostgreSQL for integration tests.
//!
//! PostgreSQL: `DAMAN_TEST_PG_URL` names a server to use (a fresh database is created in it per
//! test); without it, the first test that needs one starts a throwaway cluster (initdb + pg_ctl in
//! a temporary directory, a free port on 127.0.0.1), shared by the test process and stopped when
//! the process exits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod eid;
mod fixture;
mod pg;
pub mod smsc;
pub mod soft_passkey;

pub use fixture::Fixture;
pub use pg::{PgCluster, pg_server_url};

use app::{App, AppConfig};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use domain::{Clock, Parameters, Role, Timestamp};
use kernel::{Binding, KernelConfig, Principal};
use server::{DevTokens, ServerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::{Backend, Store};
use tower::ServiceExt;
use vault::OsRandom;

/// Both backends, for tests that must hold on each.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A clock the test sets.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(t.0)))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    pub fn advance_seconds(&self, s: i64) {
        self.0.fetch_add(s * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// 2026-11-23T10:00:00Z.
pub const TEST_NOW: Timestamp = Timestamp(1_795_428_000_000_000);

/// A fresh, empty, migrated database on `backend`, with its URL.
/// A new, empty PostgreSQL database and a new login role without any right on it: (the
/// owner's URL, the role's name, the role's URL).
pub async fn fresh_pg_with_role() -> (String, String, String) {
    let owner_url = pg::fresh_database().await;
    let (role, url) = pg::fresh_role(&owner_url).await;
    (owner_url, role, url)
}

/// A migrated database: the store the application uses, its URL, and the URL of the role that
/// owns the schema. On PostgreSQL the application connects as a role of its own, with only the
/// rights `Store::grant_app_role` gives (as `database_owner_url` sets up in production), so
/// every PostgreSQL test runs with them; on SQLite the two URLs are the same file.
pub async fn fresh_store(backend: Backend, dir: &std::path::Path) -> (Store, String, String) {
    match backend {
        Backend::Sqlite => {
            std::fs::create_dir_all(dir.join("db")).unwrap();
            let url = format!("sqlite://{}", dir.join("db/daman.db").display());
            let store = Store::connect(&url, 8).await.unwrap();
            store.migrate().await.unwrap();
            (store, url.clone(), url)
        }
        Backend::Postgres => {
            let (owner_url, role, url) = fresh_pg_with_role().await;
            let owner = Store::connect(&owner_url, 1).await.unwrap();
            owner.migrate().await.unwrap();
            owner.grant_app_role(&role).await.unwrap();
            let store = Store::connect(&url, 8).await.unwrap();
            (store, url, owner_url)
        }
    }
}

/// How often a test app reloads its data keys (a rotation waits for it).
pub const KEY_REFRESH: std::time::Duration = std::time::Duration::from_millis(100);

/// The configuration of a test app whose files are under `dir`: SMS go to `<dir>/sms.jsonl`
/// ([`TestApp::sms_texts`]).
pub(crate) fn app_config(
    store: Store,
    dir: &std::path::Path,
    clock: Arc<ManualClock>,
    budgets: kernel::ReadBudgets,
    notifiers: Vec<Arc<dyn kernel::Notifier>>,
) -> AppConfig {
    AppConfig {
        kernel: KernelConfig {
            store,
            key_dir: dir.join("keys"),
            params: Parameters::morocco().unwrap(),
            clock,
            random: Arc::new(OsRandom),
            // As in the binary, so that every test encrypts with it.
            nonces: Arc::new(vault::ThreadRandom),
            lookup_connections: 2,
            // Tests seal the audit log themselves (Kernel::checkpoint_audit).
            audit_log: kernel::AuditLogConfig {
                origin: "daman.test/audit".into(),
                witness: dir.join("witness/audit-checkpoints"),
                interval: std::time::Duration::from_secs(3600),
            },
            budgets,
            notifiers,
            key_refresh: KEY_REFRESH,
            access_log_names: false,
            decoy_every: 0,
            sms: kernel::SmsConfig {
                sender: Some(Arc::new(auth::sms::FileSender::new(&dir.join("sms.jsonl")))),
                ..kernel::SmsConfig::default()
            },
        },
        auth: identity::AuthConfig::default(),
    }
}

/// The application, its HTTP router, and the handles a test needs.
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub tokens: Arc<DevTokens>,
    pub backend: Backend,
    /// The database as the application connects to it.
    pub url: String,
    /// The database as its owner connects to it (what the `raw_*` helpers use: someone with
    /// full access to the database, but no keys).
    pub owner_url: String,
    pub dir: tempfile::TempDir,
}

/// A JSON response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: serde_json::Value,
}

impl TestApp {
    /// A second daman process on the same database and key directory (another node), with the
    /// same clock.
    pub async fn another_node(&self) -> App {
        self.node_at(&self.url).await
    }

    /// [`TestApp::another_node`] connected as the database's owner (what `daman migrate`
    /// runs as where `database_owner_url` is set).
    pub async fn as_owner(&self) -> App {
        self.node_at(&self.owner_url).await
    }

    async fn node_at(&self, url: &str) -> App {
        let store = Store::connect(url, 4).await.unwrap();
        let mut cfg = app_config(
            store,
            self.dir.path(),
            self.clock.clone(),
            kernel::ReadBudgets::default(),
            Vec::new(),
        );
        cfg.kernel.sms.sender = None;
        App::open(cfg).await.unwrap()
    }

    /// The app with SMS going to `<dir>/sms.jsonl` ([`TestApp::sms_texts`]).
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}, 100_000).await
    }

    /// The app with its configuration changed by `tune` (which sees the default file sender
    /// already set), and this per-IP limit on authentication routes.
    pub async fn start_with(
        backend: Backend,
        tune: impl FnOnce(&mut AppConfig),
        auth_per_ip_per_minute: u32,
    ) -> TestApp {
        TestApp::start_full(
            backend,
            tune,
            auth_per_ip_per_minute,
            kernel::ReadBudgets::default(),
            Vec::new(),
        )
        .await
    }

    /// The app with these read budgets and alert notifiers too.
    pub async fn start_full(
        backend: Backend,
        tune: impl FnOnce(&mut AppConfig),
        auth_per_ip_per_minute: u32,
        budgets: kernel::ReadBudgets,
        notifiers: Vec<Arc<dyn kernel::Notifier>>,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (store, url, owner_url) = fresh_store(backend, dir.path()).await;
        let clock = ManualClock::at(TEST_NOW);
        let mut cfg = app_config(store, dir.path(), clock.clone(), budgets, notifiers);
        tune(&mut cfg);
        let app = App::open(cfg).await.unwrap();
        let tokens = Arc::new(DevTokens::open(&app).unwrap());
        let router = server::router(
            app.clone(),
            ServerConfig {
                dev_tokens: Some(tokens.clone()),
                max_in_flight: 256,
                max_body: 64 * 1024,
                auth_per_ip_per_minute,
            },
        );
        TestApp {
            app,
            router,
            clock,
            tokens,
            backend,
            url,
            owner_url,
            dir,
        }
    }

    /// A principal (created if needed) and a development token for it.
    pub async fn login(&self, label: &str, role: Role, binding: Binding) -> (Principal, String) {
        let p = self
            .app
            .kernel()
            .ensure_principal(Some(label), role, &binding)
            .await
            .unwrap();
        let token = self.tokens.mint(p.id, self.clock.now().plus_seconds(3600));
        (p, token)
    }

    /// Sends a request through the whole router (middleware included) and parses the JSON reply.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// Sends a request to the router; the body as JSON, or as a JSON string when it is not.
    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            json,
        }
    }

    /// A POST of raw bytes (e.g. an e-BDS file) with a token.
    pub async fn post_bytes(&self, path: &str, token: &str, bytes: Vec<u8>) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "text/plain")
            .body(Body::from(bytes))
            .unwrap();
        self.send(req).await
    }

    /// The texts the file sender sent to `phone` (E.164), oldest first.
    pub fn sms_texts(&self, phone: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("sms.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["to"] == phone)
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .collect()
    }

    /// A POST without a token.
    pub async fn post_anon(&self, path: &str, body: serde_json::Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Runs `sql` straight against the database, as someone with database access but no keys
    /// would (bypassing the application). `binds` are bound in order. Rows affected, or the
    /// database's refusal.
    pub async fn raw_execute(&self, sql: &str, binds: &[i64]) -> Result<u64, String> {
        macro_rules! run {
            ($pool:expr) => {{
                let pool = $pool.await.map_err(|e| e.to_string())?;
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(&pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }};
        }
        match self.backend {
            Backend::Sqlite => run!(sqlx::SqlitePool::connect(&self.owner_url)),
            Backend::Postgres => run!(sqlx::PgPool::connect(&self.owner_url)),
        }
    }

    /// Runs `sql` (one or more statements, no binds) straight against the database with the
    /// audit log in reach: on SQLite its files are attached as `audit` and `tree`, as the store
    /// does. What
    /// someone with database access but no keys could do to the log.
    pub async fn raw_audit(&self, sql: &str) -> Result<u64, String> {
        use sqlx::Connection;
        let e = |e: sqlx::Error| e.to_string();
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.owner_url)
                    .await
                    .map_err(e)?;
                let db = self.dir.path().join("db");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "ATTACH DATABASE '{}' AS audit; ATTACH DATABASE '{}' AS tree",
                    db.join("audit.db").display(),
                    db.join("audit-tree.db").display()
                )))
                .execute(&mut c)
                .await
                .map_err(e)?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(e)
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.owner_url)
                    .await
                    .map_err(e)?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(e)
            }
        }
    }

    /// What a dump of the main database holds outside its binary columns: for every table and
    /// every column that is not a blob, (table, column, each row's value as text; NULL as
    /// `None`), read straight from the database as its owner.
    pub async fn raw_dump(&self) -> Vec<(String, String, Vec<Option<String>>)> {
        macro_rules! dump {
            ($pool:expr, $columns:expr) => {{
                let pool = $pool.await.unwrap();
                let columns: Vec<(String, String)> =
                    sqlx::query_as($columns).fetch_all(&pool).await.unwrap();
                let mut out = Vec::with_capacity(columns.len());
                for (table, column) in columns {
                    let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
                    let values: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                    out.push((table, column, values));
                }
                out
            }};
        }
        match self.backend {
            Backend::Sqlite => dump!(
                sqlx::SqlitePool::connect(&self.owner_url),
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND upper(p.type) <> 'BLOB' ORDER BY 1, 2"
            ),
            Backend::Postgres => dump!(
                sqlx::PgPool::connect(&self.owner_url),
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND data_type <> 'bytea' ORDER BY 1, 2"
            ),
        }
    }

    /// The first column of every row of `sql`, as bytes, read straight from the database.
    pub async fn raw_blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        let q = sqlx::AssertSqlSafe(sql.to_string());
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.owner_url).await.unwrap();
                sqlx::query_scalar(q).fetch_all(&pool).await.unwrap()
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.owner_url).await.unwrap();
                sqlx::query_scalar(q).fetch_all(&pool).await.unwrap()
            }
        }
    }

    pub async fn audit_count(&self) -> i64 {
        self.app.kernel().store().count_audit().await.unwrap()
    }

    /// The audit events of one action, in order.
    pub async fn audit_events_of(&self, action: &str) -> Vec<store::AuditRow> {
        let all = self
            .app
            .kernel()
            .store()
            .audit_events(0, 1_000_000)
            .await
            .unwrap();
        all.into_iter()
            .filter(|(_, e)| e.action == action)
            .map(|(_, e)| e)
            .collect()
    }

    /// How many alerts of this kind (`honeytoken`, `read_budget`…) were raised.
    pub async fn alerts(&self, kind: &str) -> usize {
        let alerts = self.audit_events_of("alert").await;
        alerts.iter().filter(|e| e.outcome == kind).count()
    }
}
