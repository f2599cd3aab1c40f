//! A software WebAuthn authenticator ("soft passkey") for integration tests.
//!
//! It plays both the browser (builds `clientDataJSON`) and the authenticator
//! (builds `authenticatorData`, the "none" attestation object and the ES256
//! assertion signature), so a test can drive a `webauthn-rs` relying party
//! through its JSON API without a browser.
//!
//! Dependencies: `serde_json`, `p256` 0.14 (features `ecdsa`, `getrandom`; the
//! default `pem` feature brings the DER signature encoding), `sha2` 0.11 and
//! `base64` 0.23. CBOR is hand-written: the attestation object and the COSE key
//! are small fixed maps.
//!
//! Test-only: the private key lives in memory, user presence and user
//! verification are always claimed. Malformed `options` never panic: missing
//! fields become empty values, which the relying party then rejects.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// authenticatorData flag bits (WebAuthn §6.1).
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

/// AAGUID of the soft authenticator: all zero, as a "none" attestation sends.
const AAGUID: [u8; 16] = [0; 16];

/// A software passkey: one P-256 key pair bound to one relying party and user.
/// `Clone` lets a test simulate a cloned authenticator (counter regression).
#[derive(Clone)]
pub struct SoftPasskey {
    key: SigningKey,
    credential_id: Vec<u8>,
    sign_count: u32,
    user_handle: Vec<u8>,
    user_verified: bool,
}

impl Default for SoftPasskey {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftPasskey {
    /// A fresh key pair (from the OS RNG) and a random 32-byte credential id.
    pub fn new() -> SoftPasskey {
        let credential_id: [u8; 32] = p256::elliptic_curve::Generate::generate();
        SoftPasskey {
            key: SigningKey::generate(),
            credential_id: credential_id.to_vec(),
            sign_count: 0,
            user_handle: Vec::new(),
            user_verified: true,
        }
    }

    /// Whether later responses set the UV flag (default true). Clearing it
    /// lets a test check that the relying party insists on user verification.
    pub fn set_user_verified(&mut self, uv: bool) {
        self.user_verified = uv;
    }

    /// The credential id (what the server stores as `CredentialID`).
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }

    /// The signature counter the last response carried.
    pub fn sign_count(&self) -> u32 {
        self.sign_count
    }

    /// The user handle (`user.id`) remembered at registration.
    pub fn user_handle(&self) -> &[u8] {
        &self.user_handle
    }

    /// Answer a registration: `options` is a `CreationChallengeResponse` as JSON
    /// (`{"publicKey": {challenge, rp, user, ...}}`); the result deserialises as
    /// `RegisterPublicKeyCredential`.
    pub fn register(&mut self, options: &Value, origin: &str) -> Value {
        let pk = options.get("publicKey").unwrap_or(options);
        let challenge = str_at(pk, &["challenge"]);
        let rp_id = pk
            .get("rp")
            .and_then(|rp| rp.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| host_of(origin), str::to_owned);
        self.user_handle = b64d(str_at(pk, &["user", "id"]));

        let client_data = client_data_json("webauthn.create", challenge, origin);
        let auth_data = self.auth_data(&rp_id, self.flags() | FLAG_AT, true);
        let attestation_object = attestation_object_none(&auth_data);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation_object),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// Answer an authentication: `options` is a `RequestChallengeResponse` as
    /// JSON; the result deserialises as `PublicKeyCredential`. Each call
    /// increments the signature counter.
    pub fn authenticate(&mut self, options: &Value, origin: &str) -> Value {
        let pk = options.get("publicKey").unwrap_or(options);
        let challenge = str_at(pk, &["challenge"]);
        let rp_id = pk
            .get("rpId")
            .and_then(Value::as_str)
            .map_or_else(|| host_of(origin), str::to_owned);

        self.sign_count = self.sign_count.wrapping_add(1);
        let client_data = client_data_json("webauthn.get", challenge, origin);
        let auth_data = self.auth_data(&rp_id, self.flags(), false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        // ES256: ECDSA P-256 over SHA-256(authData || SHA-256(clientDataJSON)), DER-encoded.
        let signature: Signature = self.key.sign(&signed);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes()),
                "userHandle": URL_SAFE_NO_PAD.encode(&self.user_handle),
            },
            "extensions": {},
        })
    }

    fn flags(&self) -> u8 {
        if self.user_verified {
            FLAG_UP | FLAG_UV
        } else {
            FLAG_UP
        }
    }

    /// rpIdHash(32) | flags(1) | signCount(4, BE) [| attestedCredentialData].
    fn auth_data(&self, rp_id: &str, flags: u8, attested: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.extend_from_slice(&Sha256::digest(rp_id.as_bytes()));
        out.push(flags);
        out.extend_from_slice(&self.sign_count.to_be_bytes());
        if attested {
            out.extend_from_slice(&AAGUID);
            let len = u16::try_from(self.credential_id.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&self.credential_id);
            out.extend_from_slice(&self.cose_key());
        }
        out
    }

    /// COSE_Key (RFC 9053) for ES256: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let sec1 = point.as_bytes(); // 0x04 || x(32) || y(32)
        let (x, y) = match (sec1.get(1..33), sec1.get(33..65)) {
            (Some(x), Some(y)) => (x, y),
            _ => (&[][..], &[][..]),
        };
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut out, x);
        out.push(0x22);
        cbor_bytes(&mut out, y);
        out
    }
}

/// {"fmt": "none", "attStmt": {}, "authData": bytes}, keys in CTAP2 canonical order.
fn attestation_object_none(auth_data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xa3];
    cbor_text(&mut out, "fmt");
    cbor_text(&mut out, "none");
    cbor_text(&mut out, "attStmt");
    out.push(0xa0);
    cbor_text(&mut out, "authData");
    cbor_bytes(&mut out, auth_data);
    out
}

fn cbor_head(out: &mut Vec<u8>, major: u8, len: usize) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len());
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// The browser's CollectedClientData, serialised as a browser would (key order kept).
fn client_data_json(ty: &str, challenge: &str, origin: &str) -> Vec<u8> {
    let q = |s: &str| Value::from(s).to_string();
    format!(
        r#"{{"type":{},"challenge":{},"origin":{},"crossOrigin":false}}"#,
        q(ty),
        q(challenge),
        q(origin)
    )
    .into_bytes()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        match cur.get(k) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// Decode base64url, tolerating padding and the standard alphabet.
fn b64d(s: &str) -> Vec<u8> {
    let t: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(t).unwrap_or_default()
}

/// "https://host:port/path" -> "host", a fallback rp id when the options omit it.
fn host_of(origin: &str) -> String {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_owned()
}
