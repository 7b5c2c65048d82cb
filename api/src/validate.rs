//! Input rules shared by the backend and the CLI: Kubernetes names and
//! Secret keys, CRD interval syntax, the value size limit.

use std::time::Duration;

/// Kubernetes caps a Secret's total data at 1 MiB; so do we.
pub const MAX_TOTAL_VALUE_BYTES: usize = 1024 * 1024;
/// The longest description a secret may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// The longest Kubernetes name or key, in bytes.
pub const MAX_NAME_LEN: usize = 253;

/// A DNS-1123 subdomain, as Kubernetes validates a Secret's name: labels of
/// lowercase alphanumerics and `-`, each starting and ending with an
/// alphanumeric, joined by `.`; at most 253 characters.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "invalid {what} {name:?}: {why} (use lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most {MAX_NAME_LEN} characters)"
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is too long");
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if let Some((i, c)) = name.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        let why = format!("{c:?} (character {}) is not allowed", i + 1);
        return match suggest_name(name) {
            Some(s) => bad(&format!("{why}; did you mean {s:?}?")),
            None => bad(&why),
        };
    }
    let alnum = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    for label in name.split('.') {
        let b = label.as_bytes();
        if !alnum(b.first()) || !alnum(b.last()) {
            return bad(
                if name.starts_with(['.', '-']) || name.ends_with(['.', '-']) {
                    "it must start and end with a letter or digit"
                } else {
                    "each part between dots must start and end with a letter or digit"
                },
            );
        }
    }
    Ok(())
}

/// A name the rules accept that is closest to `name`: lowercase, each run
/// of other characters one '-', no '-' or '.' at either end. None when
/// nothing of it is left.
fn suggest_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s = out.trim_matches(['-', '.']);
    let s = &s[..s.len().min(MAX_NAME_LEN)];
    let s = s.trim_matches(['-', '.']);
    (!s.is_empty() && check_name("", s).is_ok()).then(|| s.to_string())
}

/// An `Idempotency-Key` header's value: 1 to 255 visible ASCII characters.
pub fn check_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters (a UUID will do)"
                .into(),
        );
    }
    Ok(())
}

/// A Kubernetes Secret data key: `[-._a-zA-Z0-9]+`, at most 253 characters,
/// and not `.` or `..`.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= MAX_NAME_LEN
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key {key:?}: a Secret key may contain only letters, digits, '-', '_' and '.' \
             (at most {MAX_NAME_LEN} characters, not '.' or '..')"
        ))
    }
}

/// A secret type this API knows ([`crate::wire::SECRET_TYPES`]).
pub fn check_type(kind: &str) -> Result<(), String> {
    if crate::wire::SECRET_TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "invalid type {kind:?}: use one of {}",
            crate::wire::SECRET_TYPES.join(", ")
        ))
    }
}

/// A request field a rule refused; each side names it its own way (the
/// CLI by its flag, the terminal view by its form field, the backend by
/// the wire field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `sync.targetSecretName` (`--sync-target`, `--target`).
    SyncTarget,
    /// `sync.refreshInterval` (`--sync-refresh`, `--refresh`).
    SyncRefresh,
    /// `sync.keys` (`--sync-keys`, `--keys`).
    SyncKeys,
    /// `description`.
    Description,
    /// The values as a whole (their total size).
    Values,
}

/// A refused field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Which field.
    pub field: Field,
    /// Why, for people.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The size of a secret's values as the 1 MiB rule counts it: every key
/// and every value, in bytes.
pub fn values_size(data: &crate::wire::Data) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The 1 MiB rule on a secret's values (each key is checked on its own by
/// [`check_key`]).
pub fn check_values_size(total: usize) -> Result<(), Invalid> {
    if total > MAX_TOTAL_VALUE_BYTES {
        return Err(Invalid {
            field: Field::Values,
            message: format!(
                "the values total {total} bytes; a secret holds at most {MAX_TOTAL_VALUE_BYTES} \
                 bytes (1 MiB, as a Kubernetes Secret)"
            ),
        });
    }
    Ok(())
}

/// A secret's description: at most [`MAX_DESCRIPTION_CHARS`] characters.
pub fn check_description(text: &str) -> Result<(), Invalid> {
    let n = text.chars().count();
    if n > MAX_DESCRIPTION_CHARS {
        return Err(Invalid {
            field: Field::Description,
            message: format!(
                "the description is {n} characters; at most {MAX_DESCRIPTION_CHARS} are allowed"
            ),
        });
    }
    Ok(())
}

