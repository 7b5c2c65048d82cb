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
///
/// Sources, later ones overriding earlier ones: the NAMEd secrets (all
/// their keys, or --only's; a key in two of them is an error), then each
/// --env-file in the order given. In an env file, a value that is exactly a
/// reference (kube-dc://PROJECT/SECRET/KEY, see `secrets inject --help`) is
/// resolved; every other value is passed through unchanged. Each secret is
/// read once (one audited read), whether named or referenced.
///
/// Every injected secret value that appears in the child's stdout or
/// stderr is replaced by <concealed by kube-dc>, also when it is split
/// across writes; --no-masking turns that off. When stdin is a terminal
/// the child may be interactive, so its output is not masked (it keeps its
/// terminal) and kube-dc says so.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc secrets run db-creds -- psql \"$DATABASE_URL\"
  kube-dc secrets run app-config api-keys -- ./server --port 8080
  kube-dc secrets run db-creds --only USER,PASSWORD --prefix DB_ -- ./migrate
  kube-dc secrets run --env-file .env -- ./server
      (.env: PORT=8080 and DB_PASSWORD=kube-dc://default/db-creds/PASSWORD)

  kube-dc secrets run db-creds --watch --restart-jitter 30s -- ./server

With --watch, a change of the values of a secret the command uses (not of
its description or projection) reads them again, one audited read, and
restarts the command: SIGTERM, --grace, SIGKILL. A burst of changes (each
within 0.4 s of the last, for up to a second) restarts it once; --restart-jitter spreads the restarts of many instances.
A re-read that fails keeps the command running and says why. Against an
installation without a change stream kube-dc polls the list (--poll) and
reads values only after a version changed. When the command ends by
itself, or on Ctrl-C, kube-dc exits with its code.

Equivalents: `op run --env-file .env -- cmd` (1Password),
`doppler run -- cmd`, `doppler run --watch -- cmd` (Doppler).

Keys that are not valid variable names (e.g. tls.crt) are skipped with a
warning. Values shorter than 4 characters are not masked (they would blank
unrelated output); kube-dc names those keys.
Role: developer, project-manager or admin (values are read).")]
pub struct RunArgs {
    /// Secrets whose values to export.
    #[arg(value_name = "NAME", required_unless_present = "env_file", add = clap_complete::ArgValueCompleter::new(crate::completion::secret_names))]
    pub names: Vec<String>,
    /// An env file: plain values pass through, values that are references
    /// are resolved. Repeatable; later files override earlier ones and the
    /// secrets.
    #[arg(long = "env-file", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Only these keys of the NAMEd secrets (comma-separated).
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Put this before each variable name taken from a NAMEd secret
    /// (`--prefix DB_`: PASSWORD becomes DB_PASSWORD).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Let the child's output through unmasked.
    #[arg(long)]
    pub no_masking: bool,
    /// Restart the command when a secret it uses changes: its values read
    /// again (audited), then SIGTERM, --grace, SIGKILL, and started with
    /// the new values. A burst of changes restarts it once.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how long the command may take to stop after SIGTERM
    /// before it is killed (e.g. 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "watch", value_parser = duration)]
    pub grace: std::time::Duration,
    /// With --watch: wait a random time up to this long before restarting,
    /// so that many instances do not restart at the same moment.
    #[arg(long, value_name = "DURATION", default_value = "0s", requires = "watch", value_parser = duration)]
    pub restart_jitter: std::time::Duration,
    /// With --watch, where the installation has no change stream: seconds
    /// between two looks at the list (values are read only after a version
    /// changed).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll: u64,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A duration flag (`10s`, `1m`, `0s`).
fn duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    if text == "0" || text == "0s" {
        return Ok(std::time::Duration::ZERO);
    }
    kube_dc_api::validate::parse_interval(text)
}

fn env_name_ok(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// One variable for the child: its value, where it came from (for
/// messages) and whether it is a secret's (masked) or plain.
struct Var {
    value: crate::api::Sensitive,
    from: String,
    secret: bool,
    /// The secret (namespace, name) whose current version it comes from:
    /// what `--watch` follows.
    watched: Option<(String, String)>,
}

/// An env file's entries, each value a reference or plain text.
fn read_env_file(path: &std::path::Path) -> Result<Vec<(String, String, u32)>> {
    let what = format!("--env-file {}", path.display());
    let text = crate::input::file_value(&path.display().to_string(), &what)?;
    crate::envfile::parse_env(&text).map_err(|e| CliError::usage(format!("{what}: {e}")))
}

/// Every variable of every source, later sources overriding earlier ones;
/// each secret read once.
async fn environment(
    ctx: &Session,
    client: &crate::api::Client,
    a: &RunArgs,
) -> Result<BTreeMap<String, Var>> {
    use crate::ops::refs::{Reference, Source, is_reference, lookup, read_sources};
    let ns = if a.names.is_empty() {
        String::new()
    } else {
        ctx.namespace()?
    };
    let files = a
        .env_file
        .iter()
        .map(|p| read_env_file(p).map(|e| (p, e)))
        .collect::<Result<Vec<_>>>()?;
    // Every reference, parsed before anything is read: a value that is
    // exactly one. A value that only starts like one passes through as it
    // is (as documented), with a warning that names the variable.
    let mut refs: Vec<(Reference, String)> = Vec::new();
    let mut parsed: Vec<Vec<Option<usize>>> = Vec::new();
    for (path, entries) in &files {
        let mut here = Vec::new();
        for (k, v, line) in entries {
            here.push(match Reference::parse(v) {
                Ok(r) => {
                    refs.push((r, format!("{}:{line}", path.display())));
                    Some(refs.len() - 1)
                }
                Err((col, e)) => {
                    if is_reference(v) {
                        warn(&format!(
                            "{}:{line}:{}: {k} is passed through unchanged: its value starts like a reference but is not one ({e})",
                            path.display(),
                            col + 1
                        ));
                    }
                    None
                }
            });
        }
        parsed.push(here);
    }
    let org = if refs.is_empty() {
        String::new()
    } else {
        ctx.target()?.org(None)?
    };
    let named = a.names.iter().map(|n| Source {
        namespace: ns.clone(),
        secret: n.clone(),
        version: None,
    });
    let read = read_sources(
        client,
        named.chain(refs.iter().map(|(r, _)| r.source(&org))),
    )
    .await
    .map_err(|(failed, e)| {
        // A secret that is not NAMEd was read for an env file's line.
        match refs.iter().find(|(r, _)| r.source(&org) == failed) {
            Some((_, from)) if !(failed.namespace == ns && a.names.contains(&failed.secret)) => {
                e.context(from)
            }
            _ => e,
        }
    })?;
    let mut env: BTreeMap<String, Var> = BTreeMap::new();
    whole_secrets(&mut env, &read, &ns, a)?;
    for ((path, entries), parsed) in files.iter().zip(&parsed) {
        for ((k, v, line), r) in entries.iter().zip(parsed) {
            let from = format!("{}:{line}", path.display());
            let var = match r {
                Some(i) => {
                    let r = &refs[*i].0;
                    let value = lookup(&read, r, &org).map_err(|e| e.context(&from))?;
                    let src = r.source(&org);
                    Var {
                        value: value.clone(),
                        from,
                        secret: true,
                        watched: src.version.is_none().then_some((src.namespace, src.secret)),
                    }
                }
                None => Var {
                    value: crate::api::Sensitive::new(v.clone()),
                    from,
                    secret: false,
                    watched: None,
                },
            };
            env.insert(k.clone(), var);
        }
    }
    Ok(env)
}

/// The NAMEd secrets' keys (--only's, if given) as variables, --prefix
/// before each name; a key that is no variable name is skipped (and
/// said), one in two secrets refused.
fn whole_secrets(
    env: &mut BTreeMap<String, Var>,
    read: &BTreeMap<crate::ops::refs::Source, kube_dc_api::wire::Data>,
    ns: &str,
    a: &RunArgs,
) -> Result<()> {
    let prefix = a.prefix.as_deref().unwrap_or("");
    let mut found_only = std::collections::BTreeSet::new();
    for name in &a.names {
        let src = crate::ops::refs::Source {
            namespace: ns.to_string(),
            secret: name.clone(),
            version: None,
        };
        for (k, val) in read.get(&src).into_iter().flatten() {
            if !a.only.is_empty() && !a.only.contains(k) {
                continue;
            }
            found_only.insert(k.clone());
            let var = format!("{prefix}{k}");
            if !env_name_ok(&var) {
                warn(&format!(
                    "key {k} of {name} is not a valid environment variable name; skipped"
                ));
                continue;
            }
            if let Some(other) = env.get(&var) {
                return Err(CliError::usage(format!(
                    "key {k} is in both {} and {name}",
                    other.from
                ))
                .hint("run with one of them, pick keys with --only, or rename the key"));
            }
            env.insert(
                var,
                Var {
                    value: val.clone(),
                    from: name.clone(),
                    secret: true,
                    watched: Some((ns.to_string(), name.clone())),
                },
            );
        }
    }
    if let Some(k) = a.only.iter().find(|k| !found_only.contains(*k)) {
        return Err(CliError::usage(format!(
            "--only {k}: no secret named here has that key"
        )));
    }
    Ok(())
}

pub async fn run(ctx: &Session, a: RunArgs) -> Result<i32> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "secrets run")?;
    for n in &a.names {
        super::check_secret_name(n)?;
    }
    let client = ctx.client().await?;
    let env = environment(ctx, &client, &a).await?;
    if a.command.is_empty() {
        return Err(CliError::usage("no command given after --"));
    }
    // Catch signals before the child exists: one that lands between spawn and
    // registration would otherwise kill kube-dc and orphan the child. Caught
    // signals are queued and forwarded once the pid is known; the child
    // starts with default dispositions (exec resets handlers).
    let forward = Forward::start()?;
    if a.watch {
        let code = watch(ctx, &client, &a, env, &forward).await;
        forward.stop();
        return code;
    }
    let mut child = Child::spawn(&a, &env)?;
    drop(env);
    forward.to(child.pid());
    let status = child.wait()?;
    forward.stop();
    Ok(status)
}

