use clap::Args;

use crate::api::ImportRequest;
use crate::commands::Session;
use crate::error::{CliError, Result};

/// Import an existing Kubernetes Secret so the platform manages it.
///
/// Every key is copied into the platform store as version 1, a ManagedSecret
/// is created, and sync is turned on so the original Secret keeps existing,
/// now owned by the platform. A failure at any step leaves nothing behind.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets import app-config --from legacy-app-credentials
  kube-dc secrets import shared --from creds --from-namespace acme-infra --allow-cross-namespace

Role: developer, project-manager or admin (and value-read access in the
source namespace for a cross-namespace import, which is audited).")]
pub struct ImportArgs {
    /// Name of the new managed secret.
    pub name: String,
    /// The Kubernetes Secret to import.
    #[arg(long = "from", value_name = "SECRET")]
    pub from: String,
    /// Namespace of the source Secret (default: the project's).
    #[arg(long, value_name = "NAMESPACE", alias = "source-namespace")]
    pub from_namespace: Option<String>,
    /// Confirm an import from another namespace (the Go CLI's
    /// --cross-namespace is accepted too).
    #[arg(long, alias = "cross-namespace")]
    pub allow_cross_namespace: bool,
    /// Type of the managed secret.
    #[arg(long = "type", value_parser = ["opaque", "password", "api-key", "tls", "db-static"])]
    pub kind: Option<String>,
    /// Description of the managed secret.
    #[arg(long)]
    pub description: Option<String>,
}

pub async fn run(ctx: &Session, a: ImportArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets import")?;
    super::check_secret_name(&a.name)?;
    kube_dc_api::validate::check_name("--from", &a.from).map_err(CliError::usage)?;
    let ns = ctx.namespace()?;
    if let Some(src) = &a.from_namespace
        && src != &ns
        && !a.allow_cross_namespace
    {
        return Err(
            CliError::usage(format!("the source is in namespace {src:?}, not {ns:?}")).hint(
                "a cross-namespace import is audited; confirm it with --allow-cross-namespace",
            ),
        );
    }
    let req = ImportRequest {
        source_secret_name: a.from.clone(),
        source_secret_namespace: a.from_namespace.clone(),
        kind: a.kind.clone(),
        description: a.description.clone(),
        allow_cross_namespace: a.allow_cross_namespace.then_some(true),
    };
    let Some((secret, raw)) = ctx.client().await?.import(&ns, &a.name, &req).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "secret/{} imported from {} (version {})",
        secret.name,
        a.from,
        secret.kv_version.unwrap_or(1)
    ))
}
