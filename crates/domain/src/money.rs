//! Money: integer centimes of MAD. No floating point anywhere near an amount.

use crate::error::{Rule, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of MAD in centimes (1 MAD = 100 centimes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Centimes(pub i64);

impl Centimes {
    pub const ZERO: Centimes = Centimes(0);

    pub fn from_mad(mad: i64) -> Option<Centimes> {
        mad.checked_mul(100).map(Centimes)
    }

    pub fn checked_add(self, other: Centimes) -> Option<Centimes> {
        self.0.checked_add(other.0).map(Centimes)
    }

    /// `self × bp / 10 000`, rounded half away from zero to the centime.
    pub fn apply_basis_points(self, bp: u32) -> Result<Centimes, ValidationError> {
        // `bp` is not negative, so the product has the amount's sign (or is 0, which either
        // half rounds to 0).
        let half: i64 = if self.0 >= 0 { 5_000 } else { -5_000 };
        // Every salary's product fits 64 bits, and a 64-bit division is several times cheaper
        // than a 128-bit one (four million lines a month, nine branches each).
        if let Some(sum) = self
            .0
            .checked_mul(i64::from(bp))
            .and_then(|p| p.checked_add(half))
        {
            return Ok(Centimes(sum / 10_000));
        }
        let rounded = (i128::from(self.0) * i128::from(bp) + i128::from(half)) / 10_000;
        i64::try_from(rounded)
            .map(Centimes)
            .map_err(|_| ValidationError::new("amount", Rule::Overflow))
    }

    /// Refuses a negative amount, naming `field`.
    pub fn non_negative(self, field: &'static str) -> Result<Centimes, ValidationError> {
        if self.0 < 0 {
            Err(ValidationError::new(field, Rule::NotNegative))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Display for Centimes {
    /// `1507.60`: MAD with two decimals, no grouping.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_round_half_away_from_zero() {
        assert_eq!(
            Centimes(600_000).apply_basis_points(105),
            Ok(Centimes(6_300))
        );
        assert_eq!(Centimes(333).apply_basis_points(5_000), Ok(Centimes(167)));
        assert_eq!(Centimes(-333).apply_basis_points(5_000), Ok(Centimes(-167)));
        assert_eq!(Centimes(1).apply_basis_points(4_999), Ok(Centimes(0)));
    }

    #[test]
    fn basis_points_agree_with_128_bit_arithmetic_at_the_edges_of_64_bits() {
        let exact = |v: i64, bp: u32| {
            let product = i128::from(v) * i128::from(bp);
            let half = if product >= 0 { 5_000 } else { -5_000 };
            i64::try_from((product + half) / 10_000).ok()
        };
        for v in [
            0,
            1,
            -1,
            4_999,
            -5_000,
            i64::MAX,
            i64::MIN,
            i64::MAX / 10_000,
            -(i64::MAX / 10_000),
            i64::MAX / 4_999 + 1,
            i64::MAX - 4_999,
            i64::MIN + 5_000,
        ] {
            for bp in [0, 1, 105, 4_999, 5_000, 10_000, 1_000_000, u32::MAX] {
                assert_eq!(
                    Centimes(v).apply_basis_points(bp).ok(),
                    exact(v, bp).map(Centimes),
                    "{v} x {bp}"
                );
            }
        }
    }

    #[test]
    fn display_in_mad() {
        assert_eq!(Centimes(150_760).to_string(), "1507.60");
        assert_eq!(Centimes(-5).to_string(), "-0.05");
        assert_eq!(Centimes::from_mad(8_000), Some(Centimes(800_000)));
    }
}
