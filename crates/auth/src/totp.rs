//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 30-second steps, 6 digits,
//! the form every authenticator app reads from an `otpauth://` URI.
//!
//! A code is accepted for the current step and one step either side (clock drift), and only for a
//! step later than the last one accepted on the same factor: the caller keeps that step and
//! refuses a replay with [`verify`]'s answer.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Seed length in bytes (160 bits, the RFC 4226 recommendation; NIST asks at least 112).
pub const SEED_LEN: usize = 20;

/// The time step of a Unix time in seconds.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The HOTP value of `seed` at `counter`, `digits` long.
pub fn hotp(seed: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(seed) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The code shown at `unix_seconds`, zero-padded.
pub fn code_at(seed: &[u8], unix_seconds: i64) -> String {
    format!(
        "{:0width$}",
        hotp(seed, step_at(unix_seconds) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// The step `code` belongs to, if it is valid at `unix_seconds` (±1 step) and later than
/// `last_step` (the last step accepted for this seed: a replay is refused). Compares in constant
/// time.
pub fn verify(seed: &[u8], code: &str, unix_seconds: i64, last_step: i64) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let expected = code_at(seed, step * STEP_SECONDS);
        let same = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes());
        if bool::from(same) && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps expect the seed.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI an authenticator app scans. The label names the service and an opaque
/// account label, never a CIN or a name.
pub fn otpauth_uri(seed: &[u8], issuer: &str, account: &str) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(seed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, 8 digits.
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(RFC_SEED, t / 30, 8), want, "t={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let want = [755224, 287082, 359152, 969429, 338314];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, i as u64, 6), *w);
        }
    }

    #[test]
    fn accepts_adjacent_steps_once() {
        let t = 1_700_000_000;
        let code = code_at(RFC_SEED, t);
        let step = verify(RFC_SEED, &code, t, 0);
        assert_eq!(step, Some(step_at(t)));
        // The same code again: refused.
        assert_eq!(verify(RFC_SEED, &code, t, step_at(t)), None);
        // Previous step's code still valid 30 s later, but not 60 s later.
        assert!(verify(RFC_SEED, &code, t + 30, 0).is_some());
        assert!(verify(RFC_SEED, &code, t + 90, 0).is_none());
        assert!(verify(RFC_SEED, "12345", t, 0).is_none());
        assert!(verify(RFC_SEED, "abcdef", t, 0).is_none());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(RFC_SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }
}
