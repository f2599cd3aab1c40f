//! The national E-ID as an OpenID Connect provider: the authorization code flow with PKCE (S256),
//! state and nonce, through the `openidconnect` crate. The relying party checks the callback's
//! `state` (and `iss`, RFC 9207) itself, exchanges the code with the PKCE verifier, and verifies
//! the ID token: signature with the provider's published keys (RS256, PS256 or ES256 only),
//! issuer, audience, expiry and nonce. Only then is the national-ID claim read.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// The claims beyond the standard ones, by name: the national-ID claim's name is configuration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EidClaims {
    #[serde(flatten)]
    pub extra: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for EidClaims {}

type EidIdToken =
    IdToken<EidClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type EidIdTokenFields = IdTokenFields<
    EidClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type EidTokenResponse = StandardTokenResponse<EidIdTokenFields, CoreTokenType>;
type EidClient = Client<
    EidClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    EidTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// Why an E-ID login failed. Carries no token, code or claim value.
#[derive(Debug, thiserror::Error)]
pub enum EidError {
    #[error("E-ID provider unreachable or its metadata invalid: {0}")]
    Provider(String),
    #[error("E-ID code exchange refused: {0}")]
    Exchange(String),
    #[error("E-ID ID token rejected: {0}")]
    Token(String),
    #[error("E-ID ID token lacks the national-ID claim")]
    NoNationalId,
    #[error("E-ID configuration: {0}")]
    Config(&'static str),
}

/// Where and how daman is registered with the E-ID provider.
#[derive(Clone)]
pub struct EidConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: zeroize::Zeroizing<String>,
    /// daman's callback, as registered with the provider.
    pub redirect_url: String,
    /// The ID-token claim holding the national ID (the CIN).
    pub national_id_claim: String,
    /// Extra scopes that release that claim.
    pub scopes: Vec<String>,
}

/// What the relying party keeps between the redirect and the callback.
pub struct EidStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The provider, discovered once (its metadata and signing keys).
pub struct EidProvider {
    cfg: EidConfig,
    client: EidClient,
    issuer: IssuerUrl,
    http: reqwest::Client,
}

impl EidProvider {
    /// Fetches the provider's metadata and keys (`/.well-known/openid-configuration`).
    pub async fn discover(cfg: EidConfig) -> Result<EidProvider, EidError> {
        // No redirects: the provider's endpoints are called directly (SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| EidError::Config("HTTP client"))?;
        let issuer =
            IssuerUrl::new(cfg.issuer.clone()).map_err(|_| EidError::Config("issuer URL"))?;
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &http)
            .await
            .map_err(|e| EidError::Provider(e.to_string()))?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| EidError::Provider("no token endpoint".into()))?;
        let redirect = RedirectUrl::new(cfg.redirect_url.clone())
            .map_err(|_| EidError::Config("redirect URL"))?;
        let client: EidClient = Client::from_provider_metadata(
            metadata,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(cfg.client_secret.to_string())),
        )
        .set_redirect_uri(redirect)
        .set_token_uri(token_url);
        Ok(EidProvider {
            cfg,
            client,
            issuer,
            http,
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// A new authorization request: the URL to send the browser to, and what to keep.
    pub fn start(&self) -> EidStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in &self.cfg.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        EidStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code (with the PKCE verifier) for tokens; the raw ID token.
    pub async fn exchange(&self, code: &str, pkce_verifier: &str) -> Result<String, EidError> {
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| EidError::Exchange(e.to_string()))?;
        let id = tokens
            .id_token()
            .ok_or_else(|| EidError::Token("no ID token".into()))?;
        serde_json::to_value(id)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| EidError::Token("unreadable".into()))
    }

    /// Verifies a raw ID token (signature, algorithm, issuer, audience, expiry, nonce) and
    /// returns its national-ID claim.
    pub fn verify(&self, raw: &str, nonce: &str) -> Result<String, EidError> {
        let token = EidIdToken::from_str(raw).map_err(|e| EidError::Token(e.to_string()))?;
        let verifier = self.client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ]);
        let claims = token
            .claims(&verifier, &Nonce::new(nonce.to_string()))
            .map_err(|e| EidError::Token(e.to_string()))?;
        claims
            .additional_claims()
            .extra
            .get(&self.cfg.national_id_claim)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or(EidError::NoNationalId)
    }
}