/// Signals to kube-dc (INT, TERM, HUP, QUIT, USR1, USR2) sent on to the
/// child of the moment; whether one that ends it (INT, TERM, HUP, QUIT)
/// came. They are caught from [`Forward::start`] on and held until the
/// first child exists.
struct Forward {
    pid: std::sync::Arc<std::sync::atomic::AtomicI32>,
    ending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: signal_hook::iterator::Handle,
    signals: std::sync::Mutex<Option<signal_hook::iterator::Signals>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Forward {
    fn start() -> Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
        let signals = signal_hook::iterator::Signals::new([
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
        ])
        .map_err(|e| CliError::other(format!("cannot forward signals: {e}")))?;
        Ok(Forward {
            pid: Default::default(),
            ending: Default::default(),
            handle: signals.handle(),
            signals: std::sync::Mutex::new(Some(signals)),
            thread: std::sync::Mutex::new(None),
        })
    }

    /// Forwards to `pid` from now on (what came before the first child,
    /// to it).
    fn to(&self, pid: libc::pid_t) {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        use std::sync::atomic::Ordering;
        self.pid.store(pid, Ordering::SeqCst);
        let Some(mut signals) = self.signals.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let (p, e) = (self.pid.clone(), self.ending.clone());
        let thread = std::thread::spawn(move || {
            for sig in signals.forever() {
                if matches!(sig, SIGINT | SIGTERM | SIGHUP | SIGQUIT) {
                    e.store(true, Ordering::SeqCst);
                }
                // SAFETY: kill(2) with a pid we spawned and a valid signal
                // number.
                unsafe {
                    libc::kill(p.load(Ordering::SeqCst), sig);
                }
            }
        });
        if let Ok(mut t) = self.thread.lock() {
            *t = Some(thread);
        }
    }

