//! A MAC key for signing short tokens (e.g. development bearer tokens).

use crate::Secret32;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub fn new(secret: &Secret32) -> MacKey {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        MacKey(
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose())
                .unwrap_or_else(|_| unreachable_hmac()),
        )
    }

    pub fn tag(&self, msg: &[u8]) -> [u8; 32] {
        let mut m = self.0.clone();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` over `msg`.
    pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        let mut m = self.0.clone();
        m.update(msg);
        m.verify_slice(tag).is_ok()
    }
}

fn unreachable_hmac() -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new(&Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_with_the_same_key_and_message() {
        let a = MacKey::new(&Secret32::from_bytes([1; 32]));
        let b = MacKey::new(&Secret32::from_bytes([2; 32]));
        let t = a.tag(b"principal 7");
        assert!(a.verify(b"principal 7", &t));
        assert!(!a.verify(b"principal 8", &t));
        assert!(!b.verify(b"principal 7", &t));
    }
}
