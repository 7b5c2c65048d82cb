use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::listing::Rows;
use crate::output::{GridCell, age_at};

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

  kube-dc secrets list --deleted          # soft-deleted, restorable

Sync states: ● Ready (the projected Secret holds the values and keys asked
for), ● Pending (not yet, or not any more: `secrets get NAME` says why),
○ Disabled. In -o csv, empty cells stand for \"none\".
Role: any project role (user and up), or organization admin."
)]
pub struct ListArgs {
    /// The soft-deleted secrets instead (restore one with `secrets restore NAME`).
    /// An extension of kube-dc's own backend: an installation without it is said so.
    #[arg(long)]
    pub deleted: bool,
}

pub async fn run(ctx: &Session, a: ListArgs) -> Result<()> {
    use crate::output::OutputFormat::{Csv, Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml, Csv], "secrets list")?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let doc = if a.deleted {
        client.list_deleted_secrets(&ns).await?
    } else {
        client.list_secrets(&ns).await?
    };
    let list: Rows = doc.typed()?;
    if a.deleted && !list.deleted {
        // It answered with the live secrets: never show those as deleted.
        return Err(CliError::new(
            ErrorKind::NotSupported,
            "this installation does not list soft-deleted secrets (it ignored ?deleted=true)",
        )
        .hint("`kube-dc secrets restore NAME` still works where the installation has it, if you know the name"));
    }
    if p.is_machine() {
        drop(list);
        return p.print_doc(&doc.value());
    }
    if p.format() == Csv {
        let mut w = csv::Writer::from_writer(p.stdout());
        w.write_record(["name", "type", "sync", "target", "version", "updated"])?;
        for s in &list.items {
            let mut cells = s.cells();
            cells[2].text = s.sync_state().word().into();
            // "-" is the table's word for none; in CSV an empty cell says it
            // (and the formula guard never sees a placeholder).
            w.write_record(cells.map(|c| {
                if c.text == "-" {
                    String::new()
                } else {
                    kube_dc_api::audit::csv_cell(&c.text).into_owned()
                }
            }))?;
        }
        w.flush()?;
        return Ok(());
    }
    if list.items.is_empty() {
        let what = if a.deleted {
            "deleted secrets"
        } else {
            "secrets"
        };
        crate::output::note(&format!("no {what} in {ns}"));
        return Ok(());
    }
    if a.deleted {
        let now = crate::clock::utc();
        let rows: Vec<[GridCell; 4]> = list
            .items
            .iter()
            .map(|s| {
                let c = s.cells();
                let [name, kind, _, _, version, _] = c;
                [name, kind, version, age_at(now, s.deleted_time()).into()]
            })
            .collect();
        p.print_grid(["NAME", "TYPE", "VERSION", "DELETED"], &rows)?;
        crate::output::note("restore one with `kube-dc secrets restore NAME` (admin)");
        return Ok(());
    }
    let now = crate::clock::utc();
    let rows: Vec<[GridCell; 6]> = list
        .items
        .iter()
        .map(|s| {
            let mut cells = s.cells();
            cells[5].text = age_at(now, Some(&cells[5].text)).into();
            cells
        })
        .collect();
    p.print_grid(
        ["NAME", "TYPE", "SYNC", "TARGET", "VERSION", "UPDATED"],
        &rows,
    )
}
