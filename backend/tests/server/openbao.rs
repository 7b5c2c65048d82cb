//! The backend on OpenBao (`--store openbao`) against a real `bao server
//! -dev`: what the API writes is what `bao kv` shows, a write that never
//! reached the SQL store is found and reported at start, and the shipped
//! policy is all the backend's token needs. (The whole API suite also runs
//! on OpenBao: `KUBE_DC_TEST_STORE=openbao`, see `scripts/test.sh`.)

use crate::common::*;
use kube_dc_backend::openbao::OpenBaoConfig;
use kube_dc_testsupport::bao_dev::{DevServer, ROOT_TOKEN};
use serde_json::{Value, json};

fn secrets(path: &str) -> String {
    format!("/api/secrets/{NS}{path}")
}

/// `bao kv ARGS… -format=json -mount=MOUNT NAME` as the root token: its
/// JSON, when it succeeded.
fn kv(dev: &DevServer, args: &[&str], mount: &str, name: &str) -> Option<Value> {
    let mount = format!("-mount={mount}");
    let mut all = vec!["kv"];
    all.extend_from_slice(args);
    all.extend(["-format=json", &mount, name]);
    let (ok, json, _) = dev.bao(ROOT_TOKEN, &all);
    ok.then_some(json)
}

async fn server_on(cfg: OpenBaoConfig) -> Server {
    Server::start_with(move |c| c.openbao = Some(cfg), &[]).await
}

/// A backend on the shared OpenBao dev server, with that server and the
/// KV mount of the test project's values.
async fn on_shared_dev() -> (&'static DevServer, String, Server) {
    let dev = DevServer::shared();
    let cfg = dev.config();
    let mount = format!("{}{NS}", cfg.mount_prefix);
    (dev, mount, server_on(cfg).await)
}

#[tokio::test]
async fn bao_kv_shows_what_the_api_wrote_and_versions_match_its_metadata() {
    let (dev, mount, s) = on_shared_dev().await;
    s.create("db", json!({"PASSWORD": "pa$word v1"})).await;
    let r = s
        .put(
            DEV,
            &secrets("/db/values"),
            json!({"data": {"PASSWORD": "v2", "USER": "app"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.put(
        DEV,
        &secrets("/db/values"),
        json!({"data": {"PASSWORD": "v3"}}),
    )
    .await;

    let got = kv(dev, &["get"], &mount, "db").expect("bao kv get");
    assert_eq!(got["data"]["data"], json!({"PASSWORD": "v3"}));
    assert_eq!(got["data"]["metadata"]["version"], 3);
    let v1 = kv(dev, &["get", "-version=1"], &mount, "db").expect("bao kv get -version=1");
    assert_eq!(
        v1["data"]["data"],
        json!({"PASSWORD": "pa$word v1"}),
        "values are never altered"
    );

    // Destroy version 2 through the API: OpenBao destroys it too.
    let r = s
        .post(ADMIN, &secrets("/db/versions/2/destroy"), json!(null))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let meta = kv(dev, &["metadata", "get"], &mount, "db").expect("bao kv metadata get");
    assert_eq!(meta["data"]["current_version"], 3);
    assert_eq!(meta["data"]["max_versions"], 10);
    let ours = s.get(DEV, &secrets("/db/versions")).await;
    let ours: Vec<(u64, bool)> = ours.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("versions: {}", ours.text))
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["destroyed"] == true))
        .collect();
    assert_eq!(
        ours,
        kube_dc_testsupport::bao_dev::versions_of(&meta),
        "kube-dc secrets versions = bao kv metadata get"
    );
    assert_eq!(ours, vec![(1, false), (2, true), (3, false)]);

    // Soft delete of the secret soft-deletes its current version there;
    // restore brings it back, history intact.
    assert_eq!(s.delete(ADMIN, &secrets("/db")).await.status, 200);
    let meta = kv(dev, &["metadata", "get"], &mount, "db").expect("bao kv metadata get");
    assert_ne!(meta["data"]["versions"]["3"]["deletion_time"], "");
    let r = s.post(ADMIN, &secrets("/db/restore"), json!(null)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get(DEV, &secrets("/db?includeValue=true")).await;
    assert_eq!(r.body["value"]["data"]["PASSWORD"], "v3", "{}", r.text);

    // Destroy all: the KV path is gone with its metadata.
    assert_eq!(
        s.delete(ADMIN, &secrets("/db?destroy=true")).await.status,
        200
    );
    assert!(
        kv(dev, &["metadata", "get"], &mount, "db").is_none(),
        "metadata deleted"
    );
}

/// `PUT …/NAME/values` with `{"TOKEN": value}`.
async fn put_token(s: &Server, name: &str, value: &str) -> Resp {
    let path = secrets(&format!("/{name}/values"));
    s.put(DEV, &path, json!({"data": {"TOKEN": value}})).await
}

/// The write was answered 200, as `version`.
fn assert_written(r: &Resp, version: u64) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], version, "{}", r.text);
}

