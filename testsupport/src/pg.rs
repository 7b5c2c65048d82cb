//! PostgreSQL for the suites: `KUBE_DC_TEST_DATABASE` names a server
//! (`scripts/postgres.sh` starts one in a temporary directory), and each
//! test backend gets a fresh database on it.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The variable that names the test server (an admin URL).
pub const ENV: &str = "KUBE_DC_TEST_DATABASE";

/// A new, empty database's URL on the server `KUBE_DC_TEST_DATABASE`
/// names; `None` when it is unset (the suites then run on SQLite).
pub fn test_database() -> Option<String> {
    let admin = std::env::var(ENV).ok().filter(|s| !s.is_empty())?;
    Some(new_database(&admin))
}

/// A new, empty database on the server at `admin`; its URL.
pub fn new_database(admin: &str) -> String {
    let name = format!("kdc_{}", uuid::Uuid::new_v4().simple());
    let admin = admin.to_owned();
    // The driver blocks: not on the test's async runtime.
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{ENV}: cannot connect: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let mut url = url::Url::parse(&admin).expect("KUBE_DC_TEST_DATABASE is a URL");
        url.set_path(&format!("/{name}"));
        url.to_string()
    })
    .join()
    .expect("creating a test database")
}

/// A master key file (base64 of 32 random bytes, 0600) in `dir`, as an
/// operator gives every replica on one database.
pub fn master_key_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join("shared-master.key");
    if !path.exists() {
        let key: Vec<u8> = (0..2)
            .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
            .collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&key);
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .expect("master key file");
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    }
    path
}

/// A PostgreSQL server of a test's or benchmark's own, started by
/// `scripts/postgres.sh` in a temporary directory on a free port, stopped
/// when dropped.
pub struct TempServer {
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: String,
    /// Its admin URL.
    pub url: String,
}

impl TempServer {
    /// Starts one (installing PostgreSQL from Debian's packages first if
    /// it is missing and this runs as root).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let mut s = TempServer {
            _dir: dir,
            data,
            port,
            url: String::new(),
        };
        s.url = s.run("start");
        s
    }

    /// `scripts/postgres.sh CMD DIR PORT`; its output.
    pub fn run(&self, cmd: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
        let out = std::process::Command::new(script)
            .args([cmd, self.data.to_str().unwrap(), &self.port])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
        let _ = std::process::Command::new(script)
            .args(["stop", self.data.to_str().unwrap(), &self.port])
            .output();
    }
}
