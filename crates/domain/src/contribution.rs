//! Contributions owed on one declared salary line.

use crate::error::{Rule, ValidationError};
use crate::money::Centimes;
use crate::params::{Branch, Parameters};
use crate::period::Period;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchAmount {
    pub branch: Branch,
    pub base: Centimes,
    pub employer: Centimes,
    pub employee: Centimes,
}

/// What one salary line owes, per branch and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineContribution {
    pub period: Period,
    pub gross: Centimes,
    pub capped: Centimes,
    pub branches: Vec<BranchAmount>,
    pub employer: Centimes,
    pub employee: Centimes,
}

/// Computes the contributions on a gross monthly salary with the tables in force for `period`.
/// Each branch's share is rounded to the centime (half away from zero), then summed.
pub fn compute_line(
    params: &Parameters,
    period: Period,
    gross: Centimes,
) -> Result<LineContribution, ValidationError> {
    let gross = gross.non_negative("gross_salary")?;
    let no_params = || ValidationError::new(Period::FIELD, Rule::NoParameters);
    let rates = params.rates_at(period).ok_or_else(no_params)?;
    let capped = params.capped_at(period, gross).ok_or_else(no_params)?;
    let overflow = || ValidationError::new("gross_salary", Rule::Overflow);
    let mut branches = Vec::with_capacity(Branch::ALL.len());
    let (mut employer, mut employee) = (Centimes::ZERO, Centimes::ZERO);
    for branch in Branch::ALL {
        let rate = rates.rate(branch);
        let base = if rate.capped { capped } else { gross };
        let er = base.apply_basis_points(rate.employer)?;
        let ee = base.apply_basis_points(rate.employee)?;
        employer = employer.checked_add(er).ok_or_else(overflow)?;
        employee = employee.checked_add(ee).ok_or_else(overflow)?;
        branches.push(BranchAmount {
            branch,
            base,
            employer: er,
            employee: ee,
        });
    }
    Ok(LineContribution {
        period,
        gross,
        capped,
        branches,
        employer,
        employee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn worked_example_8000_mad() {
        let params = Parameters::morocco().unwrap();
        let c = compute_line(&params, p("202611"), Centimes(800_000)).unwrap();
        assert_eq!(c.capped, Centimes(600_000));
        assert_eq!(c.employer, Centimes(150_760), "employer 1 507.60");
        assert_eq!(c.employee, Centimes(44_960), "employee 449.60");
        let long_term = c
            .branches
            .iter()
            .find(|b| b.branch == Branch::LongTerm)
            .unwrap();
        assert_eq!(
            (long_term.base, long_term.employer, long_term.employee),
            (Centimes(600_000), Centimes(47_580), Centimes(23_760))
        );
    }

    #[test]
    fn rates_follow_the_dated_change_of_january_2016() {
        let params = Parameters::morocco().unwrap();
        let before = compute_line(&params, p("201512"), Centimes(800_000)).unwrap();
        let after = compute_line(&params, p("201601"), Centimes(800_000)).unwrap();
        // 2015: AMO 2.00 % + 2.00 %, solidarity 1.50 %.
        assert_eq!(
            (before.employer, before.employee),
            (Centimes(145_880), Centimes(42_880))
        );
        assert_eq!(
            (after.employer, after.employee),
            (Centimes(150_760), Centimes(44_960))
        );
        assert_eq!(
            compute_line(&params, p("201412"), Centimes(800_000)),
            Err(ValidationError::new("period", Rule::NoParameters))
        );
    }

    #[test]
    fn below_the_ceiling_nothing_is_capped_and_negative_is_refused() {
        let params = Parameters::morocco().unwrap();
        let c = compute_line(&params, p("202601"), Centimes(342_272)).unwrap();
        assert_eq!(c.capped, c.gross);
        // 21.09 % and 6.74 % of 3 422.72, branch by branch rounded.
        assert_eq!(c.employer, Centimes(72_184));
        assert_eq!(c.employee, Centimes(23_069));
        assert_eq!(
            compute_line(&params, p("202601"), Centimes(-1)),
            Err(ValidationError::new("gross_salary", Rule::NotNegative))
        );
    }
}
