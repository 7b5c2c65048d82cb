//! A command's session: the global flags, the printer, and — built only
//! when a command needs them — the resolved target and the API client with
//! its credentials.

use std::cell::OnceCell;
use std::time::Duration;

use crate::api::Client;
use crate::config::GlobalArgs;
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
        let printer = Printer::new(global.output.clone(), global.no_color);
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
            crate::auth::credential(target, self.timeout()?).await?
        };
        Ok(
            Client::new(target, self.timeout()?, self.global.verbose, token)?
                .dry_run(self.global.dry_run, self.global.show_values),
        )
    }

    pub fn namespace(&self) -> Result<String> {
        self.target()?.namespace()
    }
}
