use std::borrow::Cow;

use clap::Args;
use serde::Deserialize;

use crate::commands::Ctx;
use crate::error::{CliError, ErrorKind, Result};
use crate::output::{GridCell, age, sanitize};

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

/// The fields of a listed secret that the table shows, borrowed from the
/// answer (a list of 10,000 secrets is decoded without copying its text).
#[derive(Deserialize)]
pub struct Row<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    sync: RowSync<'a>,
    #[serde(default, borrow)]
    status: RowStatus<'a>,
    #[serde(default, borrow)]
    openbao: Option<RowVersion<'a>>,
    #[serde(rename = "deletedTime", default, borrow)]
    deleted_time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowSync<'a> {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default, borrow)]
    target_secret_name: Option<Cow<'a, str>>,
}

fn enabled_by_default() -> bool {
    true
}

impl Default for RowSync<'_> {
    fn default() -> Self {
        Self {
            enabled: true,
            target_secret_name: None,
        }
    }
}

#[derive(Default, Deserialize)]
struct RowStatus<'a> {
    #[serde(default, borrow)]
    conditions: Vec<RowCondition<'a>>,
}

#[derive(Deserialize)]
struct RowCondition<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowVersion<'a> {
    current_version: u64,
    #[serde(default, borrow)]
    updated_time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct Rows<'a> {
    #[serde(borrow)]
    pub items: Vec<Row<'a>>,
    /// Set by a server that answered `?deleted=true` (our extension).
    #[serde(default)]
    pub deleted: bool,
}

impl Row<'_> {
    /// Whether the projection is ready (`Ready` true, `Synced` not false).
    fn ready(&self) -> bool {
        kube_dc_api::wire::projection_ready(
            self.status
                .conditions
                .iter()
                .map(|c| (c.kind.as_ref(), c.status.as_ref())),
        )
    }

    /// The Secret it is projected into (`-` with sync off).
    fn target(&self) -> &str {
        match (&self.sync.target_secret_name, self.sync.enabled) {
            (_, false) => "-",
            (Some(t), true) => t,
            (None, true) => &self.name,
        }
    }

    /// The row as `kube-dc ui` lists it.
    pub fn to_ui(&self) -> crate::ui::Row {
        let sync = crate::ui::Sync::of(self.sync.enabled, self.ready());
        crate::ui::Row {
            name: self.name.to_string(),
            kind: self.kind.to_string(),
            sync,
            target: self.target().to_string(),
            version: self.openbao.as_ref().map(|o| o.current_version),
            updated: self
                .openbao
                .as_ref()
                .and_then(|o| o.updated_time.as_deref().map(str::to_string)),
        }
    }

    /// NAME, TYPE, SYNC (with its colour), TARGET, VERSION and the raw
    /// update time.
    fn cells(&self) -> [GridCell; 6] {
        let (state, color) = super::sync_state_of(self.sync.enabled, self.ready());
        let target = sanitize(self.target());
        let (version, updated) = match &self.openbao {
            Some(o) => (
                o.current_version.to_string(),
                o.updated_time.as_deref().unwrap_or_default().to_string(),
            ),
            None => ("-".into(), String::new()),
        };
        [
            sanitize(&self.name).into(),
            sanitize(&self.kind).into(),
            GridCell {
                text: state.into(),
                color: Some(color),
            },
            target.into(),
            version.into(),
            updated.into(),
        ]
    }
}

