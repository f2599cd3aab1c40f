//! Configuration: one TOML file plus `DAMAN_*` environment variables (which win), unknown keys
//! refused. `daman.example.toml` at the repository root documents every key.

mod sections;

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where daman keeps its data: `db/` (the SQLite database) and `keys/` (key files).
    pub data_dir: PathBuf,
    /// The database. Default: SQLite at `<data_dir>/db/daman.db`.
    pub database_url: Option<String>,
    /// PostgreSQL: the role that owns the schema, for migrations. When set, daman migrates
    /// through it and grants `database_url`'s role only what the application needs: that role
    /// cannot change or delete audit entries or ledger entries, nor delete declarations or
    /// change more of one than its status and ciphertexts. When unset,
    /// `database_url`'s role migrates and owns everything (the triggers still refuse changes).
    pub database_owner_url: Option<String>,
    /// The key directory (key-encryption key, index key). Default: `<data_dir>/keys`. Must not be
    /// inside the database directory.
    pub key_dir: Option<PathBuf>,
    /// Address to listen on.
    pub listen: String,
    /// Accept development tokens from `daman dev-token`. Never in production.
    pub dev_mode: bool,
    /// Database connections in the pool.
    pub max_connections: u32,
    /// Connections serving the gate's batched lookups; 0 = half the processor cores (at least 1).
    pub lookup_connections: usize,
    /// Requests in flight before new ones are shed with 503.
    pub max_in_flight: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// A parameter-table file replacing the shipped Moroccan tables.
    pub parameters_file: Option<PathBuf>,
    /// Log filter (`info`, `daman=debug,server=debug`, …). Logs never contain personal data.
    pub log: String,
    /// The portal's public address: the WebAuthn origin, and links in messages.
    pub public_url: String,
    /// The WebAuthn relying-party id (a domain). Default: the host of `public_url`.
    pub webauthn_rp_id: Option<String>,
    /// Argon2id memory in KiB (at least 19456) and passes (at least 2).
    pub argon2_memory_kib: u32,
    pub argon2_passes: u32,
    /// Requests one client address may make to each authentication route per minute.
    pub auth_per_ip_per_minute: u32,
    /// How long a new RIB waits before it takes effect, in hours.
    pub rib_cooling_off_hours: i64,
    /// Where SMS go: `smpp`, `http`, `file` (development mode only: codes in clear in
    /// `sms_file`) or `none`. Empty: `file` in development mode, `none` otherwise.
    pub sms_sender: String,
    /// The file the `file` sender appends to. Default: `<data_dir>/sms.jsonl`.
    pub sms_file: Option<PathBuf>,
    /// The `http` sender: the gateway's URL and a file holding its bearer key.
    pub sms_http_url: Option<String>,
    pub sms_http_key_file: Option<PathBuf>,
    /// The `smpp` sender: the SMSC's host:port, the account, a file holding its password, and
    /// the sender name shown on phones.
    pub smpp_address: Option<String>,
    pub smpp_system_id: Option<String>,
    pub smpp_password_file: Option<PathBuf>,
    pub smpp_source: String,
    /// The national E-ID (OpenID Connect): the provider's issuer URL (unset: no E-ID login), the
    /// client daman is registered as, a file holding its secret, the callback registered with the
    /// provider (default `<public_url>/api/v1/auth/eid/callback`), the claim holding the CIN and
    /// the scopes that release it.
    pub eid_issuer: Option<String>,
    pub eid_client_id: String,
    pub eid_client_secret_file: Option<PathBuf>,
    pub eid_redirect_url: Option<String>,
    pub eid_national_id_claim: String,
    pub eid_scopes: Vec<String>,
    /// SMS limits: per number per hour and per day, and in all per hour.
    pub sms_per_number_hour: i64,
    pub sms_per_number_day: i64,
    pub sms_global_hour: i64,
    /// The audit log's name in its signed checkpoints (and its key's name). Default:
    /// `<host of public_url>/audit`.
    pub audit_origin: Option<String>,
    /// The witness file every audit checkpoint is appended to. Default:
    /// `<data_dir>/witness/audit-checkpoints`. Refused inside the database directory; in
    /// production, another machine's disk (a network mount) or a file shipped off the host.
    pub audit_witness: Option<PathBuf>,
    /// How often the sequencer seals new audit entries into a signed checkpoint, in ms.
    pub audit_checkpoint_ms: u64,
    /// How often each process reloads the data keys and reports them to a key rotation, in ms
    /// (at most 5 000: a process silent for 10 s is taken for gone).
    pub key_refresh_ms: u64,
    /// Whether "who read my data" shows insured persons the account name of whoever read
    /// their record (by default: the role, unit and purpose only).
    pub access_log_names: bool,
    /// One immatriculation number in every this many goes to a decoy person (honeytokens
    /// spread through the number space); 0: none.
    pub decoy_every: u32,
    /// Read budgets: distinct persons an agent, and an employer user, may have revealed per
    /// clock hour and per calendar day (UTC). Crossing one refuses the read, locks the account
    /// pending review by a security officer and raises an alert.
    pub read_budget_agent_hour: u32,
    pub read_budget_agent_day: u32,
    pub read_budget_employer_hour: u32,
    pub read_budget_employer_day: u32,
    /// Alerts are written to the audit log and the service's log; also POSTed as JSON here
    /// (https, or http://127.0.0.1) when set.
    pub alert_webhook: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("daman-data"),
            database_url: None,
            database_owner_url: None,
            key_dir: None,
            listen: "127.0.0.1:8080".into(),
            dev_mode: false,
            max_connections: 8,
            lookup_connections: 0,
            max_in_flight: 1024,
            max_body: 1 << 20,
            parameters_file: None,
            log: "info".into(),
            public_url: "http://localhost:8080".into(),
            webauthn_rp_id: None,
            argon2_memory_kib: 19 * 1024,
            argon2_passes: 2,
            auth_per_ip_per_minute: 30,
            rib_cooling_off_hours: 72,
            sms_sender: String::new(),
            sms_file: None,
            sms_http_url: None,
            sms_http_key_file: None,
            smpp_address: None,
            smpp_system_id: None,
            smpp_password_file: None,
            smpp_source: "DAMAN".into(),
            eid_issuer: None,
            eid_client_id: "daman".into(),
            eid_client_secret_file: None,
            eid_redirect_url: None,
            eid_national_id_claim: "national_id".into(),
            eid_scopes: vec!["national_id".into()],
            sms_per_number_hour: 5,
            sms_per_number_day: 10,
            sms_global_hour: 10_000,
            audit_origin: None,
            audit_witness: None,
            audit_checkpoint_ms: 1_000,
            key_refresh_ms: 1_000,
            access_log_names: false,
            decoy_every: 1_000,
            read_budget_agent_hour: 60,
            read_budget_agent_day: 300,
            read_budget_employer_hour: 500,
            read_budget_employer_day: 5_000,
            alert_webhook: None,
        }
    }
}

