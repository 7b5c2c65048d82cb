use clap::Args;

use crate::api::{CreateRequest, SyncSpec};
use crate::commands::Session;
use crate::error::Result;
use crate::input::{self, ValueArgs};
use crate::output::note;
use kube_dc_api::validate;

/// Create a secret, optionally writing its first version in the same round trip.
///
/// Sync is on by default: the values are projected into a Kubernetes Secret
/// named after the secret (override with --sync-target). Needs the developer
/// role or higher.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  # Empty secret, sync enabled, target defaults to the secret name:
  kube-dc secrets create db-creds

  # Seed the first version inline:
  kube-dc secrets create app-config \\
    --from-literal=DATABASE_URL=postgres://... \\
    --from-file=tls.crt=./tls.crt

  # Seed from a .env file:
  kube-dc secrets create app-env --from-env-file=./app.env

  # No sync — only readable via \"kube-dc secrets get --value\":
  kube-dc secrets create api-keys --sync-disabled

  # Ask for a value without echoing it:
  kube-dc secrets create stripe --type api-key --prompt STRIPE_KEY

Role: developer, project-manager or admin.")]
pub struct CreateArgs {
    /// Name of the secret (lowercase letters, digits, '-', '.').
    pub name: String,
    /// Kind of secret.
    #[arg(long = "type", default_value = "opaque", value_parser = ["opaque", "password", "api-key", "tls", "db-static"])]
    pub kind: String,
    /// Shown in the dashboard and in `get` (at most 256 characters).
    #[arg(long)]
    pub description: Option<String>,
    /// Keep values in the platform store only; no Kubernetes Secret.
    #[arg(long)]
    pub sync_disabled: bool,
    /// Name of the projected Kubernetes Secret (default: the secret's name).
    #[arg(long, value_name = "NAME")]
    pub sync_target: Option<String>,
    /// How often ESO refreshes the projection, 10s to 7d (default 1h).
    #[arg(long, value_name = "DURATION")]
    pub sync_refresh: Option<String>,
    /// Only project these keys (comma-separated).
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub sync_keys: Vec<String>,
    #[command(flatten)]
    pub values: ValueArgs,
}

pub async fn run(ctx: &Session, a: CreateArgs) -> Result<()> {
    let p = &ctx.printer;
    use crate::output::OutputFormat::{Json, Table, Yaml};
    p.require(&[Table, Json, Yaml], "secrets create")?;
    // Everything is validated before any request.
    super::check_secret_name(&a.name)?;
    // As the Go CLI: entries are trimmed and empty ones dropped.
    let sync_keys = validate::split_keys(&a.sync_keys.join(","));
    validate::check_sync(
        a.sync_target.as_deref(),
        a.sync_refresh.as_deref(),
        &sync_keys,
    )
    .and_then(|()| {
        a.description
            .as_deref()
            .map_or(Ok(()), validate::check_description)
    })
    .map_err(|e| super::invalid_flag(e, ["--sync-target", "--sync-refresh", "--sync-keys"]))?;
    let data = if a.values.is_empty() {
        None
    } else {
        Some(input::collect(&a.values)?)
    };
    let ns = ctx.namespace()?;
    let req = CreateRequest {
        kind: a.kind.clone(),
        description: a.description.clone(),
        // Sync off means just that: no target, refresh or keys that would
        // make the resource look projected.
        sync: if a.sync_disabled {
            if a.sync_target.is_some() || a.sync_refresh.is_some() || !sync_keys.is_empty() {
                crate::output::warn(
                    "--sync-target, --sync-refresh and --sync-keys have no effect with --sync-disabled; they were not sent",
                );
            }
            SyncSpec {
                enabled: false,
                ..SyncSpec::default()
            }
        } else {
            SyncSpec {
                enabled: true,
                target_secret_name: a.sync_target.clone(),
                refresh_interval: a.sync_refresh.clone(),
                keys: (!sync_keys.is_empty()).then_some(sync_keys),
            }
        },
        rotation: None,
        initial_values: data,
    };
    let client = ctx.client().await?;
    // One request: the resource and its first version are written together,
    // so a failure leaves nothing behind.
    let Some((secret, raw)) = crate::ops::secret::create(&client, &ns, &a.name, &req).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    let version = secret
        .kv_version
        .or(secret.openbao.as_ref().map(|o| o.current_version))
        .unwrap_or(0);
    let state = crate::listing::SyncState::of_secret(&secret).word();
    p.line(&format!("secret/{} created", secret.name))?;
    if version > 0 {
        note(&format!(
            "version {version} written; sync {}",
            state.trim_start_matches(['●', '○', ' '])
        ));
    } else {
        note(&format!(
            "no values yet: add some with `kube-dc secrets put {} --from-literal=KEY=VALUE`",
            secret.name
        ));
    }
    Ok(())
}
