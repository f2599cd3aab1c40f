//! A throwaway PostgreSQL cluster for tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::sync::OnceCell;

/// A running cluster: its URL (to the `postgres` database) and data directory.
#[derive(Debug, Clone)]
pub struct PgCluster {
    pub url: String,
    pub data_dir: PathBuf,
}

static SERVER: OnceCell<String> = OnceCell::const_new();

/// The URL of a PostgreSQL server for tests: `DAMAN_TEST_PG_URL`, or a cluster started for this
/// process (stopped by a watchdog when the process exits).
pub async fn pg_server_url() -> String {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DAMAN_TEST_PG_URL") {
                return url;
            }
            let c = tokio::task::spawn_blocking(|| PgCluster::start(true))
                .await
                .unwrap();
            match c {
                Ok(c) => c.url,
                Err(e) => panic!("{e}"),
            }
        })
        .await
        .clone()
}

/// A new login role on the test server (no rights yet), and `url` with that role as its user.
pub(crate) async fn fresh_role(url: &str) -> (String, String) {
    let mut b = [0u8; 8];
    getrandom_fill(&mut b);
    let role = format!(
        "daman_app_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let admin = store_admin(url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    (role.clone(), format!("{scheme}://{role}@{host}"))
}

/// A new empty database in the test server; returns its URL.
pub(crate) async fn fresh_database() -> String {
    let server = pg_server_url().await;
    let mut b = [0u8; 8];
    getrandom_fill(&mut b);
    let name = format!(
        "daman_test_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let admin = store_admin(&server).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn store_admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

fn getrandom_fill(b: &mut [u8]) {
    getrandom::fill(b).expect("the OS random source works");
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if let Some(Some(p)) = from_path {
        return Some(p);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `sh -c script`, as the `postgres` user when we are root (initdb refuses to run as root).
fn sh(script: &str, as_postgres: bool) -> Result<String, String> {
    let out = if as_postgres {
        Command::new("runuser")
            .args(["-u", "postgres", "--", "sh", "-c", script])
            .output()
    } else {
        Command::new("sh").args(["-c", script]).output()
    }
    .map_err(|e| format!("cannot run a shell: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "`{script}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl PgCluster {
    /// initdb in a new temporary directory, then start on a free port on 127.0.0.1 only. With
    /// `watch`, a watchdog stops the cluster and deletes its directory when this process exits.
    pub fn start(watch: bool) -> Result<PgCluster, String> {
        let missing = "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package \
                       `postgresql` (apt-get install postgresql), or set DAMAN_TEST_PG_URL to a server to use";
        let initdb = find_bin("initdb").ok_or(missing)?;
        let pg_ctl = find_bin("pg_ctl").ok_or(missing)?;
        let root = is_root();
        let dir = sh("mktemp -d /tmp/daman-pg.XXXXXX", root)?;
        let data = Path::new(&dir).join("data");
        let port = free_port()?;
        sh(
            &format!(
                "'{}' -D '{}' -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null",
                initdb.display(),
                data.display()
            ),
            root,
        )?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {dir} -c fsync=on -c max_connections=200 -c shared_buffers=128MB"
        );
        sh(
            &format!(
                "'{}' -D '{}' -l '{dir}/log' -w -t 60 -o '{opts}' start >/dev/null",
                pg_ctl.display(),
                data.display()
            ),
            root,
        )?;
        if watch {
            let pid = std::process::id();
            let script = format!(
                "(while [ -d /proc/{pid} ]; do sleep 1; done; '{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}') \
                 </dev/null >/dev/null 2>&1 &",
                pg_ctl.display(),
                data.display()
            );
            sh(&script, root)?;
        }
        Ok(PgCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            data_dir: data,
        })
    }
}
