//! Identifiers of the fund's world, each validated on the way in.

use crate::error::{Rule, ValidationError};
use std::fmt;

fn digits_only(field: &'static str, s: &str, len: usize) -> Result<(), ValidationError> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else if s.is_empty() {
        Err(ValidationError::new(field, Rule::Required))
    } else {
        Err(ValidationError::new(field, Rule::Digits(len)))
    }
}

fn parse_digits(field: &'static str, s: &str, len: usize) -> Result<u64, ValidationError> {
    let s = s.trim();
    digits_only(field, s, len)?;
    s.parse::<u64>()
        .map_err(|_| ValidationError::new(field, Rule::Digits(len)))
}

/// An employer's CNSS affiliation number: 7 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AffiliateNumber(u32);

impl AffiliateNumber {
    pub const FIELD: &'static str = "affiliate_number";

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        // 7 digits always fit in a u32.
        Ok(AffiliateNumber(parse_digits(Self::FIELD, s, 7)? as u32))
    }

    /// From a number, for allocation; refuses anything that is not 7 digits wide.
    pub fn from_number(n: u32) -> Result<Self, ValidationError> {
        if n <= 9_999_999 {
            Ok(AffiliateNumber(n))
        } else {
            Err(ValidationError::new(Self::FIELD, Rule::Digits(7)))
        }
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for AffiliateNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:07}", self.0)
    }
}

/// An insured person's CNSS immatriculation number: 9 digits. `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Immatriculation(u32);

impl fmt::Debug for Immatriculation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Immatriculation(…)")
    }
}

impl Immatriculation {
    pub const FIELD: &'static str = "immatriculation";

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Ok(Immatriculation(parse_digits(Self::FIELD, s, 9)? as u32))
    }

    pub fn from_number(n: u32) -> Result<Self, ValidationError> {
        if n <= 999_999_999 {
            Ok(Immatriculation(n))
        } else {
            Err(ValidationError::new(Self::FIELD, Rule::Digits(9)))
        }
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Immatriculation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

/// A national identity card number (CIN): one or two letters then 1 to 6 digits, 8 characters at
/// most (the width of e-BDS `L_Num_CIN`). Stored upper case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cin(String);

impl Cin {
    pub const FIELD: &'static str = "cin";

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim().to_ascii_uppercase();
        if s.is_empty() {
            return Err(ValidationError::new(Self::FIELD, Rule::Required));
        }
        let letters = s.bytes().take_while(|b| b.is_ascii_uppercase()).count();
        let rest = &s[letters..];
        let ok = (1..=2).contains(&letters)
            && (1..=6).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Cin(s))
        } else {
            Err(ValidationError::new(Self::FIELD, Rule::CinShape))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cin(…)")
    }
}

/// A Moroccan bank account number (RIB): 24 digits, bank (3) + locality (3) + account (16) +
/// key (2), valid when the whole number is divisible by 97.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rib(String);

impl Rib {
    pub const FIELD: &'static str = "rib";

    /// Accepts the 24 digits with or without spaces between groups.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        digits_only(Self::FIELD, &compact, 24)?;
        if mod97(&compact) != 0 {
            return Err(ValidationError::new(Self::FIELD, Rule::RibKey));
        }
        Ok(Rib(compact))
    }

    /// The key that completes 22 digits (bank, locality, account): 97 − (n × 100 mod 97).
    pub fn key_for(first22: &str) -> Result<u8, ValidationError> {
        digits_only(Self::FIELD, first22, 22)?;
        let r = (mod97(first22) * 100) % 97;
        Ok((97 - r) as u8)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Rib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rib(…)")
    }
}

/// The remainder of a string of decimal digits divided by 97.
fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
}

/// A company's Identifiant Commun de l'Entreprise: 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ice(String);

