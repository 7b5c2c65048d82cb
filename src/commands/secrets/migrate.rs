//! `kube-dc secrets migrate SOURCE…`: brings secrets in from a Vault or
//! OpenBao KV, Kubernetes Secret manifests, kube-dc's export or env files
//! — a masked plan first, nothing written until it is accepted, existing
//! secrets only with `--update` (a new version, check-and-set), and a rerun
//! after an interruption continues without writing anything twice.

use std::collections::BTreeMap;

use clap::Args;
use futures_util::StreamExt as _;
use serde_json::json;

use super::diff::{Change, compare};
use crate::api::{Client, CreateRequest, PutValuesRequest, Secret};
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::ops::migrate::{CONCURRENCY, Item, KvOptions, Source, read_sources, settle};
use crate::output::OutputFormat;
use kube_dc_api::wire::{Data, ItemList};

/// Bring secrets in from another manager: a Vault or OpenBao KV, Kubernetes
/// Secret manifests (`kubectl get secrets -o yaml`), kube-dc's own export,
/// or env files.
///
/// A plan comes first: per secret create, new version, unchanged or
/// refused (and why), per key added, removed or changed — values masked.
/// Nothing is written until the plan is accepted (a question on a
/// terminal, --yes in scripts; --dry-run shows the plan only). A secret
/// that exists is never overwritten without --update, which writes a new
/// version on top of the one the plan saw (check-and-set). Run again after
/// an interruption, it continues: what was written is unchanged.
#[derive(Args, Debug)]
#[command(after_help = "\
Sources:
  vault://MOUNT/PATH     one KV path (v1 or v2) of Vault or OpenBao, read with
                         VAULT_ADDR and VAULT_TOKEN (or BAO_ADDR, BAO_TOKEN;
                         VAULT_NAMESPACE, VAULT_CACERT); --recursive: every
                         path under it
  FILE.yaml|json         Kubernetes Secrets (documents, a List: `kubectl get
                         secrets -o yaml`), or `kube-dc secrets export -o
                         yaml|json|k8s`
  FILE.env, DIR          an env file (the secret is named after the file), or
                         a directory of such files

Names: a KV path becomes the secret named by its path under the one given,
`/` becoming `-` (vault://secret/apps --recursive: apps/web/db → web-db; a
single path: its last segment); a manifest keeps its metadata.name; an env
file is named without `.env`. A name kube-dc refuses is listed as refused
and skipped, never changed: bring it with --rename.

Examples:
  kube-dc secrets migrate vault://secret/apps --recursive --dry-run
  kube-dc secrets migrate vault://secret/apps --recursive --all-versions --yes
  kubectl get secrets -n legacy -o yaml > legacy.yaml
  kube-dc secrets migrate legacy.yaml --rename DB_CREDS=db-creds --map PASS=PASSWORD
  kube-dc secrets migrate ./envs/ --update --yes

Role: developer, project-manager or admin (writes; --update reads the
current values to compare, audited).")]
pub struct MigrateArgs {
    /// Where from (see Sources below).
    #[arg(required = true, num_args = 1.., value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Every KV path under the one given.
    #[arg(short, long)]
    pub recursive: bool,
    /// Every live version of each KV v2 path, oldest first (deleted and
    /// destroyed versions are left out and counted).
    #[arg(long)]
    pub all_versions: bool,
    /// The KV engine's version, for a token that may not ask the server.
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub kv_version: Option<u8>,
    /// Write a new version of secrets that exist with other values.
    #[arg(long)]
    pub update: bool,
    /// Name a source's secret differently here (FROM as the plan names it).
    #[arg(long, value_name = "FROM=TO", value_parser = pair)]
    pub rename: Vec<(String, String)>,
    /// Rename a key in every secret brought in.
    #[arg(long, value_name = "OLD=NEW", value_parser = pair)]
    pub map: Vec<(String, String)>,
    /// Accept the plan without asking (scripts).
    #[arg(short, long)]
    pub yes: bool,
}

fn pair(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("{s:?}: give FROM=TO")),
    }
}

/// What the plan does with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Create,
    /// New versions on top of this one.
    NewVersion(u64),
    Unchanged,
    Refused(String),
}

impl Action {
    fn word(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::NewVersion(_) => "new version",
            Action::Unchanged => "unchanged",
            Action::Refused(_) => "refused",
        }
    }
}

/// One line of the plan.
struct Step {
    item: Item,
    action: Action,
    /// The versions to write, oldest first.
    writes: Vec<Data>,
    /// Per key, what the last write changes against what is there.
    keys: Vec<(String, Change)>,
}

