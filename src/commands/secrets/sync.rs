use clap::Args;

use crate::api::{Client, SyncPatch};
use crate::commands::{Session, confirm};
use crate::error::{CliError, Result};
use kube_dc_api::validate;

/// Change how a secret is projected into a Kubernetes Secret.
///
/// Only the flags you give are sent; the rest stays as it is.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets sync db-creds --enabled false     # stop projecting; values stay in the store
  kube-dc secrets sync db-creds --enabled true --target db-creds-env
  kube-dc secrets sync db-creds --refresh 15m
  kube-dc secrets sync db-creds --keys USER,PASSWORD   # project only these keys
  kube-dc secrets sync db-creds --keys ''              # all keys again

Turning the projection off, or moving it to another target, takes the
projected Secret away from the workloads that use it: kube-dc lists them
(as `secrets consumers`) and asks first; --yes confirms in scripts.

Role: developer, project-manager or admin.")]
pub struct SyncArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// Turn the projection on or off.
    #[arg(long, value_name = "true|false", value_parser = parse_switch)]
    pub enabled: Option<bool>,
    /// Name of the projected Kubernetes Secret.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// ESO refresh interval, 10s to 7d.
    #[arg(long, value_name = "DURATION")]
    pub refresh: Option<String>,
    /// Keys to project, comma-separated; an empty string means all keys.
    #[arg(long, value_name = "KEY,...")]
    pub keys: Option<String>,
    /// Do not ask before taking the projection away from workloads that use it.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

pub async fn run(ctx: &Session, a: SyncArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets sync")?;
    super::check_secret_name(&a.name)?;
    let keys = a.keys.as_deref().map(validate::split_keys);
    validate::check_sync(
        a.target.as_deref(),
        a.refresh.as_deref(),
        keys.as_deref().unwrap_or_default(),
    )
    .map_err(|e| super::invalid_flag(e, ["--target", "--refresh", "--keys"]))?;
    let patch = SyncPatch {
        enabled: a.enabled,
        target_secret_name: a.target.clone(),
        refresh_interval: a.refresh.clone(),
        keys,
    };
    if patch == SyncPatch::default() {
        return Err(CliError::usage("nothing to change")
            .hint("give at least one of --enabled, --target, --refresh, --keys"));
    }
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    if !a.yes {
        ask_if_it_cuts_off(ctx, &client, &ns, &a.name, &patch).await?;
    }
    let Some((secret, raw)) = client.sync(&ns, &a.name, &patch).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    let state = crate::listing::SyncState::of_secret(&secret).word();
    p.line(&format!(
        "secret/{} sync updated: {}",
        secret.name,
        state.trim_start_matches(['●', '○', ' '])
    ))
}

/// Turning the projection off, or moving it, takes the projected Secret
/// away from the workloads that reference it, as deleting the secret does:
/// the same list of them, and the same question, before anything changes.
async fn ask_if_it_cuts_off(
    ctx: &Session,
    client: &Client,
    ns: &str,
    name: &str,
    patch: &SyncPatch,
) -> Result<()> {
    let Some(cut) = crate::ops::secret::sync_cut_off(client, ns, name, patch).await? else {
        return Ok(());
    };
    if super::delete::show_consumers(client, ns, name).await? == 0 {
        return Ok(());
    }
    crate::output::warn(&format!(
        "afterwards {name} no longer fills Secret {}, which these workloads reference",
        cut.current()
    ));
    confirm(ctx, &cut.question(name), false)
}

/// `true|false`, also `yes|no` and `on|off`, in any case (as the Go CLI).
fn parse_switch(v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not one of true, false, yes, no, on, off")),
    }
}