/// Environment variables understood, with the key each sets.
const ENV_KEYS: &[(&str, &str)] = &[
    ("DAMAN_DATA_DIR", "data_dir"),
    ("DAMAN_DATABASE_URL", "database_url"),
    ("DAMAN_DATABASE_OWNER_URL", "database_owner_url"),
    ("DAMAN_KEY_DIR", "key_dir"),
    ("DAMAN_LISTEN", "listen"),
    ("DAMAN_DEV_MODE", "dev_mode"),
    ("DAMAN_MAX_CONNECTIONS", "max_connections"),
    ("DAMAN_LOOKUP_CONNECTIONS", "lookup_connections"),
    ("DAMAN_MAX_IN_FLIGHT", "max_in_flight"),
    ("DAMAN_MAX_BODY", "max_body"),
    ("DAMAN_PARAMETERS_FILE", "parameters_file"),
    ("DAMAN_LOG", "log"),
    ("DAMAN_PUBLIC_URL", "public_url"),
    ("DAMAN_WEBAUTHN_RP_ID", "webauthn_rp_id"),
    ("DAMAN_ARGON2_MEMORY_KIB", "argon2_memory_kib"),
    ("DAMAN_ARGON2_PASSES", "argon2_passes"),
    ("DAMAN_AUTH_PER_IP_PER_MINUTE", "auth_per_ip_per_minute"),
    ("DAMAN_RIB_COOLING_OFF_HOURS", "rib_cooling_off_hours"),
    ("DAMAN_SMS_SENDER", "sms_sender"),
    ("DAMAN_SMS_FILE", "sms_file"),
    ("DAMAN_SMS_HTTP_URL", "sms_http_url"),
    ("DAMAN_SMS_HTTP_KEY_FILE", "sms_http_key_file"),
    ("DAMAN_SMPP_ADDRESS", "smpp_address"),
    ("DAMAN_SMPP_SYSTEM_ID", "smpp_system_id"),
    ("DAMAN_SMPP_PASSWORD_FILE", "smpp_password_file"),
    ("DAMAN_SMPP_SOURCE", "smpp_source"),
    ("DAMAN_EID_ISSUER", "eid_issuer"),
    ("DAMAN_EID_CLIENT_ID", "eid_client_id"),
    ("DAMAN_EID_CLIENT_SECRET_FILE", "eid_client_secret_file"),
    ("DAMAN_EID_REDIRECT_URL", "eid_redirect_url"),
    ("DAMAN_EID_NATIONAL_ID_CLAIM", "eid_national_id_claim"),
    ("DAMAN_EID_SCOPES", "eid_scopes"),
    ("DAMAN_SMS_PER_NUMBER_HOUR", "sms_per_number_hour"),
    ("DAMAN_SMS_PER_NUMBER_DAY", "sms_per_number_day"),
    ("DAMAN_SMS_GLOBAL_HOUR", "sms_global_hour"),
    ("DAMAN_AUDIT_ORIGIN", "audit_origin"),
    ("DAMAN_AUDIT_WITNESS", "audit_witness"),
    ("DAMAN_AUDIT_CHECKPOINT_MS", "audit_checkpoint_ms"),
    ("DAMAN_KEY_REFRESH_MS", "key_refresh_ms"),
    ("DAMAN_ACCESS_LOG_NAMES", "access_log_names"),
    ("DAMAN_DECOY_EVERY", "decoy_every"),
    ("DAMAN_READ_BUDGET_AGENT_HOUR", "read_budget_agent_hour"),
    ("DAMAN_READ_BUDGET_AGENT_DAY", "read_budget_agent_day"),
    (
        "DAMAN_READ_BUDGET_EMPLOYER_HOUR",
        "read_budget_employer_hour",
    ),
    ("DAMAN_READ_BUDGET_EMPLOYER_DAY", "read_budget_employer_day"),
    ("DAMAN_ALERT_WEBHOOK", "alert_webhook"),
];

