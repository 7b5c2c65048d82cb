//! The endpoint table against the rest of the backend: the OpenAPI document
//! lists exactly its routes; the router serves each of them and audits it
//! with the table's action; a request whose path or query is
//! percent-encoded is served and audited exactly like its plain form.

use std::collections::BTreeSet;

use crate::common::*;
use kube_dc_api::endpoints::{Origin, Route, UNMATCHED_ACTION};
use reqwest::Method;
use serde_json::{Value, json};

#[test]
fn openapi_documents_exactly_the_routes_of_the_table() {
    let doc: Value = serde_norway::from_str(kube_dc_backend::OPENAPI).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let method = method.to_uppercase();
            let (route, _) = Route::ALL
                .iter()
                .map(|r| (*r, r.endpoint()))
                .find(|(_, e)| e.method == method && e.path == path)
                .unwrap_or_else(|| panic!("openapi.yaml has {method} {path}, the table does not"));
            let e = route.endpoint();
            assert_eq!(
                op["x-extension"].as_bool().unwrap_or(false),
                e.origin == Origin::Extension,
                "{method} {path}: x-extension disagrees with the table"
            );
            assert_eq!(
                op["x-audit-action"].as_str(),
                Some(e.action),
                "{method} {path}: x-audit-action"
            );
            if let Some(f) = e.flag {
                assert_eq!(
                    op[format!("x-audit-action-when-{}", f.param)].as_str(),
                    Some(f.action),
                    "{method} {path}"
                );
            }
            documented.insert(route);
        }
    }
    let missing: Vec<_> = Route::ALL
        .iter()
        .filter(|r| !documented.contains(r))
        .map(|r| format!("{} {}", r.endpoint().method, r.endpoint().path))
        .collect();
    assert!(missing.is_empty(), "not in openapi.yaml: {missing:?}");
}

/// Parameter values for a route's template.
fn values(route: Route) -> Vec<&'static str> {
    route
        .endpoint()
        .params()
        .map(|p| match p {
            "ns" => "acme-demo",
            "name" => "db",
            "version" => "1",
            "org" => "acme",
            "project" => "demo",
            other => panic!("unknown parameter {other}"),
        })
        .collect()
}

/// Every character of a value percent-encoded (`acme-demo` → `%61%63…`).
fn encode_all(v: &str) -> String {
    v.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The audit event of one request, by its request id.
async fn event(s: &Server, request_id: &str) -> Value {
    let events = s.audit("limit=5000").await;
    events
        .into_iter()
        .find(|e| e["body"]["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no audit event for request {request_id}"))["body"]
        .clone()
}

fn classification(e: &Value) -> Value {
    json!({
        "service": e["service"], "action": e["action"], "resource": e["resource"],
        "org": e["org"], "project": e["project"], "namespace": e["namespace"],
    })
}

#[tokio::test]
async fn every_route_is_served_and_audited_as_the_table_says() {
    let s = Server::start().await;
    for &route in Route::ALL {
        let e = route.endpoint();
        let vals = values(route);
        let plain = e.path_for(&vals);
        let encoded: String = {
            let enc: Vec<String> = vals.iter().map(|v| encode_all(v)).collect();
            let refs: Vec<&str> = enc.iter().map(String::as_str).collect();
            // path_for would encode the '%' again: put the values in by hand.
            let mut out = e.path.to_string();
            for (p, v) in e.params().zip(refs) {
                out = out.replacen(&format!("{{{p}}}"), v, 1);
            }
            out
        };
        let method = Method::from_bytes(e.method.as_bytes()).unwrap();
        let mut seen = Vec::new();
        for (i, path) in [plain, encoded].iter().enumerate() {
            // No token: the route layer still matches and classifies, and
            // nothing is changed.
            let rid = format!("contract-{route:?}-{i}");
            let r = s
                .call_raw(None, method.clone(), path, None, Some(&rid))
                .await;
            assert_eq!(r.status, 401, "{} {path}: {}", e.method, r.text);
            let ev = event(&s, &rid).await;
            assert_eq!(ev["action"], e.action, "{} {path}", e.method);
            assert_eq!(ev["result"], "denied");
            seen.push(classification(&ev));
        }
        assert_eq!(
            seen[0], seen[1],
            "{route:?}: encoded path audited differently"
        );
        assert_ne!(seen[0]["action"], UNMATCHED_ACTION);
    }
    // A path that is no route is audited as such, under the caller's org.
    let dev = s.token(DEV);
    let r = s
        .call_raw(
            Some(&dev),
            Method::GET,
            "/api/nothing/here",
            None,
            Some("unmatched-1"),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(event(&s, "unmatched-1").await["action"], UNMATCHED_ACTION);
    // So is a wrong method on a known path: never as the path's other route.
    let r = s
        .call_raw(
            Some(&dev),
            Method::PUT,
            "/api/secrets/acme-demo/db",
            None,
            Some("unmatched-2"),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(event(&s, "unmatched-2").await["action"], UNMATCHED_ACTION);
}

#[tokio::test]
async fn encoded_value_reads_are_served_and_audited_as_value_reads() {
    let s = Server::start().await;
    s.create("db", json!({"K": "v1"})).await;
    let token = s.token(DEV);
    let reads = [
        "/api/secrets/acme-demo/db?includeValue=true",
        "/api/secrets/acme%2Ddemo/db?includeValue=true",
        "/api/secrets/%61%63%6D%65-demo/%64b?includeValue=true",
        "/api/secrets/acme-demo/db?includeValue=%74rue",
        "/api/secrets/acme-demo/db?include%56alue=true",
        "/api/secrets/acme-demo/db?%69ncludeValue=%74%72%75%65",
    ];
    for (i, path) in reads.iter().enumerate() {
        let rid = format!("read-{i}");
        let r = s
            .call_raw(Some(&token), Method::GET, path, None, Some(&rid))
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(
            r.body["value"]["data"]["K"], "v1",
            "{path} served the value"
        );
        let ev = event(&s, &rid).await;
        assert_eq!(
            classification(&ev),
            json!({"service": "secrets", "action": "secrets.value.read", "resource": "db",
                   "org": "acme", "project": "demo", "namespace": "acme-demo"}),
            "{path}"
        );
    }
    // A viewer is refused a value read however the flag is spelled.
    let viewer = s.token(USER);
    for path in &reads[3..] {
        let r = s
            .call_raw(Some(&viewer), Method::GET, path, None, None)
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
    }
    // Destroy spelled with an encoded flag needs the admin role and is
    // audited as a destroy.
    let r = s
        .call_raw(
            Some(&s.token(DEV)),
            Method::DELETE,
            "/api/secrets/acme-demo/db?destroy=%74rue",
            None,
            Some("destroy-1"),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        event(&s, "destroy-1").await["action"],
        "secrets.secret.destroy"
    );
}
