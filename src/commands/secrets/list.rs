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
  kube-dc secrets list --watch            # the list, then a line per change
  kube-dc secrets list -w -o json         # one JSON document per line

--watch follows the backend's change stream (kube-dc's own backend; one
audit event when it opens, none per change, resumed by cursor if the
connection drops). Against an installation without it, kube-dc says so and
polls the list every --poll seconds instead. No value is ever shown.

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
    /// After the list, print each change of the project's secrets as it
    /// happens (kubectl's -w).
    #[arg(short = 'w', long, conflicts_with = "deleted")]
    pub watch: bool,
    /// With --watch, where the installation has no change stream: seconds
    /// between two looks at the list.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll: u64,
}

pub async fn run(ctx: &Session, a: ListArgs) -> Result<()> {
    use crate::output::OutputFormat::{Csv, Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml, Csv], "secrets list")?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    if a.watch {
        let poll = std::time::Duration::from_secs(a.poll);
        let mut w = crate::ops::watch::Watcher::open(&client, &ns, poll).await?;
        if p.is_machine() {
            // One JSON document per line: the list, then each change.
            let doc = client.list_secrets(&ns).await?;
            p.line(&doc.value().to_string())?;
        } else {
            print_list(ctx, &client, &ns, &a).await?;
        }
        return follow(ctx, &mut w, None).await;
    }
    print_list(ctx, &client, &ns, &a).await
}

/// Prints each change as it comes (for `secrets list -w` and `secrets get
/// NAME -w`: only `name`'s); runs until interrupted.
pub async fn follow(
    ctx: &Session,
    w: &mut crate::ops::watch::Watcher<'_>,
    name: Option<&str>,
) -> Result<()> {
    let p = &ctx.printer;
    loop {
        let c = w.next().await?;
        if name.is_some() && c.secret.as_deref() != name {
            continue;
        }
        if p.is_machine() {
            p.line(&serde_json::to_string(&c).map_err(|e| CliError::other(e.to_string()))?)?;
            continue;
        }
        let version = c.version.map(|v| format!("v{v}")).unwrap_or_default();
        let by = c
            .actor
            .as_deref()
            .map(|a| format!("by {a}"))
            .unwrap_or_default();
        let line = format!(
            "{}  {:<17}  {}  {}  {}",
            c.time.as_deref().unwrap_or("-"),
            c.change.as_deref().unwrap_or("-"),
            c.secret.as_deref().unwrap_or("-"),
            version,
            by
        );
        p.line(&crate::output::sanitize(line.trim_end()))?;
    }
}

async fn print_list(
    ctx: &Session,
    client: &crate::api::Client,
    ns: &str,
    a: &ListArgs,
) -> Result<()> {
    use crate::output::OutputFormat::Csv;
    let p = &ctx.printer;
    let doc = if a.deleted {
        client.list_deleted_secrets(ns).await?
    } else {
        client.list_secrets(ns).await?
    };
    let list: Rows = doc.typed_long()?;
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
