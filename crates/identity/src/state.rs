//! The identity service and what it is configured with.

use auth::eid::{EidConfig, EidProvider};
use auth::otp;
use kernel::{AppError, Kernel};
use std::sync::Arc;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

/// What the authentication layer is configured with.
#[derive(Clone)]
pub struct AuthConfig {
    pub cost: auth::HashCost,
    /// Password hashes computed at once; 0 means one less than the cores, at least one.
    pub hash_workers: usize,
    /// Password checks allowed to wait for a worker before new ones are refused with 503.
    pub hash_queue: usize,
    /// How long a new RIB waits before it takes effect.
    pub rib_cooling_off_hours: i64,
    /// The public address of the portal: the WebAuthn origin, and links in messages.
    pub public_url: String,
    /// The WebAuthn relying-party id: the portal's domain (or a parent of it).
    pub rp_id: String,
    /// The national E-ID (OpenID Connect), if configured.
    pub eid: Option<auth::eid::EidConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cost: auth::HashCost::default(),
            hash_workers: 0,
            hash_queue: 64,
            rib_cooling_off_hours: 72,
            public_url: "http://localhost:8080".into(),
            rp_id: "localhost".into(),
            eid: None,
        }
    }
}

/// The authentication state an [`Identity`] holds.
pub(crate) struct AuthState {
    pub(crate) cfg: AuthConfig,
    pub(crate) hasher: auth::PasswordHasher,
    pub(crate) codes: otp::CodeKey,
    pub(crate) webauthn: webauthn_rs::prelude::Webauthn,
    pub(crate) eid: EidState,
}

impl AuthState {
    pub(crate) fn open(
        cfg: AuthConfig,
        key_dir: &kernel::KeyDir,
        random: &dyn kernel::Random,
    ) -> Result<AuthState, AppError> {
        let pepper = key_dir.secret("password-pepper", random)?;
        let workers = match cfg.hash_workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        let hasher =
            auth::PasswordHasher::new(*pepper.expose(), cfg.cost, workers, cfg.hash_queue, random)?;
        let codes = otp::CodeKey::new(kernel::MacKey::new(&key_dir.secret("otp", random)?));
        let webauthn = relying_party(&cfg.rp_id, &cfg.public_url)?;
        let eid = EidState::new(cfg.eid.clone());
        Ok(AuthState {
            eid,
            cfg,
            hasher,
            codes,
            webauthn,
        })
    }
}

/// The relying party: its id (a domain, e.g. `daman.example`) and the origin browsers show
/// (`https://daman.example`).
pub(crate) fn relying_party(rp_id: &str, origin: &str) -> Result<Webauthn, AppError> {
    let origin = Url::parse(origin).map_err(|_| AppError::Internal("webauthn origin"))?;
    WebauthnBuilder::new(rp_id, &origin)
        .and_then(|b| b.rp_name("daman").build())
        .map_err(|_| AppError::Internal("webauthn relying party"))
}

/// The E-ID provider: configured or not, discovered at first use.
#[derive(Default)]
pub(crate) struct EidState {
    pub(crate) cfg: Option<EidConfig>,
    pub(crate) provider: tokio::sync::OnceCell<Arc<EidProvider>>,
}

impl EidState {
    pub(crate) fn new(cfg: Option<EidConfig>) -> EidState {
        EidState {
            cfg,
            provider: tokio::sync::OnceCell::new(),
        }
    }
}

/// Accounts, logins, sessions, second factors, passkeys, the E-ID and RIB changes: a service
/// over the kernel.
#[derive(Clone)]
pub struct Identity {
    pub(crate) k: Kernel,
    pub(crate) auth: Arc<AuthState>,
}

impl Identity {
    /// Opens the password hasher (its pepper and the code key come from the key directory),
    /// the WebAuthn relying party and the E-ID provider's state.
    pub fn open(k: Kernel, cfg: AuthConfig) -> Result<Identity, AppError> {
        let auth = AuthState::open(cfg, k.key_dir(), k.random())?;
        Ok(Identity {
            k,
            auth: Arc::new(auth),
        })
    }

    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    pub(crate) fn auth(&self) -> &AuthState {
        &self.auth
    }
}
