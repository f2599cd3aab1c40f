//! Time as the domain sees it: an injected clock, instants in microseconds, civil dates.

use crate::error::{Rule, ValidationError};
use crate::period::Period;
use std::fmt;

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn date(self) -> Date {
        let days = self.0.div_euclid(86_400_000_000);
        Date::from_days(days)
    }

    /// Midnight (UTC) of the timestamp's day: what a row records when the time of day would
    /// tell too much (a person's registration, docs/architecture.md "What a dump reveals").
    pub fn day_start(self) -> Timestamp {
        Timestamp(self.0.div_euclid(86_400_000_000) * 86_400_000_000)
    }

    pub fn period(self) -> Period {
        let d = self.date();
        Period::clamped(d.year, d.month)
    }

    pub fn plus_seconds(self, s: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(s.saturating_mul(1_000_000)))
    }

    /// An instant written `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn parse_utc(field: &'static str, s: &str) -> Result<Timestamp, ValidationError> {
        let bad = || ValidationError::new(field, Rule::DateShape);
        let (date, time) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let day = Date::parse(field, date)?.to_days();
        let secs = match time {
            None => 0,
            Some(t) => {
                let t = t.strip_suffix('Z').ok_or_else(bad)?;
                let parts: Vec<&str> = t.split(':').collect();
                let [h, m, sec] = parts.as_slice() else {
                    return Err(bad());
                };
                let num = |x: &str, max: i64| {
                    (x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| x.parse::<i64>().ok())
                        .flatten()
                        .filter(|v| *v <= max)
                        .ok_or_else(bad)
                };
                num(h, 23)? * 3600 + num(m, 59)? * 60 + num(sec, 59)?
            }
        };
        Ok(Timestamp((day * 86_400 + secs) * 1_000_000))
    }
}

/// Where "now" comes from. Production reads the system clock; tests set it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub const FIELD: &'static str = "birth_date";

    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        let d = Date { year, month, day };
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(d)
    }

    /// `YYYY-MM-DD`.
    pub fn parse(field: &'static str, s: &str) -> Result<Date, ValidationError> {
        let err = || ValidationError::new(field, Rule::DateShape);
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let year = s[..4].parse().map_err(|_| err())?;
        let month = s[5..7].parse().map_err(|_| err())?;
        let day = s[8..].parse().map_err(|_| err())?;
        Date::new(year, month, day).ok_or_else(err)
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The inverse of [`Date::to_days`] (civil_from_days).
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

impl Period {
    /// The last day of the month.
    pub fn last_day(self) -> Date {
        let year = i32::from(self.year());
        Date {
            year,
            month: self.month(),
            day: days_in_month(year, self.month()),
        }
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_as_dates_or_utc_times() {
        let t = Timestamp::parse_utc("at", "2026-11-23T10:00:00Z").unwrap();
        assert_eq!(t, Timestamp(1_795_428_000_000_000));
        assert_eq!(
            Timestamp::parse_utc("at", "2026-11-23").unwrap(),
            Timestamp(1_795_392_000_000_000)
        );
        for bad in [
            "2026-11-23T10:00:00",
            "2026-11-23T24:00:00Z",
            "2026-13-01",
            "2026-11-23T1:00:00Z",
        ] {
            assert!(Timestamp::parse_utc("at", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_last_day_of_a_period() {
        let last = |s: &str| Period::parse(s).unwrap().last_day().to_string();
        assert_eq!(last("202611"), "2026-11-30");
        assert_eq!(last("202612"), "2026-12-31");
        assert_eq!(last("202802"), "2028-02-29");
        assert_eq!(last("210002"), "2100-02-28");
    }

    #[test]
    fn days_round_trip_and_known_points() {
        assert_eq!(Date::new(1970, 1, 1).unwrap().to_days(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().to_days(), 11_017);
        for d in [-800_000i64, -1, 0, 59, 60, 11_016, 20_000, 2_932_896] {
            assert_eq!(Date::from_days(d).to_days(), d);
        }
        assert_eq!(
            Timestamp(1_763_856_000_000_000).date().to_string(),
            "2025-11-23"
        );
        assert_eq!(
            Timestamp(1_763_856_000_000_000).period().to_string(),
            "202511"
        );
    }

    #[test]
    fn parse_refuses_impossible_dates() {
        assert!(Date::parse("birth_date", "2024-02-29").is_ok());
        assert!(Date::parse("birth_date", "2023-02-29").is_err());
        assert!(Date::parse("birth_date", "2023-13-01").is_err());
        assert!(Date::parse("birth_date", "23-01-01").is_err());
    }
}
