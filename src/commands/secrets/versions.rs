use clap::Args;
use comfy_table::Cell;

use crate::commands::Session;
use crate::error::Result;

/// List the stored versions of a secret (within its history window).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets versions db-creds
  kube-dc secrets get db-creds --value --version 2

Role: any project role. Works against kube-dc's own backend (an extension).")]
pub struct VersionsArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
}

pub async fn run(ctx: &Session, a: VersionsArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets versions")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let (list, raw) = ctx.client().await?.versions(&ns, &a.name).await?;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    let current = list.items.iter().map(|v| v.version).max();
    let mut t = p.table(&["VERSION", "CREATED", "STATE"]);
    for v in &list.items {
        let state = if v.destroyed {
            format!("destroyed {}", v.deletion_time.as_deref().unwrap_or(""))
        } else if Some(v.version) == current {
            "current".into()
        } else {
            "kept".into()
        };
        t.add_row(vec![
            Cell::new(v.version),
            Cell::new(crate::output::sanitize(&v.created_time)),
            Cell::new(crate::output::sanitize(state.trim())),
        ]);
    }
    p.print_table(&t)
}
