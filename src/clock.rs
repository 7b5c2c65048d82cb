//! What time it is for the CLI: the system clock — moved forward, in tests,
//! by the seconds written in the file `KUBE_DC_TEST_CLOCK` names, read
//! again at every look, so a test moves time (a token's expiry, the
//! terminal view's refresh period and reveal countdown) instead of
//! sleeping. Without the variable it is the system clock and nothing is
//! read. It moves only this process's idea of now; every server checks
//! times by its own clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The variable naming the test clock's file.
pub const TEST_CLOCK_ENV: &str = "KUBE_DC_TEST_CLOCK";

/// How far the test clock is ahead of the system clock (zero without one;
/// a file that is missing or unreadable also counts as zero).
fn shift() -> Duration {
    shift_in(std::env::var_os(TEST_CLOCK_ENV))
}

/// The shift a test clock file holds.
fn shift_in(file: Option<std::ffi::OsString>) -> Duration {
    let Some(path) = file else {
        return Duration::ZERO;
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::ZERO, Duration::from_secs_f64)
}

/// Now, for measuring intervals (the view's pace, a reveal's countdown).
pub fn instant() -> Instant {
    Instant::now() + shift()
}

/// Now, as wall-clock time.
pub fn system() -> SystemTime {
    SystemTime::now() + shift()
}

/// Now, in epoch seconds.
pub fn unix() -> i64 {
    system()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Now, as a calendar time in UTC.
pub fn utc() -> time::OffsetDateTime {
    time::OffsetDateTime::from(system())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_clock_file_holds_seconds_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clock");
        let at = || shift_in(Some(file.clone().into_os_string()));
        assert_eq!(shift_in(None), Duration::ZERO, "no clock: the system's");
        assert_eq!(at(), Duration::ZERO, "a missing file is no shift");
        std::fs::write(&file, "90.5\n").unwrap();
        assert_eq!(at(), Duration::from_millis(90_500));
        std::fs::write(&file, "-3").unwrap();
        assert_eq!(at(), Duration::ZERO, "time does not run backwards");
        std::fs::write(&file, "soon").unwrap();
        assert_eq!(at(), Duration::ZERO);
    }
}
