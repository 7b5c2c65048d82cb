//! One module per verb, each with its arguments beside its code.

pub mod audit;
pub mod audit_export;
pub mod audit_verify;
pub mod context;
pub mod login;
pub mod orgs;
pub mod secrets;
pub mod version;

use std::cell::OnceCell;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use crate::api::Client;
use crate::cli::GlobalArgs;
use crate::config::{self, Target};
use crate::error::{CliError, Result};
use crate::output::Printer;

/// What every command gets: the global flags, the printer, and — built
/// only when a command needs it — the resolved target and API client.
pub struct Ctx {
    pub global: GlobalArgs,
    pub printer: Printer,
    target: OnceCell<Target>,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Self {
        let printer = Printer::new(global.output, global.no_color);
        Self {
            global,
            printer,
            target: OnceCell::new(),
        }
    }

    pub fn target(&self) -> Result<&Target> {
        if let Some(t) = self.target.get() {
            return Ok(t);
        }
        let t = config::resolve(&self.global)?;
        Ok(self.target.get_or_init(|| t))
    }

    pub fn timeout(&self) -> Result<Duration> {
        kube_dc_api::validate::parse_interval(&self.global.timeout)
            .map_err(|e| CliError::usage(format!("--timeout: {e}")))
    }

    pub async fn client(&self) -> Result<Client> {
        let target = self.target()?;
        let token = if target.is_local() {
            None
        } else {
            crate::auth::bearer(target, self.timeout()?).await?
        };
        Client::new(target, self.timeout()?, self.global.verbose, token)
    }

    pub fn namespace(&self) -> Result<String> {
        self.target()?.namespace()
    }
}

pub(crate) use secrets::csv_err as secrets_csv_err;

/// Asks "yes/no" on the terminal. Without a terminal it refuses, naming
/// `--yes` as the way for scripts.
pub fn confirm(question: &str, yes_flag: bool) -> Result<()> {
    if yes_flag {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(
            CliError::usage(format!("{question} — refusing without confirmation"))
                .hint("pass --yes to confirm in scripts"),
        );
    }
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("cancelled"))
    }
}