pub async fn run(ctx: &Ctx, a: ListArgs) -> Result<()> {
    use crate::output::OutputFormat::*;
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
    if p.format == Csv {
        let mut w = csv::Writer::from_writer(p.stdout());
        w.write_record(["name", "type", "sync", "target", "version", "updated"])
            .map_err(csv_err)?;
        for s in &list.items {
            let mut cells = s.cells();
            let st = cells[2]
                .text
                .trim_start_matches(['●', '○', ' '])
                .to_string();
            cells[2].text = st;
            // "-" is the table's word for none; in CSV an empty cell says it
            // (and the formula guard never sees a placeholder).
            w.write_record(cells.map(|c| {
                if c.text == "-" {
                    String::new()
                } else {
                    kube_dc_api::audit::csv_cell(&c.text).into_owned()
                }
            }))
            .map_err(csv_err)?;
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
        let rows: Vec<[GridCell; 4]> = list
            .items
            .iter()
            .map(|s| {
                let c = s.cells();
                let [name, kind, _, _, version, _] = c;
                [name, kind, version, age(s.deleted_time.as_deref()).into()]
            })
            .collect();
        p.print_grid(["NAME", "TYPE", "VERSION", "DELETED"], &rows)?;
        crate::output::note("restore one with `kube-dc secrets restore NAME` (admin)");
        return Ok(());
    }
    let rows: Vec<[GridCell; 6]> = list
        .items
        .iter()
        .map(|s| {
            let mut cells = s.cells();
            cells[5].text = age(Some(&cells[5].text));
            cells
        })
        .collect();
    drop(list);
    p.print_grid(
        ["NAME", "TYPE", "SYNC", "TARGET", "VERSION", "UPDATED"],
        &rows,
    )
}

pub fn csv_err(e: csv::Error) -> crate::error::CliError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => crate::error::CliError::other(format!("CSV: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slim view reads what the full wire type reads: sync off, on and
    /// Ready, on and Pending, sync absent (on by default), no KV metadata.
    #[test]
    fn rows_read_the_states_the_full_view_reads() {
        let doc = serde_json::json!({"items": [
            {"name": "off", "namespace": "p", "type": "opaque", "sync": {"enabled": false, "targetSecretName": "x"},
             "openbao": {"currentVersion": 3, "updatedTime": "2026-01-01T00:00:00Z"}},
            {"name": "ready", "namespace": "p", "type": "opaque", "sync": {"enabled": true, "targetSecretName": "tgt"},
             "status": {"conditions": [{"type": "Synced", "status": "True"},
                                        {"type": "Ready", "status": "True", "message": "a \"quoted\" text"}]}},
            {"name": "empty", "namespace": "p", "type": "opaque", "sync": {"enabled": true},
             "status": {"conditions": [{"type": "Ready", "status": "True"},
                                        {"type": "Synced", "status": "False", "reason": "AwaitingValues"}]}},
            {"name": "pending", "namespace": "p", "type": "password", "sync": {"enabled": true},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            {"name": "bare\u{1b}[31m", "namespace": "p", "type": "opaque", "extra": {"future": [1, 2]}}
        ]});
        let text = serde_json::to_vec(&doc).unwrap();
        let rows: Rows = serde_json::from_slice(&text).unwrap();
        let full: kube_dc_api::wire::ItemList<crate::api::Secret> =
            serde_json::from_slice(&text).unwrap();
        let got: Vec<[String; 6]> = rows
            .items
            .iter()
            .map(|r| r.cells().map(|c| c.text))
            .collect();
        assert_eq!(
            got[0],
            [
                "off",
                "opaque",
                "○ Disabled",
                "-",
                "3",
                "2026-01-01T00:00:00Z"
            ]
        );
        assert_eq!(got[1], ["ready", "opaque", "● Ready", "tgt", "-", ""]);
        // Wired (Ready) but holding no values (Synced false): not Ready.
        assert_eq!(got[2], ["empty", "opaque", "● Pending", "empty", "-", ""]);
        assert_eq!(
            got[3],
            ["pending", "password", "● Pending", "pending", "-", ""]
        );
        assert_eq!(got[4], ["bare", "opaque", "● Pending", "bare", "-", ""]);
        for (row, s) in got.iter().zip(&full.items) {
            assert_eq!(row[2], super::super::sync_state(s).0, "{}", s.name);
        }
    }
}
