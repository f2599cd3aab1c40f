//! The fund's calendar: when a period's declaration and payment are due, how late a payment
//! is, and how a period is numbered in storage.

use crate::period::Period;
use crate::time::Date;

impl Period {
    /// The period as stored: `YYYYMM` as a number (202611).
    pub fn number(self) -> i64 {
        i64::from(self.year()) * 100 + i64::from(self.month())
    }

    /// The inverse of [`Period::number`]; `None` for a number that is no period.
    pub fn from_number(n: i64) -> Option<Period> {
        let year = u16::try_from(n / 100).ok()?;
        let month = u8::try_from(n % 100).ok()?;
        Period::new(year, month).ok()
    }

    /// The first day of the period.
    pub fn first_day(self) -> Date {
        Date {
            year: i32::from(self.year()),
            month: self.month(),
            day: 1,
        }
    }

    /// The 10th of the month after the period: when its declaration and payment are due.
    pub fn due_date(self) -> Date {
        let n = self.next();
        Date {
            year: i32::from(n.year()),
            month: n.month(),
            day: 10,
        }
    }
}

/// Months (or parts of months) from the due date to `at`: 0 until the due date has passed.
pub fn months_late(due: Date, at: Date) -> u32 {
    if at <= due {
        return 0;
    }
    let months = (i64::from(at.year) * 12 + i64::from(at.month))
        - (i64::from(due.year) * 12 + i64::from(due.month))
        + i64::from(at.day > due.day);
    months.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse("date", s).unwrap()
    }

    #[test]
    fn a_period_is_due_on_the_tenth_of_the_next_month() {
        let p = Period::parse("202612").unwrap();
        assert_eq!(p.due_date().to_string(), "2027-01-10");
        assert_eq!(p.first_day().to_string(), "2026-12-01");
        assert_eq!(p.number(), 202_612);
        assert_eq!(Period::from_number(202_612), Some(p));
        assert_eq!(Period::from_number(202_613), None);
        assert_eq!(Period::from_number(-1), None);
    }

    #[test]
    fn months_late_count_every_started_month() {
        let due = d("2026-12-10");
        assert_eq!(months_late(due, d("2026-12-10")), 0);
        assert_eq!(months_late(due, d("2026-12-11")), 1);
        assert_eq!(months_late(due, d("2027-01-10")), 1);
        assert_eq!(months_late(due, d("2027-01-11")), 2);
        assert_eq!(months_late(due, d("2025-01-01")), 0);
    }
}
