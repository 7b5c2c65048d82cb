//! What the benchmarks (the CLI's and the backend's) share: finding the
//! release binaries, starting `kube-dc-backend serve` against an
//! in-process OIDC issuer, and printing one row of the B1–B9 table.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::testing::TestIssuer;

/// A release binary of the workspace, next to the benchmark's own.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release --workspace` first (scripts/bench.sh does)",
        p.display()
    );
    p
}

/// `kube-dc-backend serve` on a loopback port, one organization `acme`
/// with project `demo`, user `dev` its admin.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub issuer: TestIssuer,
}

impl Server {
    pub fn start(rt: &tokio::runtime::Runtime, dir: &Path) -> Self {
        let issuer = rt.block_on(TestIssuer::start());
        std::fs::create_dir_all(dir).unwrap();
        let bindings = dir.join("bindings.yaml");
        std::fs::write(
            &bindings,
            "orgs:\n  acme: { projects: [demo], adminUsers: [dev] }\nbindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n",
        )
        .unwrap();
        let mut child = Command::new(bin("kube-dc-backend"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--oidc-issuer",
                &issuer.url,
            ])
            .arg("--bindings")
            .arg(&bindings)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("KUBE_DC_BACKEND_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let url = crate::testing::ready_url(&mut child);
        let token = issuer.token("dev", &["devs"], Some("acme"));
        Server {
            child,
            url,
            token,
            issuer,
        }
    }

    /// `curl` with the bearer token, failing on HTTP errors.
    /// Creates secret `db` in acme-demo with `PASSWORD=value`; its URL.
    pub fn create_db(&self, value: &str) -> String {
        let secret = format!("{}/api/secrets/acme-demo/db", self.url);
        let body = serde_json::json!({"type": "opaque", "initialValues": {"PASSWORD": value}});
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
            &secret,
        ]);
        secret
    }

    pub fn curl(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-H"])
            .arg(format!("Authorization: Bearer {}", self.token))
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row of the results table; `scripts/bench.sh` gathers the rows of
/// every benchmark into one table.
pub fn row(id: &str, measure: &str, figure: &str, target: &str, met: bool) {
    println!(
        "| {id} | {measure} | {figure} | {target} | {} |",
        if met { "met" } else { "NOT MET" }
    );
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What one run of `query` costs the `sqlite3` shell: the shell is timed
/// running it `REPEAT` times and running nothing, each three times, and the
/// difference of the medians is divided by `REPEAT`. (The shell's own
/// `.timer` counts whole milliseconds, too coarse for a 1 ms query.) The
/// rows are printed, to /dev/null.
pub fn sqlite3_time(db: &Path, query: &str) -> Duration {
    use std::io::Write;
    const REPEAT: u32 = 20;
    let run = |script: &str| {
        let t = std::time::Instant::now();
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sqlite3 on PATH");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "sqlite3 failed");
        t.elapsed()
    };
    let script = format!("{query};\n").repeat(REPEAT as usize);
    let idle = median((0..3).map(|_| run("")).collect());
    let busy = median((0..3).map(|_| run(&script)).collect());
    busy.saturating_sub(idle) / REPEAT
}

/// `n` secrets with one version each in the local context's namespace,
/// created through the store from several threads (group commit).
pub fn seed_secrets(data: &Path, n: usize) {
    std::fs::create_dir_all(data).unwrap();
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(data, None).unwrap();
    let store = std::sync::Arc::new(kube_dc_backend::store::Store::open(data, cipher).unwrap());
    let threads = 16;
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = store.clone();
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let mut d = kube_dc_api::wire::Data::new();
                    d.insert(
                        "PASSWORD".into(),
                        kube_dc_api::wire::Sensitive::new(format!("value-{i}")),
                    );
                    let new = kube_dc_backend::store::NewSecret {
                        namespace: "local-default".into(),
                        name: format!("secret-{i:05}"),
                        kind: "opaque".into(),
                        description: Some(format!("bench secret {i}")),
                        sync: Default::default(),
                        rotation: None,
                        rotation_interval: None,
                        imported_from: None,
                    };
                    store
                        .create(new, Some(&d), 1_760_000_000_000, || Ok(()), None)
                        .unwrap();
                }
            });
        }
    });
}
