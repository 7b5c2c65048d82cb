use clap::Args;
use comfy_table::Cell;

use crate::api::{Doc, Secret};
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::output::OutputFormat;
use crate::output::escape_value;

/// Show a secret's metadata; with --value, its values (aliases: describe, show).
///
/// Every value read is audited with your identity (and the elevation window,
/// for organization admins).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets get app-config                 # metadata only
  kube-dc secrets get app-config --value         # KEY/VALUE table
  kube-dc secrets get app-config --value -o yaml # whole secret, for copying between projects
  kube-dc secrets get app-config --key DATABASE_URL   # one raw value, for $(…)
  kube-dc secrets get app-config --value -o env > app.env   # set -a; . ./app.env
  kube-dc secrets get app-config --value -o env --env-dialect docker > app.env   # docker run --env-file

-o env writes values so they read back byte for byte: in the shell dialect
(default) a value that needs it is single-quoted, each ' written '\\'', for
`set -a; . FILE`, dotenv and `--from-env-file`; in the docker dialect each
line is KEY=value taken literally, and a value with a line break (which
docker cannot hold) is refused.
  kube-dc secrets get app-config --value --version 3  # an older version
  kube-dc secrets get app-config --keys          # key names, sizes, kinds; no values

--keys reads the values on the server (the read is audited as a value read,
and needs a role that may read values: production's metadata has no key
names) and prints only each key's name, its size in bytes, and what it
looks like (empty, PEM, JSON, multi-line or text) — never a value.

Role: metadata: any project role; values: developer, project-manager, admin,
or an organization admin inside `kube-dc orgs elevate` window.")]
pub struct GetArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// Reveal the values.
    #[arg(long)]
    pub value: bool,
    /// Print only this key's value, raw, with nothing around it.
    #[arg(long, value_name = "KEY", conflicts_with = "value")]
    pub key: Option<String>,
    /// List the keys with their sizes and kinds, without any value (an
    /// audited value read on the server).
    #[arg(long, conflicts_with_all = ["value", "key"])]
    pub keys: bool,
    /// Read this version instead of the current one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub version: Option<u64>,
    /// With -o env: who reads the file.
    #[arg(long, value_enum, default_value_t, value_name = "DIALECT")]
    pub env_dialect: crate::envfile::EnvDialect,
    /// After the metadata, print each change of this secret as it happens
    /// (no value is ever shown; see `secrets list --watch`).
    #[arg(short = 'w', long, conflicts_with_all = ["value", "key", "keys", "version"])]
    pub watch: bool,
    /// With --watch, where the installation has no change stream: seconds
    /// between two looks at the list.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll: u64,
}

pub async fn run(ctx: &Session, a: GetArgs) -> Result<()> {
    use OutputFormat::{Env, Json, Table, Yaml};
    let p = &ctx.printer;
    super::check_secret_name(&a.name)?;
    let reveal = a.value || a.key.is_some() || a.keys;
    if a.version.is_some() && !reveal {
        return Err(CliError::usage(
            "--version reads values: add --value, --key or --keys",
        ));
    }
    if a.keys {
        p.require(&[Table, Json, Yaml], "secrets get --keys")?;
    } else if reveal {
        p.require(&[Table, Json, Yaml, Env], "secrets get --value")?;
    } else {
        p.require(&[Table, Json, Yaml], "secrets get")?;
    }
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let watcher = if a.watch {
        let poll = std::time::Duration::from_secs(a.poll);
        Some(crate::ops::watch::Watcher::open(&client, &ns, poll).await?)
    } else {
        None
    };
    let (secret, raw) = client
        .get_secret(&ns, &a.name, reveal, a.version)
        .await
        .map_err(|e| {
            // Our backend says when a secret was soft-deleted; another
            // installation may only say "not found".
            if e.kind == ErrorKind::NotFound && !e.message.contains("deleted") {
                e.hint("if it was deleted, `kube-dc secrets list --deleted` lists what can be restored")
            } else {
                e
            }
        })?;
    if let Some(mut w) = watcher {
        if p.is_machine() {
            p.line(&raw.value().to_string())?;
        } else {
            super::print_secret(ctx, &secret, &raw)?;
        }
        return super::list::follow(ctx, &mut w, Some(&a.name)).await;
    }
    if !reveal {
        return super::print_secret(ctx, &secret, &raw);
    }
    let Some(value) = &secret.value else {
        return no_value(ctx, &a, &secret, &raw);
    };
    // An installation that ignores the `version` extension answers with
    // the current version instead: never show that as the one asked for.
    if let Some(want) = a.version
        && value.metadata.version != want
    {
        return Err(CliError::new(
            ErrorKind::NotSupported,
            format!(
                "this installation ignored --version {want} and answered with version {}; reading an older version is an extension of kube-dc's own backend",
                value.metadata.version
            ),
        ));
    }
    if a.keys {
        return print_keys(ctx, &a.name, value);
    }
    if let Some(k) = &a.key {
        let v = value.data.get(k).ok_or_else(|| {
            let keys: Vec<&str> = value.data.keys().map(String::as_str).collect();
            CliError::new(
                ErrorKind::NotFound,
                format!("secret {:?} has no key {k:?}", a.name),
            )
            .hint(format!("its keys: {}", keys.join(", ")))
        })?;
        return p.raw(v.expose().as_bytes());
    }
    print_values(ctx, &a, value, &raw)
}

