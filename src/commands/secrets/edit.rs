//! `kube-dc secrets edit NAME`: the values in `$VISUAL`/`$EDITOR` as an env
//! file, written back with check-and-set only if they changed.

use clap::Args;

use crate::commands::Session;
use crate::envfile::{EnvDialect, parse_env, to_env};
use crate::error::{CliError, ErrorKind, Result};
use crate::ops::values;
use crate::redact::Sensitive;
use kube_dc_api::wire::Data;

/// Edit a secret's values in your editor; a new version if they changed.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets edit db-creds
  EDITOR='code --wait' kube-dc secrets edit db-creds

The values are read (an audited value read) into a file (mode 0600) in a
private directory (mode 0700, in $XDG_RUNTIME_DIR when there is one, else
the temporary directory), as KEY=VALUE lines that read back byte for byte
(single quotes where needed). $VISUAL, else $EDITOR, else vi opens it.
Saved unchanged: nothing is written. Saved with a line that is not
KEY=VALUE: the editor opens again with the error at the top; saving that
unchanged, the same error twice in a row, or 10 errors in all give up
(nothing written). Otherwise the file's keys become a new
version, exactly (a key deleted from the file is removed), with
check-and-set on the version read: if the secret changed meanwhile, nothing
is written and kube-dc exits 6. The file and its directory are removed
however the command ends: Ctrl-C, SIGTERM, SIGHUP (a closed terminal) and
SIGQUIT included (kube-dc then exits 128+N, as a shell reports signal N).
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

pub async fn run(ctx: &Session, a: EditArgs) -> Result<()> {
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
    // The signals that end a command are caught before any value is on
    // disk, so none of them can end the process (their default action)
    // while the file exists; each one removes it and ends the command.
    let mut stop = Stop::listen()?;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    // A private directory (0700) holding an owner-only file (0600), both
    // removed when `dir` is dropped: on success, on any error, and on a
    // signal (below).
    let dir = tempfile::Builder::new()
        .prefix("kube-dc-edit-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| {
            CliError::other(format!(
                "cannot create a private directory in {}: {e}",
                base.display()
            ))
        })?;
    let file = dir.path().join(format!("{}.env", a.name));
    let body = to_env(&data, EnvDialect::Shell, false)?;
    let mut text = format!("{}{body}", header(&a.name, version, None));
    write_private(&file, &text)?;
    let edited = tokio::select! {
        r = edit_loop(&file, &a.name, version, &mut text) => r,
        sig = stop.next() => {
            drop(dir);
            return Err(CliError::new(
                ErrorKind::Signalled(sig.number),
                format!("interrupted by {}: nothing was written, and the file with the values was removed", sig.name),
            ));
        }
    };
    drop(dir);
    let edited = edited?;
    let Some(new) = edited else {
        crate::output::note("no changes: nothing was written");
        return Ok(());
    };
    if new == data {
        crate::output::note("no changes: nothing was written");
        return Ok(());
    }
    let again = "run `kube-dc secrets edit NAME` again";
    let done = values::write_edited(&client, &ns, &a.name, version, new, again).await?;
    super::set::report_change(ctx, &done, "edited")
}

/// How many times the editor is opened again on a file that does not
/// parse before kube-dc gives up (an editor that cannot fix it, such as a
/// script, would otherwise be reopened forever).
const MAX_ROUNDS: usize = 10;

/// Opens the editor until the file parses (`Some`: its values) or the user
/// gives up (`None`: saved unchanged after an error, or unchanged at all).
/// The same error twice in a row, or `MAX_ROUNDS` errors, end it with an
/// error: whoever saves the file is not fixing it.
async fn edit_loop(
    file: &std::path::Path,
    name: &str,
    version: u64,
    text: &mut String,
) -> Result<Option<Data>> {
    let mut last_error: Option<String> = None;
    for _ in 0..MAX_ROUNDS {
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} \"$1\"", editor()))
            .arg("sh")
            .arg(file)
            // Interrupted while it runs: the editor goes with the command.
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
        let e = match parse_env(&saved) {
            Ok(entries) => {
                let mut data = Data::new();
                for (k, v, _) in entries {
                    data.insert(k, Sensitive::new(v));
                }
                return Ok(Some(data));
            }
            Err(e) => e,
        };
        // Line numbers move with the error's own lines on top: the same
        // mistake is the same message without its numbers.
        let what = without_numbers(&e);
        if last_error.as_deref() == Some(what.as_str()) {
            return Err(gave_up(&e, "the editor saved the same error again"));
        }
        last_error = Some(what);
        // Again, with the error on top and the user's lines kept. The
        // error is said of the file as it is now (its header always has
        // the same number of lines), so its line number points at the line.
        let lines: String = saved
            .lines()
            .filter(|l| !l.starts_with("# "))
            .filter(|l| *l != "#")
            .map(|l| format!("{l}\n"))
            .collect();
        let draft = format!("{}{lines}", header(name, version, Some(&e)));
        let e = parse_env(&draft).err().unwrap_or(e);
        *text = format!("{}{lines}", header(name, version, Some(&e)));
        write_private(file, text)?;
    }
    Err(gave_up(
        last_error.as_deref().unwrap_or_default(),
        &format!("the file still did not parse after {MAX_ROUNDS} rounds in the editor"),
    ))
}

/// A parse error with each number (its line, its column) taken out.
fn without_numbers(e: &str) -> String {
    let mut out = String::with_capacity(e.len());
    for c in e.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn gave_up(error: &str, why: &str) -> CliError {
    CliError::usage(format!(
        "{why} ({error}): gave up, nothing was written, and the file (which held the values) was removed"
    ))
    .hint("fix the line in the editor, or set values without one: kube-dc secrets set NAME KEY=VALUE")
}

/// Writes the file owner-only: created 0600, never wider.
fn write_private(file: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| CliError::other(format!("cannot write {}: {e}", file.display())))
}

/// The signals that end an interactive command: SIGINT (Ctrl-C), SIGTERM
/// (`kill`), SIGHUP (a closed terminal or SSH session), SIGQUIT.
struct Stop {
    streams: Vec<(tokio::signal::unix::Signal, Caught)>,
}

#[derive(Clone, Copy)]
struct Caught {
    number: i32,
    name: &'static str,
}

impl Stop {
    fn listen() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            (SignalKind::interrupt(), libc::SIGINT, "SIGINT"),
            (SignalKind::terminate(), libc::SIGTERM, "SIGTERM"),
            (SignalKind::hangup(), libc::SIGHUP, "SIGHUP"),
            (SignalKind::quit(), libc::SIGQUIT, "SIGQUIT"),
        ];
        let mut streams = Vec::with_capacity(kinds.len());
        for (kind, number, name) in kinds {
            let s =
                signal(kind).map_err(|e| CliError::other(format!("cannot catch {name}: {e}")))?;
            streams.push((s, Caught { number, name }));
        }
        Ok(Self { streams })
    }

    /// The next signal caught.
    async fn next(&mut self) -> Caught {
        let waits = self.streams.iter_mut().map(|(s, c)| {
            let c = *c;
            Box::pin(async move {
                s.recv().await;
                c
            })
        });
        futures_util::future::select_all(waits).await.0
    }
}
