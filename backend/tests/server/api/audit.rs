//! The audit log: filters, export, per-organization hash chains.

use reqwest::Method;
use serde_json::{Value, json};

use super::secrets;
use crate::common::*;

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
    let t0 = kube_dc_testsupport::testing::now();

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
async fn a_request_whose_audit_event_cannot_be_written_fails() {
    let s = Server::start().await;
    s.create("guarded", json!({"K": "must-not-leak-77"})).await;
    let postgres = s.backend.store.dialect() == kube_dc_backend::store::Dialect::Postgres;
    s.backend
        .store
        .execute_raw(if postgres {
            "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS
                 'BEGIN RAISE EXCEPTION ''disk full''; END';
             CREATE TRIGGER no_audit BEFORE INSERT ON audit
                 FOR EACH ROW EXECUTE FUNCTION no_audit()"
        } else {
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        })
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
        .execute_raw(if postgres {
            "DROP TRIGGER no_audit ON audit"
        } else {
            "DROP TRIGGER no_audit"
        })
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
    let check = kube_dc_api::audit::check_export(text.as_bytes()).unwrap();
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
