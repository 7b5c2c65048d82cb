//! Env files: reading dotenv text exactly (`--from-env-file`) and writing
//! values so that a shell, dotenv, docker or kube-dc read them back byte for
//! byte (`-o env`).

use std::collections::BTreeMap;

use kube_dc_api::wire::Data;

use crate::error::{CliError, Result};

/// Parses dotenv text with `dotenvor` (quotes, `export`, comment lines,
/// escapes in double quotes, multi-line quoted values; never substitutes
/// `$VAR`) and returns (key, value, line). Whatever dotenv would change
/// without a word is an error naming the line and the fix instead: a key
/// set twice (dotenv keeps the last), and an unquoted value with space
/// around it or a `#` in it (dotenv trims the one and cuts at the other).
pub fn parse_env(text: &str) -> std::result::Result<Vec<(String, String, u32)>, String> {
    if text.starts_with('\u{feff}') {
        return Err(
            "line 1 starts with a UTF-8 byte order mark (BOM), which would become part of the first key; save the file as UTF-8 without BOM"
                .into(),
        );
    }
    let text = &join_shell_quotes(text);
    check_env_lines(text)?;
    let entries = dotenvor::parse_str(text).map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .map(|e| (e.key, e.value, e.line))
        .collect())
}

/// Rewrites each single-quoted value, including the POSIX shell's pieces
/// joined by escaped quotes (`'it'\''s'`, what `-o env` writes for a value
/// with a `'`), into the double-quoted form dotenv reads, keeping line
/// numbers (a value that spanned lines is followed by as many blank ones).
/// Every other line is left as it is.
fn join_shell_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let this = &rest[..end];
        let head = this.trim_start();
        let head = head.strip_prefix("export ").map_or(head, str::trim_start);
        let joined = head
            .split_once("='")
            .filter(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
            .and_then(|(_, _)| {
                let at = this.len() - head.len() + head.find("='").unwrap_or(0) + 1;
                shell_word(&rest[at..]).map(|(v, used)| (at, v, used))
            });
        match joined {
            Some((at, value, used)) => {
                out.push_str(&rest[..at]);
                out.push('"');
                for ch in value.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c => out.push(c),
                    }
                }
                out.push('"');
                let spanned = rest[at..at + used].matches('\n').count();
                rest = &rest[at + used..];
                for _ in 0..spanned {
                    out.push('\n');
                }
            }
            None => {
                out.push_str(this);
                rest = &rest[end..];
            }
        }
    }
    out
}

/// A single-quoted value at the start of `s`: dotenv's plain `'…'`, or
/// the shell's pieces joined by escaped quotes (`'it'\''s'`, `'a'\'`).
/// Anything else after a closing quote but the end of the value (space,
/// `#`, line end) is not this form: adjacent pieces (`'it''s'`, which a
/// shell reads as `its` and a person may mean as `it's`) are left to dotenv,
/// which refuses them. Returns the value and the bytes it used.
fn shell_word(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut value = String::new();
    let mut i = 0;
    loop {
        // A quoted piece.
        if b.get(i) != Some(&b'\'') {
            return None;
        }
        let close = i + 1 + s[i + 1..].find('\'')?;
        value.push_str(&s[i + 1..close]);
        i = close + 1;
        // Escaped quotes between pieces.
        while s[i..].starts_with("\\'") {
            value.push('\'');
            i += 2;
        }
        match b.get(i) {
            None => return Some((value, i)),
            Some(c) if c.is_ascii_whitespace() || *c == b'#' => return Some((value, i)),
            // Reopened only right after an escaped quote.
            Some(b'\'') if s[..i].ends_with("\\'") => {}
            Some(_) => return None,
        }
    }
}

