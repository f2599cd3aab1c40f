//! The two backends' schemas cannot drift apart.

use store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, sqlite_url, _) = testkit::fresh_store(store::Backend::Sqlite, dir.path()).await;
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
    // Keys, indexes (unique or not, partial or not), foreign keys and the triggers that guard
    // tables, too.
    let a = sqlite.constraints().await.unwrap();
    let b = pg.constraints().await.unwrap();
    for kind in ["index ", "unique ", "fk ", "guard "] {
        assert!(
            a.iter().any(|c| c.starts_with(kind)),
            "no {kind}read from SQLite: {a:?}"
        );
    }
    assert!(a.len() > 100, "constraints read: {}", a.len());
    let only_sqlite: Vec<_> = a.iter().filter(|c| !b.contains(c)).collect();
    let only_pg: Vec<_> = b.iter().filter(|c| !a.contains(c)).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "constraints drift:\n  SQLite only: {only_sqlite:#?}\n  PostgreSQL only: {only_pg:#?}"
    );
    // And an index gone from one backend is seen: the comparison reads what is there.
    let raw = sqlx::SqlitePool::connect(&sqlite_url).await.unwrap();
    sqlx::query("DROP INDEX employments_person")
        .execute(&raw)
        .await
        .unwrap();
    let after = sqlite.constraints().await.unwrap();
    assert!(a.contains(&"index employments(person_id,employer_id)".to_string()));
    assert!(!after.contains(&"index employments(person_id,employer_id)".to_string()));
    let _: &Store = &sqlite;
}
