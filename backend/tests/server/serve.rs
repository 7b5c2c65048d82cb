//! The `kube-dc-backend` binary: ready line, clean shutdown, persistence
//! across restarts, and several processes writing to one data directory.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube_dc_testsupport::testing::{TestIssuer, first_line, ready_url};
use serde_json::{Value, json};

const BINDINGS: &str = "orgs:\n  acme: { projects: [demo] }\nbindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n";

struct Proc {
    child: Child,
    url: String,
}

/// `kube-dc-backend serve` on a free port, as `program` starts it (the
/// binary itself, or a shell that execs it).
fn serve_command(
    mut program: Command,
    issuer: &TestIssuer,
    data: &Path,
    bindings: &Path,
) -> Command {
    program
        .args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
        .arg("--data-dir")
        .arg(data)
        .arg("--oidc-issuer")
        .arg(&issuer.url)
        .arg("--bindings")
        .arg(bindings)
        .env("KUBE_DC_BACKEND_LOG", "warn")
        .stdout(Stdio::piped());
    program
}

/// The test issuer and a scratch directory holding `bindings.yaml` with
/// `yaml`; returns the issuer, the directory and the bindings file's path.
async fn setup(yaml: &str) -> (TestIssuer, tempfile::TempDir, std::path::PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("bindings.yaml");
    std::fs::write(&bindings, yaml).unwrap();
    (issuer, dir, bindings)
}

fn spawn(issuer: &TestIssuer, data: &Path, bindings: &Path) -> Proc {
    let backend = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"));
    let mut child = serve_command(backend, issuer, data, bindings)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kube-dc-backend");
    let url = ready_url(&mut child);
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
    let (issuer, dir, bindings) = setup(BINDINGS).await;
    let data = dir.path().join("data");
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
        "--workers",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("b.yaml");
    std::fs::write(&bindings, "bindings:\n  - { namespace: x, role: boss }\n").unwrap();
    // `serve` with `extra`, which must refuse to start: what it said.
    let refused = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--oidc-issuer", "http://127.0.0.1:9/realms/x"])
            .arg("--data-dir")
            .arg(dir.path().join("d"))
            .arg("--bindings")
            .arg(&bindings)
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&[]);
    assert!(
        err.contains("bindings file") && err.contains("b.yaml"),
        "{err}"
    );
    // No request thread at all is refused before anything starts.
    let err = refused(&["--workers", "0"]);
    assert!(err.contains("--workers") && err.contains("'0'"), "{err}");
    assert!(!dir.path().join("d").exists(), "nothing created");
}

