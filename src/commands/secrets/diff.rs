use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::api::Sensitive;
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::output::OutputFormat;
use kube_dc_api::wire::Data;

/// Compare two versions of a secret, or a local file with its current
/// version, key by key, values masked.
///
/// Without versions: the previous version against the current one. One
/// version: that version against the current one. Two: the first against
/// the second. With --file: the current version against an env file, or a
/// directory of files (one key per file, as `create --from-file DIR` reads
/// it): what a `put` of it would change.
///
/// Each key is `added`, `removed`, `changed` or `unchanged`; no value is
/// printed unless --show-values. Each version compared is one audited value
/// read. Exit 0 when they are equal, 1 when they differ (as diff(1)).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets diff db-creds              # previous version against the current
  kube-dc secrets diff db-creds 3            # version 3 against the current
  kube-dc secrets diff db-creds 3 5 -o json
  kube-dc secrets diff db-creds --file .env  # before `secrets put db-creds --from-env-file .env`

Role: developer, project-manager or admin (values are read).")]
pub struct DiffArgs {
    /// The secret.
    #[arg(value_name = "NAME", add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// The version to compare from (default: the one before the current).
    #[arg(value_name = "A", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "file")]
    pub from: Option<u64>,
    /// The version to compare with (default: the current).
    #[arg(value_name = "B", value_parser = clap::value_parser!(u64).range(1..), requires = "from")]
    pub to: Option<u64>,
    /// An env file, or a directory of files, to compare the current
    /// version with (added: keys only the file has).
    #[arg(long, value_name = "ENVFILE|DIR", value_hint = clap::ValueHint::AnyPath)]
    pub file: Option<PathBuf>,
    /// Print the values that differ (audited reads, as `get --value`).
    #[arg(long)]
    pub show_values: bool,
}

/// What happened to one key from one side to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Change {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// Each key of either side and its change, by key.
pub(crate) fn compare<'a>(
    from: &'a Data,
    to: &'a Data,
) -> Vec<(
    &'a str,
    Change,
    Option<&'a Sensitive>,
    Option<&'a Sensitive>,
)> {
    let mut keys: Vec<&str> = from.keys().chain(to.keys()).map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let (a, b) = (from.get(k), to.get(k));
            let change = match (a, b) {
                (None, _) => Change::Added,
                (_, None) => Change::Removed,
                (Some(x), Some(y)) if x.expose() == y.expose() => Change::Unchanged,
                _ => Change::Changed,
            };
            (k, change, a, b)
        })
        .collect()
}

pub async fn run(ctx: &Session, a: DiffArgs) -> Result<i32> {
    ctx.printer.require(
        &[OutputFormat::Table, OutputFormat::Json, OutputFormat::Yaml],
        "secrets diff",
    )?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let read = |version: Option<u64>| {
        let (client, ns, name) = (&client, &ns, &a.name);
        async move {
            let (s, _) = client.get_secret(ns, name, true, version).await?;
            let v = s.value.ok_or_else(|| {
                CliError::new(
                    ErrorKind::NotFound,
                    match version {
                        Some(n) => format!("version {n} of {name} has no readable value"),
                        None => format!("secret {name} has no readable value"),
                    },
                )
            })?;
            Ok::<_, CliError>((v.metadata.version, v.data))
        }
    };
    let (from_label, from, to_label, to) = match (&a.file, a.from, a.to) {
        (Some(path), _, _) => {
            // What a put of the file would change: the current version
            // is the old side.
            let local = local_values(path)?;
            let (v, current) = read(None).await?;
            (
                format!("version {v}"),
                current,
                path.display().to_string(),
                local,
            )
        }
        (None, Some(x), Some(y)) => {
            let (_, from) = read(Some(x)).await?;
            let (_, to) = read(Some(y)).await?;
            (format!("version {x}"), from, format!("version {y}"), to)
        }
        (None, from_version, None) => {
            let (current, to) = read(None).await?;
            let x = match from_version {
                Some(x) => x,
                None if current > 1 => current - 1,
                None => {
                    return Err(CliError::usage(format!(
                        "{} has one version only: there is nothing before it to compare",
                        a.name
                    ))
                    .hint("compare a local file with --file ENVFILE|DIR"));
                }
            };
            let (_, from) = read(Some(x)).await?;
            (
                format!("version {x}"),
                from,
                format!("version {current}"),
                to,
            )
        }
        (None, None, Some(_)) => unreachable!("clap requires A with B"),
    };
    let rows = compare(&from, &to);
    let equal = rows.iter().all(|r| r.1 == Change::Unchanged);
    if ctx.printer.is_machine() {
        let keys: Vec<_> = rows
            .iter()
            .map(|(k, c, x, y)| {
                let mut o = json!({"key": k, "change": c.word()});
                if a.show_values && *c != Change::Unchanged {
                    o["from"] = x
                        .map(|v| v.expose().into())
                        .unwrap_or(serde_json::Value::Null);
                    o["to"] = y
                        .map(|v| v.expose().into())
                        .unwrap_or(serde_json::Value::Null);
                }
                o
            })
            .collect();
        ctx.printer.print_doc(&json!({
            "secret": a.name,
            "namespace": ns,
            "from": from_label,
            "to": to_label,
            "equal": equal,
            "keys": keys,
        }))?;
    } else {
        crate::output::note(&format!("{}: {from_label} → {to_label}", a.name));
        print_table(ctx, &rows, a.show_values)?;
    }
    Ok(if equal { 0 } else { 1 })
}

