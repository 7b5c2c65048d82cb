//! Several `kube-dc-backend serve` processes on one PostgreSQL database
//! (`--database`): check-and-set across replicas, elevation windows that
//! any replica honours, one audit chain per organization, a replica killed
//! behind HAProxy under write load, a PostgreSQL restart mid-load, and
//! `migrate-store` from a data directory.
//!
//! Needs a PostgreSQL server: `KUBE_DC_TEST_DATABASE` (an admin URL;
//! `scripts/postgres.sh start DIR` prints one). Without it each test says
//! so and fails, unless `KUBE_DC_SKIP_POSTGRES=1` says to skip them
//! (`scripts/test.sh` always starts a server).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_dc_testsupport::haproxy::Haproxy;
use kube_dc_testsupport::pg::TempServer;
use kube_dc_testsupport::testing::{TestIssuer, ready_url};
use serde_json::{Value, json};

const BINDINGS: &str = "orgs:
  acme: { adminGroups: [acme-admins], projects: [demo] }
  globex: { adminGroups: [globex-admins], projects: [demo] }
bindings:
  - { group: devs, namespace: acme-demo, role: admin }
  - { group: gdevs, namespace: globex-demo, role: admin }
";

/// The test server's admin URL, or `None` when the suite is told to skip.
fn admin_url() -> Option<String> {
    match std::env::var(kube_dc_testsupport::pg::ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("KUBE_DC_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("skipped: KUBE_DC_SKIP_POSTGRES=1");
            None
        }
        _ => panic!(
            "these tests need PostgreSQL: set {} (scripts/postgres.sh start DIR prints one), \
             or KUBE_DC_SKIP_POSTGRES=1",
            kube_dc_testsupport::pg::ENV
        ),
    }
}

/// What every replica of one installation shares: the issuer, the
/// database, the master key, the audit signing key and the bindings.
struct Cluster {
    issuer: TestIssuer,
    dir: tempfile::TempDir,
    database: String,
    master_key: PathBuf,
    audit_key: PathBuf,
    bindings: PathBuf,
    http: reqwest::Client,
}

struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn backend() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kube-dc-backend"))
}

impl Cluster {
    async fn new(database: String) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let issuer = TestIssuer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let bindings = dir.path().join("bindings.yaml");
        std::fs::write(&bindings, BINDINGS).unwrap();
        let master_key = kube_dc_testsupport::pg::master_key_file(dir.path());
        // One signing key for all replicas: made once, then given to each.
        let keys = dir.path().join("keys");
        let out = backend()
            .args(["audit-key", "--data-dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            issuer,
            database,
            master_key,
            audit_key: keys.join("audit-signing-key.pem"),
            bindings,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir,
        }
    }

    /// A replica on a free port, with a data directory of its own (which
    /// holds nothing the others need).
    fn replica(&self, name: &str) -> Replica {
        let mut child = backend()
            .args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
            .arg("--data-dir")
            .arg(self.dir.path().join(name))
            .arg("--database")
            .arg(&self.database)
            .arg("--master-key-file")
            .arg(&self.master_key)
            .arg("--audit-key-file")
            .arg(&self.audit_key)
            .arg("--oidc-issuer")
            .arg(&self.issuer.url)
            .arg("--bindings")
            .arg(&self.bindings)
            .args(["--rotation-tick-ms", "200"])
            .env("KUBE_DC_BACKEND_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kube-dc-backend");
        let url = ready_url(&mut child);
        Replica { child, url }
    }

    fn dev(&self) -> String {
        self.issuer.token("dev", &["devs"], Some("acme"))
    }

    fn admin(&self) -> String {
        self.issuer.token("oscar", &["acme-admins"], Some("acme"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, url: String, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, url, token, None).await
    }

    async fn delete(&self, url: String, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, url, token, None).await
    }

