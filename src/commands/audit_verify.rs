//! `kube-dc audit verify FILE`: checks an exported audit CSV offline.

use std::path::PathBuf;

use clap::Args;

use crate::commands::Ctx;
use crate::error::{CliError, Result};

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
form one unbroken chain); 1 otherwise, naming the rows.
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
    p.line(&format!(
        "{shown}: {} event(s) verified{}",
        check.verified,
        if check.from_genesis {
            ", starting at the organization's first event"
        } else {
            ", starting after earlier events"
        }
    ))?;
    for (row, why) in &check.failures {
        p.line(&format!("row {row}: {why}"))?;
    }
    if !check.gaps.is_empty() {
        p.line(&format!(
            "{} gap(s) in the chain, before row(s) {}",
            check.gaps.len(),
            check
                .gaps
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    if !check.failures.is_empty() {
        return Err(CliError::other(format!(
            "{shown}: {} row(s) do not match their hashes; the file was altered",
            check.failures.len()
        )));
    }
    if !check.gaps.is_empty() && !a.allow_gaps {
        return Err(
            CliError::other(format!("{shown}: rows are missing from the chain"))
                .hint("a filtered export skips events by design: add --allow-gaps to accept that"),
        );
    }
    Ok(())
}
