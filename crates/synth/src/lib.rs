//! Synthetic but realistic population: employers and insured persons.
//!
//! Everything is derived from a seed and an index, so any slice of a population of millions can
//! be generated alone, in any order, identically every time (loaders stream it; benchmarks pick
//! the CIN of person *i* without storing anything). Identifiers are unique by construction
//! (CIN and ICE are bijections of the index), RIB keys are valid, e-mail addresses use the
//! reserved `example.*` domains. No real person's data is used, and identifiers are drawn where
//! real ones are unlikely: CIN prefixes in Z and Q, bank codes 990–999, phones in +212 60.

use domain::{Centimes, Rib};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub mod month;
mod names;
use names::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthEmployer {
    pub name: String,
    pub activity: String,
    pub city: String,
    pub ice: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPerson {
    pub cin: String,
    pub last_name: String,
    pub first_name: String,
    pub last_name_ar: String,
    pub first_name_ar: String,
    pub birth_date: String,
    pub phone: String,
    pub email: Option<String>,
    pub address: String,
    pub rib: String,
    pub children: u8,
    /// Gross monthly salary, from the SMIG upward.
    pub salary: Centimes,
    /// Index of the employer (in the same population) that employs this person.
    pub employer: usize,
}

/// A population: its seed and sizes.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub seed: u64,
    pub employers: usize,
    pub persons: usize,
    /// The monthly SMIG salaries start from, in centimes.
    pub smig: Centimes,
}

/// CIN prefixes, each with 10^6 numbers: room for 28 million. Two-letter prefixes in Z and Q,
/// which no issuing region is known to use, so that a synthetic CIN is unlikely to be a real one.
const CIN_PREFIXES: [&str; 28] = [
    "ZA", "ZB", "ZC", "ZD", "ZE", "ZF", "ZH", "ZI", "ZJ", "ZK", "ZL", "ZM", "ZN", "ZO", "ZP", "ZQ",
    "ZR", "ZS", "ZU", "ZV", "ZW", "ZX", "ZY", "ZZ", "QW", "QX", "QY", "QZ",
];

/// Capacity of the CIN bijection.
pub const MAX_PERSONS: usize = CIN_PREFIXES.len() * 1_000_000;

/// Fictitious bank codes (990–999): synthetic RIBs have valid keys but no real bank.
const BANKS: [&str; 10] = [
    "990", "991", "992", "993", "994", "995", "996", "997", "998", "999",
];

impl Population {
    pub fn new(seed: u64, employers: usize, persons: usize, smig: Centimes) -> Population {
        Population {
            seed,
            employers: employers.max(1),
            persons: persons.min(MAX_PERSONS),
            smig,
        }
    }

