//! The configuration in sections: one builder per layer it configures (the file stays one
//! flat table of documented keys, `daman.example.toml`, and `DAMAN_*` variables; these say
//! which keys make which layer's configuration).

use super::Config;
use crate::failure::Failure;
use domain::Parameters;
use identity::AuthConfig;
use kernel::{KernelConfig, SmsConfig, SystemClock};
use server::{DevTokens, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;
use store::Store;
use vault::{OsRandom, ThreadRandom};

impl Config {
    /// The kernel's: storage, keys, parameters, the audit log, read budgets, alerts, SMS.
    pub fn kernel(&self, store: Store) -> Result<KernelConfig, Failure> {
        Ok(KernelConfig {
            store,
            key_dir: self.key_dir(),
            params: self.params()?,
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            nonces: Arc::new(ThreadRandom),
            lookup_connections: self.lookup_connections,
            sms: self.sms()?,
            audit_log: kernel::AuditLogConfig {
                origin: self.audit_origin(),
                witness: self.audit_witness(),
                interval: std::time::Duration::from_millis(self.audit_checkpoint_ms),
            },
            key_refresh: std::time::Duration::from_millis(self.key_refresh_ms),
            access_log_names: self.access_log_names,
            decoy_every: self.decoy_every,
            budgets: kernel::ReadBudgets {
                agent: Some((self.read_budget_agent_hour, self.read_budget_agent_day)),
                employer_user: Some((
                    self.read_budget_employer_hour,
                    self.read_budget_employer_day,
                )),
            },
            notifiers: {
                let mut n: Vec<Arc<dyn kernel::Notifier>> = vec![Arc::new(kernel::LogNotifier)];
                if let Some(url) = &self.alert_webhook {
                    n.push(Arc::new(
                        kernel::WebhookNotifier::new(url)
                            .map_err(|e| Failure::Config(e.to_string()))?,
                    ));
                }
                n
            },
        })
    }

    /// The authentication layer's: password hashing, the WebAuthn relying party, the E-ID,
    /// the RIB's cooling-off.
    pub fn auth(&self) -> Result<AuthConfig, Failure> {
        Ok(AuthConfig {
            cost: auth::HashCost {
                memory_kib: self.argon2_memory_kib,
                passes: self.argon2_passes,
            }
            .checked()
            .map_err(|e| Failure::Config(e.to_string()))?,
            rib_cooling_off_hours: self.rib_cooling_off_hours,
            public_url: self.public_url.clone(),
            rp_id: self.rp_id(),
            eid: match &self.eid_issuer {
                Some(issuer) => Some(auth::eid::EidConfig {
                    issuer: issuer.clone(),
                    client_id: self.eid_client_id.clone(),
                    client_secret: read_secret_file(&self.eid_client_secret_file)?.into(),
                    redirect_url: self.eid_redirect_url(),
                    national_id_claim: self.eid_national_id_claim.clone(),
                    scopes: self.eid_scopes.clone(),
                }),
                None => None,
            },
            ..AuthConfig::default()
        })
    }

    /// The HTTP server's: limits, and development tokens in development mode.
    pub fn server(&self, dev_tokens: Option<Arc<DevTokens>>) -> ServerConfig {
        ServerConfig {
            dev_tokens,
            max_in_flight: self.max_in_flight,
            max_body: self.max_body,
            auth_per_ip_per_minute: self.auth_per_ip_per_minute,
        }
    }

    /// The parameter tables: the configured file, or the Moroccan tables shipped with daman.
    pub fn params(&self) -> Result<Parameters, Failure> {
        match &self.parameters_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))?;
                Parameters::from_toml(&text)
            }
            None => Parameters::morocco(),
        }
        .map_err(|e| Failure::Config(e.to_string()))
    }

    /// Where SMS go, and the limits.
    pub fn sms(&self) -> Result<SmsConfig, Failure> {
        Ok(SmsConfig {
            sender: self.sms_sender_in_effect()?,
            per_number_hour: self.sms_per_number_hour,
            per_number_day: self.sms_per_number_day,
            global_hour: self.sms_global_hour,
        })
    }

    /// The SMS sender the configuration names.
    fn sms_sender_in_effect(&self) -> Result<Option<Arc<dyn auth::SmsSender>>, Failure> {
        let read_secret = read_secret_file;
        let bad = |e: auth::SmsError| Failure::Config(e.to_string());
        Ok(match self.sms_sender() {
            "file" => Some(Arc::new(auth::sms::FileSender::new(&self.sms_file()))),
            "http" => Some(Arc::new(
                auth::sms::HttpSender::new(
                    self.sms_http_url.as_deref().unwrap_or_default(),
                    &read_secret(&self.sms_http_key_file)?,
                )
                .map_err(bad)?,
            )),
            "smpp" => Some(Arc::new(
                auth::sms::SmppSender::new(auth::sms::SmppConfig {
                    address: self.smpp_address.clone().unwrap_or_default(),
                    system_id: self.smpp_system_id.clone().unwrap_or_default(),
                    password: read_secret(&self.smpp_password_file)?.into(),
                    source: self.smpp_source.clone(),
                })
                .map_err(bad)?,
            )),
            _ => None,
        })
    }
}

/// A secret from a file named in the configuration (first line, trimmed).
pub(crate) fn read_secret_file(p: &Option<PathBuf>) -> Result<String, Failure> {
    let p = p
        .as_ref()
        .ok_or_else(|| Failure::Config("missing secret file".into()))?;
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))
}
