//! `kube-dc secrets set`, `unset` and `rollback`: a new version made from
//! an existing one — the current one with some keys changed or removed, or
//! an older one as it was — written with check-and-set on the version read.

use clap::Args;

use crate::api::{Client, Doc};
use crate::commands::Ctx;
use crate::error::{CliError, ErrorKind, Result};
use crate::input::{self, ValueArgs};
use kube_dc_api::wire::{Data, PutValuesRequest, PutValuesResponse};

/// How many times a write that lost a check-and-set race is made again
/// from a fresh read.
const TRIES: usize = 3;

const HOW: &str = "\
How: the current values are read (an audited value read, as `get --value`),
changed, and written as a new version with check-and-set on the version
read. If another write lands in between, kube-dc reads again and re-applies
the change (3 tries), then exits 6; no write is ever lost. An installation
without check-and-set (production's API has no `cas`) writes regardless:
kube-dc then warns when the version written is not the next one, because a
write made in between may have been replaced.";

/// Set some keys of a secret, keeping the others: a new version.
#[derive(Args, Debug)]
#[command(after_help = format!("\
Examples:
  kube-dc secrets set db-creds PASSWORD=s3cret
  kube-dc secrets set tls-cert --from-file=tls.key=./key.pem
  kube-dc secrets set api --prompt TOKEN

{HOW}
Role: developer or higher."))]
pub struct SetArgs {
    /// The secret's name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// KEY=VALUE pairs to set (as --from-literal).
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    #[command(flatten)]
    pub values: ValueArgs,
}

/// Remove keys from a secret, keeping the others: a new version.
#[derive(Args, Debug)]
#[command(after_help = format!("\
Examples:
  kube-dc secrets unset db-creds OLD_PASSWORD LEGACY_URL

A key the secret does not have is an error (nothing is written); so is
removing every key (delete the secret instead).

{HOW}
Role: developer or higher."))]
pub struct UnsetArgs {
    /// The secret's name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// The keys to remove.
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
}

/// Write an older version's values again, as a new version.
#[derive(Args, Debug)]
#[command(after_help = format!("\
Examples:
  kube-dc secrets versions db-creds
  kube-dc secrets rollback db-creds --to-version 3

The old version stays as it was; the new one holds its values. A destroyed
version (or one past the history window) cannot be rolled back to.

{}
Role: developer or higher.", HOW.replace("changed,", "replaced by the old version's,")))]
pub struct RollbackArgs {
    /// The secret's name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// The version whose values to write again.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub to_version: u64,
}

pub async fn set(ctx: &Ctx, a: SetArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer.require(&[Table, Json, Yaml], "secrets set")?;
    }
    super::check_secret_name(&a.name)?;
    let mut values = a.values.clone();
    values.from_literal.extend(a.pairs.iter().cloned());
    if values.is_empty() {
        return Err(CliError::usage("no values given")
            .hint("give KEY=VALUE, or --from-file, --from-env-file or --prompt"));
    }
    let changes = input::collect(&values)?;
    let keys: Vec<String> = changes.keys().cloned().collect();
    let done = change(ctx, &a.name, |_, data| {
        for (k, v) in &changes {
            data.insert(k.clone(), v.clone());
        }
        Ok(())
    })
    .await
    .map_err(|e| {
        // `set` changes a secret that exists; a new one is `create`, which
        // takes the same values.
        if e.kind == ErrorKind::NotFound && !e.message.contains("deleted") {
            e.hint(format!(
                "to make a new secret, use create with the same values: kube-dc secrets create {} \
                 --from-literal=KEY=VALUE (or --from-file=KEY=PATH, --from-file=KEY=- for stdin)",
                a.name
            ))
        } else {
            e
        }
    })?;
    report_change(ctx, &done, &format!("set {}", keys.join(", ")))
}

pub async fn unset(ctx: &Ctx, a: UnsetArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer.require(&[Table, Json, Yaml], "secrets unset")?;
    }
    super::check_secret_name(&a.name)?;
    let done = change(ctx, &a.name, |_, data| {
        let missing: Vec<&str> = a
            .keys
            .iter()
            .filter(|k| !data.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let have: Vec<&str> = data.keys().map(String::as_str).collect();
            return Err(CliError::new(
                ErrorKind::NotFound,
                format!(
                    "secret {} has no key {}; its keys: {}",
                    a.name,
                    missing.join(", "),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ));
        }
        for k in &a.keys {
            data.remove(k);
        }
        if data.is_empty() {
            return Err(CliError::usage(format!(
                "unsetting {} would leave secret {} without any key",
                a.keys.join(", "),
                a.name
            ))
            .hint(format!(
                "delete the secret instead: kube-dc secrets delete {}",
                a.name
            )));
        }
        Ok(())
    })
    .await?;
    report_change(ctx, &done, &format!("removed {}", a.keys.join(", ")))
}

pub async fn rollback(ctx: &Ctx, a: RollbackArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer
            .require(&[Table, Json, Yaml], "secrets rollback")?;
    }
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let done = rollback_with(&client, &ns, &a.name, a.to_version).await?;
    done.warn();
    report_change(
        ctx,
        &done,
        &format!("the values of version {}", a.to_version),
    )
}

