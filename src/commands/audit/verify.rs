//! `kube-dc audit verify FILE…`: checks exported audit CSVs offline, and
//! that each continues the one before it.

use std::path::PathBuf;

use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};

/// Verify an exported audit CSV offline: every event's hash, every row's
/// columns against its hashed event, and the chain between rows.
///
/// Works on files written by `kube-dc audit list --csv` (and `-o csv`)
/// against kube-dc's own backend, whose exports carry `prev_hash`, `hash`
/// and the hashed `event`. No server is contacted.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc audit list --csv --output-file audit.csv
  kube-dc audit verify audit.csv

  # Consecutive exports (--cursor), oldest first: each file verified, and
  # each continuing the one before (its first prev_hash is that one's last hash):
  kube-dc audit verify audit-2026-05-11.csv audit-2026-05-12.csv

  # An export filtered by --service, --actor, … skips events by design:
  kube-dc audit verify filtered.csv --allow-gaps

Exit status: 0 when every row verifies (and, without --allow-gaps, the rows
form one unbroken chain); 10 when the file was altered (a row does not match
its hash, or rows are missing between verified ones), naming the file lines;
2 when the file is not an export with hashes.

What a chain alone cannot show: rows cut from its end leave no trace in it.
A signed checkpoint can: `kube-dc audit checkpoint --output-file cp.json`
(kube-dc's backend), kept where the backend's operator cannot rewrite it,
then `kube-dc audit verify audit.csv --checkpoint cp.json`: the files must
hold the checkpoint's event, and from the organization's first event, that
many events (exit 10 names what is missing). The signature is checked with
--key, else with the key pinned for the installation the checkpoint came
from (by `audit checkpoint`, on first use); a checkpoint signed by another
key is refused, naming the pinned key's fingerprint.
Role: none (offline).")]
pub struct VerifyArgs {
    /// The exported CSV file(s), oldest first ('-' for standard input).
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Accept missing rows between verified ones (a filtered export).
    #[arg(long)]
    pub allow_gaps: bool,
    /// A signed checkpoint (`kube-dc audit checkpoint`) the files must reach.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// The backend's public key for --checkpoint: a file (what
    /// `kube-dc-backend audit-key` prints, or a PEM public key) or the
    /// base64 key itself. Default: the key pinned for the installation.
    #[arg(long, value_name = "KEY", requires = "checkpoint")]
    pub key: Option<String>,
}

pub fn run(ctx: &Session, a: VerifyArgs) -> Result<()> {
    let p = &ctx.printer;
    let mut failed: Option<CliError> = None;
    // The checkpoint's signature first: a forged one proves nothing.
    let checkpoint = a
        .checkpoint
        .as_deref()
        .map(|f| super::reach::load(p, f, a.key.as_deref()))
        .transpose()?;
    let want = checkpoint.as_ref().map(|c| c.hash.as_str());
    let mut checks: Vec<(String, kube_dc_api::audit::ExportCheck)> = Vec::new();
    let mut continuous = true;
    // The previous file's name and last hash, for the link to the next.
    let mut before: Option<(String, Option<String>)> = None;
    for file in &a.files {
        let shown = file.display().to_string();
        let check = match verify_one(ctx, file, &shown, a.allow_gaps, want) {
            Ok((check, None)) => check,
            Ok((check, Some(e))) => {
                failed.get_or_insert(e);
                check
            }
            Err(e) => return Err(e),
        };
        if let Some((prev_name, prev_last)) = &before
            && let (Some(last), Some(first)) = (prev_last, &check.first_prev_hash)
            && last != first
        {
            let verdict = if a.allow_gaps {
                "gap allowed"
            } else {
                "MISSING ROWS"
            };
            continuous = false;
            p.line(&format!(
                "{verdict}: {shown} does not continue {prev_name}: its first prev_hash is {first}, \
                 not {prev_name}'s last hash {last}"
            ))?;
            if !a.allow_gaps {
                failed.get_or_insert(
                    CliError::new(
                        ErrorKind::Tampered,
                        format!("{shown} does not continue {prev_name}: events are missing between them"),
                    )
                    .hint("give the files oldest first; an export made without the cursor may overlap or leave gaps"),
                );
            }
        } else if let Some((prev_name, Some(_))) = &before
            && check.first_prev_hash.is_some()
        {
            p.line(&format!("{shown} continues {prev_name}"))?;
        }
        // A file without rows continues whatever came before it.
        let last = check
            .last_hash
            .clone()
            .or_else(|| before.as_ref().and_then(|(_, h)| h.clone()));
        before = Some((shown.clone(), last));
        checks.push((shown, check));
    }
    if let Some(c) = &checkpoint
        && let Some(e) = super::reach::reached(p, c, &checks, continuous && !a.allow_gaps)?
    {
        failed.get_or_insert(e);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Checks one file and prints its verdict; the error it earns, if any.
fn verify_one(
    ctx: &Session,
    file: &std::path::Path,
    shown: &str,
    allow_gaps: bool,
    want: Option<&str>,
) -> Result<(kube_dc_api::audit::ExportCheck, Option<CliError>)> {
    let reader: Box<dyn std::io::Read> = if shown == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(file)
                .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}")))?,
        )
    };
    let check = kube_dc_api::audit::check_export_reaching(reader, want)
        .map_err(|e| CliError::usage(format!("{shown}: {e}")))?;
    print_verdict(&ctx.printer, shown, &check, allow_gaps)?;
    let err = verdict_error(shown, &check, allow_gaps);
    Ok((check, err))
}

