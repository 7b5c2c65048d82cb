use clap::Args;

use crate::commands::{Ctx, confirm};
use crate::error::Result;
use crate::output::{note, sanitize};

/// Delete a secret: soft by default, or irreversibly with --destroy.
///
/// A soft delete removes the ManagedSecret and its projected Kubernetes
/// Secret but keeps the value history, so an admin can `restore` it.
/// --destroy wipes every stored version: it first shows the workloads that
/// use the secret and asks for confirmation (--yes in scripts).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets delete db-creds                   # soft delete
  kube-dc secrets consumers db-creds                # check the blast radius first
  kube-dc secrets delete db-creds --destroy         # asks before wiping
  kube-dc secrets delete db-creds --destroy --yes   # scripts

Coming from the Go CLI: it destroys without asking; this one asks first,
and without a terminal to ask on it needs --yes (the step is irreversible).

Role: soft delete: developer, project-manager or admin; --destroy: admin.")]
pub struct DeleteArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// Wipe the resource and every stored version, irreversibly.
    #[arg(long)]
    pub destroy: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

pub async fn run(ctx: &Ctx, a: DeleteArgs) -> Result<()> {
    use crate::output::OutputFormat::*;
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets delete")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    if a.destroy && !a.yes {
        // The blast radius first. A soft-deleted secret has no consumers
        // view, so a 404 here is not an error.
        match client.consumers(&ns, &a.name).await {
            Ok((c, _)) if !c.items.is_empty() => {
                note(&format!(
                    "These workloads use Secret {}:",
                    sanitize(&c.secret)
                ));
                for i in &c.items {
                    note(&format!(
                        "  {}/{}  ({})",
                        sanitize(&i.kind),
                        sanitize(&i.name),
                        sanitize(&i.references.join(", "))
                    ));
                }
            }
            Ok(_) => note(&format!("No workload references secret {}.", a.name)),
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        confirm(
            &format!(
                "Destroy secret {} and every stored version, irreversibly?",
                a.name
            ),
            a.yes,
        )?;
    }
    let (resp, raw) = client.delete(&ns, &a.name, a.destroy).await?;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    if resp.destroyed {
        p.line(&format!("secret/{} destroyed", resp.name))
    } else {
        p.line(&format!(
            "secret/{} deleted (history kept; an admin can `kube-dc secrets restore {}`)",
            resp.name, resp.name
        ))
    }
}
