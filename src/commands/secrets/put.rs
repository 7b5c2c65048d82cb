use clap::Args;

use crate::api::PutValuesRequest;
use crate::commands::Ctx;
use crate::error::{CliError, Result};
use crate::input::{self, ValueArgs};

/// Write a new version of a secret's values.
///
/// The new version replaces the whole key set (keys you leave out are not
/// in the new version); older versions stay readable within the history
/// window.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets put db-creds --from-literal=PASSWORD=s3cr3t --from-literal=USER=app
  kube-dc secrets put tls-cert --from-file=tls.crt=./tls.crt --from-file=tls.key=./tls.key
  kube-dc secrets put app-env --from-env-file=./app.env
  vault-export | kube-dc secrets put token --from-file=TOKEN=- --trim-newline
  kube-dc secrets put db-creds --prompt PASSWORD
  kube-dc secrets put db-creds --from-literal=K=v --cas 4   # only if version 4 is current

Role: developer, project-manager or admin.")]
pub struct PutArgs {
    /// Secret name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
    /// Write only if this is the current version (check-and-set; 0: only if none yet).
    #[arg(long, value_name = "VERSION")]
    pub cas: Option<u64>,
    #[command(flatten)]
    pub values: ValueArgs,
}

pub async fn run(ctx: &Ctx, a: PutArgs) -> Result<()> {
    use crate::output::OutputFormat::*;
    let p = &ctx.printer;
    p.require(&[Table, Json, Yaml], "secrets put")?;
    super::check_secret_name(&a.name)?;
    if a.values.is_empty() {
        return Err(CliError::usage("no values given")
            .hint("use --from-literal, --from-file, --from-env-file or --prompt"));
    }
    let data = input::collect(&a.values)?;
    let ns = ctx.namespace()?;
    let (resp, raw) = ctx
        .client()
        .await?
        .put_values(&ns, &a.name, &PutValuesRequest { data, cas: a.cas })
        .await?;
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
