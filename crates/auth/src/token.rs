//! Opaque tokens (sessions, pending logins, enrolments, invitations, RIB-change cancellations):
//! 128 bits from the CSPRNG, handed out once in hexadecimal and stored only as their SHA-256, so
//! the database never holds a usable token.

use sha2::{Digest, Sha256};
use vault::{Random, VaultError};

/// Bytes of randomness in a token.
pub const TOKEN_BYTES: usize = 16;

/// A new token and the hash to store.
pub fn new_token(random: &dyn Random) -> Result<(String, [u8; 32]), VaultError> {
    let mut b = [0u8; TOKEN_BYTES];
    random.fill(&mut b)?;
    let token = crate::hex(&b);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// The stored form of a token. Anything that is not a well-formed token hashes to a value no
/// stored token has, so a lookup simply finds nothing.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_hashed() {
        let (t, h) = new_token(&vault::OsRandom).unwrap();
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(token_hash(&t), h);
        let (t2, _) = new_token(&vault::OsRandom).unwrap();
        assert_ne!(t, t2);
    }
}
