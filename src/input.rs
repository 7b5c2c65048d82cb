//! Secret values from the command line: `--from-literal`, `--from-file`,
//! `--from-env-file`, `--prompt`. Everything is read and validated before
//! any request is sent, and no value is ever altered: no variable
//! substitution, no silent trimming.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use kube_dc_api::validate::{MAX_TOTAL_VALUE_BYTES, check_key};
use kube_dc_api::wire::{Data, Sensitive};

use crate::error::{CliError, Result};
use crate::output::warn;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ValueArgs {
    /// KEY=VALUE (split at the first '='; the value may contain '='). Repeatable.
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub from_literal: Vec<String>,
    /// [KEY=]PATH: a file's content; the key defaults to the file name. `KEY=-` reads stdin. Repeatable.
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub from_file: Vec<String>,
    /// A dotenv file (comments, export, quotes, multi-line quoted values; no $VAR substitution;
    /// a key set twice in the file takes its last value). `-` reads stdin.
    #[arg(long = "from-env-file", value_name = "PATH")]
    pub from_env_file: Vec<String>,
    /// Ask for KEY's value without echoing it (keeps values out of shell history). Repeatable.
    #[arg(long = "prompt", value_name = "KEY")]
    pub prompt: Vec<String>,
    /// Drop one trailing newline from --from-file values.
    #[arg(long)]
    pub trim_newline: bool,
}

impl ValueArgs {
    pub fn is_empty(&self) -> bool {
        self.from_literal.is_empty()
            && self.from_file.is_empty()
            && self.from_env_file.is_empty()
            && self.prompt.is_empty()
    }
}

/// Where each key came from, to name both sources of a duplicate.
struct Collected {
    data: Data,
    origin: BTreeMap<String, String>,
    stdin_used: Option<String>,
}

impl Collected {
    fn insert(&mut self, key: &str, value: String, origin: String) -> Result<()> {
        check_key(key).map_err(|e| CliError::usage(format!("{origin}: {e}")))?;
        if let Some(prev) = self.origin.get(key) {
            return Err(CliError::usage(format!(
                "key {key:?} is given twice: by {prev} and by {origin}"
            ))
            .hint("give each key once"));
        }
        self.origin.insert(key.to_string(), origin);
        self.data.insert(key.to_string(), Sensitive::new(value));
        Ok(())
    }

    fn take_stdin(&mut self, origin: &str) -> Result<Vec<u8>> {
        if let Some(prev) = &self.stdin_used {
            return Err(CliError::usage(format!(
                "{origin} reads stdin, but {prev} already does; stdin can be read once"
            )));
        }
        self.stdin_used = Some(origin.to_string());
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::usage(format!("{origin}: cannot read stdin: {e}")))?;
        Ok(buf)
    }
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!(
            "{what} is not UTF-8 text (invalid byte at offset {}); secret values are text",
            e.utf8_error().valid_up_to()
        ))
        .hint("store binary data base64-encoded, e.g. --from-literal=KEY=$(base64 -w0 FILE)")
    })
}

fn read_path(path: &str, what: &str) -> Result<Vec<u8>> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(CliError::usage(format!(
            "{what}: {path} is a directory, not a file"
        )));
    }
    std::fs::read(p).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        CliError::usage(format!("{what}: cannot read {path}: {why}"))
    })
}

/// Reads every source into one map of values. Nothing is sent anywhere.
pub fn collect(args: &ValueArgs) -> Result<Data> {
    let mut c = Collected {
        data: Data::new(),
        origin: BTreeMap::new(),
        stdin_used: None,
    };
    for lit in &args.from_literal {
        let origin = format!("--from-literal={}", lit.split('=').next().unwrap_or(""));
        let (k, v) = lit.split_once('=').ok_or_else(|| {
            CliError::usage(format!(
                "--from-literal {:?} has no '='",
                lit.split('=').next().unwrap_or("")
            ))
            .hint("write --from-literal=KEY=VALUE")
        })?;
        c.insert(k, v.to_string(), origin)?;
    }
    for spec in &args.from_file {
        let (key, path) = match spec.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => {
                if spec == "-" {
                    return Err(CliError::usage(
                        "--from-file=- needs a key for the value read from stdin",
                    )
                    .hint("write --from-file=KEY=-"));
                }
                let base = Path::new(spec)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| {
                        CliError::usage(format!(
                            "--from-file {spec:?}: cannot take a key from this path"
                        ))
                    })?;
                (base.to_string(), spec.clone())
            }
        };
        let origin = format!("--from-file={key}={path}");
        let bytes = if path == "-" {
            c.take_stdin(&origin)?
        } else {
            read_path(&path, &origin)?
        };
        let mut text = utf8(bytes, &format!("{origin}: {path}"))?;
        if text.ends_with('\n') {
            if args.trim_newline {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            } else {
                warn(&format!(
                    "{path} ends with a newline, which is kept in the value of {key} (pass --trim-newline to drop it)"
                ));
            }
        }
        c.insert(&key, text, origin)?;
    }
    for path in &args.from_env_file {
        let origin = format!("--from-env-file={path}");
        let bytes = if path == "-" {
            c.take_stdin(&origin)?
        } else {
            read_path(path, &origin)?
        };
        let text = utf8(bytes, &origin)?;
        for (k, v, line) in
            parse_env(&text).map_err(|e| CliError::usage(format!("{origin}: {e}")))?
        {
            c.insert(&k, v, format!("{path} line {line}"))?;
        }
    }
    if !args.prompt.is_empty() && !std::io::stdin().is_terminal() {
        return Err(CliError::usage("--prompt needs a terminal to ask on")
            .hint("in scripts, pipe the value in with --from-file=KEY=-"));
    }
    for key in &args.prompt {
        check_key(key).map_err(|e| CliError::usage(format!("--prompt: {e}")))?;
        let v = rpassword::prompt_password(format!("Value for {key}: ")).map_err(|e| {
            CliError::usage(format!(
                "--prompt {key}: cannot read from the terminal: {e}"
            ))
        })?;
        c.insert(key, v, format!("--prompt={key}"))?;
    }
    let total: usize = c.data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_TOTAL_VALUE_BYTES {
        return Err(CliError::usage(format!(
            "the values total {total} bytes; a secret holds at most {MAX_TOTAL_VALUE_BYTES} bytes (1 MiB, as a Kubernetes Secret)"
        )));
    }
    Ok(c.data)
}