    fn ending(&self) -> bool {
        self.ending.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn stop(self) {
        self.handle.close();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// The command, running, with the masks over its output.
struct Child {
    child: std::process::Child,
    pumps: Option<Vec<std::thread::JoinHandle<()>>>,
}

impl Child {
    fn spawn(a: &RunArgs, env: &BTreeMap<String, Var>) -> Result<Self> {
        let (program, args) = a
            .command
            .split_first()
            .ok_or_else(|| CliError::usage("no command given after --"))?;
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v.value.expose());
        }
        let masker = masking(a, env);
        if masker.is_some() {
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
        }
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
        let pumps = masker.map(|m| pump_masked(&mut child, m));
        Ok(Child { child, pumps })
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Its exit status as a shell reports it (128+N for signal N), once it
    /// and its output are done.
    fn wait(&mut self) -> Result<i32> {
        let status = self
            .child
            .wait()
            .map_err(|e| CliError::other(format!("waiting for the command: {e}")))?;
        // The child is gone; its pipes end once every process holding them
        // has closed them, and the masks write what they still hold.
        for p in self.pumps.take().into_iter().flatten() {
            let _ = p.join();
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// `--watch`: runs the command, and on a change of a secret it uses reads
/// the values again and restarts it.
async fn watch(
    ctx: &Session,
    client: &crate::api::Client,
    a: &RunArgs,
    mut env: BTreeMap<String, Var>,
    forward: &Forward,
) -> Result<i32> {
    use crate::ops::watch::Watcher;
    // Which secrets the command uses, per namespace (versions pinned by a
    // reference do not change).
    let mut used: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (_, v) in env.iter().filter(|(_, v)| v.secret) {
        if let Some((ns, name)) = &v.watched {
            used.entry(ns.clone()).or_default().insert(name.clone());
        }
    }
    let poll = std::time::Duration::from_secs(a.poll);
    let mut watchers = Vec::new();
    for ns in used.keys() {
        watchers.push((ns.clone(), Watcher::open(client, ns, poll).await?));
    }
    if watchers.is_empty() {
        crate::output::note(
            "--watch: the command uses no secret that can change (only pinned versions); it is not restarted",
        );
    }
    loop {
        let mut child = Child::spawn(a, &env)?;
        forward.to(child.pid());
        let pid = child.pid();
        let (done_tx, mut done) = tokio::sync::oneshot::channel();
        let waiter = std::thread::spawn(move || {
            let code = child.wait();
            let _ = done_tx.send(());
            code
        });
        // Until the command ends by itself, or a change calls for new values.
        let next_env = loop {
            let change = async {
                if watchers.is_empty() {
                    return std::future::pending().await;
                }
                let nexts = watchers.iter_mut().map(|(ns, w)| {
                    let ns = ns.clone();
                    Box::pin(async move { (ns, w.next().await) })
                });
                futures_util::future::select_all(nexts).await.0
            };
            tokio::select! {
                _ = &mut done => break None,
                (ns, c) = change => {
                    let c = c?;
                    if !restarts(&used, &ns, &c) {
                        continue;
                    }
                    // A burst of changes restarts once.
                    settle(&mut watchers).await;
                    if !a.restart_jitter.is_zero() {
                        let ms = fastrand::u64(0..=a.restart_jitter.as_millis() as u64);
                        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    }
                    match environment(ctx, client, a).await {
                        Ok(new) => {
                            crate::output::note(&format!(
                                "{} changed ({}); restarting the command",
                                c.secret.as_deref().unwrap_or("a secret"),
                                c.change.as_deref().unwrap_or("changed")
                            ));
                            break Some(new);
                        }
                        Err(e) => crate::output::warn(&format!(
                            "{} changed, but reading the values again failed: {}; the command keeps running with the old ones",
                            c.secret.as_deref().unwrap_or("a secret"),
                            e.message
                        )),
                    }
                }
            }
        };
        let Some(new) = next_env else {
            // It ended by itself (or was told to by a signal): its code.
            return waiter
                .join()
                .map_err(|_| CliError::other("the command's waiter panicked"))?;
        };
        // SIGTERM, the grace period, then SIGKILL.
        // SAFETY: kill(2) with the pid we spawned, not yet reaped (the
        // waiter reaps it, and tells `done`).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(a.grace, &mut done).await.is_err() {
            crate::output::warn(&format!(
                "the command did not stop within {}s of SIGTERM; killing it",
                a.grace.as_secs_f32()
            ));
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = waiter.join();
        if forward.ending() {
            return Ok(130);
        }
        env = new;
    }
}

/// Whether a change calls for the values again: a change of the values of
/// a secret the command uses (not of its description or projection).
fn restarts(
    used: &BTreeMap<String, std::collections::BTreeSet<String>>,
    ns: &str,
    c: &kube_dc_api::wire::ChangeLine,
) -> bool {
    let uses = c
        .secret
        .as_deref()
        .is_some_and(|s| used.get(ns).is_some_and(|names| names.contains(s)));
    uses && !matches!(c.change.as_deref(), Some("sync-changed" | "updated"))
}

/// A burst ends after this long without another change…
const QUIET: std::time::Duration = std::time::Duration::from_millis(400);
/// …or this long after its first change, whichever is first.
const BURST: std::time::Duration = std::time::Duration::from_secs(1);

/// Takes the rest of a burst of changes (a burst restarts once): until
/// [`QUIET`] passes without one, at most [`BURST`] after the first.
async fn settle(watchers: &mut [(String, crate::ops::watch::Watcher<'_>)]) {
    let cap = tokio::time::Instant::now() + BURST;
    loop {
        let until = cap.min(tokio::time::Instant::now() + QUIET);
        let nexts = watchers.iter_mut().map(|(_, w)| Box::pin(w.next()));
        let any = futures_util::future::select_all(nexts);
        if tokio::time::timeout_at(until, any).await.is_err() {
            return;
        }
    }
}

/// The mask for the child's output, unless it is turned off (or stdin is a
/// terminal: the child may be interactive and keeps its terminal).
fn masking(a: &RunArgs, env: &BTreeMap<String, Var>) -> Option<crate::mask::Masker> {
    use std::io::IsTerminal;
    if a.no_masking {
        return None;
    }
    if std::io::stdin().is_terminal() {
        crate::output::note(
            "the child's output is not masked: stdin is a terminal, so it may be interactive and keeps the terminal (pass --no-masking to say you know)",
        );
        return None;
    }
    let secrets = env.iter().filter(|(_, v)| v.secret);
    let short: Vec<&str> = secrets
        .clone()
        .filter(|(_, v)| {
            let n = v.value.expose().len();
            n > 0 && n < crate::mask::MIN_MASKED_LEN
        })
        .map(|(k, _)| k.as_str())
        .collect();
    if !short.is_empty() {
        warn(&format!(
            "not masked in the child's output (shorter than {} characters): {}",
            crate::mask::MIN_MASKED_LEN,
            short.join(", ")
        ));
    }
    crate::mask::Masker::new(secrets.map(|(_, v)| v.value.expose()))
}

/// Copies the child's stdout and stderr to ours through a mask each, one
/// thread per stream, writing each read as soon as it is masked.
fn pump_masked(
    child: &mut std::process::Child,
    mask: crate::mask::Masker,
) -> Vec<std::thread::JoinHandle<()>> {
    fn pump(
        mut from: impl std::io::Read,
        mut to: impl std::io::Write,
        mut mask: crate::mask::Masker,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len() + 1024);
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            out.clear();
            mask.push(&buf[..n], &mut out);
            if to.write_all(&out).and_then(|()| to.flush()).is_err() {
                break;
            }
        }
        out.clear();
        mask.finish(&mut out);
        let _ = to.write_all(&out).and_then(|()| to.flush());
    }
    let mut threads = Vec::new();
    if let Some(o) = child.stdout.take() {
        let m = mask.clone();
        threads.push(std::thread::spawn(move || {
            pump(o, crate::output::relay_stdout(), m)
        }));
    }
    if let Some(e) = child.stderr.take() {
        threads.push(std::thread::spawn(move || {
            pump(e, crate::output::relay_stderr(), mask)
        }));
    }
    threads
}
