//! "Production evidence" (docs/contract.md): every fact the platform's own
//! end-to-end suite checks of its backend, checked here against
//! `kube-dc-backend serve`, with real access tokens from the test OIDC
//! provider (oidc-provider, OpenID Certified) for a viewer, developers of
//! two projects, an org admin, and a user of a second organization.
//!
//! Needs Node and `npm ci` in tests/oidc (scripts/test.sh does both).

#![allow(clippy::disallowed_macros)] // benchmarks and tests print their figures

use crate::common::idp::Idp;
use crate::common::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const BINDINGS: &str = r#"
orgs:
  acme: { projects: [demo, other] }
  globex: { projects: [demo] }
bindings:
  - { group: acme-viewers, namespace: acme-demo, role: user }
  - { group: acme-demo-devs, namespace: acme-demo, role: developer }
  - { group: acme-other-devs, namespace: acme-other, role: developer }
  - { group: globex-demo-devs, namespace: globex-demo, role: developer }
  - { group: sandbox-admins, namespace: sandbox, role: admin }
"#;

/// Users beside the provider's built-in ones (oscar: org-admin of acme).
fn users(dana_groups: &[&str]) -> Value {
    let u = |org: &str, groups: &[&str], ns: &[&str]| json!({"org": org, "groups": groups, "namespaces": ns});
    let mut all = json!({
        "vic": u("acme", &["acme-viewers"], &["acme-demo"]),
        "dana": u("acme", dana_groups, &["acme-demo"]),
        "bob": u("acme", &["acme-other-devs"], &["acme-other"]),
        "gina": u("globex", &["globex-demo-devs"], &["globex-demo"]),
        "sam": u("acme", &["sandbox-admins"], &[]),
    });
    for (name, user) in all.as_object_mut().unwrap() {
        user["password"] = json!(format!("{name}-pw"));
        user["email"] = json!(format!("{name}@example.com"));
    }
    all
}

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: acme-demo }
spec:
  replicas: 0
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: noop
          image: busybox
          envFrom: [{ secretRef: { name: used-secret } }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, namespace: acme-demo }
spec:
  serviceName: db
  replicas: 0
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      containers:
        - name: noop
          image: busybox
          env:
            - name: TOKEN
              valueFrom: { secretKeyRef: { name: used-secret, key: TOKEN } }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: acme-demo }
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: noop
              image: busybox
              env:
                - name: TOKEN
                  valueFrom: { secretKeyRef: { name: used-secret, key: TOKEN } }
---
apiVersion: v1
kind: Namespace
metadata:
  name: sandbox
  labels: { kube-dc.com/organization: acme }
---
apiVersion: v1
kind: Secret
metadata: { name: legacy-src, namespace: acme-demo }
type: Opaque
data: { USERNAME: YWxpY2U=, PASSWORD: aHVudGVyMg== }
"#;

/// The provider, `kube-dc-backend serve` trusting it, and an HTTP client.
struct World {
    idp: Idp,
    be: Remote,
    users_file: tempfile::NamedTempFile,
    http: reqwest::Client,
}

impl World {
    fn start() -> Self {
        let users_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(users_file.path(), users(&["acme-demo-devs"]).to_string()).unwrap();
        let idp = start_idp(&users_file, "0");
        let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[("workloads.yaml", WORKLOADS)]);
        let _ = rustls::crypto::ring::default_provider().install_default();
        World {
            idp,
            be,
            users_file,
            http: reqwest::Client::new(),
        }
    }

    async fn token(&self, user: &str) -> String {
        self.idp.access_token(user).await
    }

    /// One request; the status and the JSON body (Null when not JSON).
    async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.be.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn start_idp(users_file: &tempfile::NamedTempFile, port: &str) -> Idp {
    Idp::start_env(&[
        (
            "USERS_FILE",
            users_file.path().to_str().unwrap().to_string(),
        ),
        ("PORT", port.to_string()),
    ])
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn condition<'a>(secret: &'a Value, kind: &str) -> &'a Value {
    secret["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition: {secret}"))
}