/// The values: the document, an env file, or a table (the version on
/// stderr).
fn print_values(
    ctx: &Session,
    a: &GetArgs,
    value: &kube_dc_api::wire::SecretValue,
    raw: &Doc,
) -> Result<()> {
    let p = &ctx.printer;
    match p.format() {
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::JsonPath => {
            p.print_doc(&raw.value())
        }
        OutputFormat::Env => {
            let tty = p.stdout_is_terminal();
            p.raw(crate::envfile::to_env(&value.data, a.env_dialect, tty)?.as_bytes())
        }
        _ => {
            let mut t = p.table(&["KEY", "VALUE"]);
            for (k, v) in &value.data {
                t.add_row(vec![
                    Cell::new(escape_value(k)),
                    Cell::new(escape_value(v.expose())),
                ]);
            }
            p.print_table(&t)?;
            crate::output::note(&format!("version {}", value.metadata.version));
            Ok(())
        }
    }
}

/// A secret without a readable value: one key, or one version, that is
/// not there is an error; the whole document is simply empty (as scripts
/// written for the Go CLI expect); people are told why and what to do.
fn no_value(ctx: &Session, a: &GetArgs, secret: &Secret, raw: &Doc) -> Result<()> {
    let p = &ctx.printer;
    let name = &a.name;
    if a.key.is_some() || a.version.is_some() {
        return Err(CliError::new(
            ErrorKind::NotFound,
            format!("secret {name:?} has no readable value (none written yet, or the current version was destroyed)"),
        )
        .hint(format!("write one with `kube-dc secrets put {name} …`")));
    }
    match p.format() {
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::JsonPath => {
            let mut doc = raw.value();
            doc["value"] = serde_json::json!({"data": {}});
            p.print_doc(&doc)
        }
        OutputFormat::Env => Ok(()),
        _ => {
            crate::output::note(&match secret.openbao.as_ref().map(|o| o.current_version) {
                Some(v) if v > 0 => format!(
                    "version {v}, the current version of {name}, was destroyed: it has no \
                     readable value; older versions may be kept (`kube-dc secrets versions \
                     {name}`): read one with `--version N`, or make it current again with \
                     `kube-dc secrets rollback {name} --to-version N`"
                ),
                _ => format!(
                    "secret {name} has no values yet: write some with `kube-dc secrets put {name} …`"
                ),
            });
            Ok(())
        }
    }
}

/// What a value looks like, named without showing it.
fn kind_of(v: &str) -> &'static str {
    let t = v.trim();
    if v.is_empty() {
        "empty"
    } else if t.starts_with("-----BEGIN ") && t.contains("-----END ") {
        "PEM"
    } else if (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(t).is_ok()
    {
        "JSON"
    } else if v.contains('\n') {
        "multi-line"
    } else {
        "text"
    }
}

/// `get --keys`: each key's name, size and kind; no value.
fn print_keys(ctx: &Session, name: &str, value: &kube_dc_api::wire::SecretValue) -> Result<()> {
    let p = &ctx.printer;
    let keys: Vec<serde_json::Value> = value
        .data
        .iter()
        .map(|(k, v)| {
            serde_json::json!({
                "name": k,
                "bytes": v.expose().len(),
                "kind": kind_of(v.expose()),
            })
        })
        .collect();
    if p.is_machine() {
        return p.print_doc(&serde_json::json!({
            "name": name,
            "version": value.metadata.version,
            "keys": keys,
        }));
    }
    p.line(&format!(
        "secret/{name} version {}: {} key(s)",
        value.metadata.version,
        keys.len()
    ))?;
    let mut t = p.table(&["KEY", "BYTES", "LOOKS LIKE"]);
    for k in &keys {
        t.add_row(vec![
            Cell::new(crate::output::sanitize(
                k["name"].as_str().unwrap_or_default(),
            )),
            Cell::new(k["bytes"].to_string()),
            Cell::new(k["kind"].as_str().unwrap_or_default()),
        ]);
    }
    p.print_table(&t)
}
