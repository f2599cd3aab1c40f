//! The vault: data keys, field encryption, blind indexes, and the key-encryption key.
//!
//! - A [`Keyring`] holds versioned data keys (DEKs). Each encrypts with XChaCha20-Poly1305 under
//!   a per-column subkey derived by HKDF, and binds every ciphertext to its table, column, row id
//!   and key id through the associated data: a ciphertext moved anywhere else fails to decrypt.
//! - DEKs are stored only wrapped by a key-encryption key ([`KeyEncryptionKey`]) that never lives
//!   in the database; [`KeyFileKek`] keeps it in a key directory apart from the data.
//! - Blind indexes are truncated HMAC-SHA-256 under per-column keys derived from an index root
//!   that, like the KEK, lives only in the key store.
//!
//! Secret material is zeroized on drop.

mod keyfile;
mod keyring;
mod secret;
mod token;
mod xchacha;

pub use keyfile::{KeyDir, KeyFileKek};
pub use keyring::{BLIND_INDEX_LEN, Column, Keyring, PAD_BUCKET, PERSON_ID_BASE, WrappedKey};
pub use secret::{OsRandom, Random, Secret32, ThreadRandom};
pub use token::MacKey;

/// The bytes of a hexadecimal string (either case); `None` if it is not one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// What went wrong in the vault. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("ciphertext failed authentication (wrong key, row, column or tampered)")]
    Decrypt,
    #[error("ciphertext has an unknown format")]
    Format,
    #[error("data key {0} is not in the keyring")]
    UnknownKey(u32),
    #[error("column {0}.{1} is not registered with the keyring")]
    UnknownColumn(&'static str, &'static str),
    #[error("the random source failed")]
    Random,
    #[error("key store: {0}")]
    KeyStore(String),
}

pub trait KeyEncryptionKey: Send + Sync {
    /// Wraps a data key for storage; `key_id` is bound into the wrapping.
    fn wrap(&self, key_id: u32, dek: &Secret32) -> Result<Vec<u8>, VaultError>;
    /// Unwraps what [`KeyEncryptionKey::wrap`] produced for the same `key_id`.
    fn unwrap(&self, key_id: u32, wrapped: &[u8]) -> Result<Secret32, VaultError>;
    /// The root of the blind-index and pseudonym keys. It never leaves the key store's side.
    fn index_root(&self) -> Result<Secret32, VaultError>;
}
