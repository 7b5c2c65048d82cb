//! Secret values from the command line: `--from-literal`, `--from-file`,
//! `--from-env-file`, `--prompt`. Everything is read and validated before
//! any request is sent, and no value is ever altered: no variable
//! substitution, no silent trimming.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use kube_dc_api::validate::{self, check_key};
use kube_dc_api::wire::{Data, Sensitive};

use crate::error::{CliError, Result};
use crate::output::warn;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ValueArgs {
    /// KEY=VALUE (split at the first '='; the value may contain '='). Repeatable.
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub from_literal: Vec<String>,
    /// [KEY=]PATH: a file's content; the key defaults to the file name. `KEY=-` reads stdin.
    /// A directory: one key per regular file in it, named after the file. Repeatable.
    #[arg(long = "from-file", value_name = "[KEY=]PATH", add = clap_complete::ArgValueCompleter::new(clap_complete::engine::PathCompleter::any()))]
    pub from_file: Vec<String>,
    /// A dotenv file (comments, export, quotes, multi-line quoted values; no $VAR substitution).
    /// Values are kept exactly: a key set twice, or an unquoted value with spaces around it
    /// or a '#' in it, is an error naming the line. `-` reads stdin.
    #[arg(long = "from-env-file", value_name = "PATH", add = clap_complete::ArgValueCompleter::new(clap_complete::engine::PathCompleter::file()))]
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

/// One `--from-file` value: `path`'s content (stdin for `-`) as `key`.
fn add_file(c: &mut Collected, key: &str, path: &str, args: &ValueArgs) -> Result<()> {
    let origin = format!("--from-file={key}={path}");
    let bytes = if path == "-" {
        c.take_stdin(&origin)?
    } else {
        read_path(path, &origin)?
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
    c.insert(key, text, origin)
}

/// `--from-file=DIR`: one key per regular file, named after it (as
/// kubectl does). Subdirectories, other kinds of files and names that are
/// not keys (`..data` of a mounted volume) are skipped, each said.
fn add_dir(c: &mut Collected, dir: &str, args: &ValueArgs) -> Result<()> {
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("--from-file={dir}: cannot read the directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut taken = 0;
    for p in entries {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let regular = std::fs::metadata(&p).is_ok_and(|m| m.is_file());
        // `..data` and the like are a mounted volume's own links.
        if !regular || name.starts_with("..") || check_key(&name).is_err() {
            warn(&format!(
                "--from-file={dir}: skipped {name:?} ({})",
                if regular {
                    "not a valid key"
                } else {
                    "not a regular file"
                }
            ));
            continue;
        }
        add_file(c, &name, &p.to_string_lossy(), args)?;
        taken += 1;
    }
    if taken == 0 {
        return Err(CliError::usage(format!(
            "--from-file={dir}: the directory has no file to take a key from"
        )));
    }
    Ok(())
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
        // Empty stdin is most often a command upstream that failed
        // (`false | kube-dc …`): storing "" over a credential loses it.
        if buf.is_empty() {
            return Err(CliError::usage(format!(
                "{origin}: stdin was empty, so there is nothing to store (did the command feeding it fail?)"
            ))
            .hint("to store an empty value on purpose, use --from-literal=KEY="));
        }
        Ok(buf)
    }
}

/// How many empty answers `--prompt` takes before it gives up.
const PROMPT_TRIES: usize = 3;

/// A value typed at the terminal (not echoed). An empty answer (Enter
/// alone, easily pressed by mistake) is asked again, never stored: an empty
/// value overwrites a credential only when given on purpose.
fn prompt_non_empty(key: &str) -> Result<String> {
    for _ in 0..PROMPT_TRIES {
        let v = rpassword::prompt_password(format!("Value for {key}: ")).map_err(|e| {
            CliError::usage(format!(
                "--prompt {key}: cannot read from the terminal: {e}"
            ))
        })?;
        if !v.is_empty() {
            return Ok(v);
        }
        crate::output::warn(&format!(
            "the value for {key} is empty: type it again (Ctrl-C to cancel)"
        ));
    }
    Err(CliError::usage(format!(
        "--prompt {key}: {PROMPT_TRIES} empty answers; nothing was written"
    ))
    .hint(format!(
        "to store an empty value on purpose, use --from-literal={key}="
    )))
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!(
            "{what} is not UTF-8 text (invalid byte at offset {}); secret values are text",
            e.utf8_error().valid_up_to()
        ))
        .hint(
            "secret values are text: store binary data base64-encoded, through a pipe so it never \
             reaches the command line: base64 -w0 FILE | kube-dc secrets set NAME --from-file=KEY=-",
        )
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

/// A file's content as a value, exactly (a trailing newline included):
/// the form of `kube-dc ui`. `what` names the input in errors.
pub fn file_value(path: &str, what: &str) -> Result<String> {
    utf8(read_path(path, what)?, &format!("{what}: {path}"))
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
                if Path::new(spec).is_dir() {
                    add_dir(&mut c, spec, args)?;
                    continue;
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
        add_file(&mut c, &key, &path, args)?;
    }
    for path in &args.from_env_file {
        let origin = format!("--from-env-file={path}");
        let bytes = if path == "-" {
            c.take_stdin(&origin)?
        } else {
            read_path(path, &origin)?
        };
        let text = utf8(bytes, &origin)?;
        let entries = crate::envfile::parse_env(&text)
            .map_err(|e| CliError::usage(format!("{origin}: {e}")))?;
        if entries.is_empty() {
            return Err(CliError::usage(format!(
                "{origin}: no keys (only comments and blank lines)"
            ))
            .hint("an env file holds KEY=VALUE lines"));
        }
        for (k, v, line) in entries {
            c.insert(&k, v, format!("{path} line {line}"))?;
        }
    }
    if !args.prompt.is_empty() && !std::io::stdin().is_terminal() {
        return Err(CliError::usage("--prompt needs a terminal to ask on")
            .hint("in scripts, pipe the value in with --from-file=KEY=-"));
    }
    for key in &args.prompt {
        check_key(key).map_err(|e| CliError::usage(format!("--prompt: {e}")))?;
        let v = prompt_non_empty(key)?;
        c.insert(key, v, format!("--prompt={key}"))?;
    }
    validate::check_values_size(validate::values_size(&c.data))
        .map_err(|e| CliError::usage(e.message))?;
    Ok(c.data)
}
