//! The `kube-dc-backend` binary: ready line, clean shutdown, persistence
//! across restarts, and several processes writing to one data directory.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube_dc_backend::testing::TestIssuer;
use serde_json::{Value, json};

const BINDINGS: &str = "bindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n";

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
