//! The two backends' schemas cannot drift apart.

use store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, _, _) = testkit::fresh_store(store::Backend::Sqlite, dir.path()).await;
    let (pg, _, _) = testkit::fresh_store(store::Backend::Postgres, dir.path()).await;
    let a = sqlite.schema().await.unwrap();
    let b = pg.schema().await.unwrap();
    assert!(a.len() > 40, "schema read: {} columns", a.len());
    assert!(
        a.iter().all(|c| c.family != "other"),
        "unmapped SQLite type: {:?}",
        a.iter().find(|c| c.family == "other")
    );
    let only_sqlite: Vec<_> = a.iter().filter(|c| !b.contains(c)).collect();
    let only_pg: Vec<_> = b.iter().filter(|c| !a.contains(c)).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "drift:\n  SQLite only: {only_sqlite:?}\n  PostgreSQL only: {only_pg:?}"
    );
    let _: &Store = &sqlite;
}
