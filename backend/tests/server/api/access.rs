//! Who may do what: tokens, request ids, the role table, elevation windows,
//! namespace ownership.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::secrets;
use crate::common::*;

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
        (
            "alg none",
            kube_dc_testsupport::testing::unsigned_token(&good),
        ),
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
        json!(kube_dc_testsupport::testing::now() - 60),
        "expired",
    );
    bad(
        "nbf",
        json!(kube_dc_testsupport::testing::now() + 600),
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
    // A denial says in which role the caller was refused, as an allowed
    // request does.
    let role_of = |user: &str| {
        denied
            .iter()
            .find(|e| e["body"]["actor"] == user)
            .map(|e| e["body"]["role"].clone())
    };
    assert_eq!(role_of(DEV.0), Some(json!("developer")));
    assert_eq!(role_of(ORG_ADMIN.0), Some(json!("org-admin")));
    assert!(
        denied.iter().all(|e| e["body"]["role"].is_string()),
        "{denied:?}"
    );
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
