//! Consecutive login failures and the wait they impose (NIST SP 800-63B rev. 4 §3.2.2).
//!
//! The counter is kept per login name in the database, whether or not an account has that name,
//! so that a name that exists and one that does not are throttled alike. The first
//! [`FREE_FAILURES`] failures cost nothing (typos); then each failure doubles the wait, from
//! 1 second to at most [`MAX_WAIT_SECONDS`]; after [`MAX_CONSECUTIVE_FAILURES`] failures every
//! attempt, even with the right password, is refused until [`HOLD_SECONDS`] after the last
//! failure. A success resets the counter; asking for a new SMS code does not.

/// Failures that impose no wait.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait between two attempts before the cap.
pub const MAX_WAIT_SECONDS: i64 = 3600;
/// NIST's upper bound on consecutive failures.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 100;
/// The wait once the cap is reached.
pub const HOLD_SECONDS: i64 = 24 * 3600;

/// The wait imposed after `failures` consecutive failures, in seconds.
pub fn wait_seconds(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        0
    } else if failures >= MAX_CONSECUTIVE_FAILURES {
        HOLD_SECONDS
    } else {
        let doublings = (failures - FREE_FAILURES).min(20) as u32;
        (1i64 << doublings).min(MAX_WAIT_SECONDS)
    }
}

/// The same schedule as [`wait_seconds`], as an SQL expression over the integer column `col`
/// (for the database to decide atomically whether an attempt may go ahead).
pub fn sql_wait_seconds(col: &str) -> String {
    // The first count whose doubled wait reaches the cap.
    let capped = (FREE_FAILURES..MAX_CONSECUTIVE_FAILURES)
        .find(|n| wait_seconds(*n) >= MAX_WAIT_SECONDS)
        .unwrap_or(MAX_CONSECUTIVE_FAILURES);
    format!(
        "(CASE WHEN {col} < {FREE_FAILURES} THEN 0 WHEN {col} >= {MAX_CONSECUTIVE_FAILURES} THEN {HOLD_SECONDS} \
         WHEN {col} >= {capped} THEN {MAX_WAIT_SECONDS} \
         ELSE (CAST(1 AS BIGINT) << CAST({col} - {FREE_FAILURES} AS INTEGER)) END)"
    )
}

/// Seconds left before another attempt is allowed (`None`: allowed now), given the failure count
/// and the time of the last failure in microseconds.
pub fn retry_after(failures: i64, last_failure_micros: i64, now_micros: i64) -> Option<i64> {
    let until = last_failure_micros.saturating_add(wait_seconds(failures) * 1_000_000);
    (now_micros < until).then(|| (until - now_micros + 999_999) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_hold_at_the_cap() {
        assert_eq!(wait_seconds(0), 0);
        assert_eq!(wait_seconds(4), 0);
        assert_eq!(wait_seconds(5), 1);
        assert_eq!(wait_seconds(6), 2);
        assert_eq!(wait_seconds(16), 2048);
        assert_eq!(wait_seconds(17), 3600);
        assert_eq!(wait_seconds(99), 3600);
        assert_eq!(wait_seconds(100), 24 * 3600);
        assert_eq!(wait_seconds(1000), 24 * 3600);
    }

    #[test]
    fn the_sql_schedule_names_the_same_steps() {
        let sql = sql_wait_seconds("f");
        assert_eq!(
            sql,
            "(CASE WHEN f < 5 THEN 0 WHEN f >= 100 THEN 86400 WHEN f >= 17 THEN 3600 \
             ELSE (CAST(1 AS BIGINT) << CAST(f - 5 AS INTEGER)) END)"
        );
    }

    #[test]
    fn retry_after_rounds_up_and_clears() {
        let s = 1_000_000;
        assert_eq!(retry_after(4, 0, 0), None);
        assert_eq!(retry_after(6, 0, 0), Some(2));
        assert_eq!(retry_after(6, 0, s / 2), Some(2));
        assert_eq!(retry_after(6, 0, 2 * s), None);
        assert_eq!(retry_after(100, 0, 3600 * s), Some(23 * 3600));
    }
}
