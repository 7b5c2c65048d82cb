use clap::Args;

use crate::api::Client;
use crate::api::PutValuesRequest;
use crate::commands::{Session, confirm};
use crate::error::{CliError, Result};
use crate::input::{self, ValueArgs};

/// Write a new version of a secret's values.
///
/// The new version holds exactly the keys given: keys you leave out are not
/// in it (older versions stay readable within the history window). Before
/// writing, put names the keys it would remove: on a terminal it asks, in a
/// script it refuses unless --replace says that is intended.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets put db-creds --from-literal=PASSWORD=s3cr3t --from-literal=USER=app
  kube-dc secrets put tls-cert --from-file=tls.crt=./tls.crt --from-file=tls.key=./tls.key
  kube-dc secrets put app-env --from-env-file=./app.env
  vault-export | kube-dc secrets put token --from-file=TOKEN=- --trim-newline
  kube-dc secrets put db-creds --prompt PASSWORD
  kube-dc secrets put db-creds --from-literal=K=v --cas 4   # only if version 4 is current
  kube-dc secrets put db-creds --from-env-file=all.env --replace   # drop keys not in the file

Which keys the current version holds comes from the secret's metadata on
kube-dc's own backend; an installation without that extension is asked for
the values instead (an audited value read), unless --replace is given.

Role: developer, project-manager or admin.")]
pub struct PutArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// Write only if this is the current version (check-and-set; 0: only if none yet).
    #[arg(long, value_name = "VERSION")]
    pub cas: Option<u64>,
    /// Write exactly the given keys, removing the others without asking.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub values: ValueArgs,
}

pub async fn run(ctx: &Session, a: PutArgs) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets put")?;
    super::check_secret_name(&a.name)?;
    if a.values.is_empty() {
        return Err(CliError::usage("no values given")
            .hint("use --from-literal, --from-file, --from-env-file or --prompt"));
    }
    let data = input::collect(&a.values)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    if !a.replace {
        let removed: Vec<String> = current_keys(&client, &ns, &a.name)
            .await?
            .into_iter()
            .filter(|k| !data.contains_key(k))
            .collect();
        if !removed.is_empty() {
            let what = format!(
                "this put writes a version without {} (put writes exactly the keys given)",
                removed.join(", ")
            );
            if crate::output::stdin_is_terminal() && crate::output::stderr_is_terminal() {
                crate::output::warn(&what);
                confirm(
                    ctx,
                    &format!("Remove {} from {}?", removed.join(", "), a.name),
                    false,
                )?;
            } else {
                return Err(CliError::usage(format!("secret {}: {what}", a.name)).hint(
                    "pass --replace to remove them, or give them too (e.g. --from-literal for each)",
                ));
            }
        }
    }
    let Some((resp, raw)) = client
        .put_values(&ns, &a.name, &PutValuesRequest { data, cas: a.cas })
        .await?
    else {
        return Ok(()); // --dry-run: planned
    };
    // A server that honours check-and-set writes exactly the next version;
    // any other answer means it ignored `cas` (a production installation
    // without the extension) and wrote regardless: say so, loudly.
    if let Some(cas) = a.cas
        && resp.version != cas + 1
    {
        return Err(crate::error::CliError::new(
            crate::error::ErrorKind::NotSupported,
            format!(
                "this installation ignored --cas {cas}: it wrote version {} without checking that version {cas} was current",
                resp.version
            ),
        )
        .hint("check-and-set is an extension of kube-dc's own backend; compare the values before relying on them"));
    }
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "secret/{} version {} written",
        resp.name, resp.version
    ))
}

/// The keys of the secret's current version: from its metadata where the
/// installation says them (`status.currentKeys`), else from an audited
/// value read. None at all for a secret that has no values yet.
async fn current_keys(client: &Client, ns: &str, name: &str) -> Result<Vec<String>> {
    let (secret, _) = client.get_secret(ns, name, false, None).await?;
    if let Some(keys) = secret.status.current_keys {
        return Ok(keys);
    }
    if secret.openbao.is_none_or(|o| o.current_version == 0) {
        return Ok(Vec::new());
    }
    match client.get_secret(ns, name, true, None).await {
        Ok((s, _)) => Ok(s
            .value
            .map(|v| v.data.into_keys().collect())
            .unwrap_or_default()),
        Err(e) => Err(CliError::new(
            e.kind,
            format!(
                "cannot tell which keys this put would remove from {name}: {}",
                e.message
            ),
        )
        .hint("pass --replace to write exactly the given keys without checking")),
    }
}
