//! HTTP-level tests of the backend: real HTTP on 127.0.0.1, tokens minted
//! from the test keys and verified through discovery + JWKS.

#[path = "../common/mod.rs"]
mod common;
mod outcomes;
mod status;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn secrets(path: &str) -> String {
    format!("/api/secrets/{NS}{path}")
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_errors_are_json() {
    let s = Server::start().await;
    let t = s.token(ADMIN);
    let r = s
        .call_raw(Some(&t), Method::GET, &secrets(""), None, Some("req-123"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.request_id.as_deref(), Some("req-123"));
    let r = s
        .call_raw(Some(&t), Method::GET, &secrets(""), None, None)
        .await;
    assert_eq!(r.request_id.unwrap().len(), 36);
    // An unusable caller id (control characters) is replaced.
    let r = s
        .call_raw(Some(&t), Method::GET, &secrets(""), None, Some("a\tb"))
        .await;
    assert_ne!(r.request_id.as_deref(), Some("a\tb"));
    let r = s
        .call(Some(ADMIN), Method::GET, "/api/nothing/here", None)
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .call(
            Some(ADMIN),
            Method::PATCH,
            &secrets("/x/values"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 405);
    // The audit event's request_id equals the response header.
    let r = s
        .call_raw(
            Some(&t),
            Method::GET,
            &secrets("/missing"),
            None,
            Some("trace-42"),
        )
        .await;
    assert_eq!(r.status, 404);
    let ev = s.audit("actor=ada&limit=1").await;
    assert_eq!(ev[0]["body"]["request_id"], "trace-42");
    assert_eq!(ev[0]["body"]["result"], "error");
}

#[tokio::test]
async fn tokens_are_verified_and_refusals_audited() {
    let s = Server::start().await;
    let iss = &s.issuer;
    let path = secrets("");
    let ok = |t: String| t;
    let good = iss.claims("ada", &["acme-project-admins"], Some("acme"));

    let r = s.call_raw(None, Method::GET, &path, None, None).await;
    assert_eq!(r.status, 401);
    let r = s
        .call_raw(
            Some(&ok(iss.sign_rs256(&good))),
            Method::GET,
            &path,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "RS256: {}", r.text);
    let r = s
        .call_raw(Some(&iss.sign_es256(&good)), Method::GET, &path, None, None)
        .await;
    assert_eq!(r.status, 200, "ES256: {}", r.text);

    let mut cases: Vec<(&str, String)> = vec![
        ("alg none", kube_dc_backend::testing::unsigned_token(&good)),
        ("unknown signing key", iss.sign_rogue(&good)),
        ("garbage", "not.a.jwt".into()),
    ];
    let mut bad = |k: &str, v: Value, what: &'static str| {
        let mut c = good.clone();
        c[k] = v;
        cases.push((what, iss.sign_rs256(&c)));
    };
    bad(
        "exp",
        json!(kube_dc_backend::testing::now() - 60),
        "expired",
    );
    bad(
        "nbf",
        json!(kube_dc_backend::testing::now() + 600),
        "not yet valid",
    );
    bad("aud", json!("someone-else"), "wrong audience");
    bad(
        "iss",
        json!("http://evil.example/realms/test"),
        "wrong issuer",
    );
    for (what, token) in &cases {
        let r = s
            .call_raw(Some(token), Method::GET, &path, None, None)
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
    }
    let denied = s.audit("result=denied&actor=anonymous").await;
    // Anonymous refusals of a namespace route are recorded under its org.
    assert_eq!(denied.len(), 1 + cases.len(), "{denied:#?}");
}

/// Every role, and org admins with and without elevation and project role,
/// against every operation.
#[tokio::test]
async fn permission_matrix() {
    let s = Server::start().await;
    // (operation, allowed for [user, developer, project-manager, admin, org-admin, org-admin elevated, org-admin+developer])
    type Row = (&'static str, [bool; 7]);
    let table: &[Row] = &[
        ("list", [true, true, true, true, true, true, true]),
        ("get", [true, true, true, true, true, true, true]),
        ("reveal", [false, true, true, true, false, true, true]),
        ("create", [false, true, true, true, false, false, true]),
        ("put", [false, true, true, true, false, false, true]),
        ("sync", [false, true, true, true, false, false, true]),
        ("versions", [true, true, true, true, true, true, true]),
        ("consumers", [true, true, true, true, true, true, true]),
        ("delete", [false, true, true, true, false, false, true]),
        ("restore", [false, false, false, true, false, false, false]),
        ("destroy", [false, false, false, true, false, false, false]),
        (
            "destroy-version",
            [false, false, false, true, false, false, false],
        ),
    ];
    let who: [(&str, &[&str]); 7] = [
        USER,
        DEV,
        PM,
        ADMIN,
        ORG_ADMIN,
        ("oscar2", &["acme-admins"]),
        ORG_ADMIN_DEV,
    ];
    // The elevated org admin opens a window first.
    let r = s
        .post(
            who[5],
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "IR-1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let mut expected_denials = 0;
    for (op, allowed) in table {
        for (i, w) in who.iter().enumerate() {
            let name = format!("{op}-{i}");
            s.create(&name, json!({"K": "v1"})).await;
            if *op == "restore" {
                assert_eq!(
                    s.delete(ADMIN, &secrets(&format!("/{name}"))).await.status,
                    200
                );
            }
            let r = match *op {
                "list" => s.get(*w, &secrets("")).await,
                "get" => s.get(*w, &secrets(&format!("/{name}"))).await,
                "reveal" => {
                    s.get(*w, &secrets(&format!("/{name}?includeValue=true")))
                        .await
                }
                "create" => {
                    s.post(*w, &secrets(&format!("/new-{name}")), json!({}))
                        .await
                }
                "put" => {
                    s.put(
                        *w,
                        &secrets(&format!("/{name}/values")),
                        json!({"data": {"K": "v2"}}),
                    )
                    .await
                }
                "sync" => {
                    s.post(
                        *w,
                        &secrets(&format!("/{name}/sync")),
                        json!({"enabled": false}),
                    )
                    .await
                }
                "versions" => s.get(*w, &secrets(&format!("/{name}/versions"))).await,
                "consumers" => s.get(*w, &secrets(&format!("/{name}/consumers"))).await,
                "delete" => s.delete(*w, &secrets(&format!("/{name}"))).await,
                "restore" => {
                    s.post(*w, &secrets(&format!("/{name}/restore")), json!(null))
                        .await
                }
                "destroy" => {
                    s.delete(*w, &secrets(&format!("/{name}?destroy=true")))
                        .await
                }
                "destroy-version" => {
                    s.post(
                        *w,
                        &secrets(&format!("/{name}/versions/1/destroy")),
                        json!(null),
                    )
                    .await
                }
                _ => unreachable!(),
            };
            let expect = if allowed[i] { "allowed" } else { "denied" };
            let got = if r.status.is_success() {
                "allowed"
            } else if r.status == 403 {
                "denied"
            } else {
                "other"
            };
            assert_eq!(
                got, expect,
                "{op} as {} (#{i}): {} {}",
                w.0, r.status, r.text
            );
            if !allowed[i] {
                expected_denials += 1;
                if *op == "reveal" && i == 4 {
                    assert!(
                        r.body["hint"]
                            .as_str()
                            .unwrap()
                            .contains("kube-dc orgs elevate demo"),
                        "{}",
                        r.text
                    );
                }
            }
        }
    }
    let denied = s.audit("result=denied&limit=5000").await;
    assert_eq!(
        denied.len(),
        expected_denials,
        "every denial is audited once"
    );
    assert!(denied.iter().all(|e| e["body"]["status"] == 403));
}

#[tokio::test]
async fn elevation_window_lifecycle() {
    // The real 15-minute window, on a clock the test moves.
    let s = Server::start_with(|c| c.clock = kube_dc_backend::clock::Clock::manual(), &[]).await;
    s.create("db", json!({"PASSWORD": "s3cr3t-elev"})).await;
    let reveal = secrets("/db?includeValue=true");
    assert_eq!(s.get(ORG_ADMIN, &reveal).await.status, 403);
    // A reason is required; non-admins cannot elevate.
    let r = s
        .post(
            ORG_ADMIN,
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "  "}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .post(
            DEV,
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let g1 = s
        .post(
            ORG_ADMIN,
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "IR-2026-05-12"}),
        )
        .await;
    assert_eq!(g1.status, 200);
    assert_eq!(g1.body["ttlSeconds"], 900);
    let g2 = s
        .post(
            ORG_ADMIN,
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "IR-2026-05-13"}),
        )
        .await;
    assert_ne!(g1.body["elevationId"], g2.body["elevationId"]);
    let list = s.get(ORG_ADMIN, "/api/orgs/acme/elevations").await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "a new elevate replaces the old grant"
    );
    let st = s
        .get(ORG_ADMIN, "/api/orgs/acme/projects/demo/elevate")
        .await;
    assert_eq!(st.body["active"], true);
    assert_eq!(st.body["reason"], "IR-2026-05-13");