fn instant(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

#[test]
fn create_import_put_and_read_as_production_does() {
    let w = World::start();
    rt().block_on(async {
        let dev = w.token("dana").await;
        // Create with initialValues: one request, the values atomically with it.
        let body = json!({"type": "opaque", "description": "T09",
            "sync": {"enabled": true, "targetSecretName": "created"},
            "initialValues": {"USERNAME": "alice", "PASSWORD": "hunter2"}});
        let (st, created) = w
            .call(&dev, "POST", "/api/secrets/acme-demo/created", Some(body.clone()))
            .await;
        assert_eq!(st, 200, "{created}");
        assert_eq!(created["name"], "created");
        assert_eq!(created["kvVersion"], 1);
        let (st, _) = w
            .call(&dev, "POST", "/api/secrets/acme-demo/created", Some(body))
            .await;
        assert_eq!(st, 409, "the same create again");
        let (st, got) = w
            .call(&dev, "GET", "/api/secrets/acme-demo/created?includeValue=true", None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(got["value"]["data"], json!({"USERNAME": "alice", "PASSWORD": "hunter2"}));

        // A bad type: 400, and nothing exists afterwards.
        let (st, _) = w
            .call(&dev, "POST", "/api/secrets/acme-demo/badtype", Some(json!({"type": "bogus"})))
            .await;
        assert_eq!(st, 400);
        let (st, _) = w.call(&dev, "GET", "/api/secrets/acme-demo/badtype", None).await;
        assert_eq!(st, 404, "no resource after a refused create");
        // There is no POST /api/secrets/NS.
        let (st, _) = w
            .call(&dev, "POST", "/api/secrets/acme-demo", Some(json!({"name": "x"})))
            .await;
        assert_eq!(st, 405);

        // Import: the source's keys read back.
        let (st, imp) = w
            .call(
                &dev,
                "POST",
                "/api/secrets/acme-demo/imported/import",
                Some(json!({"sourceSecretName": "legacy-src", "type": "opaque", "description": "E07"})),
            )
            .await;
        assert_eq!(st, 200, "{imp}");
        assert_eq!(imp["name"], "imported");
        assert!(imp["kvVersion"].as_u64().unwrap() >= 1);
        let (_, got) = w
            .call(&dev, "GET", "/api/secrets/acme-demo/imported?includeValue=true", None)
            .await;
        assert_eq!(got["value"]["data"], json!({"USERNAME": "alice", "PASSWORD": "hunter2"}));

        // Put then read.
        let data = json!({"DATABASE_URL": "postgres://dev:dev@db/dev", "API_TOKEN": "abc-123-xyz"});
        let (st, _) = w
            .call(&dev, "PUT", "/api/secrets/acme-demo/created/values", Some(json!({"data": data})))
            .await;
        assert_eq!(st, 200);
        let (st, got) = w
            .call(&dev, "GET", "/api/secrets/acme-demo/created?includeValue=true", None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(got["value"]["data"], data);
    });
}

#[test]
fn roles_organizations_and_group_changes() {
    let w = World::start();
    rt().block_on(async {
        let dev = w.token("dana").await;
        for ns in ["acme-demo", "acme-other", "globex-demo"] {
            let owner = match ns {
                "acme-demo" => dev.clone(),
                "acme-other" => w.token("bob").await,
                _ => w.token("gina").await,
            };
            let (st, b) = w
                .call(
                    &owner,
                    "POST",
                    &format!("/api/secrets/{ns}/k"),
                    Some(json!({"initialValues": {"K": "v"}})),
                )
                .await;
            assert_eq!(st, 200, "{ns}: {b}");
        }
        // A viewer lists, and is refused values.
        let viewer = w.token("vic").await;
        assert_eq!(
            w.call(&viewer, "GET", "/api/secrets/acme-demo", None)
                .await
                .0,
            200
        );
        assert_eq!(
            w.call(
                &viewer,
                "GET",
                "/api/secrets/acme-demo/k?includeValue=true",
                None
            )
            .await
            .0,
            403
        );
        // A developer of project A reading a value in project B of the same org.
        assert_eq!(
            w.call(
                &dev,
                "GET",
                "/api/secrets/acme-other/k?includeValue=true",
                None
            )
            .await
            .0,
            403
        );
        // A token of org A cannot read org B's secrets, nor list them.
        let gina = w.token("gina").await;
        assert_eq!(
            w.call(
                &gina,
                "GET",
                "/api/secrets/acme-demo/k?includeValue=true",
                None
            )
            .await
            .0,
            403
        );
        assert_eq!(
            w.call(&gina, "GET", "/api/secrets/acme-demo", None).await.0,
            403
        );
        assert_eq!(
            w.call(
                &dev,
                "GET",
                "/api/secrets/globex-demo/k?includeValue=true",
                None
            )
            .await
            .0,
            403
        );

        // Removing dana from the group takes effect with her next token.
        assert_eq!(
            w.call(
                &dev,
                "GET",
                "/api/secrets/acme-demo/k?includeValue=true",
                None
            )
            .await
            .0,
            200
        );
        std::fs::write(w.users_file.path(), users(&[]).to_string()).unwrap();
        let fresh = w.token("dana").await;
        assert_eq!(
            w.call(
                &fresh,
                "GET",
                "/api/secrets/acme-demo/k?includeValue=true",
                None
            )
            .await
            .0,
            403
        );
    });
}

#[test]
fn elevation_and_the_audit_of_value_reads() {
    let w = World::start();
    rt().block_on(async {
        let dev = w.token("dana").await;
        let admin = w.token("oscar").await;
        w.call(
            &dev,
            "POST",
            "/api/secrets/acme-demo/elev",
            Some(json!({"initialValues": {"K": "v"}})),
        )
        .await;
        // Enforcing mode: an org admin without a project role or a window.
        let (st, body) = w
            .call(
                &admin,
                "GET",
                "/api/secrets/acme-demo/elev?includeValue=true",
                None,
            )
            .await;
        assert_eq!(st, 403);
        assert!(body.to_string().contains("elevation"), "{body}");

        let (st, grant) = w
            .call(
                &admin,
                "POST",
                "/api/orgs/acme/projects/demo/elevate",
                Some(json!({"reason": "E05 smoke"})),
            )
            .await;
        assert_eq!(st, 200, "{grant}");
        let id = grant["elevationId"].as_str().unwrap().to_string();
        assert!(id.starts_with("elv-"), "{id}");
        assert!(grant["ttlSeconds"].as_i64().unwrap() > 800);
        let (st, _) = w
            .call(
                &admin,
                "GET",
                "/api/secrets/acme-demo/elev?includeValue=true",
                None,
            )
            .await;
        assert_eq!(st, 200, "a value read inside the window");

        // The project's audit: the read is secrets.value.read on the
        // secret's name, with the window's id; namespace and project are
        // fields of their own.
        let (st, audit) = w
            .call(
                &dev,
                "GET",
                "/api/audit/orgs/acme/projects/demo?service=secrets&limit=200",
                None,
            )
            .await;
        assert_eq!(st, 200, "{audit}");
        let reads: Vec<&Value> = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["body"])
            .filter(|b| b["action"] == "secrets.value.read" && b["resource"] == "elev")
            .collect();
        let elevated = reads
            .iter()
            .find(|b| b["elevation_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no read with {id}: {reads:?}"));
        assert_eq!(elevated["namespace"], "acme-demo");
        assert_eq!(elevated["project"], "demo");
        assert_eq!(elevated["org"], "acme");
        assert_eq!(elevated["result"], "allowed");
        assert_eq!(elevated["reason"], "E05 smoke");
        // Every other action is service.object.verb too.
        for e in audit["events"].as_array().unwrap() {
            let a = e["body"]["action"].as_str().unwrap();
            assert!(
                a.starts_with("secrets.") && a.split('.').count() == 3,
                "{a}"
            );
            assert!(e["ts"].is_string());
        }
        assert!(!audit.to_string().contains("\"v\""), "no value in audit");

        let (st, _) = w
            .call(
                &admin,
                "DELETE",
                "/api/orgs/acme/projects/demo/elevate",
                None,
            )
            .await;
        assert_eq!(st, 200);
        let (st, _) = w
            .call(
                &admin,
                "GET",
                "/api/secrets/acme-demo/elev?includeValue=true",
                None,
            )
            .await;
        assert_eq!(st, 403, "the window is closed");
    });
}

#[test]
fn consumers_and_status_conditions() {
    let w = World::start();
    rt().block_on(async {
        let dev = w.token("dana").await;
        // Sync on, refresh 30s, no value yet: Ready=True and syncedSecretName.
        let (st, s) = w
            .call(
                &dev,
                "POST",
                "/api/secrets/acme-demo/used-secret",
                Some(json!({"sync": {"enabled": true, "targetSecretName": "used-secret", "refreshInterval": "30s"}})),
            )
            .await;
        assert_eq!(st, 200, "{s}");
        assert_eq!(s["kvVersion"], 0);
        assert_eq!(s["sync"]["refreshInterval"], "30s");
        assert_eq!(condition(&s, "Ready")["status"], "True");
        assert_eq!(s["status"]["syncedSecretName"], "used-secret");

        // Consumers: Deployment, StatefulSet and CronJob are all listed.
        w.call(&dev, "PUT", "/api/secrets/acme-demo/used-secret/values", Some(json!({"data": {"TOKEN": "abc"}})))
            .await;
        let (st, c) = w
            .call(&dev, "GET", "/api/secrets/acme-demo/used-secret/consumers", None)
            .await;
        assert_eq!(st, 200);
        let kinds: Vec<&str> = c["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        for k in ["Deployment", "StatefulSet", "CronJob"] {
            assert!(kinds.contains(&k), "{k} missing: {c}");
        }

        // Turning sync off clears syncedSecretName: Synced=False/SyncDisabled.
        let (_, s) = w
            .call(&dev, "POST", "/api/secrets/acme-demo/used-secret/sync", Some(json!({"enabled": false})))
            .await;
        assert!(s["status"].get("syncedSecretName").is_none(), "{s}");
        let synced = condition(&s, "Synced");
        assert_eq!((&synced["status"], &synced["reason"]), (&json!("False"), &json!("SyncDisabled")));

        // Rotation on a password: first version at create, scheduled one
        // interval (1m) after it.
        let (st, p) = w
            .call(
                &dev,
                "POST",
                "/api/secrets/acme-demo/rotated",
                Some(json!({"type": "password", "rotation": {"enabled": true, "interval": "1m"}})),
            )
            .await;
        assert_eq!(st, 200, "{p}");
        assert_eq!(p["kvVersion"], 1);
        let sched = condition(&p, "RotationScheduled");
        assert_eq!(sched["status"], "True");
        let last = instant(&p["status"]["lastRotatedTime"]);
        let next = instant(&p["status"]["nextRotationTime"]);
        assert_eq!(next - last, time::Duration::minutes(1));

        // Rotation on another type: the create succeeds, the condition says why not.
        let (st, o) = w
            .call(
                &dev,
                "POST",
                "/api/secrets/acme-demo/not-a-password",
                Some(json!({"type": "api-key", "rotation": {"enabled": true, "interval": "1m"}})),
            )
            .await;
        assert_eq!(st, 200, "{o}");
        let sched = condition(&o, "RotationScheduled");
        assert_eq!(
            (&sched["status"], &sched["reason"]),
            (&json!("False"), &json!("RotationConfigInvalid"))
        );
        assert_eq!(o["kvVersion"], 0, "nothing generated");

        // A namespace that is not a project.
        let sam = w.token("sam").await;
        let (st, n) = w
            .call(&sam, "POST", "/api/secrets/sandbox/stray", Some(json!({})))
            .await;
        assert_eq!(st, 200, "{n}");
        let ready = condition(&n, "Ready");
        assert_eq!(
            (&ready["status"], &ready["reason"]),
            (&json!("False"), &json!("ProjectAnnotationMissing"))
        );
    });
}

#[test]
fn a_rotated_signing_key_is_picked_up_within_seconds() {
    let mut w = World::start();
    rt().block_on(async {
        let before = w.token("dana").await;
        assert_eq!(
            w.call(&before, "GET", "/api/secrets/acme-demo", None)
                .await
                .0,
            200
        );
        // The provider restarts with a new key under the same key id, at
        // the same address.
        let port = w
            .idp
            .issuer
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_string();
        w.idp.stop();
        w.idp = start_idp(&w.users_file, &port);
        let after = w.token("dana").await;
        let started = std::time::Instant::now();
        let mut status = 0;
        while started.elapsed() < std::time::Duration::from_secs(15) {
            status = w
                .call(&after, "GET", "/api/secrets/acme-demo", None)
                .await
                .0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(status, 200, "a token of the new key is accepted");
        println!("new key accepted after {:?}", started.elapsed());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The old key is gone: its tokens no longer verify.
        assert_eq!(
            w.call(&before, "GET", "/api/secrets/acme-demo", None)
                .await
                .0,
            401
        );
    });
}