/// The verdict first, then the lines that make it, then what the file
/// covers.
fn print_verdict(
    p: &crate::output::Printer,
    shown: &str,
    check: &kube_dc_api::audit::ExportCheck,
    allow_gaps: bool,
) -> Result<()> {
    let lines = |v: &[usize]| {
        v.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gaps_fail = !check.gaps.is_empty() && !allow_gaps;
    if !check.failures.is_empty() {
        p.line(&format!(
            "ALTERED: {shown}: {} row(s) do not match their hashes",
            check.failures.len()
        ))?;
        for (line, why) in &check.failures {
            p.line(&format!("  line {line}: {why}"))?;
        }
    }
    if !check.gaps.is_empty() {
        p.line(&format!(
            "{}: {} gap(s) in the chain: rows are missing before line(s) {}{}",
            if gaps_fail {
                "MISSING ROWS"
            } else {
                "gaps allowed"
            },
            check.gaps.len(),
            lines(&check.gaps),
            if allow_gaps {
                " (--allow-gaps: a filtered export skips events by design)"
            } else {
                ""
            }
        ))?;
    }
    p.line(&format!(
        "{shown}: {} event(s) verified{}",
        check.verified,
        match (&check.first_prev_hash, check.from_genesis) {
            (_, true) => ", starting at the organization's first event".to_string(),
            (Some(h), false) => format!(", starting after the event with hash {h}"),
            (None, false) => String::new(),
        }
    ))?;
    if let Some(h) = &check.last_hash {
        p.line(&format!(
            "last hash: {h} (rows cut from the end cannot be seen in this file: the next export's first prev_hash must equal it)"
        ))?;
    }
    Ok(())
}

/// The error a file earns: altered rows, or gaps not allowed.
fn verdict_error(
    shown: &str,
    check: &kube_dc_api::audit::ExportCheck,
    allow_gaps: bool,
) -> Option<CliError> {
    let gaps_fail = !check.gaps.is_empty() && !allow_gaps;
    if !check.failures.is_empty() {
        Some(CliError::new(
            ErrorKind::Tampered,
            format!(
                "{shown}: {} row(s) do not match their hashes; the file was altered",
                check.failures.len()
            ),
        ))
    } else if gaps_fail {
        Some(
            CliError::new(
                ErrorKind::Tampered,
                format!("{shown}: rows are missing from the chain"),
            )
            .hint("a filtered export skips events by design: add --allow-gaps to accept that"),
        )
    } else {
        None
    }
}