/// The raw-line checks of [`parse_env`].
fn check_env_lines(text: &str) -> std::result::Result<(), String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // Inside a quoted value that spans lines: its closing quote.
    let mut open_quote: Option<char> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(q) = open_quote {
            if closes(line, q) {
                open_quote = None;
            }
            continue;
        }
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
        let Some((key, rhs)) = t.split_once('=') else {
            continue; // dotenvor reports malformed lines itself
        };
        let key = key.trim_end().to_string();
        if let Some(first) = seen.insert(key.clone(), n) {
            return Err(format!(
                "line {n}: {key} is already set on line {first}; dotenv would silently keep only the last one, so remove the duplicate"
            ));
        }
        let quote = rhs.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'));
        if let Some(q) = quote {
            if !closes(&rhs[1..], q) {
                open_quote = Some(q);
            }
            continue;
        }
        let fix = format!("quote the value to keep it exactly: {key}='…'");
        if rhs.starts_with(char::is_whitespace)
            || (rhs.ends_with(char::is_whitespace) && !rhs.trim().is_empty())
        {
            return Err(format!(
                "line {n}: the value of {key} has spaces around it, which dotenv drops; {fix}"
            ));
        }
        if rhs.contains('#') {
            return Err(format!(
                "line {n}: the value of {key} contains '#', which dotenv reads as the start of a comment; {fix}"
            ));
        }
    }
    Ok(())
}

/// Whether `rest` holds the closing quote `q` (a double quote may be
/// escaped with a backslash).
fn closes(rest: &str, q: char) -> bool {
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return true;
        }
    }
    false
}

/// How `-o env` writes values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvDialect {
    /// POSIX shell (`set -a; . FILE`), dotenv and `--from-env-file`: a value
    /// that needs it single-quoted, each `'` written `'\''`.
    #[default]
    Shell,
    /// `docker run --env-file`: `KEY=value` taken literally to the end of
    /// the line, so no quoting at all; a value with a line break cannot be
    /// written (docker has no escape for it) and is refused.
    Docker,
}

/// Characters a shell word keeps without quotes.
fn shell_safe(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
}