impl Config {
    /// Reads `file` (if given), then applies `env` (name, value) pairs.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut table: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                text.parse()
                    .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if !name.starts_with("DAMAN_")
                || name.starts_with("DAMAN_TEST_")
                || name == "DAMAN_CONFIG"
            {
                continue;
            }
            let key = ENV_KEYS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    format!(
                        "unknown environment variable {name} (known: {})",
                        env_names()
                    )
                })?;
            let parsed = match key {
                "dev_mode" | "access_log_names" => {
                    toml::Value::Boolean(matches!(value.as_str(), "1" | "true" | "yes"))
                }
                "max_connections"
                | "max_in_flight"
                | "max_body"
                | "lookup_connections"
                | "argon2_memory_kib"
                | "argon2_passes"
                | "auth_per_ip_per_minute"
                | "rib_cooling_off_hours"
                | "sms_per_number_hour"
                | "sms_per_number_day"
                | "sms_global_hour"
                | "audit_checkpoint_ms"
                | "key_refresh_ms"
                | "decoy_every"
                | "read_budget_agent_hour"
                | "read_budget_agent_day"
                | "read_budget_employer_hour"
                | "read_budget_employer_day" => toml::Value::Integer(
                    value
                        .parse()
                        .map_err(|_| format!("{name} must be a whole number"))?,
                ),
                "eid_scopes" => toml::Value::Array(
                    value
                        .split(',')
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.into()))
                        .collect(),
                ),
                _ => toml::Value::String(value),
            };
            table.insert(key.into(), parsed);
        }
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| format!("configuration: {}", e.message()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// The SMS sender in effect.
    pub fn sms_sender(&self) -> &str {
        match (self.sms_sender.as_str(), self.dev_mode) {
            ("", true) => "file",
            ("", false) => "none",
            (s, _) => s,
        }
    }

    /// The WebAuthn relying-party id: set, or the host of `public_url`.
    pub fn rp_id(&self) -> String {
        self.webauthn_rp_id.clone().unwrap_or_else(|| {
            let rest = self
                .public_url
                .split_once("://")
                .map(|(_, r)| r)
                .unwrap_or(&self.public_url);
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            host.rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map(|(h, _)| h)
                .unwrap_or(host)
                .to_string()
        })
    }

    pub fn sms_file(&self) -> PathBuf {
        self.sms_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sms.jsonl"))
    }

    /// The E-ID callback URL in effect.
    pub fn eid_redirect_url(&self) -> String {
        self.eid_redirect_url.clone().unwrap_or_else(|| {
            format!(
                "{}/api/v1/auth/eid/callback",
                self.public_url.trim_end_matches('/')
            )
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.audit_checkpoint_ms == 0 {
            return Err("audit_checkpoint_ms must be at least 1".into());
        }
        if !(1..=5_000).contains(&self.key_refresh_ms) {
            return Err("key_refresh_ms must be between 1 and 5000".into());
        }
        if self.eid_issuer.is_some() && self.eid_client_secret_file.is_none() {
            return Err("eid_issuer needs eid_client_secret_file".into());
        }
        match self.sms_sender() {
            "file" if !self.dev_mode => {
                return Err(
                    "sms_sender = \"file\" writes codes in clear: development mode only".into(),
                );
            }
            "file" | "none" => {}
            "http" if self.sms_http_url.is_none() || self.sms_http_key_file.is_none() => {
                return Err(
                    "sms_sender = \"http\" needs sms_http_url and sms_http_key_file".into(),
                );
            }
            "smpp"
                if self.smpp_address.is_none()
                    || self.smpp_system_id.is_none()
                    || self.smpp_password_file.is_none() =>
            {
                return Err(
                    "sms_sender = \"smpp\" needs smpp_address, smpp_system_id and smpp_password_file"
                        .into(),
                );
            }
            "http" | "smpp" => {}
            other => {
                return Err(format!(
                    "sms_sender must be smpp, http, file or none, not {other:?}"
                ));
            }
        }
        if let Some(db_dir) = self.sqlite_dir() {
            let (keys, db) = (normalise(&self.key_dir()), normalise(&db_dir));
            if keys.starts_with(&db) {
                return Err(format!(
                    "key_dir {} is inside the database directory {}: keys must live apart from the data they protect",
                    self.key_dir().display(),
                    db_dir.display()
                ));
            }
            if normalise(&self.audit_witness()).starts_with(&db) {
                return Err(format!(
                    "audit_witness {} is inside the database directory {}: whoever can rewrite the database must not be able to rewrite the witness",
                    self.audit_witness().display(),
                    db_dir.display()
                ));
            }
        }
        Ok(())
    }

    /// The audit log's origin in effect.
    pub fn audit_origin(&self) -> String {
        self.audit_origin
            .clone()
            .unwrap_or_else(|| format!("{}/audit", self.rp_id()))
    }

    /// The audit witness file in effect.
    pub fn audit_witness(&self) -> PathBuf {
        self.audit_witness
            .clone()
            .unwrap_or_else(|| self.data_dir.join("witness/audit-checkpoints"))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("db/daman.db").display()))
    }

    pub fn key_dir(&self) -> PathBuf {
        self.key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    /// The directory of the SQLite database, if the database is SQLite.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        let url = self.database_url();
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = path.split('?').next().unwrap_or(path);
        Path::new(path).parent().map(Path::to_path_buf)
    }
}

