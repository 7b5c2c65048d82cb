use clap::Args;
use comfy_table::Cell;

use crate::commands::Session;
use crate::error::Result;
use crate::output::{note, sanitize};

/// List the workloads that reference a secret's projected Kubernetes Secret.
///
/// Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and Pods are
/// scanned for envFrom, env valueFrom, secret volumes and projected volumes
/// (init containers included). Check this before --destroy.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets consumers db-creds
  kube-dc secrets consumers db-creds -o json

Role: any project role, or organization admin.")]
pub struct ConsumersArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
}

pub async fn run(ctx: &Session, a: ConsumersArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets consumers")?;
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let (c, raw) = client.consumers(&ns, &a.name).await?;
    // Workloads still naming a Secret that is no longer projected are not
    // wired to this secret: say so rather than list them as if they were.
    if !c.items.is_empty() {
        let (s, _) = client.get_secret(&ns, &a.name, false, None).await?;
        if !s.sync.enabled {
            crate::output::warn(&format!(
                "sync of {} is off: Secret {} is not projected, so these workloads reference a \
                 Secret that this secret no longer fills (turn it on: `kube-dc secrets sync {} \
                 --enabled true`)",
                a.name,
                sanitize(&c.secret),
                a.name
            ));
        }
    }
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    for e in c.errors.iter().flatten() {
        let msg = e
            .get("error")
            .and_then(|v| v.as_str())
            .map(String::from)
            .unwrap_or_else(|| e.to_string());
        crate::output::warn(&format!("scanner: {}", sanitize(&msg)));
    }
    if c.items.is_empty() {
        note(&format!(
            "no workload references Secret {}",
            sanitize(&c.secret)
        ));
        return Ok(());
    }
    let mut t = p.table(&["KIND", "NAME", "REFERENCES"]);
    for i in &c.items {
        t.add_row(vec![
            Cell::new(sanitize(&i.kind)),
            Cell::new(sanitize(&i.name)),
            Cell::new(sanitize(&i.references.join(", "))),
        ]);
    }
    p.print_table(&t)
}
