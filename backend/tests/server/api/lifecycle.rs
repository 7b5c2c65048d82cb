//! A secret's life: versions, soft delete and restore, encryption at rest,
//! sync, rotation, names.

use serde_json::json;

use super::secrets;
use crate::common::*;

#[tokio::test]
async fn versions_history_window_cas_and_destroy_version() {
    let s = Server::start().await;
    s.create("cfg", json!({"N": "1"})).await;
    for n in 2..=12 {
        let r = s
            .put(
                DEV,
                &secrets("/cfg/values"),
                json!({"data": {"N": n.to_string()}}),
            )
            .await;
        assert_eq!(r.body["version"], n);
        // The engine's mount is per namespace: kv-<namespace>, or the
        // configured OpenBao prefix before it.
        let prefix = s
            .backend
            .config
            .openbao
            .as_ref()
            .map_or("kv-", |o| o.mount_prefix.as_str());
        assert_eq!(r.body["mount"], format!("{prefix}acme-demo"));
    }
    let v = s.get(DEV, &secrets("/cfg/versions")).await;
    let nums: Vec<u64> = v.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        nums,
        (3..=12).collect::<Vec<_>>(),
        "the window keeps the newest 10"
    );
    assert_eq!(
        s.get(DEV, &secrets("/cfg?includeValue=true&version=2"))
            .await
            .status,
        404
    );
    let r = s
        .get(DEV, &secrets("/cfg?includeValue=true&version=3"))
        .await;
    assert_eq!(r.body["value"]["data"]["N"], "3");
    assert_eq!(r.body["value"]["metadata"]["version"], 3);
    let r = s.get(DEV, &secrets("/cfg?includeValue=true")).await;
    assert_eq!(r.body["value"]["data"]["N"], "12");
    assert_eq!(r.body["openbao"]["currentVersion"], 12);
    assert_eq!(r.body["openbao"]["maxVersions"], 10);

    // Check-and-set.
    let r = s
        .put(
            DEV,
            &secrets("/cfg/values"),
            json!({"data": {"N": "x"}, "cas": 11}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = s
        .put(
            DEV,
            &secrets("/cfg/values"),
            json!({"data": {"N": "13"}, "cas": 12}),
        )
        .await;
    assert_eq!(r.body["version"], 13);

    // Destroy one version; it stays listed as destroyed and is unreadable.
    let r = s
        .post(ADMIN, &secrets("/cfg/versions/5/destroy"), json!(null))
        .await;
    assert_eq!(r.body["destroyedVersion"], 5);
    assert_eq!(
        s.post(ADMIN, &secrets("/cfg/versions/5/destroy"), json!(null))
            .await
            .status,
        404
    );
    let v = s.get(DEV, &secrets("/cfg/versions")).await;
    let five = v.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["version"] == 5)
        .unwrap()
        .clone();
    assert_eq!(five["destroyed"], true);
    assert!(five["deletionTime"].is_string());
    assert_eq!(
        s.get(DEV, &secrets("/cfg?includeValue=true&version=5"))
            .await
            .status,
        404
    );
    // Destroying the current version leaves the secret without a value.
    s.post(ADMIN, &secrets("/cfg/versions/13/destroy"), json!(null))
        .await;
    let r = s.get(DEV, &secrets("/cfg?includeValue=true")).await;
    assert_eq!(r.body["valueMissing"], true);
    assert!(r.body.get("value").is_none());
    // …and its projection is not Ready: Synced says why.
    assert_eq!(
        r.body["status"]["conditions"][1]["reason"],
        "CurrentVersionDestroyed"
    );
    assert_eq!(r.body["status"]["conditions"][1]["status"], "False");
    assert_eq!(
        s.post(ADMIN, &secrets("/cfg/versions/0/destroy"), json!(null))
            .await
            .status,
        400
    );
    assert_eq!(
        s.post(ADMIN, &secrets("/cfg/versions/abc/destroy"), json!(null))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn soft_delete_restore_and_destroy() {
    let s = Server::start().await;
    s.create("gone", json!({"K": "keep-me-9f3"})).await;
    s.put(DEV, &secrets("/gone/values"), json!({"data": {"K": "v2"}}))
        .await;
    let model = || async {
        let r = s
            .get(
                DEV,
                &format!("/api/local/namespaces/{NS}/kubernetes-secrets"),
            )
            .await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(model().await, ["gone"]);
    let r = s.delete(DEV, &secrets("/gone")).await;
    assert_eq!(
        r.body,
        json!({"name": "gone", "namespace": NS, "deleted": true, "destroyed": false})
    );
    assert_eq!(s.get(DEV, &secrets("/gone")).await.status, 404);
    assert_eq!(s.get(DEV, &secrets("")).await.body["items"], json!([]));
    assert!(
        model().await.is_empty(),
        "the projection goes with the soft delete"
    );
    let r = s.post(DEV, &secrets("/gone"), json!({})).await;
    assert_eq!(r.status, 409);
    assert!(
        r.body["error"].as_str().unwrap().contains("restore"),
        "{}",
        r.text
    );
    assert_eq!(
        s.put(DEV, &secrets("/gone/values"), json!({"data": {"K": "x"}}))
            .await
            .status,
        404
    );

    let r = s.post(ADMIN, &secrets("/gone/restore"), json!(null)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openbao"]["currentVersion"], 2);
    assert_eq!(
        s.get(DEV, &secrets("/gone?includeValue=true&version=1"))
            .await
            .body["value"]["data"]["K"],
        "keep-me-9f3"
    );
    assert_eq!(model().await, ["gone"]);
    assert_eq!(
        s.post(ADMIN, &secrets("/gone/restore"), json!(null))
            .await
            .status,
        409
    );

    let r = s.delete(ADMIN, &secrets("/gone?destroy=true")).await;
    assert_eq!(r.body["destroyed"], true);
    assert_eq!(s.get(DEV, &secrets("/gone")).await.status, 404);
    assert_eq!(
        s.post(ADMIN, &secrets("/gone/restore"), json!(null))
            .await
            .status,
        404
    );
    // A destroyed name is free again and starts from version 1.
    let r = s
        .post(
            DEV,
            &secrets("/gone"),
            json!({"initialValues": {"K": "new"}}),
        )
        .await;
    assert_eq!(r.body["openbao"]["currentVersion"], 1);
    assert_eq!(r.body["kvVersion"], 1);
}

#[tokio::test]
async fn values_are_encrypted_at_rest_and_erased_on_destroy() {
    let s = Server::start().await;
    let marker = "plaintext-marker-7c1e5a";
    s.create("enc", json!({"TOKEN": marker})).await;
    s.put(
        DEV,
        &secrets("/enc/values"),
        json!({"data": {"TOKEN": format!("{marker}-v2")}}),
    )
    .await;
    s.get(DEV, &secrets("/enc?includeValue=true")).await;
    assert_eq!(
        files_containing(&s.data_dir(), marker.as_bytes()),
        Vec::<String>::new()
    );
    // Nor in the audit log.
    let ev = s.audit("limit=5000").await;
    assert!(!serde_json::to_string(&ev).unwrap().contains(marker));

    // Destroy erases the ciphertext rows, not just a flag.
    let store = s.backend.store.clone();
    let count = |sql: &str| -> i64 {
        let (store, sql) = (store.clone(), sql.to_owned());
        std::thread::spawn(move || store.count_raw(&sql).unwrap())
            .join()
            .unwrap()
    };
    // Sealed in the version rows on SQLite; on OpenBao, none at all here.
    let sealed_here = |n: i64| {
        if s.backend.config.openbao.is_none() {
            n
        } else {
            0
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM kv_versions WHERE name = 'enc' AND ciphertext IS NOT NULL"),
        sealed_here(2)
    );
    s.post(ADMIN, &secrets("/enc/versions/1/destroy"), json!(null))
        .await;
    assert_eq!(
        count("SELECT count(*) FROM kv_versions WHERE name = 'enc' AND ciphertext IS NOT NULL"),
        sealed_here(1)
    );
    s.delete(ADMIN, &secrets("/enc?destroy=true")).await;
    assert_eq!(
        count("SELECT count(*) FROM kv_versions WHERE name = 'enc'"),
        0
    );
}

#[tokio::test]
async fn sync_projection_keys_and_refresh_interval() {
    let s = Server::start().await;
    let r = s.post(DEV, &secrets("/empty"), json!({})).await;
    assert_eq!(
        r.body["sync"],
        json!({"enabled": true, "targetSecretName": "empty", "refreshInterval": "1h"})
    );
    // Reconciled before any value is written, as in production.
    assert_eq!(r.body["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(r.body["status"]["conditions"][0]["status"], "True");
    // …but its projection holds nothing yet: Synced says so.
    assert_eq!(
        r.body["status"]["conditions"][1]["reason"],
        "AwaitingValues"
    );
    assert_eq!(r.body["status"]["conditions"][1]["status"], "False");
    assert_eq!(r.body["status"]["syncedSecretName"], "empty");
    assert_eq!(r.body["kvVersion"], 0);

    let r = s.create("app", json!({"A": "1", "B": "2", "C": "3"})).await;
    let ready = &r.body["status"]["conditions"];
    assert_eq!(ready[0]["type"], "Ready");
    assert_eq!(ready[0]["status"], "True");
    assert_eq!(ready[1]["type"], "Synced");
    assert_eq!(r.body["status"]["syncedSecretName"], "app");

    let model = || async {
        let r = s
            .get(
                DEV,
                &format!("/api/local/namespaces/{NS}/kubernetes-secrets"),
            )
            .await;
        r.body["items"].clone()
    };
    let r = s
        .post(
            DEV,
            &secrets("/app/sync"),
            json!({"keys": ["A", "C"], "targetSecretName": "app-env", "refreshInterval": "30m"}),
        )
        .await;
    assert_eq!(r.body["sync"]["keys"], json!(["A", "C"]));
    assert_eq!(r.body["sync"]["refreshInterval"], "30m");
    assert_eq!(r.body["status"]["syncedSecretName"], "app-env");
    let m = model().await;
    assert_eq!(m[0]["name"], "app-env");
    assert_eq!(m[0]["keys"], json!(["A", "C"]));
    assert_eq!(m[0]["ownedBy"], "ManagedSecret/app");

    // Only the fields given change; an empty key list means all keys.
    let r = s
        .post(DEV, &secrets("/app/sync"), json!({"keys": []}))
        .await;
    assert!(r.body["sync"].get("keys").is_none());
    assert_eq!(r.body["sync"]["targetSecretName"], "app-env");
    assert_eq!(model().await[0]["keys"], json!(["A", "B", "C"]));

    let r = s
        .post(DEV, &secrets("/app/sync"), json!({"enabled": false}))
        .await;
    assert_eq!(r.body["sync"]["enabled"], false);
    assert!(r.body["status"].get("syncedSecretName").is_none());
    assert_eq!(
        r.body["status"]["conditions"][1],
        json!({"type": "Synced", "status": "False", "reason": "SyncDisabled",
               "message": "sync is disabled: no Kubernetes Secret is projected",
               "lastTransitionTime": r.body["status"]["conditions"][1]["lastTransitionTime"]})
    );
    assert_eq!(model().await, json!([]));

    for bad in [
        json!({"refreshInterval": "9s"}),
        json!({"refreshInterval": "8d"}),
        json!({"refreshInterval": "1 hour"}),
        json!({"targetSecretName": "Bad_Name"}),
        json!({"keys": ["no/slash"]}),
        json!({"enabled": "yes"}),
        json!({"bogus": 1}),
    ] {
        let r = s.post(DEV, &secrets("/app/sync"), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
}

#[tokio::test]
async fn password_rotation() {
    let s = Server::start().await;
    let spec = json!({"type": "password", "sync": {"enabled": true, "targetSecretName": "app-password"},
        "rotation": {"enabled": true, "interval": "1m", "generator": {"length": 24, "charset": "hex"}}});
    let r = s.post(DEV, &secrets("/app-password"), spec).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["openbao"]["currentVersion"], 1);
    assert!(r.body["status"]["nextRotationTime"].is_string());
    assert!(r.body["status"]["lastRotatedTime"].is_string());
    let v1 = s
        .get(DEV, &secrets("/app-password?includeValue=true"))
        .await
        .body["value"]["data"]["password"]
        .clone();
    let pw = v1.as_str().unwrap();
    assert_eq!(pw.len(), 24);
    assert!(pw.bytes().all(|c| c.is_ascii_hexdigit()));
    // Make it due rather than wait a minute.
    s.backend
        .store
        .execute_raw("UPDATE managed_secrets SET next_rotation = 0 WHERE name = 'app-password'")
        .unwrap();
    let r = s
        .get(DEV, &secrets("/app-password?includeValue=true"))
        .await;
    assert_eq!(r.body["value"]["metadata"]["version"], 2, "{}", r.text);
    assert_ne!(r.body["value"]["data"]["password"], v1);
    let ev = s.audit("actor=system&limit=10").await;
    assert_eq!(ev[0]["body"]["action"], "secrets.value.rotate");
    assert_eq!(ev[0]["body"]["resource"], "app-password");
    assert!(!serde_json::to_string(&ev).unwrap().contains(pw));

    for (bad, why) in [
        (
            json!({"name": "r2", "type": "password", "rotation": {"enabled": true, "interval": "1h", "generator": {"length": 7}}}),
            "too short",
        ),
        (
            json!({"name": "r3", "type": "password", "rotation": {"enabled": true, "interval": "1h", "generator": {"length": 129}}}),
            "too long",
        ),
        (
            json!({"name": "r4", "type": "password", "rotation": {"enabled": true, "interval": "1h", "generator": {"charset": "emoji"}}}),
            "charset",
        ),
        (
            json!({"name": "r5", "type": "password", "rotation": {"enabled": true, "interval": "soon"}}),
            "interval",
        ),
        (
            json!({"name": "r6", "type": "password", "rotation": {"enabled": true}}),
            "no interval",
        ),
        (
            json!({"name": "r7", "type": "password", "rotation": {"enabled": true, "interval": "1ns"}}),
            "below a minute",
        ),
        (
            json!({"name": "r8", "type": "password", "rotation": {"enabled": true, "interval": "4294967295d4294967295d"}}),
            "beyond ten years",
        ),
    ] {
        let name = bad["name"].as_str().unwrap().to_string();
        let mut body = bad.clone();
        body.as_object_mut().unwrap().remove("name");
        let r = s.post(DEV, &secrets(&format!("/{name}")), body).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text);
    }
}

#[tokio::test]
async fn names_are_checked_as_kubernetes_does_and_projections_are_unique() {
    let s = Server::start().await;
    for bad in ["a..b", "a.-b", "a-.b"] {
        let r = s.post(DEV, &secrets(&format!("/{bad}")), json!({})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    s.create("one", json!({"K": "v"})).await;
    let r = s
        .post(
            DEV,
            &secrets("/two"),
            json!({"sync": {"enabled": true, "targetSecretName": "one"}}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("managed secret \\\"one\\\""), "{}", r.text);
    // Free again once the first stops projecting.
    s.post(DEV, &secrets("/one/sync"), json!({"enabled": false}))
        .await;
    let r = s
        .post(
            DEV,
            &secrets("/two"),
            json!({"sync": {"enabled": true, "targetSecretName": "one"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Turning the first back on would collide: 409.
    let r = s
        .post(DEV, &secrets("/one/sync"), json!({"enabled": true}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
}

/// Each conflict says which situation it is (`reason`) and whether the
/// same change can succeed from a fresh read (`retryable`), with a hint.
#[tokio::test]
async fn conflicts_name_their_reason_and_whether_to_retry() {
    let s = Server::start().await;
    s.create("c", json!({"A": "1"})).await;
    let check = |r: &Resp, reason: &str, retryable: bool| {
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.body["reason"], reason, "{}", r.text);
        assert_eq!(r.body["retryable"], retryable, "{}", r.text);
        assert!(r.body["hint"].is_string(), "{}", r.text);
    };
    let r = s.post(DEV, &secrets("/c"), json!({})).await;
    check(&r, "exists", false);
    let r = s
        .put(
            DEV,
            &secrets("/c/values"),
            json!({"data": {"A": "2"}, "cas": 0}),
        )
        .await;
    check(&r, "cas-mismatch", true);
    assert!(
        r.body["hint"].as_str().unwrap().contains("version 1"),
        "{}",
        r.text
    );
    let r = s
        .post(
            DEV,
            &secrets("/d"),
            json!({"sync": {"enabled": true, "targetSecretName": "c"}}),
        )
        .await;
    check(&r, "projection-taken", false);
    let r = s.post(ADMIN, &secrets("/c/restore"), json!({})).await;
    check(&r, "not-deleted", false);
}
