//! A synthetic month of declarations: what each employer's payroll software would write from
//! its préétabli. Every known employee gets a line (most work the full 26 days; some are sick,
//! on unpaid leave or leave the company), salaries start at the SMIG, and some employers declare
//! entrants: new employees without an immatriculation number, identified by a CIN drawn beyond
//! the population (so they are new to the registry).

use crate::Population;
use domain::Centimes;
use ebds::{Declaration, Entrant, Form, Layout, Line, Preetabli, Situation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a month is drawn.
#[derive(Debug, Clone, Copy)]
pub struct MonthPlan {
    /// The ceiling of capped salaries for the period.
    pub ceiling: Centimes,
    /// Entrants per thousand employers.
    pub entrants_per_mille: u32,
}

/// The file name of an employer's declaration (period as AAAAMM, as inside the records;
/// cnss-domain.md §2.2 notes that implementations disagree on the name, ANO-005).
pub fn declaration_file_name(affiliate: u32, period: domain::Period) -> String {
    format!("DS_{affiliate:07}_{period}.txt")
}

/// The file name of an employer's préétabli.
pub fn preetabli_file_name(affiliate: u32, period: domain::Period) -> String {
    format!("AFFEBDS_{affiliate:07}_{period}.txt")
}

fn rng(pop: &Population, kind: u64, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        pop.seed
            ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ a.wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ b.wrapping_mul(0x94D0_49BB_1331_11EB),
    )
}

fn salary(pop: &Population, r: &mut ChaCha8Rng) -> Centimes {
    let u: f64 = r.random_range(0.0..1.0);
    let factor = 1.0 - 0.8 * (1.0 - u).ln();
    Centimes(((pop.smig.0 as f64) * factor).min(6_000_000.0) as i64)
}

/// The main declaration (DS) an employer sends for the préétabli's period.
pub fn declaration(pop: &Population, pre: &Preetabli, plan: MonthPlan) -> Declaration {
    let period = pre.identity.period;
    let p = u64::from(period.year()) * 100 + u64::from(period.month());
    let capped = |g: Centimes| Centimes(g.0.min(plan.ceiling.0));
    let lines = pre
        .employees
        .iter()
        .map(|e| {
            let mut r = rng(pop, 3, p, u64::from(e.immatriculation));
            let gross = salary(pop, &mut r);
            let (situation, days, gross) = match r.random_range(0..1000) {
                0..15 => (Situation::UnpaidLeave, 0, Centimes(0)),
                15..45 => {
                    let d = r.random_range(5..26u8);
                    (Situation::Sick, d, Centimes(gross.0 * i64::from(d) / 26))
                }
                45..60 => {
                    let d = r.random_range(1..26u8);
                    (Situation::Left, d, Centimes(gross.0 * i64::from(d) / 26))
                }
                _ => (Situation::Normal, 26, gross),
            };
            Line {
                employee: e.clone(),
                af_repayable: Centimes(0),
                days,
                gross,
                capped: capped(gross),
                situation,
            }
        })
        .collect();
    let mut r = rng(pop, 4, p, u64::from(pre.identity.affiliate));
    let count = if r.random_range(0..1000) < plan.entrants_per_mille {
        r.random_range(1..=2)
    } else {
        0
    };
    let entrants = (0..count)
        .map(|k| {
            // Beyond the population: person indexes no loaded person has, different each month
            // (until they wrap around after many months).
            let months = u64::from(period.year()) * 12 + u64::from(period.month());
            let room = (crate::MAX_PERSONS - pop.persons.min(crate::MAX_PERSONS - 1)) as u64;
            let slot = months * pop.employers as u64 * 2
                + u64::from(pre.identity.affiliate.saturating_sub(1_000_001)) * 2
                + k as u64;
            let index = pop.persons + (slot % room) as usize;
            let person = pop.person(index);
            let days = r.random_range(1..=26u8);
            let gross = Centimes(salary(pop, &mut r).0 * i64::from(days) / 26);
            Entrant {
                immatriculation: None,
                name: ebds::fit(&format!("{} {}", person.last_name, person.first_name), 60),
                cin: person.cin,
                days,
                gross,
                capped: capped(gross),
            }
        })
        .collect();
    Declaration {
        form: Form::Main,
        transfer_id: pre.transfer_id,
        identity: pre.identity.clone(),
        lines,
        entrants,
        layout: Layout::default(),
    }
}
