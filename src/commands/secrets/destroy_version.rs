use clap::Args;

use crate::commands::{Session, confirm};
use crate::error::Result;

/// Erase one stored version of a secret, irreversibly.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets versions db-creds
  kube-dc secrets destroy-version db-creds 3 --yes
  kube-dc secrets destroy-version db-creds --version 3 --yes   # the Go CLI's spelling

Without a terminal to confirm on, --yes is required (the Go CLI does not
ask; this one does, as the step is irreversible). Erasing the current
version empties the projected Secret: the workloads that use it are shown
first.
Role: admin.")]
pub struct DestroyVersionArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// The version to erase.
    #[arg(value_parser = clap::value_parser!(u64).range(1..), required_unless_present = "version_flag", conflicts_with = "version_flag")]
    pub version: Option<u64>,
    /// The version to erase, as a flag.
    #[arg(long = "version", id = "version_flag", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub version_flag: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

pub async fn run(ctx: &Session, a: DestroyVersionArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets destroy-version")?;
    super::check_secret_name(&a.name)?;
    let version = a.version.or(a.version_flag).unwrap_or_default();
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let mut question = format!(
        "Erase version {version} of secret {}, irreversibly?",
        a.name
    );
    if !a.yes && crate::ops::secret::is_current_version(&client, &ns, &a.name, version).await? {
        // The current version: afterwards the secret has no readable
        // value and its projection empties.
        crate::output::warn(&format!(
            "version {version} is the current version of {}: afterwards it has no readable value until a new version is written, and its projected Secret is emptied",
            a.name
        ));
        super::delete::show_consumers(&client, &ns, &a.name).await?;
        question = format!(
            "Erase version {version}, the current one, of secret {}, irreversibly?",
            a.name
        );
    }
    confirm(ctx, &question, a.yes)?;
    let Some((resp, raw)) = client.destroy_version(&ns, &a.name, version).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "secret/{} version {} destroyed",
        resp.name, resp.destroyed_version
    ))
}
