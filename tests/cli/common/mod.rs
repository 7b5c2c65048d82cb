//! Harness for tests that run the built `kube-dc` binary: a private HOME and
//! XDG directories, a cleared environment, and servers on 127.0.0.1.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use kube_dc_testsupport::testing::TestIssuer;

pub mod idp;

/// Waits up to `secs` until `ok` gives a value, looking every 50 ms;
/// fails naming `what` when it never does. The one place the CLI's tests
/// poll: everything else waits for what it needs, or moves the clock.
#[track_caller]
pub fn until<T>(secs: u64, what: &str, mut ok: impl FnMut() -> Option<T>) -> T {
    until_seen(secs, what, || ok().ok_or_else(String::new))
}

/// [`until`], where each look that fails says what it saw (the last one
/// is in the failure).
#[track_caller]
pub fn until_seen<T>(secs: u64, what: &str, mut ok: impl FnMut() -> Result<T, String>) -> T {
    let start = std::time::Instant::now();
    loop {
        let seen = match ok() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "{what}: not within {secs} s\n{seen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A clock the tests move instead of sleeping: the `kube-dc` processes
/// given [`TestClock::env`] take now as the system clock plus what
/// [`TestClock::advance`] added (read again at every look).
pub struct TestClock {
    file: tempfile::NamedTempFile,
    ahead: std::cell::Cell<f64>,
}

impl TestClock {
    pub fn new() -> Self {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "0").unwrap();
        Self {
            file,
            ahead: std::cell::Cell::new(0.0),
        }
    }

    /// Moves now forward by `secs` for every process using this clock.
    pub fn advance(&self, secs: f64) {
        self.ahead.set(self.ahead.get() + secs);
        std::fs::write(self.file.path(), self.ahead.get().to_string()).unwrap();
    }

    /// The variable to give a process (`KUBE_DC_TEST_CLOCK`).
    pub fn env(&self) -> (&'static str, &str) {
        ("KUBE_DC_TEST_CLOCK", self.file.path().to_str().unwrap())
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_kube-dc");

/// A user's world: its own HOME, config and data directories.
pub struct Home {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "expected exit {want}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn local_data(&self) -> PathBuf {
        self.path().join("data/kube-dc/local")
    }

    /// `kube-dc` with nothing of the caller's environment but PATH.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("USER", "tester")
            .stdin(Stdio::null());
        // The session bus reaches the Secret Service (login tests).
        if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
            c.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_with(args, env, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run_with(args, &[], Some(stdin))
    }

    /// With more environment, and `stdin` written to its stdin (else
    /// stdin is empty).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        use std::io::Write;
        let mut c = self.cmd();
        c.envs(env.iter().copied()).args(args);
        let Some(input) = stdin else {
            return Run::from(c.output().unwrap());
        };
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
}

/// Runs `f` on a runtime owned by a background thread that lives as long
/// as the test process, and returns what it made.
fn on_background_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(f().await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

pub const BINDINGS: &str = r#"
orgs:
  acme: { adminGroups: [acme-admins], projects: [demo] }
bindings:
  - { group: acme-devs, namespace: acme-demo, role: developer }
  - { group: acme-project-admins, namespace: acme-demo, role: admin }
"#;

/// The `kube-dc-backend` binary, built by `cargo test --workspace` next to
/// `kube-dc`.
pub fn backend_bin() -> PathBuf {
    let p = Path::new(BIN).with_file_name("kube-dc-backend");
    assert!(
        p.exists(),
        "{} is missing: run the suite with `cargo test --workspace`",
        p.display()
    );
    p
}

/// `kube-dc-backend serve` as a child process, trusting a test OIDC issuer.
pub struct Remote {
    pub url: String,
    pub issuer_url: String,
    child: std::process::Child,
    _data: tempfile::TempDir,
    /// How it was started, for [`Remote::restart`].
    command: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test OIDC issuer serving for the rest of the run: its URL.
fn test_issuer_url() -> String {
    on_background_runtime(|| {
        Box::pin(async {
            let issuer = TestIssuer::start().await;
            let url = issuer.url.clone();
            std::mem::forget(issuer);
            url
        })
    })
}

impl Remote {
    pub fn start(manifests: &[(&str, &str)]) -> Self {
        Self::start_with(manifests, &[], &[])
    }

    /// With more `serve` arguments and environment.
    pub fn start_with(manifests: &[(&str, &str)], extra: &[&str], env: &[(&str, &str)]) -> Self {
        let issuer_url = test_issuer_url();
        Self::with_serve_args(&issuer_url, BINDINGS, manifests, extra, env)
    }

    /// The server trusting `issuer_url`, with the given bindings file.
    pub fn with_issuer(issuer_url: &str, bindings_yaml: &str, manifests: &[(&str, &str)]) -> Self {
        Self::with_serve_args(issuer_url, bindings_yaml, manifests, &[], &[])
    }

    /// With more `serve` arguments and environment (`--store openbao`).
    pub fn with_serve_args(
        issuer_url: &str,
        bindings_yaml: &str,
        manifests: &[(&str, &str)],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(
            issuer_url,
            bindings_yaml,
            manifests,
            extra,
            env,
            Stdio::inherit(),
        )
    }

    /// Its log (stderr, at `info`) written to the file `log`, as an
    /// operator's `2> be.err` or a unit's journal has it.
    pub fn logging_to(log: &Path) -> Self {
        let issuer_url = test_issuer_url();
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(
            &issuer_url,
            BINDINGS,
            &[],
            &[],
            &[("KUBE_DC_BACKEND_LOG", "info")],
            file.into(),
        )
    }

    fn spawn(
        issuer_url: &str,
        bindings_yaml: &str,
        manifests: &[(&str, &str)],
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Self {
        let issuer_url = issuer_url.to_string();
        let data = tempfile::tempdir().unwrap();
        let mdir = data.path().join("manifests");
        std::fs::create_dir_all(&mdir).unwrap();
        for (rel, text) in manifests {
            let p = mdir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let bindings = data.path().join("bindings.yaml");
        std::fs::write(&bindings, bindings_yaml).unwrap();
        let mut command: Vec<std::ffi::OsString> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--audience",
            "kube-dc",
            "--oidc-issuer",
            &issuer_url,
            "--data-dir",
        ]
        .iter()
        .map(Into::into)
        .collect();
        command.push(data.path().join("store").into());
        command.push("--bindings".into());
        command.push(bindings.into());
        command.push("--manifests".into());
        command.push(mdir.into());
        command.extend(extra.iter().map(Into::into));
        let env: Vec<(String, String)> = std::iter::once(("KUBE_DC_BACKEND_LOG", "warn"))
            .chain(env.iter().copied())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut child = Command::new(backend_bin())
            .args(&command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let url = kube_dc_testsupport::testing::ready_url(&mut child);
        Remote {
            url,
            issuer_url,
            child,
            _data: data,
            command,
            env,
        }
    }

    /// Its process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it (SIGKILL) and starts it again on the same data and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let addr = self.url.trim_start_matches("http://").to_string();
        let command: Vec<std::ffi::OsString> = self
            .command
            .iter()
            .map(|a| {
                if a == "127.0.0.1:0" {
                    addr.clone().into()
                } else {
                    a.clone()
                }
            })
            .collect();
        let mut child = Command::new(backend_bin())
            .args(&command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.url = kube_dc_testsupport::testing::ready_url(&mut child);
        self.child = child;
    }

    /// A token for `user` in `groups` of org acme, from the test issuer.
    pub fn token(&self, user: &str, groups: &[&str]) -> String {
        let issuer = TestIssuer {
            url: self.issuer_url.clone(),
            addr: "127.0.0.1:0".parse().unwrap(),
            up: Default::default(),
        };
        issuer.token(user, groups, Some("acme"))
    }

    /// Runs kube-dc against this backend as `user`.
    pub fn run(&self, home: &Home, user: (&str, &[&str]), args: &[&str]) -> Run {
        self.run_stdin_opt(home, user, args, None)
    }

    /// The same, with `stdin` written to its stdin.
    pub fn run_stdin(
        &self,
        home: &Home,
        user: (&str, &[&str]),
        args: &[&str],
        stdin: &[u8],
    ) -> Run {
        self.run_stdin_opt(home, user, args, Some(stdin))
    }

    /// kube-dc against this backend as `user`, not started: for a command
    /// that runs on (`--watch`).
    pub fn cli(&self, home: &Home, user: (&str, &[&str]), args: &[&str]) -> Command {
        let (all, env) = self.cli_args(user, args);
        let mut c = home.cmd();
        c.args(&all).envs(env);
        c
    }

    /// The arguments and environment of kube-dc against this backend.
    fn cli_args(
        &self,
        user: (&str, &[&str]),
        args: &[&str],
    ) -> (Vec<String>, [(String, String); 2]) {
        let token = self.token(user.0, user.1);
        // The project's namespace, except for organization-wide commands,
        // which say -n/-p does not narrow them.
        let mut all = vec!["--server".to_string(), self.url.clone()];
        if !org_wide(args) {
            all.extend(["-n".to_string(), "acme-demo".to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let env = [
            ("KUBE_DC_TOKEN".to_string(), token),
            ("KUBE_DC_ORG".to_string(), "acme".to_string()),
        ];
        (all, env)
    }

    fn run_stdin_opt(
        &self,
        home: &Home,
        user: (&str, &[&str]),
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Run {
        let (all, env) = self.cli_args(user, args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        home.run_with(&all, &env, stdin)
    }
}

/// Whether a command line is organization-wide (-n/-p do not narrow it).
pub fn org_wide(args: &[&str]) -> bool {
    args.contains(&"--csv")
        || args.contains(&"--org")
        || args.starts_with(&["orgs", "elevations"])
        || args.starts_with(&["audit", "checkpoint"])
}

/// One request as a stub server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub type Reply = (u16, &'static str, Vec<u8>);

/// A stub HTTP server that records every request and answers with `reply`.
/// For pinning wire shapes and injecting faults — not a backend.
pub struct Stub {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    pub fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_full(move |s| {
            let (status, ctype, out) = reply(s);
            axum::response::Response::builder()
                .status(status)
                .header("content-type", ctype)
                .header("x-request-id", "stub-req-1")
                .body(axum::body::Body::from(out))
                .unwrap()
        })
    }

    /// A stub whose answers are whole responses (status, any headers, body).
    pub fn start_full(
        reply: impl Fn(&Seen) -> axum::response::Response + Send + Sync + 'static,
    ) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let reply = Arc::new(reply);
        let url = on_background_runtime(move || {
            Box::pin(async move {
                let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                    let (log, reply) = (log.clone(), reply.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = axum::body::to_bytes(body, usize::MAX)
                            .await
                            .unwrap()
                            .to_vec();
                        let s = Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_string(),
                            query: parts.uri.query().map(String::from),
                            headers: parts.headers,
                            body,
                        };
                        let resp = reply(&s);
                        log.lock().unwrap().push(s);
                        resp
                    }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                format!("http://{addr}")
            })
        });
        Stub { url, seen }
    }

    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}