pub async fn run(ctx: &Session, a: MigrateArgs) -> Result<i32> {
    ctx.printer.require(
        &[OutputFormat::Table, OutputFormat::Json, OutputFormat::Yaml],
        "secrets migrate",
    )?;
    let sources = a
        .sources
        .iter()
        .map(|s| Source::parse(s))
        .collect::<Result<Vec<_>>>()?;
    if a.recursive && !sources.iter().any(|s| matches!(s, Source::Vault(_))) {
        return Err(CliError::usage("--recursive is for vault:// sources"));
    }
    let kv = KvOptions {
        recursive: a.recursive,
        all_versions: a.all_versions,
        kv_version: a.kv_version,
    };
    let ns = ctx.namespace()?;
    let mut items = read_sources(&sources, &kv).await?;
    let rename: BTreeMap<_, _> = a.rename.iter().cloned().collect();
    let map: BTreeMap<_, _> = a.map.iter().cloned().collect();
    settle(&mut items, &rename, &map);
    let client = ctx.client().await?;
    let steps = plan(&client, &ns, items, a.update).await?;
    print_plan(ctx, &ns, &steps)?;
    let todo = steps.iter().filter(|s| !s.writes.is_empty()).count();
    if todo == 0 {
        crate::output::note("nothing to write");
        return Ok(0);
    }
    if ctx.global.dry_run {
        crate::output::note(&format!(
            "--dry-run: {todo} secret(s) would be written; nothing was"
        ));
        return Ok(0);
    }
    crate::commands::confirm(ctx, &format!("write {todo} secret(s) to {ns}?"), a.yes)?;
    apply(&client, &ns, steps).await
}

/// Compares each item with what the project holds (one list; the current
/// values of the secrets that exist, one audited read each).
async fn plan(client: &Client, ns: &str, items: Vec<Item>, update: bool) -> Result<Vec<Step>> {
    let list: ItemList<Secret> = client.list_secrets(ns).await?.typed()?;
    let existing: BTreeMap<String, Secret> = list
        .items
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let steps = futures_util::stream::iter(items.into_iter().map(|item| {
        let there = existing.get(&item.name).cloned();
        async move { step(client, ns, item, there, update).await }
    }))
    .buffered(CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    steps.into_iter().collect()
}

async fn step(
    client: &Client,
    ns: &str,
    item: Item,
    there: Option<Secret>,
    update: bool,
) -> Result<Step> {
    let refused = |item: Item, why: String| Step {
        item,
        action: Action::Refused(why),
        writes: Vec::new(),
        keys: Vec::new(),
    };
    if let Some(why) = item.refused.clone() {
        return Ok(refused(item, why));
    }
    let Some(there) = there else {
        let last = item.current().cloned().unwrap_or_default();
        let keys = compare(&Data::new(), &last)
            .into_iter()
            .map(|(k, c, _, _)| (k.to_string(), c))
            .collect();
        return Ok(Step {
            writes: item.versions.clone(),
            item,
            action: Action::Create,
            keys,
        });
    };
    let version = there.openbao.as_ref().map_or(0, |o| o.current_version);
    let current: Data = if version > 0 {
        let (s, _) = client.get_secret(ns, &there.name, true, None).await?;
        s.value.map(|v| v.data).unwrap_or_default()
    } else {
        Data::new()
    };
    let last = item.current().cloned().unwrap_or_default();
    let keys: Vec<(String, Change)> = compare(&current, &last)
        .into_iter()
        .map(|(k, c, _, _)| (k.to_string(), c))
        .collect();
    if same(&current, &last) {
        return Ok(Step {
            item,
            action: Action::Unchanged,
            writes: Vec::new(),
            keys,
        });
    }
    // A rerun of --all-versions: the versions after the one that is there.
    let resume = item
        .versions
        .iter()
        .rposition(|v| same(v, &current))
        .filter(|_| version > 0);
    let writes = match resume {
        Some(i) => item.versions[i + 1..].to_vec(),
        None if update => item.versions.clone(),
        None => {
            return Ok(refused(
                item,
                format!(
                    "{} exists (version {version}) with other values: --update writes them as a new version",
                    there.name
                ),
            ));
        }
    };
    Ok(Step {
        item,
        action: Action::NewVersion(version),
        writes,
        keys,
    })
}

fn same(a: &Data, b: &Data) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.expose() == v2.expose())
}

