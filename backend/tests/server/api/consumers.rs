//! The workloads that use a projected Secret.

use serde_json::json;

use super::secrets;
use crate::common::*;

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: acme-demo }
spec:
  replicas: 2
  selector: { matchLabels: { app: api } }
  template:
    metadata: { labels: { app: api } }
    spec:
      containers:
        - name: api
          image: registry.example/api:1.4
          ports: [ { containerPort: 8080 } ]
          envFrom: [ { secretRef: { name: db-creds } }, { configMapRef: { name: api-config } } ]
          resources: { limits: { memory: 256Mi } }
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: postgres, namespace: acme-demo }
spec:
  serviceName: postgres
  selector: { matchLabels: { app: pg } }
  template:
    metadata: { labels: { app: pg } }
    spec:
      containers:
        - name: pg
          image: postgres:16
          env:
            - { name: POSTGRES_PASSWORD, valueFrom: { secretKeyRef: { name: db-creds, key: DB_PASSWORD } } }
            - { name: PGDATA, value: /var/lib/postgresql/data/pgdata }
          volumeMounts: [ { name: creds, mountPath: /etc/creds, readOnly: true } ]
      volumes:
        - { name: creds, secret: { secretName: db-creds, defaultMode: 0400 } }
  volumeClaimTemplates:
    - metadata: { name: data }
      spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, namespace: acme-demo }
spec:
  selector: { matchLabels: { app: agent } }
  template:
    metadata: { labels: { app: agent } }
    spec:
      containers: [ { name: agent, image: agent:2, volumeMounts: [ { name: all, mountPath: /etc/all } ] } ]
      volumes:
        - name: all
          projected:
            sources:
              - secret: { name: db-creds, items: [ { key: DB_PASSWORD, path: pw } ] }
              - serviceAccountToken: { path: token }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: backup, namespace: acme-demo }
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          initContainers:
            - name: wait
              image: busybox
              env: [ { name: DB_USER, valueFrom: { secretKeyRef: { name: db-creds, key: DB_USER, optional: true } } } ]
          containers: [ { name: dump, image: pgdump } ]
---
apiVersion: batch/v1
kind: Job
metadata: { name: migrate, namespace: acme-demo }
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [ { name: m, image: migrate, envFrom: [ { secretRef: { name: other-secret } } ] } ]
---
apiVersion: v1
kind: Pod
metadata: { name: debug, namespace: acme-other }
spec:
  containers: [ { name: d, image: busybox, envFrom: [ { secretRef: { name: db-creds } } ] } ]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: api-config, namespace: acme-demo }
data: { LOG: debug }
"#;

#[tokio::test]
async fn consumers_on_realistic_manifests() {
    let s = Server::start_with(
        |_| {},
        &[
            ("acme-demo/workloads.yaml", WORKLOADS),
            ("broken.yaml", "kind: Deployment\nspec: ["),
        ],
    )
    .await;
    s.create("db-creds", json!({"DB_USER": "app", "DB_PASSWORD": "x"}))
        .await;
    let r = s.get(USER, &secrets("/db-creds/consumers")).await;
    assert_eq!(r.body["secret"], "db-creds");
    assert_eq!(r.body["cached"], false);
    let items: Vec<(String, String, Vec<String>)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().into(),
                i["name"].as_str().unwrap().into(),
                i["references"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let expect = |k: &str, n: &str, refs: &[&str]| {
        (
            k.to_string(),
            n.to_string(),
            refs.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        items,
        vec![
            expect("Deployment", "api", &["envFrom"]),
            expect(
                "StatefulSet",
                "postgres",
                &["env:POSTGRES_PASSWORD", "volume:creds"]
            ),
            expect("DaemonSet", "agent", &["projected:all"]),
            expect("CronJob", "backup", &["env:DB_USER"]),
        ],
        "the Pod in another namespace and the Job using another Secret are not consumers"
    );
    assert_eq!(
        r.body["errors"].as_array().unwrap().len(),
        1,
        "the broken file is reported, not fatal"
    );
    // Consumers follow the sync target.
    s.post(
        DEV,
        &secrets("/db-creds/sync"),
        json!({"targetSecretName": "other-secret"}),
    )
    .await;
    let r = s.get(USER, &secrets("/db-creds/consumers")).await;
    assert_eq!(r.body["items"][0]["name"], "migrate");
}

#[tokio::test]
async fn consumers_report_only_the_callers_own_unreadable_documents_without_values() {
    let s = Server::start_with(
        |_| {},
        &[
            // Another project's broken Secret, with a value in it.
            (
                "acme-other/broken.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: { name: x, namespace: acme-other }\nstringData: [other-ns-value-93]\n",
            ),
            // This project's broken Secret, with a value in it.
            (
                "acme-demo/mine.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: { name: y }\ndata: { K: own-ns-value-94 }\n",
            ),
        ],
    )
    .await;
    s.create("db", json!({"K": "v"})).await;
    let r = s.get(DEV, &secrets("/db/consumers")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.text);
    assert_eq!(errors[0]["file"], "acme-demo/mine.yaml");
    assert!(
        !r.text.contains("value-93") && !r.text.contains("value-94"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("acme-other"), "{}", r.text);
}
