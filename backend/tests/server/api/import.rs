//! Importing existing Kubernetes Secrets.

use serde_json::json;

use super::{FaultCall, secrets};
use crate::common::*;

pub(crate) const LEGACY: &str = r#"
apiVersion: v1
kind: Secret
metadata: { name: legacy-app-credentials, namespace: acme-demo }
type: Opaque
data:
  DB_USER: YXBw            # app
stringData:
  DB_PASSWORD: "pa$word=1"
---
apiVersion: v1
kind: Secret
metadata: { name: shared-creds, namespace: acme-other }
stringData: { TOKEN: other-ns-token }
---
apiVersion: v1
kind: Secret
metadata: { name: binary, namespace: acme-demo }
data: { blob: //79 }
"#;

#[tokio::test]
async fn import_same_and_cross_namespace() {
    let s = Server::start_with(|_| {}, &[("secrets.yaml", LEGACY)]).await;
    let r = s
        .post(
            DEV,
            &secrets("/app-config/import"),
            json!({"sourceSecretName": "legacy-app-credentials", "type": "db-static"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["kvVersion"], 1);
    assert_eq!(
        r.body["importedFrom"],
        json!({"namespace": "acme-demo", "name": "legacy-app-credentials"})
    );
    assert_eq!(r.body["type"], "db-static");
    assert_eq!(r.body["sync"]["enabled"], true);
    assert_eq!(r.body["sync"]["targetSecretName"], "legacy-app-credentials");
    let v = s.get(DEV, &secrets("/app-config?includeValue=true")).await;
    assert_eq!(
        v.body["value"]["data"],
        json!({"DB_USER": "app", "DB_PASSWORD": "pa$word=1"})
    );
    let m = s
        .get(
            DEV,
            &format!("/api/local/namespaces/{NS}/kubernetes-secrets"),
        )
        .await;
    let owned = m.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "legacy-app-credentials")
        .unwrap()
        .clone();
    assert_eq!(
        owned["ownedBy"], "ManagedSecret/app-config",
        "the original is now owned"
    );

    let r = s
        .post(
            DEV,
            &secrets("/again/import"),
            json!({"sourceSecretName": "missing"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .post(
            DEV,
            &secrets("/bin/import"),
            json!({"sourceSecretName": "binary"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("UTF-8"));
    // The way out keeps the value off the command line.
    let hint = r.body["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("--from-file=") && hint.contains("=-"),
        "{hint}"
    );

    // Cross-namespace: needs the flag, and read access in the source namespace.
    let body = json!({"sourceSecretName": "shared-creds", "sourceSecretNamespace": "acme-other"});
    assert_eq!(
        s.post(ADMIN, &secrets("/shared/import"), body.clone())
            .await
            .status,
        400
    );
    let mut allowed = body.clone();
    allowed["allowCrossNamespace"] = json!(true);
    assert_eq!(
        s.post(DEV, &secrets("/shared/import"), allowed.clone())
            .await
            .status,
        403
    );
    let r = s.post(ADMIN, &secrets("/shared/import"), allowed).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ev = s.audit("actor=ada&limit=1").await;
    assert_eq!(ev[0]["body"]["action"], "secrets.secret.import");
    assert_eq!(ev[0]["body"]["cross_namespace"], true);
    assert_eq!(ev[0]["body"]["source"], "acme-other/shared-creds");
}

#[tokio::test]
async fn failed_import_leaves_nothing_behind() {
    let s = Server::start_with(
        |c| c.fault = Some("import".into()),
        &[("secrets.yaml", LEGACY)],
    )
    .await;
    let r = s
        .post_expect_fault(
            &secrets("/app-config/import"),
            json!({"sourceSecretName": "legacy-app-credentials"}),
        )
        .await;
    assert_eq!(r, 500);
    assert_eq!(s.get(DEV, &secrets("/app-config")).await.status, 404);
    assert_eq!(s.get(DEV, &secrets("")).await.body["items"], json!([]));
    for table in ["managed_secrets", "kv_meta", "kv_versions"] {
        let store = s.backend.store.clone();
        let n = std::thread::spawn(move || {
            store
                .count_raw(&format!("SELECT count(*) FROM {table}"))
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(n, 0, "{table} is empty after the failed import");
    }
    let ev = s.audit("actor=dev").await;
    let import = ev
        .iter()
        .find(|e| e["body"]["action"] == "secrets.secret.import")
        .expect("import audited");
    assert_eq!(import["body"]["result"], "error");
    assert_eq!(import["body"]["status"], 500);
}
