use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::ops::refs;
use crate::ops::template::{Place, Template};

/// Render a template: each `{{ kube-dc://PROJECT/SECRET/KEY }}` replaced by
/// its value.
///
/// The template is read from -i FILE (or stdin) and written to -o FILE (or
/// stdout). Each secret it names is read once (one audited
/// read per secret and version), whatever number of its keys the template
/// uses. Values are written byte for byte: multi-line PEM, JSON and
/// trailing newlines as they are stored.
///
/// With -o the file is written atomically, mode 0600, and only
/// when every reference resolved; an existing file is replaced only with
/// --force. With --dry-run the references are listed with whether each
/// resolves, and no value is read.
#[derive(Args, Debug)]
#[command(after_help = "\
References:
  kube-dc://PROJECT/SECRET/KEY          the current version's KEY
  kube-dc://PROJECT/SECRET@N/KEY        version N's KEY
  kube-dc://ORG/PROJECT/SECRET/KEY      in another organization

Template syntax:
  {{ kube-dc://default/db/PASSWORD }}   spaces inside the braces optional
  \\{{ kube-dc://default/db/PASSWORD }}  a literal {{ … }} (the backslash goes)
  {{ .Values.x }}                       braces without a reference stay as they are

Examples:
  kube-dc secrets inject -i config.tpl -o config.yml
  kube-dc secrets inject < app.env.tpl > app.env
  kube-dc --dry-run secrets inject -i config.tpl

Equivalents: `op inject -i config.tpl -o config.yml` (1Password),
`doppler secrets substitute config.tpl` (Doppler).
Role: developer, project-manager or admin (values are read).")]
pub struct InjectArgs {
    /// The template (default: stdin; `-` is stdin too).
    #[arg(short = 'i', long = "in-file", value_name = "TEMPLATE", value_hint = clap::ValueHint::FilePath)]
    pub in_file: Option<PathBuf>,
    /// Where to write the result, atomically with mode 0600 (default:
    /// stdout). Here `-o` names a file, as in `op inject -o`; the output
    /// format flag means nothing to this verb. `--output-file` is the same.
    #[arg(
        id = "output",
        short = 'o',
        long = "output",
        visible_alias = "output-file",
        value_name = "FILE",
        value_hint = clap::ValueHint::FilePath,
        value_parser = crate::output::OutputFileParser
    )]
    pub output: Option<crate::output::OutputArg>,
    /// Replace the -o file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Session, a: InjectArgs) -> Result<()> {
    // `-o` is this verb's file; a format from KUBE_DC_OUTPUT or one given
    // before the verb (`kube-dc -o json secrets inject`) arrives here too
    // and has no file: the result goes to stdout as it is.
    let output_file = match a.output {
        Some(o) if o.file.is_none() && ctx.printer.explicit() => {
            return Err(CliError::usage(format!(
                "secrets inject cannot print -o {}: it writes the rendered template",
                format!("{:?}", o.format).to_lowercase()
            ))
            .hint("its -o names the file to write: kube-dc secrets inject -i TEMPLATE -o FILE"));
        }
        o => o.and_then(|o| o.file),
    };
    let (src, name) = read_template(a.in_file.as_deref())?;
    if let Some(out) = &output_file
        && !a.force
        && out.exists()
    {
        return Err(
            CliError::usage(format!("{} exists; nothing was written", out.display()))
                .hint("pass --force to replace it"),
        );
    }
    let template = Template::parse(&src).map_err(|e| {
        CliError::usage(format!("{name}:{}: {}", e.at, e.message))
            .hint("a reference is {{ kube-dc://PROJECT/SECRET/KEY }}; see `kube-dc secrets inject --help`")
    })?;
    let org = ctx.target()?.org(None)?;
    let client = ctx.client().await?;
    if ctx.global.dry_run {
        return list_references(ctx, &client, &template, &name, &org).await;
    }
    let read = refs::read_sources(&client, template.references().map(|(r, _)| r.source(&org)))
        .await
        .map_err(|(failed, e)| {
            match template
                .references()
                .find(|(r, _)| r.source(&org) == failed)
            {
                Some((_, at)) => located(e, &name, at),
                None => e,
            }
        })?;
    let out = template
        .render(|r| refs::lookup(&read, r, &org).map(|v| v.expose().as_bytes()))
        .map_err(|(at, e)| located(e, &name, at))?;
    crate::output::Sink::of(output_file.as_deref()).write(&out)
}

/// The template's bytes and the name errors give it.
fn read_template(path: Option<&std::path::Path>) -> Result<(Vec<u8>, String)> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => std::fs::read(p)
            .map(|b| (b, p.display().to_string()))
            .map_err(|e| CliError::usage(format!("cannot read template {}: {e}", p.display()))),
        None => {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b)?;
            Ok((b, "stdin".into()))
        }
    }
}

fn located(e: CliError, name: &str, at: Place) -> CliError {
    CliError {
        message: format!("{name}:{at}: {}", e.message),
        ..e
    }
}

/// `--dry-run`: each reference, where it is, and whether it resolves, from
/// the secrets' metadata (no value is read).
async fn list_references(
    ctx: &Session,
    client: &crate::api::Client,
    template: &Template<'_>,
    name: &str,
    org: &str,
) -> Result<()> {
    let mut all_ok = true;
    let mut seen: std::collections::BTreeMap<refs::Source, Result<Option<Vec<String>>>> =
        Default::default();
    for (r, at) in template.references() {
        let src = r.source(org);
        if !seen.contains_key(&src) {
            let meta = client
                .get_secret(&src.namespace, &src.secret, false, src.version)
                .await
                .map(|(s, _)| s.status.current_keys.filter(|_| src.version.is_none()));
            seen.insert(src.clone(), meta);
        }
        let verdict = match &seen[&src] {
            Err(e) => {
                all_ok = false;
                format!("does not resolve: {}", e.message)
            }
            Ok(Some(keys)) if !keys.contains(&r.key) => {
                all_ok = false;
                format!(
                    "does not resolve: {} has no key {}",
                    refs::describe(&src),
                    r.key
                )
            }
            Ok(Some(_)) => "resolves".to_string(),
            Ok(None) => "the secret resolves (its key is checked when it is read)".to_string(),
        };
        ctx.printer.line(&format!("{name}:{at}  {r}  {verdict}"))?;
    }
    let n = template.references().count();
    crate::output::note(&format!(
        "{n} reference{} listed; no value was read and nothing was written",
        if n == 1 { "" } else { "s" }
    ));
    if all_ok {
        Ok(())
    } else {
        Err(CliError::new(
            ErrorKind::NotFound,
            "some references do not resolve",
        ))
    }
}
