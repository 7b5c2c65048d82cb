use std::collections::BTreeMap;
use std::process::Command;

use clap::Args;

use crate::commands::Session;
use crate::error::{CliError, Result};
use crate::output::warn;

/// Run a command with secret values as environment variables.
///
/// Values go only into the child's environment. Signals (INT, TERM, HUP,
/// QUIT, USR1, USR2) are forwarded to the child, and kube-dc exits with the
/// child's exit code (128+N when it died of signal N).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets run db-creds -- psql \"$DATABASE_URL\"
  kube-dc secrets run app-config api-keys -- ./server --port 8080

Keys that are not valid variable names (e.g. tls.crt) are skipped with a
warning; a key present in two secrets is an error.
Role: developer, project-manager or admin (values are read).")]
pub struct RunArgs {
    /// Secrets whose values to export.
    #[arg(required = true, value_name = "NAME", add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub names: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn env_name_ok(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Each secret's keys as variables, named after their keys: an audited
/// value read per secret; a key that is no variable name is skipped (and
/// said), one in two secrets refused.
async fn environment(
    client: &crate::api::Client,
    ns: &str,
    names: &[String],
) -> Result<BTreeMap<String, (String, crate::api::Sensitive)>> {
    let mut env: BTreeMap<String, (String, crate::api::Sensitive)> = BTreeMap::new();
    for name in names {
        let (s, _) = client.get_secret(ns, name, true, None).await?;
        let Some(v) = s.value else {
            return Err(CliError::new(
                crate::error::ErrorKind::NotFound,
                format!("secret {name:?} has no readable value"),
            ));
        };
        for (k, val) in v.data {
            if !env_name_ok(&k) {
                warn(&format!(
                    "key {k} of {name} is not a valid environment variable name; skipped"
                ));
                continue;
            }
            if let Some((other, _)) = env.get(&k) {
                return Err(
                    CliError::usage(format!("key {k} is in both {other} and {name}"))
                        .hint("run with one of them, or rename the key"),
                );
            }
            env.insert(k, (name.clone(), val));
        }
    }
    Ok(env)
}

pub async fn run(ctx: &Session, a: RunArgs) -> Result<i32> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "secrets run")?;
    for n in &a.names {
        super::check_secret_name(n)?;
    }
    let ns = ctx.namespace()?;
    let client = ctx.client().await?;
    let env = environment(&client, &ns, &a.names).await?;
    let (program, args) = a
        .command
        .split_first()
        .ok_or_else(|| CliError::usage("no command given after --"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, (_, v)) in &env {
        cmd.env(k, v.expose());
    }
    // Catch signals before the child exists: one that lands between spawn and
    // registration would otherwise kill kube-dc and orphan the child. Caught
    // signals are queued and forwarded once the pid is known; the child
    // starts with default dispositions (exec resets handlers).
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
            .map_err(|e| CliError::other(format!("cannot forward signals: {e}")))?;
    // Exit as a shell would: 127 for no such command, 126 for one that
    // cannot be run.
    let mut child = cmd.spawn().map_err(|e| {
        CliError::new(
            if e.kind() == std::io::ErrorKind::NotFound {
                crate::error::ErrorKind::NoSuchCommand
            } else {
                crate::error::ErrorKind::CannotExecute
            },
            format!("cannot run {program}: {e}"),
        )
    })?;
    drop(env);
    let pid = child.id() as libc::pid_t;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            // SAFETY: kill(2) with a pid we spawned and a valid signal number.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    });
    let status = child
        .wait()
        .map_err(|e| CliError::other(format!("waiting for {program}: {e}")))?;
    handle.close();
    let _ = forwarder.join();
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
