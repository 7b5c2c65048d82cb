//! A command's session: the global flags, the printer, and — built only
//! when a command needs them — the resolved target and the API client with
//! its credentials.

use std::cell::OnceCell;
use std::time::Duration;

use crate::api::{Client, Plan, PlannedChange};
use crate::config::GlobalArgs;
use crate::config::{self, Target};
use crate::error::{CliError, Result};
use crate::output::Printer;

/// What every command gets: the global flags, the printer, and — built
/// only when a command needs it — the resolved target and API client.
pub struct Session {
    pub global: GlobalArgs,
    pub printer: Printer,
    target: OnceCell<Target>,
    /// `--dry-run`: the changes the command would make.
    plan: Option<Plan>,
}

impl Session {
    /// `plans`: the command's changes are planned (`--dry-run` on a
    /// command that makes changes); its output is then the plan, which
    /// every format can show.
    pub fn new(global: GlobalArgs, plans: bool) -> Self {
        let mut printer = Printer::new(
            global.output.clone(),
            global.no_color,
            global.scope_source.output_explicit,
        );
        printer.plan_only = plans;
        let plan = global.dry_run.then(|| Plan::new(global.show_values));
        Self {
            global,
            printer,
            target: OnceCell::new(),
            plan,
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
            crate::auth::credential(target, self.timeout()?).await?
        };
        Ok(
            Client::new(target, self.timeout()?, self.global.verbose, token)?
                .planning(self.plan.clone()),
        )
    }

    /// The changes planned so far, for a command whose changes are planned
    /// (None otherwise; a dry run of a command that makes none still
    /// gives its client a plan, so a change it sent by mistake is refused).
    pub fn planned(&self) -> Option<Vec<PlannedChange>> {
        self.plan
            .as_ref()
            .filter(|_| self.printer.plan_only)
            .map(Plan::changes)
    }

    pub fn namespace(&self) -> Result<String> {
        self.target()?.namespace()
    }
}
