//! One module per verb, each with its arguments beside its code.

pub mod audit;
pub mod audit_cursor;
pub mod audit_export;
pub mod audit_time;
pub mod audit_verify;
pub mod context;
pub mod login;
pub mod logout;
pub mod orgs;
pub mod secrets;
pub mod version;

use crate::error::{CliError, Result};
pub use crate::session::Ctx;

pub(crate) use secrets::csv_err as secrets_csv_err;

/// Asks "yes/no" on the terminal. Without a terminal it refuses, naming
/// `--yes` as the way for scripts.
pub fn confirm(question: &str, yes_flag: bool) -> Result<()> {
    if yes_flag {
        return Ok(());
    }
    if !crate::output::stdin_is_terminal() || !crate::output::stderr_is_terminal() {
        return Err(
            CliError::usage(format!("{question} — refusing without confirmation"))
                .hint("pass --yes to confirm in scripts"),
        );
    }
    let answer = crate::output::ask(&format!("{question} [y/N]"))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("cancelled"))
    }
}
