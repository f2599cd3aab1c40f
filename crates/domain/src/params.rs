//! Dated parameter tables: contribution rates per branch, the ceiling, the minimum wage.
//!
//! Every value is in force from a period until the next entry of its table. The tables are data
//! (`params/morocco.toml`, or a file named in the configuration), never constants in code.

use crate::money::Centimes;
use crate::period::Period;
use serde::{Deserialize, Serialize};

/// The branches of the régime général.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Branch {
    /// Prestations familiales.
    FamilyAllowances,
    /// Prestations sociales à court terme (includes the IPE), capped.
    ShortTerm,
    /// Prestations sociales à long terme (pensions), capped.
    LongTerm,
    /// AMO de base.
    AmoBase,
    /// AMO participation / solidarité.
    AmoSolidarity,
    /// Taxe de formation professionnelle, collected for OFPPT.
    VocationalTraining,
}

impl Branch {
    /// The branch's name in ledger accounts and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::FamilyAllowances => "family_allowances",
            Branch::ShortTerm => "short_term",
            Branch::LongTerm => "long_term",
            Branch::AmoBase => "amo_base",
            Branch::AmoSolidarity => "amo_solidarity",
            Branch::VocationalTraining => "vocational_training",
        }
    }

    /// The branch's place in [`Branch::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Branch::FamilyAllowances => 0,
            Branch::ShortTerm => 1,
            Branch::LongTerm => 2,
            Branch::AmoBase => 3,
            Branch::AmoSolidarity => 4,
            Branch::VocationalTraining => 5,
        }
    }

    pub const ALL: [Branch; 6] = [
        Branch::FamilyAllowances,
        Branch::ShortTerm,
        Branch::LongTerm,
        Branch::AmoBase,
        Branch::AmoSolidarity,
        Branch::VocationalTraining,
    ];
}

/// One branch's rates, in basis points of the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchRate {
    pub employer: u32,
    pub employee: u32,
    /// Whether the base is the salary capped at the ceiling.
    pub capped: bool,
}

/// The rates of every branch, in force from `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSet {
    pub from: Period,
    pub family_allowances: BranchRate,
    pub short_term: BranchRate,
    pub long_term: BranchRate,
    pub amo_base: BranchRate,
    pub amo_solidarity: BranchRate,
    pub vocational_training: BranchRate,
}

