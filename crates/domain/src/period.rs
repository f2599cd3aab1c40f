//! A contribution period: one calendar month, written YYYYMM.

use crate::error::{Rule, ValidationError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u16,
    month: u8,
}

impl Period {
    pub const FIELD: &'static str = "period";

    pub fn new(year: u16, month: u8) -> Result<Self, ValidationError> {
        if (1..=12).contains(&month) && (1900..=9999).contains(&year) {
            Ok(Period { year, month })
        } else {
            Err(ValidationError::new(Self::FIELD, Rule::PeriodShape))
        }
    }

    /// The period of a civil year and month, clamped into 1900-01..=9999-12.
    pub fn clamped(year: i32, month: u8) -> Period {
        Period {
            year: year.clamp(1900, 9999) as u16,
            month: month.clamp(1, 12),
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim();
        let err = || ValidationError::new(Self::FIELD, Rule::PeriodShape);
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let year = s[..4].parse().map_err(|_| err())?;
        let month = s[4..].parse().map_err(|_| err())?;
        Period::new(year, month)
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}{:02}", self.year, self.month)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        let p = Period::parse("202512").unwrap();
        assert_eq!(p.next().to_string(), "202601");
        assert!(Period::parse("202513").is_err());
        assert!(Period::parse("2025-1").is_err());
        assert!(Period::parse("201601").unwrap() > Period::parse("201512").unwrap());
    }
}
