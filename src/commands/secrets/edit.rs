//! `kube-dc secrets edit NAME`: the values in `$VISUAL`/`$EDITOR` as an env
//! file, written back with check-and-set only if they changed.

use clap::Args;

use crate::commands::Ctx;
use crate::envfile::{EnvDialect, parse_env, to_env};
use crate::error::{CliError, ErrorKind, Result};
use crate::redact::Sensitive;
use kube_dc_api::wire::{Data, PutValuesRequest};

/// Edit a secret's values in your editor; a new version if they changed.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets edit db-creds
  EDITOR='code --wait' kube-dc secrets edit db-creds

The values are read (an audited value read) into a private temporary file
(mode 0600, in $XDG_RUNTIME_DIR when there is one), as KEY=VALUE lines that
read back byte for byte (single quotes where needed). $VISUAL, else
$EDITOR, else vi opens it. Saved unchanged: nothing is written. Saved with
a line that is not KEY=VALUE: the editor opens again with the error at the
top (saving that unchanged gives up). Otherwise the file's keys become a new
version, exactly (a key deleted from the file is removed), with
check-and-set on the version read: if the secret changed meanwhile, nothing
is written and kube-dc exits 6. The temporary file is removed however the
command ends, Ctrl-C included.
Role: developer or higher.")]
pub struct EditArgs {
    /// The secret's name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub name: String,
}

/// The editor command: $VISUAL, else $EDITOR, else vi.
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "vi".into())
}

fn header(name: &str, version: u64, error: Option<&str>) -> String {
    let mut h = String::new();
    if let Some(e) = error {
        h.push_str("# ERROR: ");
        h.push_str(&e.replace('\n', " "));
        h.push_str("\n# Fix the line and save, or save unchanged to give up.\n#\n");
    }
    h.push_str(&format!(
        "# kube-dc secrets edit {name} (version {version}): KEY=VALUE lines. Save to write a\n\
         # new version with exactly these keys; save unchanged to write nothing.\n"
    ));
    h
}

pub async fn run(ctx: &Ctx, a: EditArgs) -> Result<()> {
    {
        use crate::output::OutputFormat::{Json, Table, Yaml};
        ctx.printer.require(&[Table, Json, Yaml], "secrets edit")?;
    }
    super::check_secret_name(&a.name)?;
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let (secret, _) = client.get_secret(&ns, &a.name, true, None).await?;
    let (version, data) = match secret.value {
        Some(v) => (v.metadata.version, v.data),
        None => (0, Data::new()),
    };
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    // Owner-only (tempfile creates 0600), removed when `file` is dropped:
    // on success, on any error, and on Ctrl-C (handled below).
    let file = tempfile::Builder::new()
        .prefix("kube-dc-edit-")
        .suffix(".env")
        .tempfile_in(&dir)
        .map_err(|e| CliError::other(format!("cannot create a file in {}: {e}", dir.display())))?
        .into_temp_path();
    let body = to_env(&data, EnvDialect::Shell, false)?;
    let mut text = format!("{}{body}", header(&a.name, version, None));
    std::fs::write(&file, &text)
        .map_err(|e| CliError::other(format!("cannot write {}: {e}", file.display())))?;
    let edited = tokio::select! {
        r = edit_loop(&file, &a.name, version, &mut text) => r?,
        _ = tokio::signal::ctrl_c() => {
            drop(file);
            return Err(CliError::new(ErrorKind::Other, "interrupted: nothing was written"));
        }
    };
    drop(file);
    let Some(new) = edited else {
        crate::output::note("no changes: nothing was written");
        return Ok(());
    };
    if new == data {
        crate::output::note("no changes: nothing was written");
        return Ok(());
    }
    let req = PutValuesRequest {
        data: new,
        cas: Some(version),
    };
    let (resp, raw) = client.put_values(&ns, &a.name, &req).await.map_err(|e| {
        changed_meanwhile(e, &a.name, version, "run `kube-dc secrets edit NAME` again")
    })?;
    super::set::report(ctx, &resp, &raw, "edited")
}

/// A check-and-set conflict said as what it means for an edit (also
/// `kube-dc ui`'s `p`); any other error as it is.
pub fn changed_meanwhile(e: CliError, name: &str, version: u64, again: &str) -> CliError {
    if e.kind != ErrorKind::Conflict {
        return e;
    }
    CliError::new(
        ErrorKind::Conflict,
        format!(
            "secret {name} changed while you edited it (you opened version {version}): nothing was written"
        ),
    )
    .hint(again.replace("NAME", name))
}

/// Opens the editor until the file parses (`Some`: its values) or the user
/// gives up (`None`: saved unchanged after an error, or unchanged at all).
async fn edit_loop(
    file: &std::path::Path,
    name: &str,
    version: u64,
    text: &mut String,
) -> Result<Option<Data>> {
    loop {
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} \"$1\"", editor()))
            .arg("sh")
            .arg(file)
            // Ctrl-C while it runs: the editor goes with the command.
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| CliError::other(format!("cannot run the editor: {e}")))?;
        if !status.success() {
            return Err(CliError::other(format!(
                "the editor ({}) exited with {status}: nothing was written",
                editor()
            )));
        }
        let saved = std::fs::read_to_string(file)
            .map_err(|e| CliError::other(format!("cannot read {}: {e}", file.display())))?;
        if saved == *text {
            return Ok(None);
        }
        match parse_env(&saved) {
            Ok(entries) => {
                let mut data = Data::new();
                for (k, v, _) in entries {
                    data.insert(k, Sensitive::new(v));
                }
                return Ok(Some(data));
            }
            Err(e) => {
                // Again, with the error on top and the user's lines kept.
                let lines: String = saved
                    .lines()
                    .filter(|l| !l.starts_with("# "))
                    .filter(|l| *l != "#")
                    .map(|l| format!("{l}\n"))
                    .collect();
                *text = format!("{}{lines}", header(name, version, Some(&e)));
                std::fs::write(file, &*text).map_err(|e| {
                    CliError::other(format!("cannot write {}: {e}", file.display()))
                })?;
            }
        }
    }
}
