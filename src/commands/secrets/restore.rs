use clap::Args;

use crate::commands::Session;
use crate::error::Result;

/// Bring back a soft-deleted secret with its value history.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets restore db-creds

Role: admin. Works against kube-dc's own backend (an extension).")]
pub struct RestoreArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::deleted_secret_names))]
    pub name: String,
}

pub async fn run(ctx: &Session, a: RestoreArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets restore")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let Some((secret, raw)) = ctx.client().await?.restore(&ns, &a.name).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!("secret/{} restored", secret.name))
}