/// Starts `kube-dc-backend serve` under umask 022: the running server, or
/// what it printed when it refused to start.
fn start_umask(
    issuer: &TestIssuer,
    data: &Path,
    bindings: &Path,
    key: Option<&str>,
) -> Result<Proc, String> {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_kube-dc-backend"));
    let mut cmd = serve_command(shell, issuer, data, bindings);
    cmd.stderr(Stdio::piped());
    match key {
        Some(k) => cmd.env("KUBE_DC_BACKEND_MASTER_KEY", k),
        None => cmd.env_remove("KUBE_DC_BACKEND_MASTER_KEY"),
    };
    let mut child = cmd.spawn().unwrap();
    let line = first_line(&mut child);
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
    let (issuer, dir, bindings) = setup(BINDINGS).await;
    let token = issuer.token("dev", &["devs"], Some("acme"));
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

const CRASH_BINDINGS: &str = "orgs:\n  acme: { projects: [demo] }\n  globex: { projects: [demo] }\n\
bindings:\n  - { group: devs, namespace: acme-demo, role: developer }\n  - { group: devs, namespace: globex-demo, role: developer }\n";

/// One write a writer sent: its secret, the value, and the version the
/// server acknowledged (None: no answer before the crash).
struct Sent {
    ns: &'static str,
    name: String,
    value: String,
    acked: Option<u64>,
}

/// Writers in two organizations put values concurrently; the server is
/// killed with SIGKILL mid-flight, several times, then restarted. Afterwards:
/// every acknowledged write reads back with its value, every version that
/// survived has its audit event, and each organization's chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_flight_loses_no_acknowledged_write_and_no_audit_event() {
    let (issuer, dir, bindings) = setup(CRASH_BINDINGS).await;
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let tokens = [
        ("acme-demo", issuer.token("dev-a", &["devs"], Some("acme"))),
        (
            "globex-demo",
            issuer.token("dev-g", &["devs"], Some("globex")),
        ),
    ];
    const WRITERS: usize = 12;
    const ROUNDS: usize = 4;
    // Each writer has a secret of its own, written at most twice a round
    // (8 versions in all, inside the 10-version history window).
    let p = spawn(&issuer, &data, &bindings);
    for w in 0..WRITERS {
        let (ns, token) = &tokens[w % 2];
        let r = http
            .post(format!("{}/api/secrets/{ns}/w{w}", p.url))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    terminate(p);

    let mut sent: Vec<Sent> = Vec::new();
    let mut killed_in_flight = 0;
    for round in 0..ROUNDS {
        let mut p = spawn(&issuer, &data, &bindings);
        let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (ns, token) = (tokens[w % 2].0, tokens[w % 2].1.clone());
            let (http, url, acks) = (http.clone(), p.url.clone(), acks.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..2 {
                    let value = format!("r{round}-w{w}-{i}");
                    let r = http
                        .put(format!("{url}/api/secrets/{ns}/w{w}/values"))
                        .bearer_auth(&token)
                        .json(&json!({"data": {"K": value}}))
                        .send()
                        .await;
                    let acked = match r {
                        Ok(r) if r.status() == 200 => r
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|v| v["version"].as_u64()),
                        _ => None,
                    };
                    let stop = acked.is_none();
                    if !stop {
                        acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    out.push(Sent {
                        ns,
                        name: format!("w{w}"),
                        value,
                        acked,
                    });
                    if stop {
                        break;
                    }
                }
                out
            }));
        }
        // Kill while the writers are busy: once a third to a half of this
        // round's writes are acknowledged, the rest are on their way.
        let at = WRITERS * 2 * (3 + round % 3) / 9;
        let waited = std::time::Instant::now();
        while acks.load(std::sync::atomic::Ordering::SeqCst) < at
            && waited.elapsed() < std::time::Duration::from_secs(10)
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        p.child.kill().unwrap(); // SIGKILL
        p.child.wait().unwrap();
        for t in tasks {
            let out = t.await.unwrap();
            killed_in_flight += out.iter().filter(|s| s.acked.is_none()).count();
            sent.extend(out);
        }
    }

    let p = spawn(&issuer, &data, &bindings);
    let acked: Vec<&Sent> = sent.iter().filter(|s| s.acked.is_some()).collect();
    // Every acknowledged write reads back with its value.
    for s in &acked {
        let token = &tokens.iter().find(|(ns, _)| *ns == s.ns).unwrap().1;
        let v: Value = http
            .get(format!(
                "{}/api/secrets/{}/{}?includeValue=true&version={}",
                p.url,
                s.ns,
                s.name,
                s.acked.unwrap()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["value"]["data"]["K"],
            s.value.as_str(),
            "{}/{} v{:?}",
            s.ns,
            s.name,
            s.acked
        );
    }
    // Every version that survived has its audit event, in its owner's log.
    let mut durable = 0;
    for (org, ns) in [("acme", "acme-demo"), ("globex", "globex-demo")] {
        let admin = issuer.token(&format!("admin-{org}"), &["org-admin"], Some(org));
        let dev = &tokens.iter().find(|(n, _)| *n == ns).unwrap().1;
        let events: Value = http
            .get(format!(
                "{}/api/audit/orgs/{org}?service=secrets&limit=5000",
                p.url
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audited: BTreeSet<(String, u64)> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["body"])
            .filter(|b| b["action"] == "secrets.value.write" && b["result"] == "allowed")
            .map(|b| {
                (
                    b["resource"].as_str().unwrap().to_string(),
                    b["version"].as_u64().unwrap(),
                )
            })
            .collect();
        for w in (0..WRITERS).filter(|w| tokens[w % 2].0 == ns) {
            let versions: Value = http
                .get(format!("{}/api/secrets/{ns}/w{w}/versions", p.url))
                .bearer_auth(dev)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for v in versions["items"].as_array().unwrap() {
                let v = v["version"].as_u64().unwrap();
                assert!(
                    audited.contains(&(format!("w{w}"), v)),
                    "{ns}/w{w} v{v} has no audit event"
                );
                durable += 1;
            }
        }
        let verify: Value = http
            .get(format!("{}/api/audit/orgs/{org}/verify", p.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verify["ok"], true, "{org}: {verify}");
    }
    terminate(p);
    println!(
        "crash test: {ROUNDS} kill -9 rounds, {WRITERS} writers in 2 organizations; {} writes sent, {} acknowledged (all read back), {killed_in_flight} cut off by the kill, {durable} durable versions (all audited), both chains intact",
        sent.len(),
        acked.len()
    );
    assert!(
        killed_in_flight > 0,
        "the kill never caught a write in flight: raise the load"
    );
}