/// `rollback`'s requests (also `kube-dc ui`'s `b`): the old version's
/// values read (audited), then written over the current one with
/// check-and-set.
pub async fn rollback_with(
    client: &Client,
    ns: &str,
    name: &str,
    to_version: u64,
) -> Result<Changed> {
    let (old, _) = client.get_secret(ns, name, true, Some(to_version)).await?;
    let old = old.value.ok_or_else(|| {
        CliError::new(
            ErrorKind::NotFound,
            format!("version {to_version} of {name} has no values to roll back to"),
        )
    })?;
    change_with(client, ns, name, |current, data| {
        if current == to_version {
            return Err(CliError::usage(format!(
                "version {to_version} is already the current version of {name}"
            )));
        }
        *data = old.data.clone();
        Ok(())
    })
    .await
}

/// A written change, and what to warn about it (said by the caller: on
/// stderr for a command, on the status line in `kube-dc ui`).
pub struct Changed {
    /// What was written; when nothing was (`raw` is None), the version
    /// that already holds exactly these values.
    pub resp: PutValuesResponse,
    /// The server's answer; None when the change would have written the
    /// values the current version already holds, so nothing was sent.
    pub raw: Option<Doc>,
    pub warning: Option<String>,
    /// The current version it was written over had been destroyed (so
    /// the change started from no values at all).
    pub over_destroyed: Option<u64>,
}

impl Changed {
    /// What to say of it: `secret/NAME version N written (what)`, or that
    /// nothing needed writing.
    pub fn summary(&self, what: &str) -> String {
        match self.raw {
            Some(_) => format!(
                "secret/{} version {} written ({what})",
                self.resp.name, self.resp.version
            ),
            None => format!(
                "secret/{} unchanged: version {} already holds these values, nothing was written",
                self.resp.name, self.resp.version
            ),
        }
    }

    fn warn(&self) {
        if let Some(w) = &self.warning {
            crate::output::warn(w);
        }
    }
}

/// Reads, changes and writes with check-and-set (see `HOW`).
async fn change(
    ctx: &Ctx,
    name: &str,
    apply: impl Fn(u64, &mut Data) -> Result<()>,
) -> Result<Changed> {
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let done = change_with(&client, &ns, name, apply).await?;
    done.warn();
    if let Some(v) = done.over_destroyed {
        crate::output::warn(&format!(
            "version {v}, the current one, had been destroyed: version {} holds only the keys \
             given here; to start from an older version instead: `kube-dc secrets versions \
             {name}`, then `kube-dc secrets rollback {name} --to-version N`",
            done.resp.version
        ));
    }
    Ok(done)
}

async fn change_with(
    client: &Client,
    ns: &str,
    name: &str,
    apply: impl Fn(u64, &mut Data) -> Result<()>,
) -> Result<Changed> {
    let mut tries = 0;
    loop {
        tries += 1;
        let (secret, _) = client.get_secret(ns, name, true, None).await?;
        // The version to write over is the current one, also when it has
        // no values to read (destroyed): check-and-set names it all the
        // same, or no write could ever follow a destroyed current version.
        let current = secret.openbao.as_ref().map_or(0, |o| o.current_version);
        let (read, mut data, over_destroyed) = match secret.value {
            Some(v) => (v.metadata.version, v.data, None),
            None => (current, Data::new(), (current > 0).then_some(current)),
        };
        let before = (over_destroyed.is_none() && read > 0).then(|| data.clone());
        apply(read, &mut data)?;
        // The same values again would be a version that changes nothing.
        if before.as_ref() == Some(&data) {
            return Ok(Changed {
                resp: PutValuesResponse {
                    name: name.to_string(),
                    namespace: ns.to_string(),
                    version: read,
                    ..PutValuesResponse::default()
                },
                raw: None,
                warning: None,
                over_destroyed: None,
            });
        }
        let req = PutValuesRequest {
            data,
            cas: Some(read),
        };
        match client.put_values(ns, name, &req).await {
            Ok((resp, raw)) => {
                let warning = (resp.version != read + 1).then(|| {
                    format!(
                        "this installation wrote version {} without checking that version {read} \
                         (the one read) was still current: a write made in between may have been \
                         replaced; compare `kube-dc secrets versions {name}`",
                        resp.version
                    )
                });
                return Ok(Changed {
                    resp,
                    raw: Some(raw),
                    warning,
                    over_destroyed,
                });
            }
            // Only what the server says a fresh read can get past (the
            // secret moved under the change); a name taken, a projection
            // taken, or any conflict an installation does not explain, is
            // answered as it is.
            Err(e) if e.retryable && tries < TRIES => continue,
            Err(e) if e.retryable => {
                return Err(CliError::new(
                    ErrorKind::Conflict,
                    format!(
                        "secret {name} kept changing while this change was applied ({TRIES} tries): \
                         {}",
                        e.message
                    ),
                )
                .hint("nothing was written; run it again"));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Prints a change: the server's answer for `-o json|yaml`, else its
/// summary; when nothing was written, `{name, namespace, version,
/// unchanged: true}` for machines.
fn report_change(ctx: &Ctx, done: &Changed, what: &str) -> Result<()> {
    let p = &ctx.printer;
    match (&done.raw, p.is_machine()) {
        (Some(raw), _) => report(ctx, &done.resp, raw, what),
        (None, true) => p.print_doc(&serde_json::json!({
            "name": done.resp.name,
            "namespace": done.resp.namespace,
            "version": done.resp.version,
            "unchanged": true,
        })),
        (None, false) => {
            crate::output::note(&done.summary(what));
            Ok(())
        }
    }
}

pub(super) fn report(ctx: &Ctx, resp: &PutValuesResponse, raw: &Doc, what: &str) -> Result<()> {
    let p = &ctx.printer;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "secret/{} version {} written ({what})",
        resp.name, resp.version
    ))
}