/// Parses dotenv text with `dotenvor` (which never substitutes `$VAR`) and
/// returns (key, value, line). Within one file a later definition of a key
/// replaces an earlier one, as in every dotenv implementation. An unquoted
/// value with a '#' glued to it is an error: dotenv would cut the value
/// there (`PASS=abc#123` → `abc`), so we ask for quotes instead of guessing.
pub fn parse_env(text: &str) -> std::result::Result<Vec<(String, String, u32)>, String> {
    let entries = dotenvor::parse_str(text).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    let mut seen = BTreeMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if let Some(prev) = seen.insert(e.key.clone(), e.line) {
            return Err(format!(
                "key {:?} is set twice (lines {prev} and {})",
                e.key, e.line
            ));
        }
        if let Some(raw) = lines.get(e.line.saturating_sub(1) as usize) {
            let raw = raw.trim_start();
            let raw = raw.strip_prefix("export ").unwrap_or(raw);
            if let Some((_, rhs)) = raw.split_once('=') {
                let rhs = rhs.trim_start();
                let quoted = rhs.starts_with('"') || rhs.starts_with('\'') || rhs.starts_with('`');
                if !quoted
                    && let Some(pos) = rhs.find('#')
                    && pos > 0
                    && !rhs[..pos].ends_with(char::is_whitespace)
                {
                    return Err(format!(
                        "line {}: the value of {} contains '#', which dotenv reads as a comment; quote the value (e.g. {}='…')",
                        e.line, e.key, e.key
                    ));
                }
            }
        }
        out.push((e.key, e.value, e.line));
    }
    Ok(out)
}

/// Writes values as dotenv that [`parse_env`] reads back identically:
/// every value double-quoted, with `\\`, `"`, newline and carriage return
/// escaped.
/// Values as a dotenv file that `--from-env-file` reads back exactly
/// (double quotes; `\\`, `\"`, `\n`, `\r`, `\t` escaped). For a terminal
/// (`for_terminal`), every other control character is shown escaped too,
/// as the tables do, so a value cannot drive the terminal; that text is for
/// reading, not for reading back.
pub fn to_env(data: &Data, for_terminal: bool) -> String {
    let mut out = String::new();
    for (k, v) in data {
        out.push_str(&crate::output::escape_value(k));
        out.push_str("=\"");
        for ch in v.expose().chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if for_terminal && c.is_control() => {
                    out.push_str(&c.escape_default().to_string())
                }
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "# comment\nexport A=pa$word\nB='single $HOME'\nC=\"double $HOME \\\"q\\\"\"\nD=\"multi\nline\"\nE=\nF=x=y==\nG=spaced value   # trailing comment\n",
        );
        let want = [
            ("A", "pa$word"),
            ("B", "single $HOME"),
            ("C", "double $HOME \"q\""),
            ("D", "multi\nline"),
            ("E", ""),
            ("F", "x=y=="),
            ("G", "spaced value"),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn crlf_files_parse_like_lf() {
        assert_eq!(env("A=1\r\nB=\"two\"\r\n"), env("A=1\nB=\"two\"\n"));
    }

    #[test]
    fn glued_hash_is_an_error_and_later_definitions_win() {
        let e = parse_env("PASS=abc#123\n").unwrap_err();
        assert!(e.contains("quote"), "{e}");
        assert_eq!(env("A=1\nA=2\n"), [("A".to_string(), "2".to_string())]);
        assert!(parse_env("A=\"unterminated\n").is_err());
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
        ] {
            d.insert(k.into(), Sensitive::new(v));
        }
        // Shown on a terminal, control characters are escaped.
        assert!(!to_env(&d, true).contains('\u{1b}'));
        let back: Data = parse_env(&to_env(&d, false))
            .unwrap()
            .into_iter()
            .map(|(k, v, _)| (k, Sensitive::new(v)))
            .collect();
        assert_eq!(back, d);
    }
}
