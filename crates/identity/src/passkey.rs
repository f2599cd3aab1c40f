//! Passkeys (WebAuthn, through `webauthn-rs`): phishing-resistant by verifier-name binding, the
//! only second factor staff may use, and available to everyone.
//!
//! Every ceremony (registration, login, step-up) keeps its state in the database
//! (`passkey_ceremonies`, five minutes, used once), keyed by the flow it belongs to, so any node
//! can finish what another started. A registered passkey is a factor of kind `passkey` whose
//! secret (webauthn-rs's `Passkey`: credential id, public key, counter) is stored encrypted like
//! the others; its signature counter is updated at each use.
//!
//! Staff get their first passkey right after accepting their invitation: completing the
//! enrolment (password + the code sent to the invited phone) returns a ten-minute *setup* token
//! good only for registering that passkey, which then opens their first session.

use crate::session::{NewSession, step_up_flow};
use crate::state::Identity;
use kernel::columns::FACTOR_SECRET;
use kernel::{AppError, Audit, Missing, Principal, SessionInfo, StepUp, is_staff};
use store::{FactorRow, SessionRow};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn,
};

/// How long a ceremony may take.
pub const CEREMONY_SECONDS: i64 = 300;
/// How long the setup token of a new staff account lasts.
pub const SETUP_SECONDS: i64 = 600;

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";

fn flow(kind: &str, hash: &[u8]) -> Vec<u8> {
    let mut f = kind.as_bytes().to_vec();
    f.push(b':');
    f.extend_from_slice(hash);
    f
}

impl Identity {
    fn webauthn(&self) -> &Webauthn {
        &self.auth().webauthn
    }

    /// The principal's registered passkeys, with their factor ids.
    async fn passkeys(&self, principal_id: i64) -> Result<Vec<(i64, Passkey)>, AppError> {
        let mut out = Vec::new();
        for f in self.k.store().factors(principal_id).await? {
            if f.kind == "passkey" && f.confirmed {
                let plain = self.k.unseal_secret(FACTOR_SECRET, f.id, &f.secret)?;
                let pk: Passkey = serde_json::from_slice(&plain)
                    .map_err(|_| store::StoreError::Corrupt("passkey"))?;
                out.push((f.id, pk));
            }
        }
        Ok(out)
    }

    async fn put_ceremony<S: serde::Serialize>(
        &self,
        flow: &[u8],
        principal_id: i64,
        purpose: &str,
        state: &S,
    ) -> Result<(), AppError> {
        let now = self.k.now().0;
        let state =
            serde_json::to_string(state).map_err(|_| AppError::Internal("webauthn state"))?;
        self.k
            .store()
            .put_passkey_ceremony(
                flow,
                principal_id,
                purpose,
                &state,
                now,
                now + CEREMONY_SECONDS * 1_000_000,
            )
            .await?;
        Ok(())
    }

    async fn take_ceremony<S: serde::de::DeserializeOwned>(
        &self,
        flow: &[u8],
        principal_id: i64,
        purpose: &str,
    ) -> Result<Option<S>, AppError> {
        match self
            .k
            .store()
            .take_passkey_ceremony(flow, purpose, self.k.now().0)
            .await?
        {
            Some((p, state)) if p == principal_id => Ok(serde_json::from_str(&state).ok()),
            _ => Ok(None),
        }
    }

    /// Registration options for a new passkey of `p`, for the ceremony named by `flow`.
    async fn begin_registration(
        &self,
        p: &Principal,
        flow: &[u8],
    ) -> Result<serde_json::Value, AppError> {
        let existing = self.passkeys(p.id).await?;
        let exclude = existing.iter().map(|(_, k)| k.cred_id().clone()).collect();
        // The user handle is an opaque id; the names shown on the device say only "daman".
        let user = Uuid::from_u64_pair(p.id as u64, 0);
        let (options, state) = self
            .webauthn()
            .start_passkey_registration(user, "daman", "daman", Some(exclude))
            .map_err(|_| AppError::Internal("webauthn registration"))?;
        self.put_ceremony(flow, p.id, REGISTER, &state).await?;
        serde_json::to_value(options).map_err(|_| AppError::Internal("webauthn options"))
    }

