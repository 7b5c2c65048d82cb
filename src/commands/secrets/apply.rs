use std::io::Read;

use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, Result};
use crate::ops::apply;

/// Create or update secrets from ManagedSecret manifests.
///
/// Values are never part of a manifest: write them with `secrets put`, or let
/// rotation generate them for type password.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets apply -f app-password.yaml
  cat managed-secrets.yaml | kube-dc secrets apply -f -

A manifest (password rotation, preview):
  apiVersion: security.kube-dc.com/v1alpha1
  kind: ManagedSecret
  metadata:
    name: app-password
  spec:
    type: password
    rotation:
      enabled: true
      interval: 90d
      generator:
        length: 32
        charset: alnum-symbol   # alnum | alnum-symbol | hex
    sync:
      enabled: true
      targetSecretName: app-password

Role: developer, project-manager or admin.")]
pub struct ApplyArgs {
    /// Manifest file (multi-document YAML or JSON); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: String,
}

pub async fn run(ctx: &Session, a: ApplyArgs) -> Result<()> {
    use crate::output::OutputFormat::Table;
    ctx.printer.require(&[Table], "secrets apply")?;
    let text = if a.file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(&a.file)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", a.file)))?
    };
    let manifests = apply::parse(&text, &a.file)?;
    let default_ns = ctx.namespace()?;
    let flag = ctx.target()?.namespace_flag.clone();
    let client = ctx.client().await?;
    for m in manifests {
        let ns = apply::namespace_of(&m, &default_ns, flag.as_deref())?;
        let done = apply::apply(&client, &ns, &m).await?;
        let line = format!("managedsecret/{} {}", m.metadata.name, done.word());
        if ctx.global.dry_run {
            // The plan is the document on stdout; what each manifest
            // would become is said beside it.
            crate::output::note(&format!("{line} (dry run)"));
        } else {
            ctx.printer.line(&line)?;
        }
    }
    Ok(())
}
