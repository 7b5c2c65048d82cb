//! `kube-dc secrets …`

mod apply;
mod consumers;
pub(crate) mod create;
pub(crate) mod delete;
mod destroy_version;
mod diff;
pub(crate) mod edit;
mod export;
mod get;
mod import;
mod inject;
mod list;
mod migrate;
mod put;
mod restore;
mod run;
pub(crate) mod set;
mod sync;
mod versions;

use clap::Subcommand;

use super::Session;
use crate::api::Secret;
use crate::error::{CliError, Result};
use crate::listing::SyncState;

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    Create(create::CreateArgs),
    List(list::ListArgs),
    #[command(aliases = ["describe", "show"])]
    Get(get::GetArgs),
    Put(put::PutArgs),
    Set(set::SetArgs),
    Unset(set::UnsetArgs),
    Rollback(set::RollbackArgs),
    Edit(edit::EditArgs),
    Sync(sync::SyncArgs),
    Import(import::ImportArgs),
    Delete(delete::DeleteArgs),
    Restore(restore::RestoreArgs),
    Versions(versions::VersionsArgs),
    DestroyVersion(destroy_version::DestroyVersionArgs),
    Consumers(consumers::ConsumersArgs),
    Apply(apply::ApplyArgs),
    Run(run::RunArgs),
    Inject(inject::InjectArgs),
    Diff(diff::DiffArgs),
    Migrate(migrate::MigrateArgs),
    Export(export::ExportArgs),
}

pub async fn run(ctx: &Session, cmd: SecretsCommand) -> Result<i32> {
    match cmd {
        SecretsCommand::Create(a) => create::run(ctx, a).await,
        SecretsCommand::List(a) => list::run(ctx, a).await,
        SecretsCommand::Get(a) => get::run(ctx, a).await,
        SecretsCommand::Put(a) => put::run(ctx, a).await,
        SecretsCommand::Set(a) => set::set(ctx, a).await,
        SecretsCommand::Unset(a) => set::unset(ctx, a).await,
        SecretsCommand::Rollback(a) => set::rollback(ctx, a).await,
        SecretsCommand::Edit(a) => edit::run(ctx, a).await,
        SecretsCommand::Sync(a) => sync::run(ctx, a).await,
        SecretsCommand::Import(a) => import::run(ctx, a).await,
        SecretsCommand::Delete(a) => delete::run(ctx, a).await,
        SecretsCommand::Restore(a) => restore::run(ctx, a).await,
        SecretsCommand::Versions(a) => versions::run(ctx, a).await,
        SecretsCommand::DestroyVersion(a) => destroy_version::run(ctx, a).await,
        SecretsCommand::Consumers(a) => consumers::run(ctx, a).await,
        SecretsCommand::Apply(a) => apply::run(ctx, a).await,
        SecretsCommand::Run(a) => return run::run(ctx, a).await,
        SecretsCommand::Inject(a) => inject::run(ctx, a).await,
        SecretsCommand::Diff(a) => return diff::run(ctx, a).await,
        SecretsCommand::Migrate(a) => return migrate::run(ctx, a).await,
        SecretsCommand::Export(a) => export::run(ctx, a).await,
    }
    .map(|()| 0)
}

pub fn check_secret_name(name: &str) -> Result<()> {
    kube_dc_api::validate::check_name("secret name", name).map_err(CliError::usage)
}

/// A rule of `kube_dc_api::validate` refused a field: said with the flag
/// that gave it (`flags`: the sync target's, refresh's and keys' flags).
pub(crate) fn invalid_flag(e: kube_dc_api::validate::Invalid, flags: [&str; 3]) -> CliError {
    use kube_dc_api::validate::Field;
    let flag = match e.field {
        Field::SyncTarget => flags[0],
        Field::SyncRefresh => flags[1],
        Field::SyncKeys => flags[2],
        Field::Description => "--description",
        Field::Values => return CliError::usage(e.message),
    };
    CliError::usage(format!("{flag}: {}", e.message))
}

/// Prints a secret's metadata as `Field:  value` rows, or the raw document.
pub fn print_secret(ctx: &Session, s: &Secret, raw: &crate::api::Doc) -> Result<()> {
    use comfy_table::Cell;

    use crate::output::sanitize;
    let p = &ctx.printer;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    let mut rows: Vec<(&str, Cell)> = vec![
        ("Name", Cell::new(sanitize(&s.name))),
        ("Namespace", Cell::new(sanitize(&s.namespace))),
        ("Type", Cell::new(sanitize(&s.kind))),
    ];
    if let Some(d) = &s.description {
        rows.push(("Description", Cell::new(sanitize(d))));
    }
    let state = SyncState::of_secret(s);
    let reason = s
        .status
        .not_ready_because()
        .filter(|_| s.sync.enabled)
        .map(|c| format!(" ({}: {})", c.reason, c.message))
        .unwrap_or_default();
    rows.push((
        "Status",
        p.colored(
            &sanitize(&format!("{}{reason}", state.label())),
            state.color(),
        ),
    ));
    let keys = s
        .sync
        .keys
        .as_ref()
        .map(|k| format!(", keys {}", k.join(",")))
        .unwrap_or_default();
    let target = s.sync.target(&s.name).to_string();
    let refresh = s
        .sync
        .refresh_interval
        .clone()
        .unwrap_or_else(|| "1h".into());
    let sync = if s.sync.enabled {
        format!("enabled → Secret {target}, refresh {refresh}{keys}")
    } else {
        "disabled (values stay in the platform store)".to_string()
    };
    rows.push(("Sync", Cell::new(sanitize(&sync))));
    if let Some(r) = s.rotation.as_ref().filter(|r| r.enabled) {
        let g = &r.generator;
        let text = format!("every {} ({} chars, {})", r.interval, g.length, g.charset);
        rows.push(("Rotation", Cell::new(sanitize(&text))));
        if let Some(n) = &s.status.next_rotation_time {
            rows.push(("Next rotation", Cell::new(sanitize(n))));
        }
    }
    match &s.openbao {
        Some(o) => {
            rows.push(("Version", Cell::new(o.current_version)));
            if let Some(u) = &o.updated_time {
                rows.push(("Updated", Cell::new(sanitize(u))));
            }
        }
        None => rows.push(("Version", Cell::new("- (no values yet)"))),
    }
    let mut t = p.table(&[]);
    for (k, v) in rows {
        t.add_row(vec![Cell::new(format!("{k}:")), v]);
    }
    p.print_table(&t)
}
