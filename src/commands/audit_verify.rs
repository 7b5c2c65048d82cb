//! `kube-dc audit verify FILE`: checks an exported audit CSV offline.

use std::path::PathBuf;

use clap::Args;

use crate::commands::Ctx;
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

  # An export filtered by --service, --actor, … skips events by design:
  kube-dc audit verify filtered.csv --allow-gaps

Exit status: 0 when every row verifies (and, without --allow-gaps, the rows
form one unbroken chain); 10 when the file was altered (a row does not match
its hash, or rows are missing between verified ones), naming the file lines;
2 when the file is not an export with hashes.

What one file cannot show: rows cut from its end leave no trace in it.
Keep the last hash this command prints, and check that the next export's
first prev_hash continues it.
Role: none (offline).")]
pub struct VerifyArgs {
    /// The exported CSV file ('-' for standard input).
    pub file: PathBuf,
    /// Accept missing rows between verified ones (a filtered export).
    #[arg(long)]
    pub allow_gaps: bool,
}

pub fn run(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    let shown = a.file.display().to_string();
    let reader: Box<dyn std::io::Read> = if shown == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.file)
                .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}")))?,
        )
    };
    let check = kube_dc_api::audit::check_export(csv::Reader::from_reader(reader))
        .map_err(|e| CliError::usage(format!("{shown}: {e}")))?;
    let p = &ctx.printer;
    let lines = |v: &[usize]| {
        v.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gaps_fail = !check.gaps.is_empty() && !a.allow_gaps;
    // The verdict first, then the lines that make it.
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
            if a.allow_gaps {
                " (--allow-gaps: a filtered export skips events by design)"
            } else {
                ""
            }
        ))?;
    }
    p.line(&format!(
        "{shown}: {} event(s) verified{}",
        check.verified,
        if check.from_genesis {
            ", starting at the organization's first event"
        } else {
            ", starting after earlier events"
        }
    ))?;
    if let Some(h) = &check.last_hash {
        p.line(&format!(
            "last hash: {h} (rows cut from the end cannot be seen in this file: the next export's first prev_hash must equal it)"
        ))?;
    }
    if !check.failures.is_empty() {
        return Err(CliError::new(
            ErrorKind::Tampered,
            format!(
                "{shown}: {} row(s) do not match their hashes; the file was altered",
                check.failures.len()
            ),
        ));
    }
    if gaps_fail {
        return Err(CliError::new(
            ErrorKind::Tampered,
            format!("{shown}: rows are missing from the chain"),
        )
        .hint("a filtered export skips events by design: add --allow-gaps to accept that"));
    }
    Ok(())
}
