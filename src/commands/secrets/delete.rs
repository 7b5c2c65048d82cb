use clap::Args;

use crate::api::Client;
use crate::commands::{Session, confirm};
use crate::error::Result;
use crate::output::{note, sanitize};

/// Delete a secret: soft by default, or irreversibly with --destroy.
///
/// A soft delete removes the ManagedSecret and its projected Kubernetes
/// Secret but keeps the value history, so an admin can `restore` it
/// (`secrets list --deleted` lists them). Both first show the workloads
/// that use the projected Secret; a soft delete asks when there are any,
/// --destroy (which wipes every stored version) always asks. Without a
/// terminal to ask on, pass --yes.
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

pub async fn run(ctx: &Session, a: DeleteArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets delete")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    if !a.yes {
        // The blast radius first: a soft delete removes the projected
        // Secret too, so the workloads that use it are shown and asked
        // about; --destroy always asks.
        let users = show_consumers(&client, &ns, &a.name).await?;
        if a.destroy {
            confirm(
                ctx,
                &format!(
                    "Destroy secret {} and every stored version, irreversibly?",
                    a.name
                ),
                false,
            )?;
        } else if users > 0 {
            confirm(
                ctx,
                &format!(
                    "Delete secret {} and its projected Secret, which {users} workload(s) use?",
                    a.name
                ),
                false,
            )?;
        }
    }
    let Some((resp, raw)) = client.delete(&ns, &a.name, a.destroy).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    if resp.destroyed {
        p.line(&format!("secret/{} destroyed", resp.name))
    } else {
        p.line(&format!(
            "secret/{} deleted (history kept; an admin can `kube-dc secrets restore {}`; `secrets list --deleted` lists it)",
            resp.name, resp.name
        ))
    }
}

/// Shows on stderr the workloads that use the secret's projection and
/// returns how many.
pub(super) async fn show_consumers(client: &Client, ns: &str, name: &str) -> Result<usize> {
    match crate::ops::secret::consumers_of(client, ns, name).await? {
        Some(c) if !c.items.is_empty() => {
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
            Ok(c.items.len())
        }
        Some(_) => {
            note(&format!("No workload references secret {name}."));
            Ok(0)
        }
        None => Ok(0),
    }
}