    /// Checks the authenticator's answer to a registration and stores the passkey.
    async fn end_registration(
        &self,
        p: &Principal,
        flow: &[u8],
        credential: &serde_json::Value,
        request_id: &str,
    ) -> Result<(), AppError> {
        let state: Option<PasskeyRegistration> = self.take_ceremony(flow, p.id, REGISTER).await?;
        let reg: Option<RegisterPublicKeyCredential> =
            serde_json::from_value(credential.clone()).ok();
        let passkey = match (state, reg) {
            (Some(state), Some(reg)) => self
                .webauthn()
                .finish_passkey_registration(&reg, &state)
                .ok(),
            _ => None,
        };
        let Some(passkey) = passkey else {
            Audit::auth(Some(p), "factor_added", "rejected")
                .detail("kind=passkey")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::CodeRejected);
        };
        let id = self.k.new_id()?;
        let plain = serde_json::to_vec(&passkey).map_err(|_| AppError::Internal("passkey"))?;
        Audit::auth(Some(p), "factor_added", "ok")
            .detail("kind=passkey")
            .write(&self.k, request_id)
            .await?;
        self.k
            .store()
            .insert_factor(&FactorRow {
                id,
                principal_id: p.id,
                kind: "passkey".into(),
                secret: self.k.keyring().encrypt(FACTOR_SECRET, id, &plain)?,
                last_step: 0,
                confirmed: true,
                created_at: self.k.now().0,
            })
            .await?;
        Ok(())
    }

    /// Authentication options for `p`'s passkeys, for the ceremony named by `flow`.
    pub(crate) async fn begin_passkey_check(
        &self,
        p: &Principal,
        flow: &[u8],
    ) -> Result<serde_json::Value, AppError> {
        let keys: Vec<Passkey> = self
            .passkeys(p.id)
            .await?
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        if keys.is_empty() {
            return Err(AppError::NotFound(Missing::Factor));
        }
        let (options, state) = self
            .webauthn()
            .start_passkey_authentication(&keys)
            .map_err(|_| AppError::Internal("webauthn authentication"))?;
        self.put_ceremony(flow, p.id, AUTHENTICATE, &state).await?;
        serde_json::to_value(options).map_err(|_| AppError::Internal("webauthn options"))
    }

    /// Checks an assertion for the ceremony named by `flow`; updates the passkey's counter.
    pub(crate) async fn use_passkey(
        &self,
        p: &Principal,
        flow: &[u8],
        assertion: &str,
    ) -> Result<bool, AppError> {
        let state: Option<PasskeyAuthentication> =
            self.take_ceremony(flow, p.id, AUTHENTICATE).await?;
        let cred: Option<PublicKeyCredential> = serde_json::from_str(assertion).ok();
        let (Some(state), Some(cred)) = (state, cred) else {
            return Ok(false);
        };
        let Ok(result) = self.webauthn().finish_passkey_authentication(&cred, &state) else {
            return Ok(false);
        };
        for (id, mut key) in self.passkeys(p.id).await? {
            if key.update_credential(&result) == Some(true) {
                let plain = serde_json::to_vec(&key).map_err(|_| AppError::Internal("passkey"))?;
                let ct = self.k.keyring().encrypt(FACTOR_SECRET, id, &plain)?;
                self.k.store().set_factor_secret(id, &ct).await?;
            }
        }
        Ok(true)
    }

    /// Starts adding a passkey to a logged-in account (needs a step-up).
    pub async fn start_passkey_registration(
        &self,
        p: &Principal,
        s: &SessionInfo,
        _proof: StepUp,
    ) -> Result<serde_json::Value, AppError> {
        self.begin_registration(p, &flow("register", s.token_hash()))
            .await
    }

    /// Finishes adding a passkey; the account's other sessions end.
    pub async fn finish_passkey_registration(
        &self,
        p: &Principal,
        s: &SessionInfo,
        credential: &serde_json::Value,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.end_registration(p, &flow("register", s.token_hash()), credential, request_id)
            .await?;
        self.logout_others(p, s, "factor_change", request_id)
            .await?;
        Ok(())
    }

    /// The passkey options of a pending login.
    pub async fn start_login_passkey(&self, pending: &str) -> Result<serde_json::Value, AppError> {
        let (s, p) = self.pending(pending).await?;
        self.begin_passkey_check(&p, &s.token_hash).await
    }

    /// The passkey options of a step-up.
    pub async fn start_step_up_passkey(
        &self,
        p: &Principal,
        s: &SessionInfo,
    ) -> Result<serde_json::Value, AppError> {
        self.begin_passkey_check(p, &step_up_flow(s.token_hash()))
            .await
    }

    /// A ten-minute token with which a new staff member registers their first passkey.
    pub(crate) async fn setup_token(&self, principal_id: i64) -> Result<String, AppError> {
        let (tok, _) = self
            .new_session(
                principal_id,
                "setup",
                "enrolment",
                SETUP_SECONDS,
                SETUP_SECONDS,
            )
            .await?;
        Ok(tok)
    }

    async fn setup(&self, token: &str) -> Result<(SessionRow, Principal), AppError> {
        let (s, p) = self.staged(token, "setup").await?;
        if !is_staff(p.role) {
            return Err(AppError::Unauthenticated);
        }
        Ok((s, p))
    }

    /// Registration options for a new staff member's first passkey.
    pub async fn start_passkey_setup(&self, setup: &str) -> Result<serde_json::Value, AppError> {
        let (s, p) = self.setup(setup).await?;
        self.begin_registration(&p, &flow("setup", &s.token_hash))
            .await
    }

    /// Registers the first passkey and opens the staff member's first session.
    pub async fn finish_passkey_setup(
        &self,
        setup: &str,
        credential: &serde_json::Value,
        request_id: &str,
    ) -> Result<NewSession, AppError> {
        let (s, p) = self.setup(setup).await?;
        self.end_registration(&p, &flow("setup", &s.token_hash), credential, request_id)
            .await?;
        self.open_session(&p, Some(&s.token_hash), "passkey", request_id)
            .await
    }
}
