//! One-time codes sent by SMS (NIST SP 800-63B rev. 4 §3.1.3): six digits from the CSPRNG, valid
//! ten minutes, accepted once. Codes are stored only as a MAC under a key from the key store,
//! bound to the flow they belong to (a pending login, an enrolment, a step-up), so a code read
//! from the database is useless and a code from one flow does not open another.

use vault::{MacKey, Random, VaultError};

/// Digits of a code.
pub const CODE_DIGITS: usize = 6;
/// How long a code is valid.
pub const CODE_TTL_SECONDS: i64 = 600;
/// Codes of one flow that may be live at once: a resend adds one, it does not reset anything.
pub const MAX_LIVE_CODES: i64 = 3;

/// A uniformly drawn code, zero-padded: 000000 to 999999.
pub fn new_code(random: &dyn Random) -> Result<String, VaultError> {
    // Rejection sampling: 4 294 000 000 is the largest multiple of 10^6 below 2^32.
    loop {
        let mut b = [0u8; 4];
        random.fill(&mut b)?;
        let v = u32::from_be_bytes(b);
        if v < 4_294_000_000 {
            return Ok(format!("{:06}", v % 1_000_000));
        }
    }
}

/// Whether `code` looks like a code (six ASCII digits), before any lookup.
pub fn well_formed(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// MACs codes for storage.
pub struct CodeKey(MacKey);

impl CodeKey {
    pub fn new(key: MacKey) -> CodeKey {
        CodeKey(key)
    }

    /// The stored form of `code` within the flow named by `flow` (a token hash).
    pub fn mac(&self, flow: &[u8], code: &str) -> [u8; 32] {
        let mut msg = Vec::with_capacity(flow.len() + 1 + code.len());
        msg.extend_from_slice(flow);
        msg.push(0);
        msg.extend_from_slice(code.as_bytes());
        self.0.tag(&msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault::{OsRandom, Secret32};

    #[test]
    fn codes_are_six_digits_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = new_code(&OsRandom).unwrap();
            assert!(well_formed(&c), "{c}");
            seen.insert(c);
        }
        assert!(seen.len() > 190);
        assert!(!well_formed("12345"));
        assert!(!well_formed("12345a"));
        assert!(!well_formed("１２３４５６"));
    }

    #[test]
    fn a_code_is_bound_to_its_flow() {
        let k = CodeKey::new(MacKey::new(&Secret32::from_bytes([3; 32])));
        assert_eq!(k.mac(b"flow-a", "123456"), k.mac(b"flow-a", "123456"));
        assert_ne!(k.mac(b"flow-a", "123456"), k.mac(b"flow-b", "123456"));
        assert_ne!(k.mac(b"flow-a", "123456"), k.mac(b"flow-a", "123457"));
    }
}
