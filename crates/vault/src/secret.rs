use crate::VaultError;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 bytes of key material, wiped when dropped, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret32([u8; 32]);

impl Secret32 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Secret32(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn generate(random: &dyn Random) -> Result<Self, VaultError> {
        let mut s = Secret32([0; 32]);
        random.fill(&mut s.0)?;
        Ok(s)
    }
}

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret32(…)")
    }
}

/// The random source, injected so that tests can control it.
pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]) -> Result<(), VaultError>;
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), VaultError> {
        getrandom::fill(buf).map_err(|_| VaultError::Random)
    }
}
