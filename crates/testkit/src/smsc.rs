//! A real SMPP peer for tests: the Node SMSC in `peers/smsc.js` (npm `smpp`), started on a free
//! 127.0.0.1 port and stopped on drop. It records each `submit_sm` as a JSON line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Smsc {
    pub port: u16,
    out: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Smsc {
    /// Starts the SMSC and waits until it listens. Needs `npm ci` in `crates/testkit/peers`
    /// (scripts/test does it).
    pub fn start() -> Smsc {
        let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers");
        assert!(
            peers.join("node_modules/smpp").is_dir(),
            "run `npm ci --prefix crates/testkit/peers` first (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("smsc.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("node")
            .arg(peers.join("smsc.js"))
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "SMSC did not start");
        Smsc {
            port,
            out,
            child,
            _dir: dir,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The texts received for `phone` (E.164), oldest first, with the data coding each came in.
    pub fn texts_to(&self, phone: &str) -> Vec<(String, u64)> {
        let digits = phone.trim_start_matches('+');
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["destination_addr"] == digits)
            .map(|v| {
                (
                    v["short_message"].as_str().unwrap_or_default().to_string(),
                    v["data_coding"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