/// Values as an env file that reads back byte for byte: with
/// [`EnvDialect::Shell`], by `set -a; . FILE`, by dotenv and by
/// `--from-env-file`; with [`EnvDialect::Docker`], by `docker --env-file`.
/// For a terminal (`for_terminal`), control characters are shown escaped,
/// as the tables do, so a value cannot drive the terminal; that text is for
/// reading, not for reading back.
pub fn to_env(data: &Data, dialect: EnvDialect, for_terminal: bool) -> Result<String> {
    let mut out = String::new();
    for (k, v) in data {
        let v = v.expose();
        out.push_str(&crate::output::escape_value(k));
        out.push('=');
        let shown = |c: char, out: &mut String| {
            if for_terminal && c.is_control() && c != '\n' {
                out.push_str(&c.escape_default().to_string())
            } else {
                out.push(c)
            }
        };
        match dialect {
            EnvDialect::Docker => {
                if v.contains(['\n', '\r']) {
                    return Err(CliError::usage(format!(
                        "the value of {k} has a line break, which docker's --env-file cannot hold"
                    ))
                    .hint("use the shell dialect (the default) and `set -a; . FILE`, or `kube-dc secrets run -- docker run -e KEY …`"));
                }
                v.chars().for_each(|c| shown(c, &mut out));
            }
            EnvDialect::Shell if shell_safe(v) => out.push_str(v),
            EnvDialect::Shell => {
                out.push('\'');
                for c in v.chars() {
                    if c == '\'' {
                        out.push_str("'\\''");
                    } else {
                        shown(c, &mut out);
                    }
                }
                out.push('\'');
            }
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_dc_api::wire::Sensitive;

    fn env(text: &str) -> Vec<(String, String)> {
        parse_env(text)
            .unwrap()
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect()
    }

    #[test]
    fn env_files_keep_values_exactly() {
        let got = env(
            "# comment\nexport A=pa$word\nB='single $HOME'\nC=\"double $HOME \\\"q\\\"\"\nD=\"multi\nline\"\nE=\nF=x=y==\nG='spaced value   # not a comment'\n",
        );
        let want = [
            ("A", "pa$word"),
            ("B", "single $HOME"),
            ("C", "double $HOME \"q\""),
            ("D", "multi\nline"),
            ("E", ""),
            ("F", "x=y=="),
            ("G", "spaced value   # not a comment"),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn crlf_files_parse_like_lf() {
        assert_eq!(env("A=1\r\nB=\"two\"\r\n"), env("A=1\nB=\"two\"\n"));
    }

    #[test]
    fn what_dotenv_would_change_is_an_error_naming_the_line() {
        for (text, line, why) in [
            ("PASS=abc#123\n", 1, "contains '#'"),
            ("A=1\nNOTE=hello # x\n", 2, "contains '#'"),
            ("PASSWORD=abc   \n", 1, "spaces around it"),
            ("PASSWORD= abc\n", 1, "spaces around it"),
            ("A=1\nB=2\nA=3\n", 3, "already set on line 1"),
            ("export A=1\nA=2\n", 2, "already set on line 1"),
        ] {
            let e = parse_env(text).unwrap_err();
            assert!(
                e.starts_with(&format!("line {line}: ")) && e.contains(why),
                "{text:?}: {e}"
            );
        }
        assert!(parse_env("A=\"unterminated\n").is_err());
        // Inside quotes all of it is value; a multi-line value's lines are
        // not keys.
        assert_eq!(
            env("A='x  # y  '\nB=\"l1\nA=not-a-key\n\"\nC=\n"),
            [("A", "x  # y  "), ("B", "l1\nA=not-a-key\n"), ("C", "")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn env_output_round_trips() {
        let mut d = Data::new();
        for (k, v) in [
            ("PLAIN", "value"),
            ("DOLLAR", "pa$word ${X} $Y"),
            ("QUOTES", r#"it's "quoted" `tick`"#),
            ("BACKSLASH", r"C:\path\n not newline \\"),
            ("MULTI", "line1\nline2\r\nline3\n"),
            ("HASH", "abc#123 # not a comment"),
            ("EMPTY", ""),
            ("UNICODE", "ключ — 🔑"),
            ("EQ", "a=b=c"),
            ("TAB", "a\tb"),
            ("ESC", "a\u{1b}[31mred"),
            ("APOS", "'"),
            ("APOS2", "''x'\\''"),
            ("SUBST", "$(touch /tmp/pwned) `id` \\$HOME"),
            ("MULTI_APOS", "it's\nmulti'\nline"),
            ("SPACES", "  padded  "),
        ] {
            d.insert(k.into(), Sensitive::new(v));
        }
        let shell = |term| to_env(&d, EnvDialect::Shell, term).unwrap();
        // Shown on a terminal, control characters are escaped.
        assert!(!shell(true).contains('\u{1b}'));
        // Safe values are bare; the rest single-quoted, `'` as '\''.
        let text = shell(false);
        assert!(text.contains("\nPLAIN=value\n"), "{text}");
        assert!(text.contains("DOLLAR='pa$word ${X} $Y'\n"), "{text}");
        assert!(text.contains("APOS=''\\'''\n"), "{text}");
        let back: Data = parse_env(&text)
            .unwrap()
            .into_iter()
            .map(|(k, v, _)| (k, Sensitive::new(v)))
            .collect();
        for (k, v) in &d {
            assert_eq!(back[k].expose(), v.expose(), "{k} from {text}");
        }
        assert_eq!(back, d);
        // Docker takes each line literally: no quotes, no line breaks.
        let mut plain = Data::new();
        plain.insert("P".into(), Sensitive::new("pa$word 'q' \"d\""));
        assert_eq!(
            to_env(&plain, EnvDialect::Docker, false).unwrap(),
            "P=pa$word 'q' \"d\"\n"
        );
        let e = to_env(&d, EnvDialect::Docker, false).unwrap_err();
        assert!(e.message.contains("line break"), "{}", e.message);
    }

    #[test]
    fn line_numbers_survive_joined_quotes() {
        let got = parse_env("A='x'\\''y\nz'\nB=2\n").unwrap();
        assert_eq!(got[0].1, "x'y\nz");
        assert_eq!((got[1].0.as_str(), got[1].2), ("B", 3));
    }

    #[test]
    fn a_bom_is_named() {
        let e = parse_env("\u{feff}A=1\n").unwrap_err();
        assert!(e.contains("byte order mark"), "{e}");
    }
}