fn print_table(
    ctx: &Session,
    rows: &[(&str, Change, Option<&Sensitive>, Option<&Sensitive>)],
    show_values: bool,
) -> Result<()> {
    if rows.is_empty() {
        crate::output::note("neither side has keys");
        return Ok(());
    }
    if !show_values {
        let cells: Vec<[crate::output::GridCell; 2]> = rows
            .iter()
            .map(|(k, c, _, _)| {
                [
                    crate::output::sanitized(k).into(),
                    std::borrow::Cow::Borrowed(c.word()).into(),
                ]
            })
            .collect();
        return ctx.printer.print_grid(["KEY", "CHANGE"], &cells);
    }
    for (k, c, x, y) in rows {
        ctx.printer
            .line(&format!("{} {}", crate::output::sanitize(k), c.word()))?;
        if *c == Change::Unchanged {
            continue;
        }
        for (sign, v) in [("-", x), ("+", y)] {
            if let Some(v) = v {
                for line in v.expose().split('\n') {
                    ctx.printer
                        .line(&format!("  {sign} {}", crate::output::sanitize(line)))?;
                }
            }
        }
    }
    Ok(())
}

/// An env file's values, or a directory's files, read exactly as
/// `create`/`put` would read them.
fn local_values(path: &std::path::Path) -> Result<Data> {
    let spec = path.display().to_string();
    let args = if path.is_dir() {
        crate::input::ValueArgs {
            from_file: vec![spec],
            ..Default::default()
        }
    } else {
        crate::input::ValueArgs {
            from_env_file: vec![spec],
            ..Default::default()
        }
    };
    crate::input::collect(&args).map_err(|e| e.context("--file"))
}

/// The changes between two sets of values (for tests).
#[cfg(test)]
fn changes(
    from: &[(&str, &str)],
    to: &[(&str, &str)],
) -> std::collections::BTreeMap<String, &'static str> {
    let data = |kv: &[(&str, &str)]| -> Data {
        kv.iter()
            .map(|(k, v)| (k.to_string(), Sensitive::new(*v)))
            .collect()
    };
    let (a, b) = (data(from), data(to));
    compare(&a, &b)
        .into_iter()
        .map(|(k, c, _, _)| (k.to_string(), c.word()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_added_removed_changed_or_unchanged() {
        let got = changes(
            &[("A", "1"), ("B", "2"), ("C", "3\n")],
            &[("B", "2"), ("C", "3"), ("D", "4")],
        );
        let want: std::collections::BTreeMap<String, &str> = [
            ("A", "removed"),
            ("B", "unchanged"),
            ("C", "changed"),
            ("D", "added"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, want, "a trailing newline is a change");
    }
}
