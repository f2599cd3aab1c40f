//! A fast fixture for the rules of the kernel and the capability services: the application
//! on SQLite, without the HTTP server, on a copy of a database migrated once per test process
//! (the migrations run once, not once per test). End-to-end behaviour, on both backends, is
//! the integration binary's ([`crate::TestApp`]).

use crate::{ManualClock, TEST_NOW, app_config, fresh_store};
use app::App;
use domain::Role;
use kernel::{Binding, Principal, ReadBudgets};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use store::{Backend, Store};

/// The migrated, empty database every fixture starts from: `<dir>/db/*`, made on first use.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("daman-fixture-")
            .tempdir()
            .unwrap()
            .keep();
        let at = dir.clone();
        // Its own runtime: the first fixture's may be a single-threaded test runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (store, _, _) = fresh_store(Backend::Sqlite, &at).await;
                store.close().await;
            });
        })
        .join()
        .unwrap();
        dir
    })
}

/// The application over a copy of the template database, with a manual clock and SMS going to
/// `<dir>/sms.jsonl`.
pub struct Fixture {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        for f in std::fs::read_dir(template().join("db")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), db.join(f.file_name())).unwrap();
        }
        let url = format!("sqlite://{}", db.join("daman.db").display());
        let store = Store::connect(&url, 4).await.unwrap();
        let clock = ManualClock::at(TEST_NOW);
        let mut cfg = app_config(
            store,
            dir.path(),
            clock.clone(),
            ReadBudgets::default(),
            vec![],
        );
        cfg.kernel.lookup_connections = 1;
        let app = App::open(cfg).await.unwrap();
        Fixture { app, clock, dir }
    }

    /// A principal of this role, bound as given (created if needed).
    pub async fn principal(&self, label: &str, role: Role, binding: Binding) -> Principal {
        self.app
            .kernel()
            .ensure_principal(Some(label), role, &binding)
            .await
            .unwrap()
    }
}
