//! The times of `audit list`: what --since and --until accept, and how an
//! event's `ts` is shown.

use serde_json::Value;

use crate::api::ListedEvent;
use crate::error::{CliError, Result};

/// A time given to --since/--until: when, in epoch seconds, and how it is
/// sent (RFC 3339 and epoch seconds as given; a duration or a date as epoch
/// seconds).
pub struct When {
    pub secs: i64,
    pub wire: String,
}

/// Reads a duration back from now (`1h`, `30m`, `7d`, `2w`), a date
/// (`2026-05-01`, midnight UTC), RFC 3339, or epoch seconds.
pub fn parse_when(flag: &str, v: &str) -> Result<When> {
    use time::format_description::well_known::Rfc3339;
    let given = |secs| {
        Ok(When {
            secs,
            wire: v.to_string(),
        })
    };
    let computed = |secs: i64| {
        Ok(When {
            secs,
            wire: secs.to_string(),
        })
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return given(
            v.parse()
                .map_err(|_| CliError::usage(format!("{flag} {v:?}: too large")))?,
        );
    }
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return given(t.unix_timestamp());
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(v, &date) {
        return computed(d.midnight().assume_utc().unix_timestamp());
    }
    let weeks = v
        .strip_suffix('w')
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| std::time::Duration::from_secs(n.saturating_mul(7 * 86_400)));
    if let Some(d) = weeks.or_else(|| kube_dc_api::validate::parse_interval(v).ok()) {
        let now = crate::clock::unix().max(0) as u64;
        return computed(now.saturating_sub(d.as_secs()) as i64);
    }
    Err(CliError::usage(format!(
        "{flag} {v:?}: use a duration back from now (30m, 1h, 7d, 2w), a date (2026-05-01), an RFC 3339 time (2026-05-12T08:00:00Z) or epoch seconds"
    )))
}

/// `ts` is ISO 8601, or (all digits) epoch nanoseconds; shown as UTC with
/// milliseconds, always the same width (`2026-05-12T08:00:00.000Z`). A
/// text that is not a time is shown as it is.
pub fn ts_text(e: &ListedEvent) -> String {
    use time::format_description::well_known::Rfc3339;
    let nanos = |n: i128| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok();
    let t = match &e.ts {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i128>().ok().and_then(nanos)
        }
        Value::String(s) => time::OffsetDateTime::parse(s, &Rfc3339).ok(),
        Value::Number(n) => n.as_i64().and_then(|n| nanos(n as i128)),
        _ => None,
    };
    let fixed = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    match t.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&fixed).ok()) {
        Some(text) => text,
        None => match &e.ts {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_accepts_durations_rfc3339_and_epoch() {
        let w = |v| {
            let w = parse_when("--since", v).unwrap();
            (w.secs, w.wire)
        };
        assert_eq!(w("1700000000"), (1700000000, "1700000000".into()));
        assert_eq!(
            w("2026-05-12T08:00:00Z"),
            (1778572800, "2026-05-12T08:00:00Z".into())
        );
        assert_eq!(w("2026-05-12"), (1778544000, "1778544000".into()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let h = parse_when("--since", "1h").unwrap().secs as u64;
        assert!((now - 3600).abs_diff(h) <= 2);
        let d = parse_when("--since", "7d").unwrap().secs as u64;
        assert!((now - 7 * 86400).abs_diff(d) <= 2);
        let w = parse_when("--since", "2w").unwrap().secs as u64;
        assert!((now - 14 * 86400).abs_diff(w) <= 2);
        assert!(parse_when("--since", "yesterday").is_err());
    }

    #[test]
    fn epoch_nanosecond_timestamps_are_shown_as_times() {
        let e = ListedEvent {
            ts: Value::String("1778572800000000000".into()),
            body: Default::default(),
        };
        assert_eq!(ts_text(&e), "2026-05-12T08:00:00.000Z");
        let e = ListedEvent {
            ts: Value::String("2026-05-12T10:00:00.5+02:00".into()),
            body: Default::default(),
        };
        assert_eq!(ts_text(&e), "2026-05-12T08:00:00.500Z");
    }
}