impl Ice {
    pub const FIELD: &'static str = "ice";

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim();
        digits_only(Self::FIELD, s, 15)?;
        Ok(Ice(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Moroccan phone number in E.164 form: `+212` then 9 digits, the first 5 to 9.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub const FIELD: &'static str = "phone";

    /// Accepts `+212…`, `00212…`, `212…` or the national form `0…`, with spaces, dots or dashes.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let compact: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        if compact.is_empty() {
            return Err(ValidationError::new(Self::FIELD, Rule::Required));
        }
        let national = compact
            .strip_prefix("+212")
            .or_else(|| compact.strip_prefix("00212"))
            .or_else(|| compact.strip_prefix("212"))
            .or_else(|| compact.strip_prefix('0'))
            .unwrap_or("");
        let ok = national.len() == 9
            && national.bytes().all(|b| b.is_ascii_digit())
            && matches!(national.as_bytes()[0], b'5'..=b'9');
        if ok {
            Ok(Phone(format!("+212{national}")))
        } else {
            Err(ValidationError::new(Self::FIELD, Rule::PhoneShape))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affiliate_and_immatriculation_widths() {
        assert_eq!(
            AffiliateNumber::parse("1307492").map(|a| a.to_string()),
            Ok("1307492".into())
        );
        assert_eq!(
            AffiliateNumber::parse("130749"),
            Err(ValidationError::new("affiliate_number", Rule::Digits(7)))
        );
        assert_eq!(
            AffiliateNumber::parse("13O7492"),
            Err(ValidationError::new("affiliate_number", Rule::Digits(7)))
        );
        assert_eq!(
            Immatriculation::parse("007070813").map(|i| i.to_string()),
            Ok("007070813".into())
        );
        assert_eq!(
            Immatriculation::parse(""),
            Err(ValidationError::new("immatriculation", Rule::Required))
        );
        assert!(Immatriculation::from_number(1_000_000_000).is_err());
    }

    #[test]
    fn cin_shapes() {
        for ok in ["A123456", "ab123456", " BE12345 ", "X1"] {
            assert!(Cin::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["123456", "ABC12345", "AB1234567", "AB", "A12B45"] {
            assert_eq!(
                Cin::parse(bad),
                Err(ValidationError::new("cin", Rule::CinShape)),
                "{bad}"
            );
        }
        assert_eq!(
            Cin::parse("ab123456").map(|c| c.as_str().to_string()),
            Ok("AB123456".into())
        );
    }

    #[test]
    fn rib_key_from_the_reference_example() {
        // cnss-domain.md §3.1: 011519000001205000534921, key 21.
        assert_eq!(Rib::key_for("0115190000012050005349"), Ok(21));
        assert!(Rib::parse("011 519 0000012050005349 21").is_ok());
        assert_eq!(
            Rib::parse("011519000001205000534922"),
            Err(ValidationError::new("rib", Rule::RibKey))
        );
        assert_eq!(
            Rib::parse("01151900000120500053492"),
            Err(ValidationError::new("rib", Rule::Digits(24)))
        );
    }

    #[test]
    fn every_key_completes_a_valid_rib() {
        for n in 0..500u64 {
            let first22 = format!("{:022}", n * 7_919_000_013 + 230_810_000_000);
            let key = Rib::key_for(&first22).unwrap_or(0);
            assert!(Rib::parse(&format!("{first22}{key:02}")).is_ok());
        }
    }

    #[test]
    fn ice_and_phone() {
        assert!(Ice::parse("001525478000088").is_ok());
        assert_eq!(
            Ice::parse("00152547800008"),
            Err(ValidationError::new("ice", Rule::Digits(15)))
        );
        for ok in [
            "+212600123456",
            "0600123456",
            "06 00 12 34 56",
            "00212500123456",
            "212 7-00-12-34-56",
        ] {
            assert_eq!(Phone::parse(ok).map(|p| p.as_str().len()), Ok(13), "{ok}");
        }
        for bad in ["+33600123456", "0400123456", "065012345", "+2126001234567"] {
            assert_eq!(
                Phone::parse(bad),
                Err(ValidationError::new("phone", Rule::PhoneShape)),
                "{bad}"
            );
        }
    }
}
