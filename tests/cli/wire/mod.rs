//! Every request's method, path, query and JSON body, pinned to
//! docs/contract.md with a recording stub; and how the CLI copes with
//! installations that lack extensions or answer with proxy pages.

mod compat;
mod contract;
mod export;
mod transport;

use crate::common::*;
use kube_dc_api::{Origin, Route};
use serde_json::{Value, json};

pub(crate) fn secret(name: &str) -> Vec<u8> {
    json!({"name": name, "namespace": "acme-demo", "type": "opaque", "sync": {"enabled": true}, "status": {}})
        .to_string()
        .into_bytes()
}

pub(crate) fn ok_json(v: Value) -> Reply {
    (200, "application/json", v.to_string().into_bytes())
}

/// Answers like a backend would, enough for each command to finish.
pub(crate) fn reply(s: &Seen) -> Reply {
    let p = s.path.as_str();
    match (s.method.as_str(), p) {
        ("GET", "/api/secrets/acme-demo") => ok_json(json!({"items": []})),
        ("GET", "/api/secrets/acme-demo/rotated") => (
            404,
            "application/json",
            br#"{"error":"not found"}"#.to_vec(),
        ),
        (_, p) if p.ends_with("/values") => ok_json(
            json!({"name": "db", "namespace": "acme-demo", "mount": "kv-demo", "version": 2, "createdTime": "2026-01-01T00:00:00Z"}),
        ),
        (_, p) if p.ends_with("/consumers") => {
            ok_json(json!({"items": [], "secret": "db", "scannerVersion": "v1", "cached": true}))
        }
        (_, p) if p.ends_with("/versions") => ok_json(
            json!({"items": [{"version": 1, "createdTime": "2026-01-01T00:00:00Z", "destroyed": false}]}),
        ),
        (_, p) if p.ends_with("/destroy") => {
            ok_json(json!({"name": "db", "namespace": "acme-demo", "destroyedVersion": 3}))
        }
        ("DELETE", p) if p.starts_with("/api/secrets/") => ok_json(
            json!({"name": "db", "namespace": "acme-demo", "deleted": true, "destroyed": s.query.is_some()}),
        ),
        ("GET", p)
            if p.starts_with("/api/secrets/")
                && s.query
                    .as_deref()
                    .is_some_and(|q| q.contains("includeValue")) =>
        {
            let mut v: Value = serde_json::from_slice(&secret("db")).unwrap();
            // The version asked for (an installation with the extension).
            let version: u64 = s
                .query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("version=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            v["value"] = json!({"data": {"K": "v"}, "metadata": {"version": version}});
            ok_json(v)
        }
        (_, p) if p.starts_with("/api/secrets/") => (200, "application/json", secret("db")),
        (_, p) if p.ends_with("/csv") => (200, "text/csv", b"ts,action,result,actor\n".to_vec()),
        (_, p) if p.starts_with("/api/audit/") => ok_json(
            json!({"events": [{"ts": "1778572800000000000", "body": {"service": "secrets", "action": "secrets.value.read", "result": "allowed", "actor": "a", "resource": "r", "future_field": {"x": 1}}}], "query": {}, "returned": 1, "limit": 500}),
        ),
        ("GET", p) if p.ends_with("/elevations") => ok_json(json!({"items": []})),
        ("GET", p) if p.ends_with("/elevate") => ok_json(json!({"active": false})),
        (_, p) if p.ends_with("/elevate") => ok_json(
            json!({"elevationId": "e1", "user": "u", "org": "acme", "project": "demo", "reason": "r", "grantedAt": "t", "expiresAt": "t", "ttlSeconds": 900}),
        ),
        _ => (404, "text/plain", b"404 page not found".to_vec()),
    }
}

/// A stub that serves only the production routes of the endpoint table.
pub(crate) fn production_only(s: &Seen) -> Reply {
    match Route::recognize(&s.method, &s.path) {
        Some((r, _)) if r.endpoint().origin == Origin::Production => {
            let mut v: Value = serde_json::from_slice(&secret("db")).unwrap();
            v["kvVersion"] = json!(1);
            v["openbao"] = json!({"currentVersion": 1, "maxVersions": 10, "casRequired": false});
            ok_json(v)
        }
        _ => (405, "text/plain", b"405 method not allowed".to_vec()),
    }
}