    let r = s.get(ORG_ADMIN, &reveal).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"]["data"]["PASSWORD"], "s3cr3t-elev");
    let ev = s.audit("actor=oscar&service=secrets&limit=1").await;
    assert_eq!(ev[0]["body"]["action"], "secrets.value.read");
    assert_eq!(ev[0]["body"]["resource"], "db");
    assert!(g2.body["elevationId"].as_str().unwrap().starts_with("elv-"));
    assert_eq!(ev[0]["body"]["elevation_id"], g2.body["elevationId"]);
    assert_eq!(ev[0]["body"]["reason"], "IR-2026-05-13");

    // Release ends the window; releasing again finds nothing.
    let rel = s
        .delete(ORG_ADMIN, "/api/orgs/acme/projects/demo/elevate")
        .await;
    assert_eq!(rel.status, 200);
    assert!(rel.body["releasedAt"].is_string());
    assert_eq!(s.get(ORG_ADMIN, &reveal).await.status, 403);
    assert_eq!(
        s.delete(ORG_ADMIN, "/api/orgs/acme/projects/demo/elevate")
            .await
            .status,
        404
    );
    assert_eq!(
        s.get(ORG_ADMIN, "/api/orgs/acme/projects/demo/elevate")
            .await
            .body,
        json!({"active": false})
    );

