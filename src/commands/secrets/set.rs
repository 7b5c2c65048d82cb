//! `kube-dc secrets set`, `unset` and `rollback`: a new version made from
//! an existing one — the current one with some keys changed or removed, or
//! an older one as it was — written with check-and-set on the version read.

use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::input::{self, ValueArgs};
use crate::ops::values::{self, Changed, Outcome};

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

pub async fn set(ctx: &Session, a: SetArgs) -> Result<()> {
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
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let done = values::set(&client, &ns, &a.name, &changes)
        .await
        .map_err(|e| {
            // `set` changes a secret that exists; a new one is `create`,
            // which takes the same values.
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

pub async fn unset(ctx: &Session, a: UnsetArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer.require(&[Table, Json, Yaml], "secrets unset")?;
    }
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let done = values::unset(&client, &ns, &a.name, &a.keys).await?;
    report_change(ctx, &done, &format!("removed {}", a.keys.join(", ")))
}

pub async fn rollback(ctx: &Session, a: RollbackArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer
            .require(&[Table, Json, Yaml], "secrets rollback")?;
    }
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let done = values::rollback(&client, &ns, &a.name, a.to_version).await?;
    report_change(
        ctx,
        &done,
        &format!("the values of version {}", a.to_version),
    )
}

/// Prints a change of values (also `edit`'s): the server's answer for
/// `-o json|yaml`, else its summary; when nothing was written, `{name,
/// namespace, version, unchanged: true}` for machines; its warnings on
/// stderr. A planned one prints nothing: the plan is printed at the end.
pub(super) fn report_change(ctx: &Session, done: &Changed, what: &str) -> Result<()> {
    if let Some(w) = done.warning() {
        crate::output::warn(w);
    }
    if let Some(w) = done.over_destroyed_warning() {
        crate::output::warn(&w);
    }
    let p = &ctx.printer;
    match (&done.outcome, p.is_machine()) {
        (Outcome::Planned, _) => Ok(()),
        (Outcome::Written { raw, .. }, true) => p.print_doc(&raw.value()),
        (Outcome::Written { .. }, false) => p.line(&done.summary(what)),
        (Outcome::Unchanged { version }, true) => p.print_doc(&serde_json::json!({
            "name": done.name,
            "namespace": done.namespace,
            "version": version,
            "unchanged": true,
        })),
        (Outcome::Unchanged { .. }, false) => {
            crate::output::note(&done.summary(what));
            Ok(())
        }
    }
}
