use clap::Args;
use comfy_table::Cell;

use crate::commands::Ctx;
use crate::error::Result;
use crate::output::{age, sanitize};

/// List the secrets of the project: name, type, sync state, target Secret,
/// current version and last update.
#[derive(Args, Debug)]
#[command(
    visible_alias = "ls",
    after_help = "\
Examples:
  kube-dc secrets list
  kube-dc secrets list -p staging -o json
  kube-dc secrets list -o csv > secrets.csv

Sync states: ● Ready (projected), ● Pending (not projected yet), ○ Disabled.
Role: any project role (user and up), or organization admin."
)]
pub struct ListArgs {}

pub async fn run(ctx: &Ctx, _a: ListArgs) -> Result<()> {
    use crate::output::OutputFormat::*;
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml, Csv], "secrets list")?;
    let ns = ctx.namespace()?;
    let (list, raw) = ctx.client().await?.list_secrets(&ns).await?;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    let row = |s: &crate::api::Secret| {
        let (state, color) = super::sync_state(s);
        let target = if s.sync.enabled {
            s.sync
                .target_secret_name
                .clone()
                .unwrap_or_else(|| s.name.clone())
        } else {
            "-".into()
        };
        let version = s
            .openbao
            .as_ref()
            .map(|o| o.current_version.to_string())
            .unwrap_or_else(|| "-".into());
        let updated = s.openbao.as_ref().and_then(|o| o.updated_time.clone());
        (
            sanitize(&s.name),
            sanitize(&s.kind),
            state,
            color,
            sanitize(&target),
            version,
            updated,
        )
    };
    if p.format == Csv {
        let mut w = csv::Writer::from_writer(p.stdout());
        w.write_record(["name", "type", "sync", "target", "version", "updated"])
            .map_err(csv_err)?;
        for s in &list.items {
            let (n, k, st, _, t, v, u) = row(s);
            let st = st.trim_start_matches(['●', '○', ' ']);
            let cells = [n.as_str(), &k, st, &t, &v, u.as_deref().unwrap_or("")];
            w.write_record(cells.map(|c| kube_dc_api::audit::csv_cell(c).into_owned()))
                .map_err(csv_err)?;
        }
        w.flush()?;
        return Ok(());
    }
    if list.items.is_empty() {
        crate::output::note(&format!("no secrets in {ns}"));
        return Ok(());
    }
    let mut t = p.table(&["NAME", "TYPE", "SYNC", "TARGET", "VERSION", "UPDATED"]);
    for s in &list.items {
        let (n, k, st, color, target, v, u) = row(s);
        t.add_row(vec![
            Cell::new(n),
            Cell::new(k),
            p.colored(st, color),
            Cell::new(target),
            Cell::new(v),
            Cell::new(age(u.as_deref())),
        ]);
    }
    p.print_table(&t)
}

pub fn csv_err(e: csv::Error) -> crate::error::CliError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => crate::error::CliError::other(format!("CSV: {other:?}")),
    }
}
