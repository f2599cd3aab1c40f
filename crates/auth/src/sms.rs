//! Sending SMS, behind one trait with three real senders:
//!
//! - [`FileSender`] appends each message as a JSON line to a file (mode 0600): the demo's "phone".
//!   It writes codes in clear, so it is for the demo and tests only.
//! - [`HttpSender`] posts `{"to", "text"}` as JSON to a generic SMS gateway with a bearer key.
//! - [`SmppSender`] speaks SMPP (v5.0 bind, v3.4-compatible PDUs) to an operator's SMSC over one
//!   bound transceiver connection, reconnecting when it drops. Text that fits GSM 03.38 goes as
//!   GSM; anything else (Arabic) as UCS-2.
//!
//! Callers enforce the per-number and global limits before sending (each SMS costs money).

use domain::Phone;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::Mutex;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a message was not sent. Carries neither the number nor the text.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("SMS sender unreachable: {0}")]
    Unreachable(String),
    #[error("SMS refused by the gateway: {0}")]
    Refused(String),
    #[error("SMS sender configuration: {0}")]
    Config(&'static str),
}

pub trait SmsSender: Send + Sync {
    /// Sends `text` to `to`; returns once the gateway has accepted it.
    fn send<'a>(&'a self, to: &'a Phone, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>>;
    /// The sender's kind, for logs.
    fn kind(&self) -> &'static str;
}

// ---- file ------------------------------------------------------------------------------------

/// Appends `{"at", "to", "text"}` lines to a file. Demo and tests only: codes are in clear.
pub struct FileSender {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSender {
    pub fn new(path: &Path) -> FileSender {
        FileSender {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SmsSender for FileSender {
    fn send<'a>(&'a self, to: &'a Phone, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let line = serde_json::json!({"at": at, "to": to.as_str(), "text": text}).to_string();
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&self.path)
                .map_err(|e| SmsError::Unreachable(e.kind().to_string()))?;
            writeln!(f, "{line}").map_err(|e| SmsError::Unreachable(e.kind().to_string()))
        })
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

// ---- HTTP gateway ----------------------------------------------------------------------------

/// Posts `{"to": "+212…", "text": "…"}` to `url` with `Authorization: Bearer <key>`; any 2xx is
/// accepted.
pub struct HttpSender {
    url: String,
    key: zeroize::Zeroizing<String>,
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new(url: &str, key: &str) -> Result<HttpSender, SmsError> {
        if !(url.starts_with("https://") || url.starts_with("http://127.0.0.1")) {
            return Err(SmsError::Config(
                "the SMS gateway URL must be https (or http://127.0.0.1 for tests)",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| SmsError::Config("HTTP client"))?;
        Ok(HttpSender {
            url: url.to_string(),
            key: zeroize::Zeroizing::new(key.to_string()),
            client,
        })
    }
}

impl SmsSender for HttpSender {
    fn send<'a>(&'a self, to: &'a Phone, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let res = self
                .client
                .post(&self.url)
                .bearer_auth(self.key.as_str())
                .json(&serde_json::json!({"to": to.as_str(), "text": text}))
                .send()
                .await
                .map_err(|e| SmsError::Unreachable(kind_of(&e)))?;
            if res.status().is_success() {
                Ok(())
            } else {
                Err(SmsError::Refused(format!("HTTP {}", res.status().as_u16())))
            }
        })
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}

fn kind_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "request".into()
    }
}

// ---- SMPP ------------------------------------------------------------------------------------

/// Where and how to bind to an SMSC.
#[derive(Clone)]
pub struct SmppConfig {
    /// host:port of the SMSC.
    pub address: String,
    pub system_id: String,
    pub password: zeroize::Zeroizing<String>,
    /// The sender name shown on the phone (alphanumeric, at most 11 characters).
    pub source: String,
}

/// One bound transceiver connection, opened on first use and again after it drops.
pub struct SmppSender {
    cfg: SmppConfig,
    client: Mutex<Option<rusmppc::Client>>,
}

