//! Logging in with the national E-ID (OpenID Connect): daman redirects to the provider, which
//! authenticates the person and sends them back with a code; daman exchanges it, verifies the
//! ID token, reads the national-ID claim (the CIN) and opens a session for the registry person
//! with that CIN, creating their account on first use. The E-ID is itself multi-factor (the
//! provider's app and PIN), so the session is an AAL2 one, like a password + second factor.

use crate::session::NewSession;
use crate::state::Identity;
use auth::eid::EidProvider;
use auth::token;
use domain::{Cin, Role};
use kernel::columns::EID_SECRET;
use kernel::{AppError, Audit, Clash, Missing, Principal, Subject};
use std::sync::Arc;

/// How long the provider may take to send the person back.
pub const EID_FLOW_SECONDS: i64 = 600;

/// The callback's query, as the provider sent it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct EidCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FlowSecret {
    nonce: String,
    verifier: String,
}

impl Identity {
    /// The provider, discovered on first use (a provider that is down makes E-ID logins answer
    /// 503 until it is back; the rest of daman does not wait for it).
    async fn eid(&self) -> Result<Arc<EidProvider>, AppError> {
        let state = &self.auth().eid;
        let cfg = state.cfg.clone().ok_or(AppError::NotFound(Missing::Eid))?;
        state
            .provider
            .get_or_try_init(|| async move {
                EidProvider::discover(cfg).await.map(Arc::new).map_err(|e| {
                    tracing::error!(error = %e, "E-ID provider discovery failed");
                    AppError::Unavailable
                })
            })
            .await
            .cloned()
    }

    /// Starts an E-ID login: the provider URL to send the person to, and the `state` (a browser
    /// keeps it in a cookie, which the callback must bring back: a callback link made by someone
    /// else, for their own E-ID, logs nobody in). `client` is `browser` (the callback sets a
    /// session cookie) or `app` (it answers with a bearer token).
    pub async fn eid_start(&self, client: &str) -> Result<(String, String), AppError> {
        let provider = self.eid().await?;
        let start = provider.start();
        let id = self.k.new_id()?;
        let secret = serde_json::to_vec(&FlowSecret {
            nonce: start.nonce,
            verifier: start.pkce_verifier,
        })
        .map_err(|_| AppError::Internal("eid flow"))?;
        let now = self.k.now().0;
        self.k
            .store()
            .insert_eid_flow(
                id,
                &token::token_hash(&start.state),
                &self.k.keyring().encrypt(EID_SECRET, id, &secret)?,
                if client == "browser" {
                    "browser"
                } else {
                    "app"
                },
                now,
                now + EID_FLOW_SECONDS * 1_000_000,
            )
            .await?;
        Ok((start.url, start.state))
    }

    /// The provider sent the person back: checks the state (once), the issuer, exchanges the
    /// code, verifies the ID token, and opens a session for the person with that CIN. Returns the
    /// session and the client kind the login started with.
    pub async fn eid_callback(
        &self,
        q: &EidCallback,
        browser_state: Option<&str>,
        request_id: &str,
    ) -> Result<(NewSession, String), AppError> {
        let fail = |reason: &'static str| async move {
            Audit::auth(None, "login", "failed")
                .detail(format!("method=eid reason={reason}"))
                .write(&self.k, request_id)
                .await?;
            Err::<(NewSession, String), AppError>(AppError::LoginFailed)
        };
        let provider = self.eid().await?;
        let (Some(code), Some(state), None) = (&q.code, &q.state, &q.error) else {
            return fail("provider_error").await;
        };
        // A browser that brings a state cookie must bring this state.
        if browser_state.is_some_and(|b| b != state) {
            return fail("state_binding").await;
        }
        let Some((id, secret, client)) = self
            .k
            .store()
            .take_eid_flow(&token::token_hash(state), self.k.now().0)
            .await?
        else {
            return fail("state").await;
        };
        // A flow started by a browser completes only in that browser.
        if client == "browser" && browser_state != Some(state.as_str()) {
            return fail("state_binding").await;
        }
        // RFC 9207: the response names its issuer; a mix-up with another provider is refused.
        if q.iss.as_deref().is_some_and(|iss| iss != provider.issuer()) {
            return fail("issuer").await;
        }
        let plain = self.k.unseal_secret(EID_SECRET, id, &secret)?;
        let flow: FlowSecret =
            serde_json::from_slice(&plain).map_err(|_| AppError::Internal("eid flow"))?;
        let national_id = match provider.exchange(code, &flow.verifier).await {
            Ok(raw) => match provider.verify(&raw, &flow.nonce) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "E-ID token refused");
                    return fail("token").await;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "E-ID code exchange refused");
                return fail("exchange").await;
            }
        };
        let Ok(cin) = Cin::parse(&national_id) else {
            return fail("national_id").await;
        };
        let Some(person) = self.k.resolve(&Subject::Cin(cin.clone())).await? else {
            return fail("not_registered").await;
        };
        // A decoy's identity at the E-ID: the same answer as for someone not registered, and
        // an alert.
        if self.k.is_decoy_person(person) {
            self.k.decoy_touched(None, "E-ID login", request_id).await?;
            return fail("not_registered").await;
        }
        let p = match self.k.store().account_for_person(person).await? {
            Some(row) => Principal::from_row(row)?,
            None => self.create_eid_account(person, &cin, request_id).await?,
        };
        if p.locked {
            return fail("disabled").await;
        }
        let session = self.open_session(&p, None, "eid", request_id).await?;
        Ok((session, client))
    }

    /// The first E-ID login of a registered person: their account, without a password.
    async fn create_eid_account(
        &self,
        person: i64,
        cin: &Cin,
        request_id: &str,
    ) -> Result<Principal, AppError> {
        let (row, account) = self.account_rows(
            Role::Insured,
            (Some(person), None),
            self.login_bidx(cin.as_str())?,
            None,
            false,
        )?;
        let p = Principal::from_row(row.clone())?;
        Audit::auth(Some(&p), "account_created", "allow")
            .detail("factor=eid")
            .write(&self.k, request_id)
            .await?;
        match self.k.store().insert_account(&row, &account).await {
            Ok(()) => Ok(p),
            // Created meanwhile by a concurrent login.
            Err(store::StoreError::Conflict(_)) => self
                .k
                .store()
                .account_for_person(person)
                .await?
                .map(Principal::from_row)
                .transpose()?
                .ok_or(AppError::Conflict(Clash::Login)),
            Err(e) => Err(e.into()),
        }
    }
}