impl RateSet {
    pub fn rate(&self, branch: Branch) -> BranchRate {
        match branch {
            Branch::FamilyAllowances => self.family_allowances,
            Branch::ShortTerm => self.short_term,
            Branch::LongTerm => self.long_term,
            Branch::AmoBase => self.amo_base,
            Branch::AmoSolidarity => self.amo_solidarity,
            Branch::VocationalTraining => self.vocational_training,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ceiling {
    pub from: Period,
    pub amount: Centimes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smig {
    pub from: Period,
    /// Per hour.
    pub hourly: Centimes,
    /// Per month of 191 hours.
    pub monthly: Centimes,
}

/// Family allowances per child and month (cnss-domain.md §4.1), for at most six children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyAllowance {
    pub from: Period,
    /// For each of the first three children.
    pub first_three: Centimes,
    /// For each of the fourth to sixth.
    pub fourth_to_sixth: Centimes,
}

impl FamilyAllowance {
    /// The monthly amount for `children` children (beyond six, nothing more).
    pub fn for_children(&self, children: u8) -> Centimes {
        let first = i64::from(children.min(3));
        let next = i64::from(children.clamp(3, 6) - 3);
        Centimes(first * self.first_three.0 + next * self.fourth_to_sixth.0)
    }
}

/// Late-payment surcharges, in basis points of what is still unpaid after the due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surcharge {
    pub from: Period,
    /// For the first month (or part of a month) late.
    pub first_month: u32,
    /// For each further month (or part of one).
    pub each_further_month: u32,
}

impl Surcharge {
    /// The rate after `months` months (or parts) late: 0 when not late.
    pub fn rate_after(&self, months: u32) -> u32 {
        match months {
            0 => 0,
            m => self.first_month + self.each_further_month * (m - 1),
        }
    }
}

/// All the dated tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    pub rates: Vec<RateSet>,
    pub ceiling: Vec<Ceiling>,
    pub smig: Vec<Smig>,
    #[serde(default)]
    pub family_allowance: Vec<FamilyAllowance>,
    #[serde(default)]
    pub surcharge: Vec<Surcharge>,
}

/// Why a parameter file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParametersError {
    #[error("parameter file: {0}")]
    Syntax(String),
    #[error("parameter table `{0}` is empty")]
    Empty(&'static str),
    #[error("parameter table `{0}` is not in strictly increasing order of periods")]
    Order(&'static str),
}

/// The Moroccan tables shipped with daman.
pub const MOROCCO_TOML: &str = include_str!("../params/morocco.toml");

impl Parameters {
    pub fn morocco() -> Result<Parameters, ParametersError> {
        Parameters::from_toml(MOROCCO_TOML)
    }

    pub fn from_toml(text: &str) -> Result<Parameters, ParametersError> {
        let p: Parameters =
            toml::from_str(text).map_err(|e| ParametersError::Syntax(e.message().to_string()))?;
        check_order("rates", p.rates.iter().map(|r| r.from))?;
        check_order("ceiling", p.ceiling.iter().map(|c| c.from))?;
        check_order("smig", p.smig.iter().map(|s| s.from))?;
        check_order(
            "family_allowance",
            p.family_allowance.iter().map(|s| s.from),
        )?;
        Ok(p)
    }

    pub fn rates_at(&self, period: Period) -> Option<&RateSet> {
        self.rates.iter().rev().find(|r| r.from <= period)
    }

    /// The base of the capped branches for a gross salary: min(gross, the ceiling in force),
    /// if a ceiling is in force for the period.
    pub fn capped_at(&self, period: Period, gross: Centimes) -> Option<Centimes> {
        self.ceiling_at(period).map(|ceiling| gross.min(ceiling))
    }

    pub fn ceiling_at(&self, period: Period) -> Option<Centimes> {
        self.ceiling
            .iter()
            .rev()
            .find(|c| c.from <= period)
            .map(|c| c.amount)
    }

    pub fn family_allowance_at(&self, period: Period) -> Option<&FamilyAllowance> {
        self.family_allowance
            .iter()
            .rev()
            .find(|s| s.from <= period)
    }

    pub fn surcharge_at(&self, period: Period) -> Option<&Surcharge> {
        self.surcharge.iter().rev().find(|s| s.from <= period)
    }

    pub fn smig_at(&self, period: Period) -> Option<&Smig> {
        self.smig.iter().rev().find(|s| s.from <= period)
    }
}

fn check_order(
    name: &'static str,
    froms: impl Iterator<Item = Period>,
) -> Result<(), ParametersError> {
    let v: Vec<Period> = froms.collect();
    if v.is_empty() {
        return Err(ParametersError::Empty(name));
    }
    if v.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ParametersError::Order(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_tables_load_and_total_as_published() {
        let p = Parameters::morocco().unwrap();
        let r = p.rates_at(Period::parse("202611").unwrap()).unwrap();
        let employer: u32 = Branch::ALL.iter().map(|b| r.rate(*b).employer).sum();
        let employee: u32 = Branch::ALL.iter().map(|b| r.rate(*b).employee).sum();
        // CLEISS 2024: 21.09 % / 6.74 % / 27.83 %.
        assert_eq!((employer, employee), (2109, 674));
        assert_eq!(
            p.ceiling_at(Period::parse("202611").unwrap()),
            Some(Centimes(600_000))
        );
        assert_eq!(
            p.smig_at(Period::parse("202512").unwrap()).unwrap().monthly,
            Centimes(326_610)
        );
        assert_eq!(
            p.smig_at(Period::parse("202601").unwrap()).unwrap().monthly,
            Centimes(342_272)
        );
        assert!(p.rates_at(Period::parse("201412").unwrap()).is_none());
        // 300 DH for each of the first three children; children 4–6: 36 DH, then 100 DH
        // from January 2023 (decree 2.23.715).
        let af = |p: &Parameters, at: &str, n| {
            p.family_allowance_at(Period::parse(at).unwrap())
                .unwrap()
                .for_children(n)
        };
        assert_eq!(af(&p, "202212", 5), Centimes(90_000 + 7_200));
        assert_eq!(af(&p, "202301", 5), Centimes(90_000 + 20_000));
        assert_eq!(af(&p, "202611", 8), Centimes(90_000 + 30_000));
        assert_eq!(af(&p, "201906", 1), Centimes(20_000));
        // Surcharges: 3 % the first month late, then 1 % (0.5 % from April 2025) a month.
        let sur = |at: &str| p.surcharge_at(Period::parse(at).unwrap()).unwrap();
        assert_eq!(sur("202503").rate_after(3), 500);
        assert_eq!(sur("202610").rate_after(0), 0);
        assert_eq!(sur("202610").rate_after(1), 300);
        assert_eq!(sur("202610").rate_after(4), 450);
    }

    #[test]
    fn refuses_disordered_or_unknown_keys() {
        let bad = MOROCCO_TOML.replace("from = \"201601\"", "from = \"201401\"");
        assert_eq!(
            Parameters::from_toml(&bad),
            Err(ParametersError::Order("rates"))
        );
        let unknown = format!("{MOROCCO_TOML}\nsurprise = 1\n");
        assert!(matches!(
            Parameters::from_toml(&unknown),
            Err(ParametersError::Syntax(_))
        ));
    }
}