/// A backend whose secret `api` is at version 1 in its record and at
/// version 2 in OpenBao, as after a write that reached OpenBao but was
/// never recorded (cut off by a crash, or answered 503 after OpenBao had
/// applied it).
async fn with_an_unrecorded_version() -> Server {
    let (dev, mount, s) = on_shared_dev().await;
    s.create("api", json!({"TOKEN": "one"})).await;
    let (ok, _, text) = dev.bao(
        ROOT_TOKEN,
        &[
            "kv",
            "put",
            &format!("-mount={mount}"),
            "-cas=1",
            "api",
            "TOKEN=two",
        ],
    );
    assert!(ok, "{text}");
    s
}

/// The `secrets.reconcile` event that reports version 2 of `api` (recorded:
/// 1), without its value.
async fn assert_reconciled(s: &Server) {
    let events = s.audit("limit=50").await;
    let found = events
        .iter()
        .find(|e| e["body"]["action"] == "secrets.reconcile")
        .unwrap_or_else(|| panic!("no reconcile event in {events:?}"));
    assert_eq!(found["body"]["result"], "error");
    assert_eq!(found["body"]["resource"], "api");
    assert_eq!(found["body"]["openbao_version"], 2);
    assert_eq!(found["body"]["recorded_version"], 1);
    assert!(
        !serde_json::to_string(found).unwrap().contains("two"),
        "no value in the event"
    );
}

#[tokio::test]
async fn a_version_written_to_openbao_but_never_recorded_is_reported_at_start() {
    // The backend died between OpenBao's write and its own record.
    let s = with_an_unrecorded_version().await;
    // Start again on the same data directory: found, listed, reported.
    let again = kube_dc_backend::Backend::open(
        s.backend.config.clone(),
        kube_dc_backend::authn::Authenticator::Fixed(Default::default()),
        serde_norway::from_str(BINDINGS).unwrap(),
    )
    .unwrap();
    let versions = again.store.versions(NS, "api").unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_reconciled(&s).await;
    // And writing goes on, as version 3.
    assert_written(&put_token(&s, "api", "three").await, 3);
}

/// A running backend that finds a version it never recorded (a write it
/// answered 503 after OpenBao had applied it) refuses that one write as a
/// conflict, naming the versions, and lists and audits them there and then:
/// the next write goes on without a restart.
#[tokio::test]
async fn a_version_never_recorded_is_listed_by_the_write_that_finds_it() {
    let s = with_an_unrecorded_version().await;
    let r = put_token(&s, "api", "three").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text
            .contains("version(s) [2] reached OpenBao but were never recorded")
            && r.text.contains("read the secret and write again"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("two"),
        "no value in the answer: {}",
        r.text
    );
    assert_reconciled(&s).await;
    let versions = s.get(DEV, &secrets("/api/versions")).await;
    let listed: Vec<u64> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert!(listed.contains(&2), "{}", versions.text);
    // What OpenBao held is what a read now shows; writing goes on.
    let r = s.get(DEV, &secrets("/api?includeValue=true")).await;
    assert_eq!(r.body["value"]["data"]["TOKEN"], "two", "{}", r.text);
    assert_written(&put_token(&s, "api", "three").await, 3);
}