impl SmppSender {
    pub fn new(cfg: SmppConfig) -> Result<SmppSender, SmsError> {
        if cfg.system_id.len() > 15 || cfg.password.len() > 8 || cfg.source.len() > 11 {
            return Err(SmsError::Config(
                "SMPP system_id at most 15, password at most 8, source at most 11 characters",
            ));
        }
        Ok(SmppSender {
            cfg,
            client: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<rusmppc::Client, SmsError> {
        use futures_util::StreamExt;
        use rusmpp::pdus::{BindTransceiver, DeliverSmResp};
        use rusmpp::types::COctetString;
        let url = format!("smpp://{}", self.cfg.address);
        let connecting = rusmppc::ConnectionBuilder::new()
            .enquire_link_interval(Duration::from_secs(30))
            .response_timeout(Duration::from_secs(10))
            .connect(&url);
        let (client, mut events) = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| SmsError::Unreachable("connect timeout".into()))?
            .map_err(|e| SmsError::Unreachable(smpp_kind(&e)))?;
        // Delivery receipts and other incoming PDUs are acknowledged and otherwise ignored.
        let acks = client.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match ev {
                    rusmppc::Event::Incoming(cmd) if cmd.id() == rusmpp::CommandId::DeliverSm => {
                        let _ = acks
                            .deliver_sm_resp(cmd.sequence_number(), DeliverSmResp::default())
                            .await;
                    }
                    rusmppc::Event::Incoming(_) => {}
                    rusmppc::Event::Error(e) => {
                        tracing::warn!(error = %smpp_kind(&e), "SMPP connection event")
                    }
                }
            }
        });
        let bad = |_| SmsError::Config("SMPP credentials");
        client
            .bind_transceiver(
                BindTransceiver::builder()
                    .system_id(COctetString::from_str(&self.cfg.system_id).map_err(bad)?)
                    .password(COctetString::from_str(&self.cfg.password).map_err(bad)?)
                    .build(),
            )
            .await
            .map_err(|e| SmsError::Refused(smpp_kind(&e)))?;
        Ok(client)
    }

    fn submit(&self, to: &Phone, text: &str) -> Result<rusmpp::pdus::SubmitSm, SmsError> {
        use rusmpp::extra::encoding::EncodedSubmitSmExt;
        use rusmpp::extra::encoding::ucs2::Ucs2;
        use rusmpp::pdus::SubmitSm;
        use rusmpp::types::COctetString;
        use rusmpp::values::{Npi, Ton};
        let digits = to.as_str().trim_start_matches('+');
        let addr =
            |s: &str| COctetString::from_str(s).map_err(|_| SmsError::Config("SMPP address"));
        SubmitSm::builder()
            .source_addr_ton(Ton::Alphanumeric)
            .source_addr_npi(Npi::Unknown)
            .source_addr(addr(&self.cfg.source)?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(addr(digits)?)
            .build()
            .encode(text)
            .gsm7bit_unpacked()
            .fallback(Ucs2::new())
            .build()
            .map_err(|_| SmsError::Config("message too long for one SMS"))
    }

    /// Unbinds and closes the connection, if open. (An SMSC that drops the connection right
    /// after answering the unbind makes `close` report it closed: that is fine.)
    pub async fn close(&self) {
        if let Some(c) = self.client.lock().await.take() {
            let _ = c.unbind().await;
            let _ = c.close().await;
        }
    }
}

impl SmsSender for SmppSender {
    fn send<'a>(&'a self, to: &'a Phone, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let pdu = self.submit(to, text)?;
            let mut slot = self.client.lock().await;
            // A connection that dropped since the last message is replaced once.
            for attempt in 0..2 {
                let client = match slot.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let c = self.connect().await?;
                        *slot = Some(c.clone());
                        c
                    }
                };
                match client.submit_sm(pdu.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(rusmppc::error::Error::UnexpectedResponse { response }) => {
                        return Err(SmsError::Refused(format!("{:?}", response.status())));
                    }
                    Err(e) if attempt == 0 => {
                        tracing::warn!(error = %smpp_kind(&e), "SMPP send failed; reconnecting");
                        *slot = None;
                    }
                    Err(e) => return Err(SmsError::Unreachable(smpp_kind(&e))),
                }
            }
            Err(SmsError::Unreachable("SMSC".into()))
        })
    }

    fn kind(&self) -> &'static str {
        "smpp"
    }
}

fn smpp_kind(e: &rusmppc::error::Error) -> String {
    // The error's Display names the failure (connection refused, timeout, status), not the data.
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_sender_appends_json_lines_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        let s = FileSender::new(&path);
        let to = Phone::parse("+212600000001").unwrap();
        s.send(&to, "code 123456").await.unwrap();
        s.send(&to, "رمز 654321").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["to"], "+212600000001");
        assert_eq!(lines[1]["text"], "رمز 654321");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
