//! `kube-dc secrets export [NAME…]`: a project's secrets with their
//! values, as env files, a JSON or YAML document, or Kubernetes Secret
//! manifests — one stream, or one file per secret (mode 0600). Every
//! secret's values are one audited read; `secrets migrate` reads every
//! form back.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use futures_util::StreamExt as _;
use serde_json::{Map, Value, json};

use crate::api::{Client, Secret};
use crate::commands::Session;
use crate::envfile::EnvDialect;
use crate::error::{CliError, Result};
use crate::ops::migrate::{CONCURRENCY, DESCRIPTION_ANNOTATION, EXPORT_KIND, TYPE_ANNOTATION};
use crate::output::OutputFormat;
use kube_dc_api::wire::{Data, ItemList};

/// Export a project's secrets with their values: env files, JSON, YAML, or
/// Kubernetes Secret manifests that `kubectl apply -f` takes.
///
/// All secrets of the project, or the ones named. To stdout as one stream
/// (-o json|yaml: one document; -o k8s: a `List`; -o env: one secret), or
/// with --output-dir one file per secret (NAME.env, NAME.json, NAME.yaml),
/// each written atomically with mode 0600. Each secret's values are one
/// audited read. `kube-dc secrets migrate` reads every form back.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets export -o yaml > backup.yaml          # one document, values in clear
  kube-dc secrets export -o k8s --output-dir manifests/  # one Secret manifest per secret
  kubectl apply -n legacy -f manifests/
  kube-dc secrets export db-creds -o env > .env
  kube-dc secrets migrate backup.yaml -p other-project --yes

What it holds: name, type, description and the current version's values
(-o k8s: type kubernetes.io/tls for tls, else Opaque; the kube-dc type and
description in annotations). Not the history: export is the current state.
The files hold values in clear: keep them as you would the secrets.
Role: developer, project-manager or admin (values are read).")]
pub struct ExportArgs {
    /// The secrets (default: every secret of the project).
    #[arg(value_name = "NAME", add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub names: Vec<String>,
    /// Write one file per secret in this directory (created, mode 0700)
    /// instead of one stream to stdout.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub output_dir: Option<PathBuf>,
    /// Replace files that exist in --output-dir.
    #[arg(long, requires = "output_dir")]
    pub force: bool,
}

/// One exported secret.
struct Exported {
    secret: Secret,
    data: Data,
}

pub async fn run(ctx: &Session, a: ExportArgs) -> Result<()> {
    use OutputFormat::{Env, Json, K8s, Yaml};
    let p = &ctx.printer;
    if !p.explicit() {
        return Err(
            CliError::usage("give the form: -o env, -o json, -o yaml or -o k8s")
                .hint("kube-dc secrets export -o yaml > backup.yaml"),
        );
    }
    p.require(&[Env, Json, Yaml, K8s], "secrets export")?;
    let format = p.format();
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let list: ItemList<Secret> = client.list_secrets(&ns).await?.typed()?;
    let chosen: Vec<Secret> = if a.names.is_empty() {
        list.items
    } else {
        let mut out = Vec::new();
        for n in &a.names {
            super::check_secret_name(n)?;
            let s = list
                .items
                .iter()
                .find(|s| &s.name == n)
                .cloned()
                .ok_or_else(|| {
                    CliError::new(
                        crate::error::ErrorKind::NotFound,
                        format!("no secret {n} in {ns}"),
                    )
                })?;
            out.push(s);
        }
        out
    };
    if format == Env && a.output_dir.is_none() && chosen.len() != 1 {
        return Err(CliError::usage(format!(
            "-o env to stdout is one secret's; {} would be exported",
            chosen.len()
        ))
        .hint("name one secret, or add --output-dir DIR for one env file per secret"));
    }
    if let Some(dir) = &a.output_dir {
        check_dir(dir, &chosen, format, a.force)?;
    }
    if ctx.global.dry_run {
        for s in &chosen {
            let to = a.output_dir.as_ref().map_or_else(
                || "stdout".to_string(),
                |d| d.join(file_name(&s.name, format)).display().to_string(),
            );
            p.line(&format!("{} → {to} (values not read: --dry-run)", s.name))?;
        }
        return Ok(());
    }
    let exported = read_all(&client, &ns, chosen).await?;
    match &a.output_dir {
        Some(dir) => {
            crate::atomic::private_dir(dir)?;
            for e in &exported {
                let path = dir.join(file_name(&e.secret.name, format));
                crate::atomic::write(&path, &render(std::slice::from_ref(e), format, &ns, false)?)?;
            }
            crate::output::note(&format!(
                "exported {} secret(s) to {} (mode 0600)",
                exported.len(),
                dir.display()
            ));
        }
        None => p.raw(&render(&exported, format, &ns, true)?)?,
    }
    Ok(())
}