    async fn post(&self, url: String, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, url, token, Some(body))
            .await
    }

    async fn put(&self, url: String, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, url, token, Some(body))
            .await
    }

    /// Each of `orgs` has its chain intact in the database.
    fn assert_chains_intact(&self, orgs: &[&str]) {
        let report = self.verify_chains();
        for org in orgs {
            assert!(
                report.contains(&format!("audit chain of {org:?} intact")),
                "{report}"
            );
        }
    }

    /// `kube-dc-backend verify-audit --database`: every organization's
    /// chain; its stdout.
    fn verify_chains(&self) -> String {
        let out = backend()
            .arg("verify-audit")
            .arg("--data-dir")
            .arg(self.dir.path().join("verify"))
            .arg("--database")
            .arg(&self.database)
            .arg("--master-key-file")
            .arg(&self.master_key)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "verify-audit: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

/// One acknowledged write and what it wrote.
#[derive(Clone, Debug)]
struct Acked {
    name: String,
    version: u64,
    value: String,
}

/// Every acknowledged write reads back, by its version, with its value.
async fn read_back(c: &Cluster, url: &str, acked: &[Acked]) {
    let token = c.dev();
    for a in acked {
        let (status, body) = c
            .get(
                format!(
                    "{url}/api/secrets/acme-demo/{}?includeValue=true&version={}",
                    a.name, a.version
                ),
                &token,
            )
            .await;
        assert_eq!(status, 200, "{a:?}: {body}");
        assert_eq!(body["value"]["data"]["K"], a.value, "{a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_versions_windows_and_one_chain() {
    let Some(admin) = admin_url() else { return };
    let c = Cluster::new(kube_dc_testsupport::pg::new_database(&admin)).await;
    let (a, b) = (c.replica("a"), c.replica("b"));
    let dev = c.dev();
    let urls = [a.url.clone(), b.url.clone()];
    let (status, body) = c
        .post(
            format!("{}/api/secrets/acme-demo/counter", a.url),
            &dev,
            json!({"initialValues": {"K": "0"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A counter incremented with check-and-set by writers on both
    // replicas: a lost update would leave it below the number of writes
    // acknowledged.
    const WRITERS: usize = 6;
    const INCREMENTS: usize = 8;
    let c = Arc::new(c);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (c, url, dev) = (c.clone(), urls[w % 2].clone(), dev.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut conflicts = 0;
            while acked.len() < INCREMENTS {
                let (_, cur) = c
                    .get(
                        format!("{url}/api/secrets/acme-demo/counter?includeValue=true"),
                        &dev,
                    )
                    .await;
                let version = cur["value"]["metadata"]["version"].as_u64().unwrap();
                let n: u64 = cur["value"]["data"]["K"].as_str().unwrap().parse().unwrap();
                let (status, body) = c
                    .put(
                        format!("{url}/api/secrets/acme-demo/counter/values"),
                        &dev,
                        json!({"data": {"K": (n + 1).to_string()}, "cas": version}),
                    )
                    .await;
                match status {
                    200 => acked.push(Acked {
                        name: "counter".into(),
                        version: body["version"].as_u64().unwrap(),
                        value: (n + 1).to_string(),
                    }),
                    409 => conflicts += 1,
                    other => panic!("PUT with cas: {other} {body}"),
                }
            }
            (acked, conflicts)
        }));
    }
    let mut acked = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (a, n) = t.await.unwrap();
        acked.extend(a);
        conflicts += n;
    }
    let total = WRITERS * INCREMENTS;
    let mut versions: Vec<u64> = acked.iter().map(|a| a.version).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        total,
        "every acknowledged write has a version of its own"
    );
    let (_, last) = c
        .get(
            format!("{}/api/secrets/acme-demo/counter?includeValue=true", b.url),
            &dev,
        )
        .await;
    assert_eq!(
        last["value"]["data"]["K"],
        total.to_string(),
        "no lost update ({conflicts} check-and-set conflicts were refused)"
    );
    // Only the newest versions are kept; those read back from either replica.
    let kept: Vec<Acked> = acked
        .iter()
        .filter(|a| a.version + 10 > versions[versions.len() - 1] + 1)
        .cloned()
        .collect();
    read_back(&c, &a.url, &kept).await;
    read_back(&c, &b.url, &kept).await;

    // A window opened on one replica is honoured on the other, and
    // released there.
    let admin_token = c.admin();
    let reveal = |url: &str| format!("{url}/api/secrets/acme-demo/counter?includeValue=true");
    assert_eq!(c.get(reveal(&b.url), &admin_token).await.0, 403);
    let (status, grant) = c
        .post(
            format!("{}/api/orgs/acme/projects/demo/elevate", a.url),
            &admin_token,
            json!({"reason": "INC-1"}),
        )
        .await;
    assert_eq!(status, 200, "{grant}");
    let (status, body) = c.get(reveal(&b.url), &admin_token).await;
    assert_eq!(
        status, 200,
        "the window opened on a is honoured on b: {body}"
    );
    let (status, _) = c
        .delete(
            format!("{}/api/orgs/acme/projects/demo/elevate", b.url),
            &admin_token,
        )
        .await;
    assert_eq!(status, 200, "released on b");
    assert_eq!(
        c.get(reveal(&a.url), &admin_token).await.0,
        403,
        "the release on b holds on a"
    );

    // Events of another organization, through both replicas.
    let gdev = c.issuer.token("gdev", &["gdevs"], Some("globex"));
    for (i, url) in urls.iter().enumerate() {
        let (status, _) = c
            .post(
                format!("{url}/api/secrets/globex-demo/g{i}"),
                &gdev,
                json!({"initialValues": {"K": "v"}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    c.assert_chains_intact(&["acme", "globex"]);
    // The events of both replicas are in the chain: each acknowledged
    // write once.
    let (status, events) = c
        .get(
            format!("{}/api/audit/orgs/acme?service=secrets&limit=5000", a.url),
            &admin_token,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let puts = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["body"]["action"] == "secrets.value.write" && e["body"]["result"] == "allowed"
        })
        .count();
    assert_eq!(puts, total, "one allowed event per acknowledged write");
}

/// Writers that each create secrets (one write, version 1, each), through
/// `url`, until told to stop: what was acknowledged, and the failures
/// (status with its Retry-After, or transport) with when they happened.
async fn write_load(
    c: &Arc<Cluster>,
    url: &str,
    writers: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> (Vec<Acked>, Vec<(Instant, String)>) {
    let dev = c.dev();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (c, url, dev, stop, acks) = (
            c.clone(),
            url.to_owned(),
            dev.clone(),
            stop.clone(),
            acks.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let (name, value) = (format!("load{w}-{i}"), format!("v{w}-{i}"));
                let r = c
                    .http
                    .post(format!("{url}/api/secrets/acme-demo/{name}"))
                    .bearer_auth(&dev)
                    .json(&json!({"initialValues": {"K": value}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        acked.push(Acked {
                            name,
                            version: 1,
                            value,
                        });
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => {
                        let retry = r
                            .headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap_or("").to_owned());
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        errors.push((
                            Instant::now(),
                            format!("{status} retry-after={retry:?} {body}"),
                        ));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => {
                        errors.push((Instant::now(), format!("transport: {e}")));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (acked, errors)
        }));
    }
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (a, e) = t.await.unwrap();
        acked.extend(a);
        errors.extend(e);
    }
    (acked, errors)
}

async fn wait_for(acks: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while acks.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the load stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_behind_haproxy_loses_no_acknowledged_write() {
    let Some(admin) = admin_url() else { return };
    let c = Arc::new(Cluster::new(kube_dc_testsupport::pg::new_database(&admin)).await);
    let a = c.replica("a");
    let mut b = c.replica("b");
    let lb = Haproxy::start(c.dir.path(), &[&a.url, &b.url]);
    const WRITERS: usize = 8;
    let (stop, acks) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let load = {
        let (c, url, stop, acks) = (c.clone(), lb.url.clone(), stop.clone(), acks.clone());
        tokio::spawn(async move { write_load(&c, &url, WRITERS, stop, acks).await })
    };
    wait_for(&acks, 200).await;
    let killed_at = Instant::now();
    let before = acks.load(Ordering::SeqCst);
    b.child.kill().unwrap(); // SIGKILL
    b.child.wait().unwrap();
    wait_for(&acks, before + 200).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, errors) = load.await.unwrap();
    let last_error = errors
        .iter()
        .map(|(t, _)| t.saturating_duration_since(killed_at))
        .max();
    eprintln!(
        "replica kill behind HAProxy: {} writes acknowledged, {} failed ({:?}); the last \
         failure {:?} after the kill",
        acked.len(),
        errors.len(),
        errors.iter().map(|(_, e)| e).collect::<Vec<_>>(),
        last_error
    );
    // Only the requests in flight on the killed replica fail: at most one
    // per writer.
    assert!(errors.len() <= WRITERS, "{errors:?}");
    read_back(&c, &a.url, &acked).await;
    c.assert_chains_intact(&["acme"]);
    drop(lb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_mid_load_answers_503_then_recovers() {
    let Some(_) = admin_url() else { return };
    // A server of its own: the shared one serves the other tests.
    let server = TempServer::start();
    let admin = server.url.clone();
    let pg = |cmd: &str| server.run(cmd);
    let c = Arc::new(Cluster::new(kube_dc_testsupport::pg::new_database(&admin)).await);
    let a = c.replica("a");
    let (stop, acks) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let load = {
        let (c, url, stop, acks) = (c.clone(), a.url.clone(), stop.clone(), acks.clone());
        tokio::spawn(async move { write_load(&c, &url, 4, stop, acks).await })
    };
    wait_for(&acks, 100).await;
    let (status, ready) = c.get(format!("{}/readyz", a.url), "x").await;
    assert_eq!(
        (status, ready["database"]["reachable"].clone()),
        (200, json!(true))
    );
    pg("stop");
    // While it is down: 503 with Retry-After, and /readyz says so.
    let (status, ready) = c.get(format!("{}/readyz", a.url), "x").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["database"]["reachable"], false, "{ready}");
    let down = acks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg("start");
    wait_for(&acks, down + 100).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, errors) = load.await.unwrap();
    eprintln!(
        "PostgreSQL restart: {} writes acknowledged, {} answered while it was down: {:?}",
        acked.len(),
        errors.len(),
        errors
            .iter()
            .map(|(_, e)| e.split(",\"requestId\"").next().unwrap_or(e))
            .fold(BTreeMap::<&str, usize>::new(), |mut m, e| {
                *m.entry(e).or_default() += 1;
                m
            })
    );
    assert!(
        !errors.is_empty(),
        "writes were refused while the database was down"
    );
    for (_, e) in &errors {
        assert!(
            e.starts_with("503") && e.contains("retry-after=Some("),
            "a 503 with Retry-After: {e}"
        );
    }
    read_back(&c, &a.url, &acked).await;
    c.assert_chains_intact(&["acme"]);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_a_data_directory_with_its_chains() {
    let Some(admin) = admin_url() else { return };
    // With a password in the URL (trust authentication ignores it), which
    // no output may show.
    let database = kube_dc_testsupport::pg::new_database(&admin).replacen(
        "://kubedc@",
        "://kubedc:pw-not-shown@",
        1,
    );
    let c = Cluster::new(database.clone()).await;
    // An installation on SQLite, with values, history and events.
    let data = c.dir.path().join("sqlite-data");
    let mut child = backend()
        .args(["serve", "--listen", "127.0.0.1:0", "--audience", "kube-dc"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--oidc-issuer")
        .arg(&c.issuer.url)
        .arg("--bindings")
        .arg(&c.bindings)
        .env("KUBE_DC_BACKEND_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = ready_url(&mut child);
    let dev = c.dev();
    let mut acked = Vec::new();
    for i in 0..3 {
        let name = format!("s{i}");
        let (status, _) = c
            .post(
                format!("{url}/api/secrets/acme-demo/{name}"),
                &dev,
                json!({"initialValues": {"K": format!("{name}-1")}}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, body) = c
            .put(
                format!("{url}/api/secrets/acme-demo/{name}/values"),
                &dev,
                json!({"data": {"K": format!("{name}-2")}}),
            )
            .await;
        assert_eq!(status, 200);
        acked.push(Acked {
            name: name.clone(),
            version: 1,
            value: format!("{name}-1"),
        });
        acked.push(Acked {
            name,
            version: body["version"].as_u64().unwrap(),
            value: format!("s{i}-2"),
        });
    }
    let (_, before) = c
        .get(format!("{url}/api/audit/orgs/acme?limit=1000"), &c.admin())
        .await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();

    let out = backend()
        .arg("migrate-store")
        .arg(format!("--from=sqlite:{}", data.display()))
        .arg(format!("--to={database}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("audit chain of \"acme\" intact after the move"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("***"), "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("pw-not-shown"),
        "no password echoed"
    );
    // A second move into the same database is refused.
    let again = backend()
        .arg("migrate-store")
        .arg(format!("--from=sqlite:{}", data.display()))
        .arg(format!("--to={database}"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // Replicas on the moved store, with the source's master key.
    let c = Cluster {
        master_key: data.join("master.key"),
        ..c
    };
    let r = c.replica("after");
    read_back(&c, &r.url, &acked).await;
    let (_, after) = c
        .get(
            format!("{}/api/audit/orgs/acme?limit=1000", r.url),
            &c.admin(),
        )
        .await;
    let hashes = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["body"]["hash"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (before, after) = (hashes(&before), hashes(&after));
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|h| after.contains(h)),
        "the moved chain holds the source's events"
    );
    let (status, _) = c
        .put(
            format!("{}/api/secrets/acme-demo/s0/values", r.url),
            &dev,
            json!({"data": {"K": "after-the-move"}}),
        )
        .await;
    assert_eq!(status, 200);
    c.assert_chains_intact(&["acme"]);
}

#[test]
fn a_lease_is_held_by_one_replica_and_moves_when_it_runs_out() {
    let Some(admin) = admin_url() else { return };
    let database = kube_dc_testsupport::pg::new_database(&admin);
    let open = || {
        kube_dc_backend::store::Store::open_postgres(
            &database,
            Arc::new(kube_dc_backend::crypto::Cipher::new(&[7u8; 32])),
            Arc::new(kube_dc_backend::store::NoValues),
        )
        .unwrap()
    };
    let (a, b) = (open(), open());
    assert!(
        a.lease("rotations", "a", 300).unwrap(),
        "a takes the free lease"
    );
    assert!(
        !b.lease("rotations", "b", 300).unwrap(),
        "b waits while a holds it"
    );
    assert!(a.lease("rotations", "a", 300).unwrap(), "a renews it");
    assert!(
        b.lease("checkpoints", "b", 300).unwrap(),
        "another lease is another's"
    );
    // a stops renewing (it died): the lease runs out and moves to b.
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        b.lease("rotations", "b", 300).unwrap(),
        "b takes it once it ran out"
    );
    assert!(
        !a.lease("rotations", "a", 300).unwrap(),
        "a, back, does not take it over"
    );
    b.release_lease("rotations", "b").unwrap();
    assert!(
        a.lease("rotations", "a", 300).unwrap(),
        "released: free at once"
    );
}