/// A create whose path in OpenBao already holds live versions that no
/// secret of the backend owns (a create cut off before it was recorded, or
/// another tool's write) is refused, naming the path and what to do, and
/// changes nothing; once they are gone there, the create goes through.
#[tokio::test]
async fn a_create_over_versions_nobody_recorded_is_refused_and_changes_nothing() {
    let (dev, mount, s) = on_shared_dev().await;
    // The mount exists once the project has any secret.
    s.create("first", json!({"TOKEN": "one"})).await;
    let m = format!("-mount={mount}");
    let (ok, _, text) = dev.bao(ROOT_TOKEN, &["kv", "put", &m, "orphan", "TOKEN=stray"]);
    assert!(ok, "{text}");
    let body = json!({"type": "opaque", "initialValues": {"TOKEN": "new"}});
    let r = s.post(ADMIN, &secrets("/orphan"), body.clone()).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text
            .contains(&format!("{mount}/data/orphan up to version 1"))
            && r.text.contains("no secret of the backend owns")
            && r.text.contains("bao kv metadata delete"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("stray"), "no value in the answer");
    assert_eq!(s.get(DEV, &secrets("/orphan")).await.status, 404);
    let kept = kv(dev, &["get"], &mount, "orphan").unwrap();
    assert_eq!(
        kept["data"]["data"]["TOKEN"], "stray",
        "nothing changed there"
    );
    let (ok, _, text) = dev.bao(ROOT_TOKEN, &["kv", "metadata", "delete", &m, "orphan"]);
    assert!(ok, "{text}");
    let r = s.post(ADMIN, &secrets("/orphan"), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_shipped_policy_is_enough_and_a_missing_grant_is_named() {
    let dev = DevServer::shared();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/openbao-policy.hcl");
    let (ok, _, text) = dev.bao(ROOT_TOKEN, &["policy", "write", "kube-dc-backend", policy]);
    assert!(ok, "{text}");
    let (ok, tok, text) = dev.bao(
        ROOT_TOKEN,
        &["token", "create", "-format=json", "-policy=kube-dc-backend"],
    );
    assert!(ok, "{text}");
    let token = tok["auth"]["client_token"].as_str().unwrap().to_string();

    // The policy is written for the platform's `kv-` mounts.
    let mut cfg = dev.config();
    cfg.mount_prefix = format!("kv-{}-", std::process::id());
    cfg.token = zeroize::Zeroizing::new(token);
    let s = server_on(cfg).await;
    s.create("ok", json!({"K": "v"})).await;
    let r = s.get(DEV, &secrets("/ok?includeValue=true")).await;
    assert_eq!(r.body["value"]["data"]["K"], "v", "{}", r.text);

    // A token without it: the error names the mount and the policy file.
    let (ok, tok, text) = dev.bao(
        ROOT_TOKEN,
        &["token", "create", "-format=json", "-policy=default"],
    );
    assert!(ok, "{text}");
    let mut cfg = dev.config();
    cfg.token = zeroize::Zeroizing::new(tok["auth"]["client_token"].as_str().unwrap().to_string());
    let mount = format!("{}{NS}", cfg.mount_prefix);
    let s = server_on(cfg).await;
    let r = s
        .http
        .post(format!("{}{}", s.url, secrets("/denied")))
        .bearer_auth(s.token(DEV))
        .json(&json!({"initialValues": {"K": "secret-value-31"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&mount) && text.contains("openbao-policy.hcl"),
        "{text}"
    );
    assert!(!text.contains("secret-value-31"));
    // Nothing was created.
    assert_eq!(s.get(DEV, &secrets("/denied")).await.status, 404);
}

/// OpenBao hangs (a node stopped with SIGSTOP keeps its connections open
/// and answers nothing) while value reads are in flight: requests that need
/// no value are answered as usual, a value read is answered 503 with
/// Retry-After once the failover budget is spent, and audited as an error;
/// `/readyz` says not ready, and everything recovers when OpenBao does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_openbao_stalls_nothing_but_value_reads_which_get_503() {
    let dev = DevServer::start();
    let mut cfg = dev.config();
    // Longer than the 5 s a node behind was once waited for.
    cfg.failover = std::time::Duration::from_secs(6);
    let s = std::sync::Arc::new(server_on(cfg).await);
    s.create("db", json!({"PASSWORD": "before the hang"})).await;
    let ready = reqwest::get(format!("{}/readyz", s.url)).await.unwrap();
    assert_eq!(ready.status(), 200);

    let pid = dev.process.pid().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    // Value reads pile up on the hung engine.
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.call_raw(
                    Some(&s.token(DEV)),
                    reqwest::Method::GET,
                    &secrets("/db?includeValue=true"),
                    None,
                    Some(&format!("hung-read-{i}")),
                )
                .await
            })
        })
        .collect();
    // Meanwhile, what needs no value is answered, and so is a change that
    // needs no engine.
    for path in [
        secrets("/db"),
        secrets(""),
        secrets("/db/versions"),
        "/api/audit/orgs/acme/projects/demo?limit=20".to_string(),
    ] {
        let r = s.get(DEV, &path).await;
        assert_eq!(r.status, 200, "GET {path} while OpenBao hangs: {}", r.text);
    }
    let r = s
        .post(ADMIN, &secrets("/db/sync"), json!({"enabled": false}))
        .await;
    assert_eq!(
        r.status, 200,
        "sync settings while OpenBao hangs: {}",
        r.text
    );
    let ready = reqwest::get(format!("{}/readyz", s.url)).await.unwrap();
    assert_eq!(ready.status(), 503, "readyz while OpenBao hangs");
    assert!(ready.headers().contains_key("retry-after"));

    for r in readers {
        let r = r.await.unwrap();
        assert_eq!(
            r.status, 503,
            "a value read while OpenBao hangs: {}",
            r.text
        );
        assert!(
            r.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("did not answer")),
            "{}",
            r.text
        );
        assert!(!r.text.contains("before the hang"), "no value in an error");
    }
    let r = s
        .call_raw(
            Some(&s.token(DEV)),
            reqwest::Method::GET,
            &secrets("/db?includeValue=true"),
            None,
            Some("hung-read-last"),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let raw = s
        .http
        .get(format!("{}{}", s.url, secrets("/db?includeValue=true")))
        .bearer_auth(s.token(DEV))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 503);
    assert!(
        raw.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "Retry-After in seconds: {:?}",
        raw.headers()
    );

    signal("-CONT");
    let events = s.audit("result=error&limit=100").await;
    let ids: Vec<&str> = events
        .iter()
        .filter(|e| e["body"]["status"] == 503 && e["body"]["action"] == "secrets.value.read")
        .filter_map(|e| e["body"]["request_id"].as_str())
        .collect();
    for i in 0..6 {
        let id = format!("hung-read-{i}");
        assert_eq!(
            ids.iter().filter(|x| **x == id).count(),
            1,
            "one error event for {id}: {ids:?}"
        );
    }
    // Recovered.
    let r = s.get(DEV, &secrets("/db?includeValue=true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ready = reqwest::get(format!("{}/readyz", s.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// Faults the proxy in [`faulty_proxy`] injects, each once when armed.
#[derive(Default)]
struct Faults {
    /// The next value write is applied by OpenBao, but its answer is lost
    /// (a 502, as from a node that failed after forwarding it).
    lose_write_answer: bool,
    /// The next metadata read answers as a node one version behind would
    /// (just elected, still applying the log).
    stale_metadata: bool,
    /// The next this many value writes meet a node one version behind
    /// the backend's record (a new leader still applying the log): it
    /// refuses them as check-and-set failures without applying them, and
    /// its metadata shows the version before the current one meanwhile.
    behind: usize,
    /// How many of each the proxy injected.
    lost: usize,
    staled: usize,
    refused_behind: usize,
}

/// A pass-through proxy in front of OpenBao that injects [`Faults`]: what
/// an election does to the backend's requests, on demand.
async fn faulty_proxy(bao: String) -> (String, std::sync::Arc<std::sync::Mutex<Faults>>) {
    use axum::body::Bytes;
    use axum::extract::{Request, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    type Shared = std::sync::Arc<std::sync::Mutex<Faults>>;
    let faults: Shared = Default::default();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let forward = |State((http, bao, faults)): State<(reqwest::Client, String, Shared)>,
                   req: Request| async move {
        let (parts, body) = req.into_parts();
        let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        if parts.method == axum::http::Method::POST && parts.uri.path().contains("/data/") {
            let mut f = faults.lock().unwrap();
            if f.behind > 0 {
                f.behind -= 1;
                f.refused_behind += 1;
                let refusal = json!({"errors": ["check-and-set parameter did not match the current version"]});
                return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
            }
        }
        let lagging = faults.lock().unwrap().behind > 0;
        let mut headers = HeaderMap::new();
        for h in ["x-vault-token", "content-type"] {
            if let Some(v) = parts.headers.get(h) {
                headers.insert(h, v.clone());
            }
        }
        let answer = http
            .request(parts.method.clone(), format!("{bao}{}", parts.uri))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.bytes().await.unwrap();
        let path = parts.uri.path();
        let mut f = faults.lock().unwrap();
        if parts.method == axum::http::Method::POST
            && path.contains("/data/")
            && f.lose_write_answer
        {
            f.lose_write_answer = false;
            f.lost += 1;
            return StatusCode::BAD_GATEWAY.into_response();
        }
        if parts.method == axum::http::Method::GET
            && path.contains("/metadata/")
            && (f.stale_metadata || lagging)
            && status == StatusCode::OK
        {
            f.stale_metadata = false;
            f.staled += 1;
            let mut meta: Value = serde_json::from_slice(&text).unwrap();
            let current = meta["data"]["current_version"].as_u64().unwrap();
            meta["data"]["current_version"] = json!(current - 1);
            if let Some(v) = meta["data"]["versions"].as_object_mut() {
                v.remove(&current.to_string());
            }
            return axum::Json(meta).into_response();
        }
        (
            StatusCode::from_u16(status.as_u16()).unwrap(),
            [("content-type", "application/json")],
            text,
        )
            .into_response()
    };
    let app = axum::Router::new()
        .fallback(forward)
        .with_state((http, bao, faults.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, faults)
}

/// A write that OpenBao applied but whose answer was lost, retried while
/// the node that answers is still behind (as right after an election):
/// once the node catches up and shows the version with the values written,
/// the write is the backend's own and is acknowledged — not refused as a
/// change made behind the backend's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_is_recognised_after_a_stale_node() {
    let dev = DevServer::shared();
    let mut cfg = dev.config();
    let mount = format!("{}{NS}", cfg.mount_prefix);
    let (proxy, faults) = faulty_proxy(dev.addr.clone()).await;
    cfg.addrs = vec![proxy];
    let s = server_on(cfg).await;
    s.create("lost", json!({"TOKEN": "one"})).await;
    {
        let mut f = faults.lock().unwrap();
        f.lose_write_answer = true;
        f.stale_metadata = true;
    }
    let r = put_token(&s, "lost", "two").await;
    {
        let f = faults.lock().unwrap();
        assert_eq!((f.lost, f.staled), (1, 1), "both faults were injected");
    }
    assert_written(&r, 2);
    // OpenBao holds it once, as version 2, and the record agrees.
    let meta = kv(dev, &["metadata", "get"], &mount, "lost").unwrap();
    assert_eq!(meta["data"]["current_version"], 2, "{meta}");
    let r = s.get(DEV, &secrets("/lost?includeValue=true")).await;
    assert_eq!(r.body["value"]["data"]["TOKEN"], "two", "{}", r.text);
    assert_written(&put_token(&s, "lost", "three").await, 3);
}

/// Right after a Raft election the new leader may not have applied the
/// last committed write yet: it shows the secret one version behind the
/// backend's record and refuses a write on the recorded version. That is
/// waited out within the failover budget (the write then succeeds), and a
/// node still behind when the budget is spent is a 503 to retry — never a
/// 409 that blames a change made behind the backend's back, and never a
/// `secrets.reconcile` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_record_is_waited_for_never_a_conflict() {
    let dev = DevServer::shared();
    let mut cfg = dev.config();
    // Longer than the 5 s a node behind was once waited for.
    cfg.failover = std::time::Duration::from_secs(6);
    let (proxy, faults) = faulty_proxy(dev.addr.clone()).await;
    cfg.addrs = vec![proxy];
    let s = server_on(cfg).await;
    s.create("lag", json!({"TOKEN": "one"})).await;
    // Behind for a few attempts: caught up within the budget.
    faults.lock().unwrap().behind = 3;
    let r = put_token(&s, "lag", "two").await;
    assert_eq!(faults.lock().unwrap().refused_behind, 3);
    assert_written(&r, 2);
    // Behind for longer than the budget: 503 with Retry-After.
    faults.lock().unwrap().behind = usize::MAX;
    let r = put_token(&s, "lag", "three").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("try again"), "{}", r.text);
    faults.lock().unwrap().behind = 0;
    assert_written(&put_token(&s, "lag", "three").await, 3);
    let events = s.audit("limit=100").await;
    assert!(
        !events
            .iter()
            .any(|e| e["body"]["action"] == "secrets.reconcile"),
        "no reconcile event: {events:?}"
    );
}

/// `PUT …/NAME/values` with `{"TOKEN": value}` and `Idempotency-Key: key`.
async fn put_token_keyed(s: &Server, name: &str, value: &str, key: &str) -> Resp {
    let path = secrets(&format!("/{name}/values"));
    let body = json!({"data": {"TOKEN": value}});
    s.keyed(DEV, axum::http::Method::PUT, &path, body, key)
        .await
}

/// A write that OpenBao applied but that was answered 503 (or whose answer
/// was lost) is sent again with its `Idempotency-Key`: the one version
/// beyond the record holds exactly its values, so it is that write's, and
/// the retry is answered 200 with it — not 409, and no reconcile event.
#[tokio::test]
async fn a_retried_write_that_openbao_applied_is_acknowledged_with_its_version() {
    let s = with_an_unrecorded_version().await;
    let r = put_token_keyed(&s, "api", "two", "retry-1").await;
    assert_written(&r, 2);
    let events = s.audit("limit=50").await;
    assert!(
        !events
            .iter()
            .any(|e| e["body"]["action"] == "secrets.reconcile"),
        "{events:?}"
    );
    let write = events
        .iter()
        .find(|e| e["body"]["action"] == "secrets.value.write")
        .unwrap();
    assert_eq!(write["body"]["version"], 2, "{write}");
    // Sent once more: the same answer.
    let again = put_token_keyed(&s, "api", "two", "retry-1").await;
    assert_eq!(again.body, r.body);
    assert_written(&put_token(&s, "api", "three").await, 3);
}

/// Other values than the unrecorded version's, even with a key, are not
/// that write: listed, audited and refused as before.
#[tokio::test]
async fn a_keyed_write_with_other_values_does_not_claim_an_unrecorded_version() {
    let s = with_an_unrecorded_version().await;
    let r = put_token_keyed(&s, "api", "three", "retry-2").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body["reason"], "unrecorded-versions-adopted",
        "{}",
        r.text
    );
    assert_reconciled(&s).await;
}