/// The plan, values masked: a line per secret, an indented line per key
/// that changes, the notes; or one document (-o json|yaml).
fn print_plan(ctx: &Session, ns: &str, steps: &[Step]) -> Result<()> {
    let p = &ctx.printer;
    if matches!(p.format(), OutputFormat::Json | OutputFormat::Yaml) {
        let doc = json!({
            "namespace": ns,
            "secrets": steps.iter().map(|s| json!({
                "name": s.item.name,
                "source": s.item.origin,
                "type": s.item.kind,
                "action": s.action.word(),
                "reason": match &s.action { Action::Refused(w) => Some(w.clone()), _ => None },
                "versions": s.writes.len(),
                "keys": s.keys.iter().filter(|(_, c)| *c != Change::Unchanged)
                    .map(|(k, c)| json!({"key": k, "change": c.word()})).collect::<Vec<_>>(),
                "notes": s.item.notes,
            })).collect::<Vec<_>>(),
        });
        return p.print_doc(&doc);
    }
    let mut out = String::new();
    for s in steps {
        let versions = match s.writes.len() {
            0 | 1 => String::new(),
            n => format!(", {n} versions"),
        };
        let what = match &s.action {
            Action::Refused(why) => format!("refused ({why})"),
            Action::NewVersion(v) => format!("new version (on version {v}{versions})"),
            Action::Create => format!("create ({}{versions})", s.item.kind),
            Action::Unchanged => "unchanged".into(),
        };
        out.push_str(&format!(
            "{:<32} {what}    from {}\n",
            s.item.name, s.item.origin
        ));
        if !matches!(s.action, Action::Refused(_) | Action::Unchanged) {
            for (k, c) in s.keys.iter().filter(|(_, c)| *c != Change::Unchanged) {
                let mark = match c {
                    Change::Added => '+',
                    Change::Removed => '-',
                    _ => '~',
                };
                out.push_str(&format!("    {mark} {k}  ({}, value masked)\n", c.word()));
            }
        }
        for n in &s.item.notes {
            out.push_str(&format!("    note: {n}\n"));
        }
    }
    let count = |w: &str| steps.iter().filter(|s| s.action.word() == w).count();
    out.push_str(&format!(
        "plan for {ns}: {} to create, {} new version(s), {} unchanged, {} refused\n",
        count("create"),
        count("new version"),
        count("unchanged"),
        count("refused")
    ));
    p.raw(out.as_bytes())
}

/// Writes the plan, a few secrets at a time; stops starting new ones at
/// Ctrl-C or the first failure, and says exactly which were written.
async fn apply(client: &Client, ns: &str, steps: Vec<Step>) -> Result<i32> {
    let todo: Vec<Step> = steps.into_iter().filter(|s| !s.writes.is_empty()).collect();
    let total = todo.len();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stop = &stop;
    let writes = futures_util::stream::iter(todo.into_iter().map(|s| async move {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return (s.item.name.clone(), None);
        }
        let r = write(client, ns, &s).await;
        match &r {
            Ok(v) => crate::output::note(&format!("wrote {} (version {v})", s.item.name)),
            Err(_) => stop.store(true, std::sync::atomic::Ordering::SeqCst),
        }
        (s.item.name.clone(), Some(r))
    }))
    .buffer_unordered(CONCURRENCY);
    tokio::pin!(writes);
    let mut written = Vec::new();
    let mut failed: Vec<(String, CliError)> = Vec::new();
    let mut not_started = Vec::new();
    let interrupted = loop {
        tokio::select! {
            next = writes.next() => match next {
                Some((name, Some(Ok(_)))) => written.push(name),
                Some((name, Some(Err(e)))) => failed.push((name, e)),
                Some((name, None)) => not_started.push(name),
                None => break false,
            },
            _ = tokio::signal::ctrl_c() => {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                crate::output::note("interrupted: finishing the writes in flight, starting no more");
                // The writes in flight end; the rest are not started.
                while let Some((name, r)) = writes.next().await {
                    match r {
                        Some(Ok(_)) => written.push(name),
                        Some(Err(e)) => failed.push((name, e)),
                        None => not_started.push(name),
                    }
                }
                break true;
            }
        }
    };
    written.sort();
    not_started.sort();
    crate::output::note(&format!(
        "{} of {total} secret(s) written{}",
        written.len(),
        if written.is_empty() {
            String::new()
        } else {
            format!(": {}", written.join(", "))
        }
    ));
    if failed.is_empty() && not_started.is_empty() && !interrupted {
        return Ok(0);
    }
    for (name, e) in &failed {
        crate::output::warn(&format!("{name}: not written: {}", e.message));
    }
    if !not_started.is_empty() {
        crate::output::note(&format!("not written: {}", not_started.join(", ")));
    }
    let e = match failed.into_iter().next() {
        Some((name, e)) => CliError {
            message: format!("migration stopped at {name}: {}", e.message),
            ..e
        },
        None => CliError::new(ErrorKind::Other, "migration interrupted"),
    };
    Err(e.hint("run the same command again: what was written is unchanged, the rest is written"))
}

/// One secret's writes: created with its first version, then each further
/// version on top of the one before (check-and-set). The last version.
async fn write(client: &Client, ns: &str, s: &Step) -> Result<u64> {
    let name = &s.item.name;
    let mut on = match s.action {
        Action::NewVersion(v) => v,
        _ => 0,
    };
    let mut versions = s.writes.iter();
    if s.action == Action::Create {
        let first = versions.next().cloned().unwrap_or_default();
        let req = CreateRequest {
            kind: s.item.kind.clone(),
            description: s.item.description.clone(),
            sync: Default::default(),
            rotation: None,
            initial_values: Some(first),
        };
        crate::ops::secret::create(client, ns, name, &req).await?;
        on = 1;
    }
    for data in versions {
        let req = PutValuesRequest {
            data: data.clone(),
            cas: Some(on),
        };
        if let Some((r, _)) = client.put_values(ns, name, &req).await? {
            on = r.version;
        }
    }
    Ok(on)
}