/// A comma-separated key list as every client reads it (the Go CLI's
/// habit): entries trimmed, empty ones dropped.
pub fn split_keys(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// The sync settings a create or a sync change sends: a target Secret
/// name, a refresh interval, the keys projected.
pub fn check_sync(
    target: Option<&str>,
    refresh: Option<&str>,
    keys: &[String],
) -> Result<(), Invalid> {
    let invalid = |field, message| Invalid { field, message };
    if let Some(t) = target {
        check_name("target Secret name", t).map_err(|m| invalid(Field::SyncTarget, m))?;
    }
    if let Some(r) = refresh {
        check_refresh_interval(r).map_err(|m| invalid(Field::SyncRefresh, m))?;
    }
    for k in keys {
        check_key(k).map_err(|m| invalid(Field::SyncKeys, m))?;
    }
    Ok(())
}

/// Parses the CRD's interval syntax, `^[1-9][0-9]*(d|h|m|s|ms|us|ns)` repeated,
/// e.g. `90d`, `1h30m`, `2s`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let err = || {
        format!(
            "invalid interval {text:?}: write a whole number followed by a unit \
             (d, h, m, s, ms, us, ns), e.g. 90d, 1h30m, 45s"
        )
    };
    if text.is_empty() {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes()[0] == b'0' {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with("us") {
            (Duration::from_micros(1), 2)
        } else if rest.starts_with("ns") {
            (Duration::from_nanos(1), 2)
        } else if rest.starts_with('d') {
            (Duration::from_secs(86_400), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3_600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(err());
        };
        rest = &rest[len..];
        let part = unit.checked_mul(u32::try_from(n).map_err(|_| err())?);
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(err)?;
    }
    Ok(total)
}

/// Bounds of `refreshInterval`. ESO accepts any duration; production's own
/// suite uses `30s`. Below 10 seconds a projection would poll the store
/// continuously; above 7 days a changed value would effectively never reach
/// the workloads.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// The longest sync refresh interval the CRD allows.
pub const MAX_REFRESH: Duration = Duration::from_secs(7 * 86_400);

/// `refreshInterval`: the CRD syntax, from 10s to 7d.
pub fn check_refresh_interval(text: &str) -> Result<Duration, String> {
    let d = parse_interval(text)?;
    if d < MIN_REFRESH || d > MAX_REFRESH {
        return Err(format!(
            "invalid refresh interval {text:?}: it must be between 10s and 7d (168h)"
        ));
    }
    Ok(d)
}

/// The character sets a password generator draws from.
pub const CHARSETS: &[&str] = &["alnum", "alnum-symbol", "hex"];

/// Bounds of a rotation interval: at most one rotation a minute (the
/// platform's own suite uses `1m`), at least one every ten years.
pub const MIN_ROTATION: Duration = Duration::from_secs(60);
/// The longest rotation interval the CRD allows.
pub const MAX_ROTATION: Duration = Duration::from_secs(3650 * 86_400);

/// The largest version number (stores keep versions as signed 64-bit).
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// A version number a client may name: 1 to 2^63-1.
pub fn check_version(what: &str, v: u64) -> Result<u64, String> {
    if v == 0 || v > MAX_VERSION {
        return Err(format!(
            "invalid {what} {v}: a version is a whole number from 1 to {MAX_VERSION}"
        ));
    }
    Ok(v)
}

/// A rotation's interval and generator, as the CRD checks them; its interval.
pub fn check_rotation(r: &crate::wire::Rotation) -> Result<Duration, String> {
    if !(8..=128).contains(&r.generator.length) {
        return Err(format!(
            "invalid generator length {}: it must be between 8 and 128",
            r.generator.length
        ));
    }
    if !CHARSETS.contains(&r.generator.charset.as_str()) {
        return Err(format!(
            "invalid generator charset {:?}: use one of {}",
            r.generator.charset,
            CHARSETS.join(", ")
        ));
    }
    if r.enabled && r.interval.is_empty() {
        return Err("rotation is enabled but has no interval (e.g. 90d)".into());
    }
    if r.interval.is_empty() {
        return Ok(Duration::ZERO);
    }
    let every = parse_interval(&r.interval)?;
    if !(MIN_ROTATION..=MAX_ROTATION).contains(&every) {
        return Err(format!(
            "invalid rotation interval {:?}: it must be between 1m and 3650d",
            r.interval
        ));
    }
    Ok(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("name", "db-creds").is_ok());
        assert!(check_name("name", "a.b-c1").is_ok());
        assert!(check_name("name", "a.b.c-d").is_ok());
        for bad in [
            "",
            "Db",
            "-a",
            "a-",
            "a_b",
            "a b",
            "a..b",
            "a.-b",
            "a-.b",
            ".a",
            "a.",
            &"a".repeat(254),
        ] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_character_is_named_with_a_name_that_would_do() {
        let e = check_name("secret name", "MyApp").unwrap_err();
        assert!(e.contains("'M' (character 1) is not allowed"), "{e}");
        assert!(e.contains("did you mean \"myapp\"?"), "{e}");
        let e = check_name("secret name", "db_creds v2!").unwrap_err();
        assert!(e.contains("'_' (character 3)"), "{e}");
        assert!(e.contains("\"db-creds-v2\""), "{e}");
        // Nothing usable left: no suggestion.
        let e = check_name("secret name", "__").unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn keys() {
        for good in ["DATABASE_URL", "tls.crt", "a-b", "_x"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", "a=b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_interval("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_interval("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "0s", "1", "h", "1x", "1.5h", "01h", "-1h", "1h "] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert!(check_refresh_interval("1h").is_ok());
        assert!(check_refresh_interval("30s").is_ok());
        // Large sums add up exactly (checked, never wrapped), and rotation
        // refuses them.
        assert!(parse_interval(&"4294967295d".repeat(64)).unwrap() > MAX_ROTATION);
        let rot = |i: &str| crate::wire::Rotation {
            enabled: true,
            interval: i.into(),
            ..Default::default()
        };
        for bad in ["1ns", "59s", "3651d", "4294967295d"] {
            assert!(check_rotation(&rot(bad)).is_err(), "{bad}");
        }
        for good in ["1m", "90d", "3650d"] {
            assert!(check_rotation(&rot(good)).is_ok(), "{good}");
        }
        assert!(check_version("version", 0).is_err());
        assert!(check_version("version", MAX_VERSION).is_ok());
        assert!(check_version("version", MAX_VERSION + 1).is_err());
        assert!(check_refresh_interval("10s").is_ok());
        assert!(check_refresh_interval("9s").is_err());
        assert!(check_refresh_interval("7d").is_ok());
        assert!(check_refresh_interval("169h").is_err());
    }
}
