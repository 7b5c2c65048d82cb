//! `kube-dc-backend serve --store openbao` killed with SIGKILL in the middle
//! of its start-up reconciliation with OpenBao: after the next start every
//! version it lists has its `secrets.reconcile` audit event, and the chain
//! verifies.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube_dc_testsupport::bao_dev::{DevServer, ROOT_TOKEN};
use kube_dc_testsupport::testing::{TestIssuer, ready_url};
use serde_json::{Value, json};

const BINDINGS: &str = "orgs:\n  acme: { adminGroups: [acme-admins], projects: [demo] }\n\
     bindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n";
/// Secrets, and versions staged in OpenBao for each that the backend never
/// recorded (what a crash between OpenBao's write and the record leaves).
const SECRETS: usize = 60;
const STAGED: u64 = 3;

/// `serve` on OpenBao, logging errors (one per version adopted) to a pipe.
fn serve_cmd(dir: &Path, issuer: &TestIssuer, dev: &DevServer, prefix: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"));
    c.args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--oidc-issuer")
        .arg(&issuer.url)
        .arg("--bindings")
        .arg(dir.join("bindings.yaml"))
        .args(["--store", "openbao", "--openbao-addr", &dev.addr])
        .arg("--openbao-token-file")
        .arg(dir.join("bao-token"))
        .args(["--openbao-mount-prefix", prefix])
        .env("KUBE_DC_BACKEND_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// [`serve_cmd`] started, its log read (so that it never blocks) until it
/// exits.
fn serve(dir: &Path, issuer: &TestIssuer, dev: &DevServer, prefix: &str) -> Child {
    let mut child = serve_cmd(dir, issuer, dev, prefix)
        .spawn()
        .expect("start kube-dc-backend");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in std::io::BufReader::new(stderr).lines() {});
    child
}

/// `GET url` as `token`, its JSON.
async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn kill_9_during_reconciliation_leaves_no_version_without_its_event() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dev = DevServer::shared();
    let prefix = dev.config().mount_prefix;
    let mount = format!("{prefix}acme-demo");
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bindings.yaml"), BINDINGS).unwrap();
    std::fs::write(dir.path().join("bao-token"), ROOT_TOKEN).unwrap();
    let http = reqwest::Client::new();
    let dev_token = issuer.token("dev", &["devs"], Some("acme"));
    let admin_token = issuer.token("oscar", &["acme-admins"], Some("acme"));

    // The secrets, each at version 1.
    let mut p = serve(dir.path(), &issuer, dev, &prefix);
    let url = ready_url(&mut p);
    for i in 0..SECRETS {
        let r = http
            .post(format!("{url}/api/secrets/acme-demo/s{i}"))
            .bearer_auth(&dev_token)
            .json(&json!({"initialValues": {"K": "v1"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    p.kill().unwrap();
    p.wait().unwrap();

    // Versions 2..=1+STAGED of each reach OpenBao only.
    for i in 0..SECRETS {
        for v in 2..=1 + STAGED {
            let r = http
                .post(format!("{}/v1/{mount}/data/s{i}", dev.addr))
                .header("X-Vault-Token", ROOT_TOKEN)
                .json(&json!({"options": {"cas": v - 1}, "data": {"K": format!("staged-{v}")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }

    // Start, and kill -9 at the first version it reports adopting.
    let mut p = serve_cmd(dir.path(), &issuer, dev, &prefix)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(p.stderr.take().unwrap());
    let mut line = String::new();
    let mut seen = false;
    while log.read_line(&mut line).unwrap() > 0 {
        if line.contains("never recorded or audited") {
            seen = true;
            break;
        }
        line.clear();
    }
    p.kill().unwrap(); // SIGKILL
    p.wait().unwrap();
    assert!(seen, "the reconciliation reported no adopted version");

    // The next start finishes it; then every listed version beyond the
    // first is one some reconcile event of its secret reports.
    let mut p = serve(dir.path(), &issuer, dev, &prefix);
    let url = ready_url(&mut p);
    let audit = format!("{url}/api/audit/orgs/acme?limit=5000");
    let events = get_json(&http, &audit, &admin_token).await["events"]
        .as_array()
        .unwrap()
        .clone();
    let mut adopted_in_all = 0;
    for i in 0..SECRETS {
        let name = format!("s{i}");
        let versions = format!("{url}/api/secrets/acme-demo/{name}/versions");
        let listed: Vec<u64> = get_json(&http, &versions, &dev_token).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["version"].as_u64())
            .collect();
        assert_eq!(listed, (1..=1 + STAGED).collect::<Vec<_>>(), "{name}");
        let reported: Vec<(u64, u64)> = events
            .iter()
            .map(|e| &e["body"])
            .filter(|b| b["action"] == "secrets.reconcile" && b["resource"] == name.as_str())
            .map(|b| {
                (
                    b["recorded_version"].as_u64().unwrap(),
                    b["openbao_version"].as_u64().unwrap(),
                )
            })
            .collect();
        for v in 2..=1 + STAGED {
            assert!(
                reported.iter().any(|(from, to)| *from < v && v <= *to),
                "version {v} of {name} is listed but no secrets.reconcile event reports it: \
                 {reported:?}"
            );
        }
        adopted_in_all += reported.len();
        // And it reads back as what OpenBao holds.
        let read = format!(
            "{url}/api/secrets/acme-demo/{name}?includeValue=true&version={}",
            1 + STAGED
        );
        let r = get_json(&http, &read, &dev_token).await;
        assert_eq!(r["value"]["data"]["K"], format!("staged-{}", 1 + STAGED));
    }
    assert!(adopted_in_all >= SECRETS, "{adopted_in_all}");
    p.kill().unwrap();
    p.wait().unwrap();
    // The chain holds every event, in order.
    let out = Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
        .args(["verify-audit", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates cut off by SIGKILL leave paths in OpenBao that no secret owns;
/// the same creates made again all succeed (or find the secret created,
/// when the first attempt was recorded): no name is blocked by the
/// backend's own leftovers.
#[tokio::test]
async fn creates_cut_off_by_kill_9_can_be_made_again() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dev = DevServer::shared();
    let prefix = dev.config().mount_prefix;
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bindings.yaml"), BINDINGS).unwrap();
    std::fs::write(dir.path().join("bao-token"), ROOT_TOKEN).unwrap();
    let token = issuer.token("dev", &["devs"], Some("acme"));
    const CREATES: usize = 200;
    let create = |http: reqwest::Client, url: String, i: usize| {
        let token = token.clone();
        async move {
            let r = http
                .post(format!("{url}/api/secrets/acme-demo/c{i}"))
                .bearer_auth(&token)
                .json(&json!({"initialValues": {"K": format!("v{i}")}}))
                .send()
                .await
                .ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<Value>().await.unwrap_or_default()))
        }
    };
    let http = reqwest::Client::new();
    let mut p = serve(dir.path(), &issuer, dev, &prefix);
    let url = ready_url(&mut p);
    // Many creates at once; SIGKILL once a third of them are answered.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..CREATES {
        let (f, answered) = (create(http.clone(), url.clone(), i), answered.clone());
        tasks.push(tokio::spawn(async move {
            let r = f.await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        }));
    }
    let waited = std::time::Instant::now();
    while answered.load(std::sync::atomic::Ordering::SeqCst) < CREATES / 3
        && waited.elapsed() < std::time::Duration::from_secs(20)
    {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    p.kill().unwrap();
    p.wait().unwrap();
    let mut first = Vec::new();
    for t in tasks {
        first.push(t.await.unwrap());
    }
    let ok = |r: &Option<(u16, Value)>| r.as_ref().is_some_and(|(s, _)| *s == 200);
    let cut = first.iter().filter(|r| !ok(r)).count();
    assert!(cut > 0, "the kill cut no create off");

    let mut p = serve(dir.path(), &issuer, dev, &prefix);
    let url = ready_url(&mut p);
    for (i, before) in first.iter().enumerate() {
        // Made now, or found created (the first attempt was recorded,
        // acknowledged or not); never refused over a leftover.
        let again = create(http.clone(), url.clone(), i).await;
        match &again {
            Some((200, _)) => assert!(!ok(before), "c{i} was created twice"),
            Some((409, body)) if body["reason"] == "exists" => {}
            _ => panic!("c{i}: {before:?} then {again:?}"),
        }
        let read = format!("{url}/api/secrets/acme-demo/c{i}?includeValue=true");
        let r = get_json(&http, &read, &token).await;
        assert_eq!(r["value"]["data"]["K"], format!("v{i}"), "c{i}: {r}");
    }
    p.kill().unwrap();
    p.wait().unwrap();
}
