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

/// A ChaCha20 generator per thread, each seeded with 256 bits from the operating system's
/// CSPRNG when the thread first asks: the same quality of randomness as [`OsRandom`] without
/// a system call for every nonce (an import encrypts millions of fields; `getrandom` was 4 %
/// of its CPU).
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

thread_local! {
    static THREAD_RNG: std::cell::RefCell<Option<rand_chacha::ChaCha20Rng>> =
        const { std::cell::RefCell::new(None) };
}

impl Random for ThreadRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), VaultError> {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        THREAD_RNG.with(|cell| {
            let mut rng = cell.borrow_mut();
            if rng.is_none() {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|_| VaultError::Random)?;
                *rng = Some(rand_chacha::ChaCha20Rng::from_seed(seed));
                seed.zeroize();
            }
            let rng = rng.as_mut().ok_or(VaultError::Random)?;
            rng.fill_bytes(buf);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw() -> [u8; 32] {
        let mut b = [0u8; 32];
        ThreadRandom.fill(&mut b).unwrap();
        b
    }

    #[test]
    fn thread_random_never_repeats_within_or_across_threads() {
        let a = draw();
        let b = draw();
        let c = std::thread::spawn(draw).join().unwrap();
        let d = std::thread::spawn(draw).join().unwrap();
        assert_ne!(a, [0; 32]);
        let all = [a, b, c, d];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