/// Refuses before any value is read when a file would be replaced.
fn check_dir(dir: &Path, chosen: &[Secret], format: OutputFormat, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some(s) = chosen
        .iter()
        .find(|s| dir.join(file_name(&s.name, format)).exists())
    {
        return Err(CliError::usage(format!(
            "{} exists",
            dir.join(file_name(&s.name, format)).display()
        ))
        .hint("add --force to replace the files, or choose another --output-dir"));
    }
    Ok(())
}

fn file_name(name: &str, format: OutputFormat) -> String {
    match format {
        OutputFormat::Env => format!("{name}.env"),
        OutputFormat::Json => format!("{name}.json"),
        _ => format!("{name}.yaml"),
    }
}

/// Each secret's current values, a few reads at a time, in list order.
async fn read_all(client: &Client, ns: &str, chosen: Vec<Secret>) -> Result<Vec<Exported>> {
    let reads = futures_util::stream::iter(chosen.into_iter().map(|s| async move {
        let has_value = s.openbao.as_ref().is_some_and(|o| o.current_version > 0);
        let data = if has_value {
            let (full, _) = client.get_secret(ns, &s.name, true, None).await?;
            full.value.map(|v| v.data).unwrap_or_default()
        } else {
            crate::output::note(&format!(
                "{}: no version written yet, exported without values",
                s.name
            ));
            Data::new()
        };
        Ok::<_, CliError>(Exported { secret: s, data })
    }))
    .buffered(CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    reads.into_iter().collect()
}

/// The text of `secrets` in `format`; `stream`: several in one stream.
fn render(secrets: &[Exported], format: OutputFormat, ns: &str, stream: bool) -> Result<Vec<u8>> {
    let values = |d: &Data| -> Map<String, Value> {
        d.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose().to_string())))
            .collect()
    };
    match format {
        OutputFormat::Env => {
            let e = secrets
                .first()
                .map(|e| &e.data)
                .cloned()
                .unwrap_or_default();
            Ok(crate::envfile::to_env(&e, EnvDialect::Shell, false)?.into_bytes())
        }
        OutputFormat::K8s => {
            let docs: Vec<Value> = secrets
                .iter()
                .map(|e| {
                    let s = &e.secret;
                    let data: Map<String, Value> = e
                        .data
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                Value::String(
                                    base64::engine::general_purpose::STANDARD.encode(v.expose()),
                                ),
                            )
                        })
                        .collect();
                    let mut annotations = Map::new();
                    annotations.insert(TYPE_ANNOTATION.into(), s.kind.clone().into());
                    if let Some(d) = &s.description {
                        annotations.insert(DESCRIPTION_ANNOTATION.into(), d.clone().into());
                    }
                    json!({
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": s.name, "namespace": ns, "annotations": annotations},
                        "type": if s.kind == "tls" { "kubernetes.io/tls" } else { "Opaque" },
                        "data": data,
                    })
                })
                .collect();
            let doc = if stream {
                json!({"apiVersion": "v1", "kind": "List", "items": docs})
            } else {
                docs.into_iter().next().unwrap_or(Value::Null)
            };
            yaml(&doc)
        }
        _ => {
            let items: Vec<Value> = secrets
                .iter()
                .map(|e| {
                    json!({
                        "name": e.secret.name,
                        "type": e.secret.kind,
                        "description": e.secret.description,
                        "data": values(&e.data),
                    })
                })
                .collect();
            let doc = json!({"apiVersion": "security.kube-dc.com/v1alpha1", "kind": EXPORT_KIND, "namespace": ns, "items": items});
            if format == OutputFormat::Json {
                let mut out =
                    serde_json::to_vec_pretty(&doc).map_err(|e| CliError::other(e.to_string()))?;
                out.push(b'\n');
                Ok(out)
            } else {
                yaml(&doc)
            }
        }
    }
}

fn yaml(v: &Value) -> Result<Vec<u8>> {
    serde_norway::to_string(v)
        .map(String::into_bytes)
        .map_err(|e| CliError::other(e.to_string()))
}
