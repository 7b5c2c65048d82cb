//! The `kube-dc-backend` binary: ready line, clean shutdown, persistence
//! across restarts, and several processes writing to one data directory.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube_dc_backend::testing::TestIssuer;
use serde_json::{Value, json};

const BINDINGS: &str = "orgs:\n  acme: { projects: [demo] }\nbindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n";

struct Proc {
    child: Child,
    url: String,
}

fn spawn(issuer: &TestIssuer, data: &Path, bindings: &Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
        .arg("--data-dir")
        .arg(data)
        .arg("--oidc-issuer")
        .arg(&issuer.url)
        .arg("--bindings")
        .arg(bindings)
        .env("KUBE_DC_BACKEND_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kube-dc-backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    assert_eq!(ready["ready"], true);
    let url = ready["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Proc { child, url }
}

fn terminate(mut p: Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = p.child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_line_restart_persistence_and_parallel_processes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bindings = dir.path().join("bindings.yaml");
    std::fs::write(&bindings, BINDINGS).unwrap();
    let token = issuer.token("dev", &["devs"], Some("acme"));
    let http = reqwest::Client::new();

    // First life: create a secret, then stop with SIGTERM.
    let p = spawn(&issuer, &data, &bindings);
    let r = http
        .post(format!("{}/api/secrets/acme-demo/persist", p.url))
        .bearer_auth(&token)
        .json(&json!({"initialValues": {"K": "survives-restarts"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    terminate(p);

    // Three processes on the same data directory at once.
    let procs: Vec<Proc> = (0..3).map(|_| spawn(&issuer, &data, &bindings)).collect();
    let r: Value = http
        .get(format!(
            "{}/api/secrets/acme-demo/persist?includeValue=true",
            procs[0].url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["value"]["data"]["K"], "survives-restarts");

    let mut tasks = Vec::new();
    for p in &procs {
        for i in 0..20 {
            let (http, url, token) = (http.clone(), p.url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let r = http
                    .put(format!("{url}/api/secrets/acme-demo/persist/values"))
                    .bearer_auth(&token)
                    .json(&json!({"data": {"K": format!("w{i}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                r.json::<Value>().await.unwrap()["version"]
                    .as_u64()
                    .unwrap()
            }));
        }
    }
    let mut versions = BTreeSet::new();
    for t in tasks {
        assert!(
            versions.insert(t.await.unwrap()),
            "a version number was handed out twice"
        );
    }
    assert_eq!(
        versions,
        (2..=61).collect::<BTreeSet<u64>>(),
        "no version lost"
    );
    let r: Value = http
        .get(format!("{}/api/secrets/acme-demo/persist", procs[2].url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["openbao"]["currentVersion"], 61);
    for p in procs {
        terminate(p);
    }

    // The audit chain written by four processes is intact.
    let out = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args(["verify-audit", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // create + read + 60 writes + read
    assert!(stdout.contains("intact: 63 events"), "{stdout}");
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--oidc-issuer",
        "--audience",
        "--bindings",
        "--manifests",
        "--elevation-ttl",
        "--elevation-mode",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("b.yaml");
    std::fs::write(&bindings, "bindings:\n  - { namespace: x, role: boss }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oidc-issuer",
            "http://127.0.0.1:9/realms/x",
            "--data-dir",
        ])
        .arg(dir.path().join("d"))
        .arg("--bindings")
        .arg(&bindings)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bindings file") && err.contains("b.yaml"),
        "{err}"
    );
}

/// Starts `kube-dc-backend serve` under umask 022: the running server, or
/// what it printed when it refused to start.
fn start_umask(
    issuer: &TestIssuer,
    data: &Path,
    bindings: &Path,
    key: Option<&str>,
) -> Result<Proc, String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
        .arg("--data-dir")
        .arg(data)
        .arg("--oidc-issuer")
        .arg(&issuer.url)
        .arg("--bindings")
        .arg(bindings)
        .env("KUBE_DC_BACKEND_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match key {
        Some(k) => cmd.env("KUBE_DC_BACKEND_MASTER_KEY", k),
        None => cmd.env_remove("KUBE_DC_BACKEND_MASTER_KEY"),
    };
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match serde_json::from_str::<Value>(&line) {
        Ok(v) if v["ready"] == true => Ok(Proc {
            url: v["url"].as_str().unwrap().to_string(),
            child,
        }),
        _ => {
            let out = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn modes_under(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            out.push((p.display().to_string(), mode));
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_owner_only_and_a_wrong_master_key_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issuer = TestIssuer::start().await;
    let token = issuer.token("dev", &["devs"], Some("acme"));
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("bindings.yaml");
    std::fs::write(&bindings, BINDINGS).unwrap();
    let data = dir.path().join("nested/data");
    let key_a = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 × 'A'
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 × 'B'

    // Under key A, with a value written: the database, its WAL and SHM, and
    // every directory are owner-only although the umask is 022.
    let p = start_umask(&issuer, &data, &bindings, Some(key_a)).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/secrets/acme-demo/k", p.url))
        .bearer_auth(&token)
        .json(&json!({"initialValues": {"K": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let modes = modes_under(&dir.path().join("nested"));
    for f in ["kube-dc.db", "kube-dc.db-wal", "kube-dc.db-shm"] {
        assert!(modes.iter().any(|(p, _)| p.ends_with(f)), "{f}: {modes:?}");
    }
    for (path, mode) in &modes {
        assert_eq!(mode & 0o077, 0, "{path} is {mode:o} under umask 022");
    }
    terminate(p);

    // Another key: refused at start, with what to do; nothing changed.
    let before = std::fs::read(data.join("kube-dc.db")).unwrap();
    let err = start_umask(&issuer, &data, &bindings, Some(key_b))
        .err()
        .expect("refused");
    assert!(err.contains("master key does not match"), "{err}");
    assert!(err.contains("KUBE_DC_BACKEND_MASTER_KEY"), "{err}");
    assert_eq!(std::fs::read(data.join("kube-dc.db")).unwrap(), before);
    // The right key still works.
    terminate(start_umask(&issuer, &data, &bindings, Some(key_a)).unwrap());

    // A key file others can read is refused.
    let data2 = dir.path().join("data2");
    terminate(start_umask(&issuer, &data2, &bindings, None).unwrap());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data2.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = start_umask(&issuer, &data2, &bindings, None)
        .err()
        .expect("refused");
    assert!(
        err.contains("readable by other users") && err.contains("chmod 600"),
        "{err}"
    );
}