    // Windows expire by themselves.
    s.post(
        ORG_ADMIN,
        "/api/orgs/acme/projects/demo/elevate",
        json!({"reason": "IR-3"}),
    )
    .await;
    assert_eq!(s.get(ORG_ADMIN, &reveal).await.status, 200);
    s.backend
        .config
        .clock
        .advance(Duration::from_secs(14 * 60 + 59));
    assert_eq!(
        s.get(ORG_ADMIN, &reveal).await.status,
        200,
        "still open at 14:59"
    );
    s.backend.config.clock.advance(Duration::from_secs(2));
    assert_eq!(s.get(ORG_ADMIN, &reveal).await.status, 403);

    // An org admin with a project role needs no window.
    assert_eq!(s.get(ORG_ADMIN_DEV, &reveal).await.status, 200);
    // Windows are per project.
    assert_eq!(
        s.get(ORG_ADMIN, "/api/orgs/acme/elevations").await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn tag_only_mode_allows_reads_and_tags_them() {
    let s = Server::start_with(|c| c.enforce_elevation = false, &[]).await;
    s.create("db", json!({"K": "v"})).await;
    assert_eq!(
        s.get(ORG_ADMIN, &secrets("/db?includeValue=true"))
            .await
            .status,
        200
    );
    let g = s
        .post(
            ORG_ADMIN,
            "/api/orgs/acme/projects/demo/elevate",
            json!({"reason": "audit"}),
        )
        .await;
    assert_eq!(
        s.get(ORG_ADMIN, &secrets("/db?includeValue=true"))
            .await
            .status,
        200
    );
    let ev = s.audit("actor=oscar&service=secrets&limit=2").await;
    assert_eq!(ev[0]["body"]["elevation_id"], g.body["elevationId"]);
    assert!(ev[1]["body"].get("elevation_id").is_none());
    // Writes still need a project role.
    assert_eq!(
        s.put(
            ORG_ADMIN,
            &secrets("/db/values"),
            json!({"data": {"K": "x"}})
        )
        .await
        .status,
        403
    );
}

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
        assert_eq!(r.body["mount"], "kv-demo");
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
    let db = s.backend.store.db_path().to_path_buf();
    let count = |sql: &str| -> i64 {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
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
    let db = s.backend.store.db_path().to_path_buf();
    let c = rusqlite::Connection::open(&db).unwrap();
    for table in ["managed_secrets", "kv_meta", "kv_versions"] {
        let n: i64 = c
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
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

trait FaultCall {
    async fn post_expect_fault(&self, path: &str, body: Value) -> u16;
}

impl FaultCall for Server {
    /// A request that is meant to fail inside the server (fault injection):
    /// the harness's "no 5xx" rule does not apply to it.
    async fn post_expect_fault(&self, path: &str, body: Value) -> u16 {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(self.token(DEV))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("injected"), "{v}");
        status
    }
}

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
async fn audit_filters_export_and_hash_chain() {
    let s = Server::start().await;
    s.create("a", json!({"K": "audit-secret-value-31"})).await;
    s.get(DEV, &secrets("/a?includeValue=true")).await;
    s.get(USER, &secrets("/a?includeValue=true")).await; // denied
    s.post(
        ORG_ADMIN,
        "/api/orgs/acme/projects/demo/elevate",
        json!({"reason": "review"}),
    )
    .await;
    let t0 = kube_dc_backend::testing::now();

    let all = s.audit("").await;
    assert!(all.len() >= 4);
    let first = &all[0]["body"];
    for f in [
        "service",
        "action",
        "result",
        "resource",
        "actor",
        "actor_email",
        "request_id",
        "source_ip",
    ] {
        assert!(first.get(f).is_some(), "event lacks {f}: {first}");
    }
    assert_eq!(first["source_ip"], "127.0.0.1");
    assert_eq!(s.audit("service=org-admin").await.len(), 1);
    assert_eq!(s.audit("service=secrets&result=denied").await.len(), 1);
    assert_eq!(
        s.audit("actor=DEV@EXAMPLE").await.len(),
        1,
        "actor matches a substring of the email, any case"
    );
    assert_eq!(
        s.audit("actor=sub-uma").await.len(),
        1,
        "…or of the subject"
    );
    assert_eq!(s.audit("limit=2").await.len(), 2);
    assert!(s.audit(&format!("since={}", t0 + 60)).await.is_empty());
    assert_eq!(s.audit(&format!("until={}", t0 - 3600)).await.len(), 0);
    assert!(s.audit("since=2020-01-01T00:00:00Z").await.len() >= 4);
    let r = s.get(ORG_ADMIN, "/api/audit/orgs/acme?limit=3").await;
    assert_eq!(r.body["limit"], 3);
    assert_eq!(r.body["returned"], 3);
    assert_eq!(r.body["query"]["limit"], 3);
    for bad in [
        "limit=0",
        "limit=5001",
        "limit=many",
        "result=maybe",
        "since=yesterday",
        "colour=blue",
    ] {
        let r = s
            .get(ORG_ADMIN, &format!("/api/audit/orgs/acme?{bad}"))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // Who sees what.
    assert_eq!(s.get(DEV, "/api/audit/orgs/acme").await.status, 403);
    let p = s.get(DEV, "/api/audit/orgs/acme/projects/demo").await;
    assert_eq!(p.status, 200);
    assert!(
        p.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["body"]["project"] == "demo")
    );
    assert_eq!(
        s.get(STRANGER, "/api/audit/orgs/acme/projects/demo")
            .await
            .status,
        403
    );

    // CSV: header first, one row per event, never a value.
    let csv = s
        .http
        .get(format!("{}/api/audit/orgs/acme/csv", s.url))
        .bearer_auth(s.token(ORG_ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.headers()["x-kube-dc-export-trailer"], "rows");
    let full = csv.text().await.unwrap();
    // The announced trailer closes the stream with the row count.
    let (text, trailer) = full.rsplit_once("#kube-dc-export-end rows=").unwrap();
    let announced: usize = trailer.trim().parse().unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(rd.headers().unwrap().iter().next(), Some("ts"));
    let rows = rd.records().count();
    let total = s.audit("limit=5000").await.len();
    assert_eq!(
        rows, total,
        "every event up to and including the export's own (audited before the body is read)"
    );
    assert_eq!(announced, rows);
    assert!(!text.contains("audit-secret-value-31"));
    assert_eq!(s.get(DEV, "/api/audit/orgs/acme/csv").await.status, 403);

    // The chain verifies, and a tampered event is found.
    let v = s.get(ORG_ADMIN, "/api/audit/orgs/acme/verify").await;
    assert_eq!(v.body["ok"], true);
    s.backend.store.execute_raw("UPDATE audit SET body = replace(body, '\"denied\"', '\"allowed\"') WHERE result = 'denied'").unwrap();
    let v = s.get(ORG_ADMIN, "/api/audit/orgs/acme/verify").await;
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert!(v.body["brokenAt"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn bad_input_is_a_4xx_never_a_5xx() {
    let s = Server::start().await;
    s.create("ok", json!({"K": "v"})).await;
    let big = "x".repeat(1024 * 1024);
    let cases: Vec<(Method, String, Option<Vec<u8>>, u16)> = vec![
        (
            Method::POST,
            secrets("/Bad%20Name"),
            Some(br#"{}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"type": "magic"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"initialValues": {"bad key": "v"}}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"name": "a"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(format!(r#"{{"description": "{}"}}"#, "d".repeat(257)).into_bytes()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(b"{not json".to_vec()),
            400,
        ),
        (Method::POST, secrets(""), Some(b"{}".to_vec()), 405),
        (
            Method::POST,
            secrets("/a"),
            Some(format!(r#"{{"initialValues": {{"K": "{big}"}}}}"#).into_bytes()),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(format!(r#"{{"data": {{"K": "{big}"}}}}"#).into_bytes()),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(vec![b' '; 5 * 1024 * 1024]),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": {"K": 5}}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": ["K"]}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": {"..": "v"}}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/NOPE/values"),
            Some(br#"{"data": {}}"#.to_vec()),
            400,
        ),
        (Method::GET, secrets("/ok?includeValue=maybe"), None, 400),
        (Method::GET, secrets("/ok?version=2"), None, 400),
        (Method::GET, secrets("/ok?unknown=1"), None, 400),
        (Method::GET, "/api/secrets/Bad_NS".into(), None, 400),
        (Method::DELETE, secrets("/ok?destroy=perhaps"), None, 400),
        (
            Method::POST,
            "/api/orgs/acme/projects/Bad_Project/elevate".into(),
            Some(br#"{"reason": "x"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            "/api/orgs/acme/projects/demo/elevate".into(),
            Some(br#"{"reason": 5}"#.to_vec()),
            400,
        ),
    ];
    let admin = s.token(ADMIN);
    let org_admin = s.token(ORG_ADMIN);
    for (m, path, body, want) in cases {
        let token = if path.starts_with("/api/orgs") {
            &org_admin
        } else {
            &admin
        };
        let r = s.call_raw(Some(token), m.clone(), &path, body, None).await;
        assert_eq!(r.status.as_u16(), want, "{m} {path}: {}", r.text);
    }
    // Values never echo back in errors.
    let r = s
        .call_raw(
            Some(&admin),
            Method::PUT,
            &secrets("/ok/values"),
            Some(br#"{"data": {"K": 424242}}"#.to_vec()),
            None,
        )
        .await;
    assert!(!r.text.contains("424242"), "{}", r.text);
}

#[tokio::test]
async fn a_request_whose_audit_event_cannot_be_written_fails() {
    let s = Server::start().await;
    s.create("guarded", json!({"K": "must-not-leak-77"})).await;
    s.backend
        .store
        .execute_raw("CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .unwrap();
    let r = s
        .http
        .get(format!(
            "{}/api/secrets/{NS}/guarded?includeValue=true",
            s.url
        ))
        .bearer_auth(s.token(DEV))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.headers().contains_key("x-request-id"));
    let text = r.text().await.unwrap();
    assert!(!text.contains("must-not-leak-77"), "{text}");
    assert!(text.contains("audit event could not be written"), "{text}");
    // A change whose event cannot be written does not happen either: the
    // value, the create, the sync change and the deletion are rolled back
    // with their events.
    let dev = s.token(DEV);
    let tries: [(Method, String, Value); 5] = [
        (
            Method::PUT,
            secrets("/guarded/values"),
            json!({"data": {"K": "v2"}}),
        ),
        (
            Method::POST,
            secrets("/fresh"),
            json!({"initialValues": {"K": "x"}}),
        ),
        (
            Method::POST,
            secrets("/guarded/sync"),
            json!({"enabled": false}),
        ),
        (Method::DELETE, secrets("/guarded"), Value::Null),
        (
            Method::POST,
            "/api/orgs/acme/projects/demo/elevate".into(),
            json!({"reason": "r"}),
        ),
    ];
    for (m, path, body) in tries {
        let mut req = s
            .http
            .request(m.clone(), format!("{}{path}", s.url))
            .bearer_auth(&dev);
        if !body.is_null() {
            req = req.json(&body);
        }
        let status = req.send().await.unwrap().status();
        assert_eq!(status, 500, "{m} {path}");
    }
    s.backend
        .store
        .execute_raw("DROP TRIGGER no_audit")
        .unwrap();
    let r = s.get(DEV, &secrets("/guarded?includeValue=true")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["value"]["metadata"]["version"], 1,
        "no unaudited version 2"
    );
    assert_eq!(r.body["sync"]["enabled"], true, "no unaudited sync change");
    assert_eq!(s.get(DEV, &secrets("/fresh")).await.status, 404);
    // Every durable version has its event.
    let events = s.audit("service=secrets&limit=5000").await;
    let written: Vec<&Value> = events
        .iter()
        .filter(|e| {
            matches!(
                e["body"]["action"].as_str(),
                Some("secrets.secret.create" | "secrets.value.write")
            ) && e["body"]["result"] == "allowed"
        })
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0]["body"]["version"], 1);
}

#[tokio::test]
async fn each_organization_verifies_its_own_chain() {
    let s = Server::start().await;
    let globex_admin = s.issuer.token("gail", &["org-admin"], Some("globex"));
    // Interleave events of acme and globex.
    for i in 0..3 {
        s.create(&format!("s{i}"), json!({"K": "v"})).await;
        let r = s
            .call_raw(
                Some(&globex_admin),
                Method::GET,
                "/api/audit/orgs/globex",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let verify = |org: &'static str, token: String| {
        let s = &s;
        async move {
            s.call_raw(
                Some(&token),
                Method::GET,
                &format!("/api/audit/orgs/{org}/verify"),
                None,
                None,
            )
            .await
        }
    };
    let acme_events = s.audit("limit=5000").await.len();
    let v = verify("acme", s.token(ORG_ADMIN)).await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    // acme's chain holds acme's events only (those listed, and the listing's own).
    assert_eq!(v.body["events"], acme_events as u64 + 1);
    let g = verify("globex", globex_admin.clone()).await;
    assert_eq!(g.body["ok"], true, "{}", g.text);
    // Tampering with globex's log breaks globex's chain, not acme's.
    s.backend
        .store
        .execute_raw("UPDATE audit SET body = replace(body, 'audit.event.list', 'audit.event.lost') WHERE org = 'globex'")
        .unwrap();
    assert_eq!(verify("globex", globex_admin).await.body["ok"], false);
    assert_eq!(verify("acme", s.token(ORG_ADMIN)).await.body["ok"], true);
}

#[test]
fn a_single_chain_log_is_migrated_to_one_chain_per_organization() {
    use kube_dc_backend::store::{Store, chain_hash};
    let dir = tempfile::tempdir().unwrap();
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(dir.path(), None).unwrap();
    let store = Store::open(dir.path(), cipher).unwrap();
    // A version-1 log: one chain across organizations.
    let mut prev = "0".repeat(64);
    for (i, org) in ["acme", "globex", "acme", "globex"].iter().enumerate() {
        let body = format!(r#"{{"n":{i}}}"#);
        let hash = chain_hash(&prev, i as i64, &body);
        store
            .execute_raw(&format!(
                "INSERT INTO audit (ts, org, service, result, actor, actor_email, actor_sub, body, prev_hash, hash)
                 VALUES ({i}, '{org}', 's', 'allowed', 'a', '', '', '{body}', '{prev}', '{hash}')"
            ))
            .unwrap();
        prev = hash;
    }
    store.execute_raw("PRAGMA user_version = 1").unwrap();
    drop(store);
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(dir.path(), None).unwrap();
    let store = Store::open(dir.path(), cipher).unwrap();
    assert_eq!(store.verify_audit("acme").unwrap(), Ok(2));
    assert_eq!(store.verify_audit("globex").unwrap(), Ok(2));
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

#[tokio::test]
async fn namespace_ownership_is_declared_never_inferred_from_a_prefix() {
    // Org `shalb` and org `shalb-x`: `shalb-x-y` is project `y` of `shalb-x`,
    // although it also looks like project `x-y` of `shalb`.
    let s = Server::start_full(
        |_| {},
        &[],
        r#"
orgs:
  shalb: { projects: [demo] }
  shalb-x: { projects: [y] }
bindings:
  - { group: shalb-x-devs, namespace: shalb-x-y, role: developer }
"#,
    )
    .await;
    let dev = s.issuer.token("xdev", &["shalb-x-devs"], Some("shalb-x"));
    let r = s
        .call_raw(
            Some(&dev),
            Method::POST,
            "/api/secrets/shalb-x-y/db",
            Some(br#"{"initialValues": {"K": "shalb-x-value"}}"#.to_vec()),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The admin of `shalb` cannot open a window on "project x-y" of shalb …
    let attacker = s.issuer.token("mallory", &["org-admin"], Some("shalb"));
    let r = s
        .call_raw(
            Some(&attacker),
            Method::POST,
            "/api/orgs/shalb/projects/x-y/elevate",
            Some(br#"{"reason": "just looking"}"#.to_vec()),
            Some("elevate-attempt"),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // … nor read the value, which belongs to `shalb-x`.
    let r = s
        .call_raw(
            Some(&attacker),
            Method::GET,
            "/api/secrets/shalb-x-y/db?includeValue=true",
            None,
            Some("read-attempt"),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.contains("shalb-x-value"));
    // The attempt is filed under the owner, `shalb-x`, for its admins to see.
    let owner_admin = s.issuer.token("xadmin", &["org-admin"], Some("shalb-x"));
    let r = s
        .call_raw(
            Some(&owner_admin),
            Method::GET,
            "/api/audit/orgs/shalb-x?limit=50",
            None,
            None,
        )
        .await;
    let read = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["body"]["request_id"] == "read-attempt")
        .unwrap_or_else(|| panic!("not filed under shalb-x: {}", r.text));
    assert_eq!(read["body"]["result"], "denied");
    assert_eq!(read["body"]["project"], "y");

    // A namespace nobody declared is refused, whatever it looks like.
    let r = s
        .call_raw(
            Some(&attacker),
            Method::GET,
            "/api/secrets/shalb-other",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.text.contains("not a project this backend knows"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_csv_export_is_formula_safe_and_verifiable_offline() {
    let s = Server::start().await;
    s.create("db", json!({"K": "v"})).await;
    let formula = "=HYPERLINK(\"http://evil.test\",\"x\")";
    let r = s
        .post(
            ORG_ADMIN,
            "/api/orgs/acme/projects/demo/elevate",
            json!({ "reason": formula }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let full = s
        .http
        .get(format!("{}/api/audit/orgs/acme/csv", s.url))
        .bearer_auth(s.token(ORG_ADMIN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text = full.split("#kube-dc-export-end").next().unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, kube_dc_api_columns().collect::<Vec<_>>());
    let reason_col = header.iter().position(|h| h == "reason").unwrap();
    let reasons: Vec<String> = rd
        .records()
        .map(|r| r.unwrap().get(reason_col).unwrap().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(
        reasons,
        [format!("'{formula}")],
        "the reason cell is neutralised"
    );
    let check =
        kube_dc_api::audit::check_export(csv::Reader::from_reader(text.as_bytes())).unwrap();
    assert!(check.failures.is_empty(), "{check:?}");
    assert!(check.from_genesis && check.gaps.is_empty(), "{check:?}");
    assert!(check.verified >= 3, "{check:?}");
}

fn kube_dc_api_columns() -> impl Iterator<Item = String> {
    kube_dc_api::audit::CSV_COLUMNS
        .iter()
        .map(|c| c.to_string())
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

#[tokio::test]
async fn the_actor_filter_is_a_case_insensitive_substring_of_name_email_or_subject() {
    let s = Server::start().await;
    s.create("a", json!({"K": "v"})).await; // as ada
    s.get(DEV, &secrets("/a")).await; // as dev
    let actors = |q: &str| {
        let q = q.to_string();
        let s = &s;
        async move {
            let mut v: Vec<String> = s
                .audit(&format!("{q}&limit=5000"))
                .await
                .iter()
                .map(|e| e["body"]["actor"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v.dedup();
            v
        }
    };
    // Three characters or more: the trigram index.
    assert_eq!(actors("actor=ADA").await, ["ada"]);
    assert_eq!(actors("actor=dev@").await, ["dev"], "an email substring");
    assert!(actors("actor=zzz").await.is_empty());
    // Shorter: the scan, with the same meaning.
    assert_eq!(actors("actor=Da").await, ["ada"]);
    assert_eq!(actors("actor=ev").await, ["dev"]);
}
