use clap::Args;

use crate::commands::{Ctx, confirm};
use crate::error::Result;

/// Erase one stored version of a secret, irreversibly.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets versions db-creds
  kube-dc secrets destroy-version db-creds 3 --yes

Role: admin.")]
pub struct DestroyVersionArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// The version to erase.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

pub async fn run(ctx: &Ctx, a: DestroyVersionArgs) -> Result<()> {
    use crate::cli::OutputFormat::*;
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets destroy-version")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    confirm(
        &format!(
            "Erase version {} of secret {}, irreversibly?",
            a.version, a.name
        ),
        a.yes,
    )?;
    let (resp, raw) = ctx
        .client()
        .await?
        .destroy_version(&ns, &a.name, a.version)
        .await?;
    if p.is_machine() {
        return p.print_doc(&raw);
    }
    p.line(&format!(
        "secret/{} version {} destroyed",
        resp.name, resp.destroyed_version
    ))
}