/// An absolute path without `.`/`..`, symbolic links resolved where the path exists.
fn normalise(p: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(p) {
        return real;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn env_names() -> String {
    ENV_KEYS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn example_file_is_the_default_and_env_wins() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../daman.example.toml");
        let cfg = Config::load(Some(&example), env(&[])).unwrap();
        assert_eq!(cfg, Config::default());
        let cfg = Config::load(
            Some(&example),
            env(&[("DAMAN_LISTEN", "127.0.0.1:9999"), ("DAMAN_DEV_MODE", "1")]),
        )
        .unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9999");
        assert!(cfg.dev_mode);
        assert_eq!(cfg.database_url(), "sqlite://daman-data/db/daman.db");
        assert_eq!(cfg.key_dir(), PathBuf::from("daman-data/keys"));
    }

    #[test]
    fn unknown_keys_and_variables_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        assert!(
            Config::load(Some(&f), env(&[]))
                .unwrap_err()
                .contains("listen_port")
        );
        assert!(
            Config::load(None, env(&[("DAMAN_LISTN", "x")]))
                .unwrap_err()
                .contains("DAMAN_LISTN")
        );
        assert!(Config::load(None, env(&[("DAMAN_TEST_PG_URL", "x"), ("HOME", "/")])).is_ok());
    }

    #[test]
    fn sms_senders_are_checked() {
        // Codes in a file only in development mode, which picks it by default.
        let e = Config::load(None, env(&[("DAMAN_SMS_SENDER", "file")])).unwrap_err();
        assert!(e.contains("development mode only"), "{e}");
        let dev = Config::load(None, env(&[("DAMAN_DEV_MODE", "1")])).unwrap();
        assert_eq!(dev.sms_sender(), "file");
        assert_eq!(Config::load(None, env(&[])).unwrap().sms_sender(), "none");
        let e = Config::load(None, env(&[("DAMAN_SMS_SENDER", "smpp")])).unwrap_err();
        assert!(e.contains("smpp_address"), "{e}");
        let e = Config::load(None, env(&[("DAMAN_SMS_SENDER", "carrier-pigeon")])).unwrap_err();
        assert!(e.contains("smpp, http, file or none"), "{e}");
        let ok = Config::load(
            None,
            env(&[
                ("DAMAN_SMS_SENDER", "smpp"),
                ("DAMAN_SMPP_ADDRESS", "127.0.0.1:2775"),
                ("DAMAN_SMPP_SYSTEM_ID", "daman"),
                ("DAMAN_SMPP_PASSWORD_FILE", "/etc/daman/smpp.password"),
                ("DAMAN_SMS_PER_NUMBER_HOUR", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.sms_per_number_hour, 3);
    }

    #[test]
    fn keys_inside_the_database_directory_are_refused() {
        for dir in [
            "daman-data/db/keys",
            "./daman-data/db/keys",
            "daman-data/x/../db/keys",
        ] {
            let e = Config::load(None, env(&[("DAMAN_KEY_DIR", dir)])).unwrap_err();
            assert!(e.contains("apart from the data"), "{dir}");
        }
    }
}
