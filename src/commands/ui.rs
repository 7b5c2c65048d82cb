//! `kube-dc ui`: its flags and checks; the view itself is `crate::ui`.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;

use crate::error::{CliError, Result};
use crate::session::Session;

/// Browse and change the project's secrets in a terminal view.
///
/// One row per secret with its sync state. Enter opens a secret's detail,
/// `r` reveals its values (audited; multi-line values keep their lines;
/// hidden again after 30 seconds, on leaving, or on `R`), `c` copies the
/// selected value with an OSC 52 escape (works over SSH) without printing
/// it. `n` creates a secret (initial values typed masked, or read from a
/// file), `i` imports a Kubernetes Secret, `p` puts new values, `s` changes
/// the sync, `d` soft-deletes after showing the workloads that use it, `D`
/// destroys (admins; the name is typed to confirm), `v` lists the versions
/// (`b` rolls back, `x` destroys one), `t` the deleted secrets (Enter
/// restores). Each sends the requests of its CLI verb, audited the same.
/// `?` lists every key. Nothing revealed stays in the scrollback.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc ui
  kube-dc ui -p staging --refresh 30
  NO_COLOR=1 kube-dc ui

Refreshes: every refresh is an audited list request. Where the backend has
a change stream (kube-dc's own, and the local context) the view refreshes
when a secret of the project changes, and never on a timer: an idle view
makes no request. Elsewhere it refreshes every --refresh seconds, and says
so. Either way only while the terminal has the focus (where the terminal
reports it), nothing is being typed, no values are revealed, and a key was
pressed in the last 10 minutes; R refreshes at once.

Role: any project role (user and up), or organization admin, to browse;
revealing and changing values needs developer or more (organization admins:
an elevation window); destroy needs admin.")]
pub struct UiArgs {
    /// Seconds between automatic refreshes of the list and the open view,
    /// where the installation has no change stream.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub refresh: u64,
}

pub async fn run(ctx: &Session, a: UiArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "ui")?;
    if !crate::output::terminal().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::usage("kube-dc ui needs a terminal")
            .hint("for scripts, use kube-dc secrets list / get -o json"));
    }
    crate::ui::run(ctx, Duration::from_secs(a.refresh)).await
}
