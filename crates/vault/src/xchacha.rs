//! XChaCha20-Poly1305, the vault's one AEAD (field encryption and key wrapping).
//!
//! The construction of draft-irtf-cfrg-xchacha-03: HChaCha20 derives a subkey from the key and
//! the first 16 bytes of the 24-byte nonce, then ChaCha20-Poly1305 (RFC 8439) seals under that
//! subkey with the nonce `0⁴ ‖ nonce[16..24]`. The bytes are those of
//! `chacha20poly1305::XChaCha20Poly1305` (a test compares them); HChaCha20 comes from the
//! `chacha20` crate and ChaCha20-Poly1305 from `ring`, whose assembly seals a 70-byte field in
//! 430–475 ns against 650–850 ns for the RustCrypto crates' portable backends (their AVX2
//! backends: 1 830–1 880 ns), and an import seals four million lines a month
//! (docs/performance.md).

use crate::VaultError;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;

/// The RFC 8439 key and nonce that `key` and the extended `nonce` stand for.
fn ietf(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> Result<(LessSafeKey, Nonce), VaultError> {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&nonce[..16]);
    let mut k: chacha20::Key = (*key).into();
    let mut sub = chacha20::hchacha::<chacha20::R20>(&k, &prefix.into());
    k.as_mut_slice().zeroize();
    // ring keeps its own copy of the subkey and does not wipe it (docs/architecture.md).
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, sub.as_slice());
    sub.as_mut_slice().zeroize();
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(&nonce[16..]);
    Ok((
        LessSafeKey::new(unbound.map_err(|_| VaultError::Format)?),
        Nonce::assume_unique_for_key(short),
    ))
}

/// Encrypts `in_out` in place; returns the tag.
pub(crate) fn seal_in_place(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; TAG_LEN], VaultError> {
    let (k, n) = ietf(key, nonce)?;
    let tag = k
        .seal_in_place_separate_tag(n, Aad::from(aad), in_out)
        .map_err(|_| VaultError::Format)?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts `sealed` (ciphertext then tag) into a new vector. Nothing of a ciphertext that
/// fails to authenticate is returned or left behind; one too short to hold a tag fails the same.
pub(crate) fn open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < TAG_LEN {
        return Err(VaultError::Decrypt);
    }
    let (k, n) = ietf(key, nonce)?;
    let mut buf = sealed.to_vec();
    match k.open_in_place(n, Aad::from(aad), &mut buf) {
        Ok(plain) => {
            let len = plain.len();
            buf.truncate(len);
            Ok(buf)
        }
        Err(_) => {
            // ring leaves the buffer's content unspecified on failure.
            buf.zeroize();
            Err(VaultError::Decrypt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    /// A deterministic byte stream for the test inputs.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn the_same_bytes_as_the_reference_implementation_and_back() {
        for (i, len) in [0usize, 1, 15, 16, 17, 63, 64, 65, 70, 255, 256, 1000, 4097]
            .into_iter()
            .enumerate()
        {
            let seed = i as u64;
            let key: [u8; 32] = bytes(seed, 32).try_into().unwrap();
            let nonce: [u8; 24] = bytes(seed + 100, 24).try_into().unwrap();
            let aad = bytes(seed + 200, i * 7);
            let plain = bytes(seed + 300, len);
            let reference = XChaCha20Poly1305::new_from_slice(&key)
                .unwrap()
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &plain,
                        aad: &aad,
                    },
                )
                .unwrap();
            let mut sealed = plain.clone();
            let tag = seal_in_place(&key, &nonce, &aad, &mut sealed).unwrap();
            sealed.extend_from_slice(&tag);
            assert_eq!(sealed, reference, "length {len}");
            assert_eq!(open(&key, &nonce, &aad, &sealed).unwrap(), plain);
        }
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1: the tag of its example.
    #[test]
    fn the_drafts_example() {
        let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let mut text = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let tag = seal_in_place(&key, &nonce, &aad, &mut text).unwrap();
        assert_eq!(
            crate::hex(&tag),
            "c0875924c1c7987947deafd8780acf49",
            "the draft's tag"
        );
        assert_eq!(crate::hex(&text[..16]), "bd6d179d3e83d43b9576579493c0e939");
    }

    #[test]
    fn any_change_fails_and_leaves_nothing() {
        let key = [7u8; 32];
        let nonce = [9u8; 24];
        let mut sealed = b"salaire 12345,67".to_vec();
        let tag = seal_in_place(&key, &nonce, b"row 1", &mut sealed).unwrap();
        sealed.extend_from_slice(&tag);
        assert!(matches!(
            open(&key, &nonce, b"row 2", &sealed),
            Err(VaultError::Decrypt)
        ));
        let mut other = nonce;
        other[20] ^= 1;
        assert!(open(&key, &other, b"row 1", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open(&key, &nonce, b"row 1", &bad).is_err(), "byte {i}");
        }
        assert!(matches!(
            open(&key, &nonce, b"row 1", &sealed[..15]),
            Err(VaultError::Decrypt)
        ));
    }
}