    fn rng(&self, kind: u64, i: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.seed
                ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        )
    }

    /// The CIN of person `i`: a bijection of the index, so never repeated.
    pub fn cin(&self, i: usize) -> String {
        let prefix = CIN_PREFIXES[i % CIN_PREFIXES.len()];
        // 7 919 is prime to 10^6, so multiplication modulo 10^6 permutes the numbers.
        let n = ((i / CIN_PREFIXES.len()) as u64 * 7_919 + self.seed % 1_000_000) % 1_000_000;
        format!("{prefix}{n:06}")
    }

    pub fn employer(&self, i: usize) -> SynthEmployer {
        let mut r = self.rng(1, i);
        let name = format!(
            "{} {} {}",
            pick(&mut r, COMPANY_WORDS),
            pick(&mut r, COMPANY_TRADES),
            pick(&mut r, COMPANY_FORMS)
        );
        let activity = pick(&mut r, ACTIVITIES).to_string();
        let city = pick(&mut r, CITIES).to_string();
        // ICE: 9-digit company (from the index), 4-digit establishment, 2 control digits.
        let company = 1_000_000 + i as u64;
        let ice = format!("{company:09}{:04}{:02}", 1, (company * 7 + 3) % 97);
        SynthEmployer {
            name: name.chars().take(40).collect(),
            activity,
            city,
            ice,
        }
    }

    pub fn person(&self, i: usize) -> SynthPerson {
        let mut r = self.rng(2, i);
        let female = r.random_bool(0.45);
        let (first, first_ar) = if female {
            pick_pair(&mut r, FEMALE_FIRST)
        } else {
            pick_pair(&mut r, MALE_FIRST)
        };
        let (last, last_ar) = pick_pair(&mut r, LAST_NAMES);
        let birth_date = format!(
            "{:04}-{:02}-{:02}",
            r.random_range(1960..=2006),
            r.random_range(1..=12),
            r.random_range(1..=28)
        );
        // Mobile numbers in the +212 60 block only.
        let phone = format!("+21260{:07}", r.random_range(0..10_000_000u32));
        let email = r.random_bool(0.6).then(|| {
            let domain = pick(&mut r, &["example.com", "example.org", "example.net"]);
            format!(
                "{}.{}{}@{domain}",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', ""),
                i % 1000
            )
        });
        let city = pick(&mut r, CITIES);
        let address = format!(
            "N° {}, {} {}, {city}",
            r.random_range(1..300),
            pick(&mut r, STREET_KINDS),
            pick(&mut r, STREET_NAMES)
        );
        let first22 = format!(
            "{}{:03}{:016}",
            pick(&mut r, &BANKS),
            r.random_range(0..1000),
            r.random_range(0..10_000_000_000_000_000u64)
        );
        let key = Rib::key_for(&first22).unwrap_or(0);
        let children = match r.random_range(0..100) {
            0..35 => 0,
            35..55 => 1,
            55..75 => 2,
            75..88 => 3,
            88..95 => 4,
            95..98 => 5,
            _ => 6,
        };
        // Salaries: SMIG plus an exponential tail (mean +80 %), capped at 60 000 MAD.
        let u: f64 = r.random_range(0.0..1.0);
        let factor = 1.0 - 0.8 * (1.0 - u).ln();
        let salary = Centimes(((self.smig.0 as f64) * factor).min(6_000_000.0) as i64);
        // Large employers employ more: index skewed towards 0.
        let v: f64 = r.random_range(0.0..1.0);
        let employer = ((v * v * self.employers as f64) as usize).min(self.employers - 1);
        SynthPerson {
            cin: self.cin(i),
            last_name: last.to_string(),
            first_name: first.to_string(),
            last_name_ar: last_ar.to_string(),
            first_name_ar: first_ar.to_string(),
            birth_date,
            phone,
            email,
            address,
            rib: format!("{first22}{key:02}"),
            children,
            salary,
            employer,
        }
    }
}

fn pick<'a>(r: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[r.random_range(0..items.len())]
}

fn pick_pair<'a>(r: &mut ChaCha8Rng, items: &[(&'a str, &'a str)]) -> (&'a str, &'a str) {
    items[r.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Cin, Ice, Phone};
    use std::collections::HashSet;

    fn pop() -> Population {
        Population::new(42, 200, 50_000, Centimes(342_272))
    }

    #[test]
    fn deterministic_and_valid() {
        let p = pop();
        assert_eq!(p.person(17), p.person(17));
        assert_ne!(p.person(17), p.person(18));
        for i in 0..2_000 {
            let x = p.person(i);
            assert!(Cin::parse(&x.cin).is_ok(), "{}", x.cin);
            assert!(Rib::parse(&x.rib).is_ok());
            assert!(Phone::parse(&x.phone).is_ok());
            assert!(x.salary >= Centimes(342_272) && x.salary <= Centimes(6_000_000));
            assert!(x.employer < 200);
            assert!(x.email.as_deref().is_none_or(|e| e.contains("@example.")));
            assert!(!x.last_name_ar.is_ascii());
        }
        for i in 0..200 {
            assert!(Ice::parse(&p.employer(i).ice).is_ok());
        }
    }

    #[test]
    fn identifiers_are_unique() {
        let p = pop();
        let cins: HashSet<String> = (0..50_000).map(|i| p.cin(i)).collect();
        assert_eq!(cins.len(), 50_000);
        let ices: HashSet<String> = (0..5_000).map(|i| p.employer(i).ice).collect();
        assert_eq!(ices.len(), 5_000);
        assert_eq!(p.cin(MAX_PERSONS - 1).len(), 8);
    }
}
