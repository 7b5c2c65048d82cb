//! Every request's method, path, query and JSON body, pinned to
//! docs/contract.md with a recording stub; and how the CLI copes with
//! installations that lack extensions or answer with proxy pages.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use kube_dc_api::{Origin, Route};
use serde_json::{Value, json};

fn secret(name: &str) -> Vec<u8> {
    json!({"name": name, "namespace": "acme-demo", "type": "opaque", "sync": {"enabled": true}, "status": {}})
        .to_string()
        .into_bytes()
}

fn ok_json(v: Value) -> Reply {
    (200, "application/json", v.to_string().into_bytes())
}

/// Answers like a backend would, enough for each command to finish.
fn reply(s: &Seen) -> Reply {
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

struct Case {
    args: Vec<&'static str>,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: Option<Value>,
}

fn case(
    args: &[&'static str],
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: Option<Value>,
) -> Case {
    Case {
        args: args.to_vec(),
        method,
        path,
        query,
        body,
    }
}

#[test]
fn requests_match_the_contract() {
    let stub = Stub::start(reply);
    let h = Home::new();
    let cases = vec![
        case(
            &["secrets", "list"],
            "GET",
            "/api/secrets/acme-demo",
            None,
            None,
        ),
        case(
            &["secrets", "get", "db"],
            "GET",
            "/api/secrets/acme-demo/db",
            None,
            None,
        ),
        case(
            &["secrets", "get", "db", "--value"],
            "GET",
            "/api/secrets/acme-demo/db",
            Some("includeValue=true"),
            None,
        ),
        case(
            &["secrets", "get", "db", "--value", "--version", "3"],
            "GET",
            "/api/secrets/acme-demo/db",
            Some("includeValue=true&version=3"),
            None,
        ),
        case(
            &[
                "secrets",
                "create",
                "db",
                "--from-literal=A=1",
                "--description",
                "d",
                "--sync-target",
                "db-env",
                "--sync-refresh",
                "2h",
                "--sync-keys",
                "A,B",
            ],
            "POST",
            "/api/secrets/acme-demo/db",
            None,
            Some(
                json!({"type": "opaque", "description": "d", "sync": {"enabled": true, "targetSecretName": "db-env", "refreshInterval": "2h", "keys": ["A", "B"]}, "initialValues": {"A": "1"}}),
            ),
        ),
        case(
            &["secrets", "create", "db", "--sync-disabled"],
            "POST",
            "/api/secrets/acme-demo/db",
            None,
            Some(json!({"type": "opaque", "sync": {"enabled": false}})),
        ),
        case(
            &["secrets", "apply", "-f", "MANIFEST"],
            "POST",
            "/api/secrets/acme-demo/rotated",
            None,
            Some(
                json!({"type": "password", "sync": {"enabled": true}, "rotation": {"enabled": true, "interval": "90d", "generator": {"length": 32, "charset": "alnum-symbol"}}}),
            ),
        ),
        case(
            &["secrets", "apply", "-f", "MANIFEST-DB"],
            "PATCH",
            "/api/secrets/acme-demo/db",
            None,
            Some(json!({"description": "changed"})),
        ),
        case(
            &["secrets", "put", "db", "--from-literal=K=v=w", "--replace"],
            "PUT",
            "/api/secrets/acme-demo/db/values",
            None,
            Some(json!({"data": {"K": "v=w"}})),
        ),
        case(
            &[
                "secrets",
                "put",
                "db",
                "--from-literal=K=v",
                "--cas",
                "1",
                "--replace",
            ],
            "PUT",
            "/api/secrets/acme-demo/db/values",
            None,
            Some(json!({"data": {"K": "v"}, "cas": 1})),
        ),
        case(
            &["secrets", "sync", "db", "--enabled", "false"],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(json!({"enabled": false})),
        ),
        case(
            &["secrets", "sync", "db", "--keys", ""],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(json!({"keys": []})),
        ),
        case(
            &[
                "secrets",
                "sync",
                "db",
                "--enabled",
                "true",
                "--target",
                "t",
                "--refresh",
                "1h",
                "--keys",
                "A,B",
            ],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(
                json!({"enabled": true, "targetSecretName": "t", "refreshInterval": "1h", "keys": ["A", "B"]}),
            ),
        ),
        case(
            &[
                "secrets",
                "import",
                "app-config",
                "--from",
                "legacy-app-credentials",
            ],
            "POST",
            "/api/secrets/acme-demo/app-config/import",
            None,
            Some(json!({"sourceSecretName": "legacy-app-credentials"})),
        ),
        case(
            &[
                "secrets",
                "import",
                "x",
                "--from",
                "s",
                "--from-namespace",
                "acme-other",
                "--allow-cross-namespace",
                "--type",
                "tls",
                "--description",
                "d",
            ],
            "POST",
            "/api/secrets/acme-demo/x/import",
            None,
            Some(
                json!({"sourceSecretName": "s", "sourceSecretNamespace": "acme-other", "type": "tls", "description": "d", "allowCrossNamespace": true}),
            ),
        ),
        case(
            &["secrets", "delete", "db"],
            "DELETE",
            "/api/secrets/acme-demo/db",
            None,
            None,
        ),
        case(
            &["secrets", "delete", "db", "--destroy", "--yes"],
            "DELETE",
            "/api/secrets/acme-demo/db",
            Some("destroy=true"),
            None,
        ),
        case(
            &["secrets", "destroy-version", "db", "3", "--yes"],
            "POST",
            "/api/secrets/acme-demo/db/versions/3/destroy",
            None,
            None,
        ),
        case(
            &["secrets", "consumers", "db"],
            "GET",
            "/api/secrets/acme-demo/db/consumers",
            None,
            None,
        ),
        case(
            &["secrets", "versions", "db"],
            "GET",
            "/api/secrets/acme-demo/db/versions",
            None,
            None,
        ),
        case(
            &["secrets", "restore", "db"],
            "POST",
            "/api/secrets/acme-demo/db/restore",
            None,
            None,
        ),
        case(
            &["audit", "list"],
            "GET",
            "/api/audit/orgs/acme/projects/demo",
            None,
            None,
        ),
        case(
            &[
                "audit",
                "list",
                "--org",
                "--service",
                "secrets",
                "--actor",
                "a b",
                "--result",
                "denied",
                "--until",
                "2026-05-12T08:00:00+02:00",
                "--limit",
                "10",
            ],
            "GET",
            "/api/audit/orgs/acme",
            Some(
                "service=secrets&actor=a+b&result=denied&until=2026-05-12T08%3A00%3A00%2B02%3A00&limit=10",
            ),
            None,
        ),
        case(
            &["audit", "list", "--org-name", "other", "--org"],
            "GET",
            "/api/audit/orgs/other",
            None,
            None,
        ),
        case(
            &["audit", "list", "--csv"],
            "GET",
            "/api/audit/orgs/acme/csv",
            None,
            None,
        ),
        case(
            &["orgs", "elevate", "demo", "--reason", "IR-1"],
            "POST",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            Some(json!({"reason": "IR-1"})),
        ),
        case(
            &["orgs", "status", "demo"],
            "GET",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            None,
        ),
        case(
            &["orgs", "release", "demo"],
            "DELETE",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            None,
        ),
        case(
            &["orgs", "elevations", "--org", "other"],
            "GET",
            "/api/orgs/other/elevations",
            None,
            None,
        ),
    ];
    let manifest = h.write(
        "rotated.yaml",
        "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: { name: rotated }\n\
         spec: { type: password, rotation: { enabled: true, interval: 90d } }\n",
    );
    let manifest_db = h.write(
        "db.yaml",
        "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: { name: db }\n\
         spec: { type: opaque, description: changed }\n",
    );
    let mut covered = BTreeSet::new();
    for c in cases {
        // The namespace names the project, except for organization-wide
        // commands, which refuse -n/-p rather than ignore them.
        let mut args = vec!["--server", stub.url.as_str()];
        if !org_wide(&c.args) {
            args.extend(["-n", "acme-demo"]);
        }
        args.extend(c.args.iter().map(|a| match *a {
            "MANIFEST" => manifest.as_str(),
            "MANIFEST-DB" => manifest_db.as_str(),
            a => a,
        }));
        let r = h.run_env(
            &args,
            &[("KUBE_DC_TOKEN", "tok-123"), ("KUBE_DC_ORG", "acme")],
        );
        assert_eq!(r.code, 0, "{:?}: {}", c.args, r.stderr);
        let seen = stub.take();
        let last = seen
            .last()
            .unwrap_or_else(|| panic!("{:?} sent nothing", c.args));
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            (c.method, c.path),
            "{:?}",
            c.args
        );
        assert_eq!(last.query.as_deref(), c.query, "{:?}", c.args);
        // Every request the CLI sends is a route of the endpoint table.
        for req in &seen {
            let (route, _) = Route::recognize(&req.method, &req.path).unwrap_or_else(|| {
                panic!(
                    "{:?} sent {} {}, which is no route",
                    c.args, req.method, req.path
                )
            });
            covered.insert(route);
        }
        assert_eq!(last.headers["authorization"], "Bearer tok-123");
        assert_eq!(last.headers["accept"], "application/json");
        assert!(last.headers.contains_key("x-request-id"));
        match &c.body {
            Some(b) => {
                assert_eq!(&last.json(), b, "{:?}", c.args);
                assert_eq!(last.headers["content-type"], "application/json");
            }
            None => assert!(last.body.is_empty(), "{:?} sent a body", c.args),
        }
    }
    // Every route of the table is used by some verb, but for the local
    // backend's own inspection and audit-chain routes.
    let unused: BTreeSet<Route> = Route::ALL
        .iter()
        .copied()
        .filter(|r| !covered.contains(r))
        .collect();
    assert_eq!(
        unused,
        BTreeSet::from([Route::KubernetesSecrets, Route::AuditVerify]),
        "routes no CLI verb exercises"
    );
    // A duration becomes epoch seconds; unknown event fields survive -o json.
    let r = h
        .run_env(
            &[
                "--server", &stub.url, "-p", "demo", "audit", "list", "--since", "1h", "-o", "json",
            ],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        )
        .ok();
    let q = stub.take().pop().unwrap().query.unwrap();
    let since: u64 = q.strip_prefix("since=").unwrap().parse().unwrap();
    assert!(since > 1_700_000_000, "{q}");
    assert_eq!(
        r.json()["events"][0]["body"]["future_field"],
        json!({"x": 1})
    );
    let t = h
        .run_env(
            &["--server", &stub.url, "-p", "demo", "audit", "list"],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        )
        .ok();
    assert!(
        t.stdout.contains("2026-05-12T08:00:00.000Z"),
        "epoch-nanosecond ts shown as a time: {}",
        t.stdout
    );
}

/// A stub that serves only the production routes of the endpoint table.
fn production_only(s: &Seen) -> Reply {
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

#[test]
fn create_is_one_request_and_an_old_installation_is_told_plainly() {
    let stub = Stub::start(production_only);
    let h = Home::new();
    let create = |server: &str| {
        h.run_env(
            &[
                "--server",
                server,
                "-n",
                "acme-demo",
                "secrets",
                "create",
                "db",
                "--from-literal=K=s3cr3t-one-trip",
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
    };
    let r = create(&stub.url).ok();
    assert!(r.stderr.contains("version 1 written"), "{}", r.stderr);
    let seen = stub.take();
    assert_eq!(seen.len(), 1, "one round trip: {seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/secrets/acme-demo/db")
    );
    assert_eq!(
        seen[0].json(),
        json!({"type": "opaque", "sync": {"enabled": true}, "initialValues": {"K": "s3cr3t-one-trip"}})
    );

    // An installation without the create route: exit 9, the same request
    // is never sent again, and nothing is half-made.
    let old = Stub::start(|_| (405, "text/plain", b"405 method not allowed".to_vec()));
    let r = create(&old.url).code(9);
    assert_eq!(old.take().len(), 1);
    assert!(
        r.stderr.contains("too old for `secrets create`")
            && r.stderr.contains("nothing was created"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("s3cr3t-one-trip"));
    let old404 = Stub::start(|_| (404, "text/plain", b"404 page not found".to_vec()));
    create(&old404.url).code(9);
    assert_eq!(old404.take().len(), 1);
}

#[test]
fn missing_extensions_and_proxy_pages_are_explained() {
    let stub = Stub::start(|s| match s.path.as_str() {
        p if p.ends_with("/versions") || p.ends_with("/restore") => {
            (404, "text/plain", b"404 page not found\n".to_vec())
        }
        "/api/secrets/acme-demo" => (
            502,
            "text/html",
            b"<html><h1>502 Bad Gateway</h1></html>".to_vec(),
        ),
        _ => (
            404,
            "application/json",
            br#"{"error":"secret \"x\" not found\u001b[2J"}"#.to_vec(),
        ),
    });
    let h = Home::new();
    let run = |args: &[&str]| {
        let mut all = vec!["--server", stub.url.as_str(), "-n", "acme-demo"];
        all.extend(args);
        h.run_env(&all, &[("KUBE_DC_TOKEN", "t")])
    };
    let r = run(&["secrets", "versions", "db"]).code(9);
    assert!(
        r.stderr.contains("not supported by this installation"),
        "{}",
        r.stderr
    );
    run(&["secrets", "restore", "db"]).code(9);
    let r = run(&["secrets", "list"]).code(8);
    assert!(
        r.stderr
            .contains("the server answered 502 Bad Gateway (HTTP 502, request id stub-req-1)"),
        "{}",
        r.stderr
    );
    let r = run(&["secrets", "get", "x"]).code(3);
    assert!(
        r.stderr.contains("secret \"x\" not found") && !r.stderr.contains('\u{1b}'),
        "{}",
        r.stderr
    );
}

#[test]
fn a_broken_export_leaves_no_file() {
    // The CSV stream stops half-way (the connection drops).
    let stub = Stub::start(|_| {
        (
            200,
            "text/csv",
            b"ts,action,result,actor\n2026,a,b,c\n".to_vec(),
        )
    });
    let h = Home::new();
    let file = h.path().join("x.csv");
    let export = |server: &str| {
        let out = file.to_str().unwrap();
        let args = [
            "--server",
            server,
            "audit",
            "list",
            "--csv",
            "--org-name",
            "acme",
            "--output-file",
            out,
        ];
        h.run_env(&args, &[("KUBE_DC_TOKEN", "t")])
    };
    // Complete export first: the file appears.
    export(&stub.url).ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "ts,action,result,actor\n2026,a,b,c\n"
    );
    std::fs::remove_file(&file).unwrap();
    let r = export(&BrokenStream::start()).code(7);
    assert!(r.stderr.contains("broke off"), "{}", r.stderr);
    assert!(!file.exists(), "no truncated file under the requested name");
    assert_eq!(
        std::fs::read_dir(h.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("kube-dc"))
            .count(),
        0
    );
}

/// A raw TCP server that promises more body than it sends, then hangs up.
struct BrokenStream;

impl BrokenStream {
    fn start() -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 100000\r\n\r\nts,action,result,actor\n2026,secr");
            }
        });
        format!("http://{addr}")
    }
}

#[test]
fn credential_urls_are_parsed_so_userinfo_cannot_smuggle_a_host() {
    let h = Home::new();
    let started = std::time::Instant::now();
    for server in [
        "http://localhost:x@evil.test",
        "http://127.0.0.1@evil.test:80",
        "http://localhost.evil.test",
    ] {
        let r = h
            .run_env(
                &["--server", server, "-n", "acme-demo", "secrets", "list"],
                &[("KUBE_DC_TOKEN", "tok-never-sent")],
            )
            .code(2);
        assert!(
            r.stderr.contains("user name or password") || r.stderr.contains("plain http"),
            "{server}: {}",
            r.stderr
        );
    }
    // The same rule for the identity provider: nothing is contacted.
    let r = h
        .run(&[
            "login",
            "--issuer",
            "http://192.0.2.1/realms/acme",
            "--server",
            "https://backend.example.com",
            "--org",
            "acme",
            "--no-browser",
        ])
        .code(2);
    assert!(r.stderr.contains("plain http"), "{}", r.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused without a connection attempt"
    );
}

fn status_with_retry_after(status: u16, secs: &str) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("retry-after", secs)
        .body(axum::body::Body::from(r#"{"error":"busy"}"#))
        .unwrap()
}

#[test]
fn busy_servers_are_retried_only_where_it_is_safe() {
    let h = Home::new();
    let run = |url: &str, args: &[&str]| {
        let mut all = vec!["--server", url, "-n", "acme-demo"];
        all.extend(args);
        h.run_env(&all, &[("KUBE_DC_TOKEN", "t")])
    };
    // A read: 503 twice with Retry-After, then the answer.
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let stub = Stub::start_full(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) < 2 {
            status_with_retry_after(503, "1")
        } else {
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"items":[]}"#))
                .unwrap()
        }
    });
    let r = run(&stub.url, &["secrets", "list"]).ok();
    assert_eq!(stub.take().len(), 3);
    assert!(
        r.stderr
            .contains("503 Service Unavailable and asked to retry in 1s; retrying (2 of 3)"),
        "{}",
        r.stderr
    );
    // A write is not repeated after a 503 (it may have been applied) …
    let stub = Stub::start_full(|_| status_with_retry_after(503, "1"));
    run(
        &stub.url,
        &["secrets", "put", "db", "--from-literal=K=v", "--replace"],
    )
    .code(8);
    assert_eq!(stub.take().len(), 1, "a write answered 503 is sent once");
    // … but is after a 429 (refused unprocessed), a bounded number of times.
    let stub = Stub::start_full(|_| status_with_retry_after(429, "0"));
    let r = run(
        &stub.url,
        &["secrets", "put", "db", "--from-literal=K=v", "--replace"],
    );
    assert_ne!(r.code, 0);
    assert_eq!(stub.take().len(), 3);
    assert!(
        r.stderr.contains("gave up after 3 attempts"),
        "{}",
        r.stderr
    );
    // A wait longer than kube-dc waits is not waited for.
    let stub = Stub::start_full(|_| status_with_retry_after(503, "3600"));
    let r = run(&stub.url, &["secrets", "list"]).code(8);
    assert_eq!(stub.take().len(), 1);
    assert!(r.stderr.contains("asked to wait 3600s"), "{}", r.stderr);
}

/// A raw HTTP server: for each connection, the head, then `chunks` of the
/// body with `pause` between them (chunked encoding).
fn trickle(head_ctype: &str, chunks: Vec<Vec<u8>>, pause: std::time::Duration) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let ctype = head_ctype.to_string();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).is_err() {
                continue;
            }
            for c in &chunks {
                std::thread::sleep(pause);
                let frame = [
                    format!("{:x}\r\n", c.len()).into_bytes(),
                    c.clone(),
                    b"\r\n".to_vec(),
                ]
                .concat();
                if s.write_all(&frame).is_err() {
                    break;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
    });
    format!("http://{addr}")
}

#[test]
fn timeouts_bound_silence_not_a_long_healthy_stream() {
    let h = Home::new();
    let header = kube_dc_api::AUDIT_CSV_COLUMNS.join(",") + "\n";
    let file = h.path().join("export.csv");
    let export = |url: &str| {
        let args = [
            "--server",
            url,
            "--timeout",
            "1s",
            "audit",
            "list",
            "--csv",
            "--org-name",
            "acme",
            "--output-file",
            file.to_str().unwrap(),
        ];
        h.run_env(&args, &[("KUBE_DC_TOKEN", "t")])
    };
    // A healthy export that takes ~3 s in all, a chunk every 0.3 s: fine
    // with --timeout 1s. Blank lines keep it alive without adding rows.
    let mut slow = vec![header.clone().into_bytes()];
    slow.extend(std::iter::repeat_n(b"\n".to_vec(), 9));
    let r = export(&trickle(
        "text/csv",
        slow,
        std::time::Duration::from_millis(300),
    ));
    assert_eq!(r.code, 0, "a 3 s stream with --timeout 1s: {}", r.stderr);
    // A stream that goes silent for longer than --timeout is cut off.
    let silent = vec![header.into_bytes(), b"x".to_vec()];
    let r = export(&trickle(
        "text/csv",
        silent,
        std::time::Duration::from_millis(2500),
    ));
    assert_eq!(r.code, 7, "{}", r.stderr);
}

#[test]
fn an_endless_answer_is_refused_not_read_into_memory() {
    // `{"items":[` then secrets without end.
    let item = br#"{"name":"x","namespace":"acme-demo","type":"opaque","sync":{"enabled":true},"status":{}},"#.repeat(4096);
    let mut chunks = vec![br#"{"items":["#.to_vec()];
    chunks.extend(std::iter::repeat_n(item, 400)); // ~140 MiB if read whole
    let url = trickle("application/json", chunks, std::time::Duration::ZERO);
    let h = Home::new();
    let r = h
        .run_env(
            &["--server", &url, "-n", "acme-demo", "secrets", "list"],
            &[("KUBE_DC_TOKEN", "t")],
        )
        .code(8);
    assert!(r.stderr.contains("larger than 64 MiB"), "{}", r.stderr);
}

fn csv_answer(ctype: &str, trailer: bool, body: &str) -> axum::response::Response {
    let mut b = axum::response::Response::builder()
        .header("content-type", ctype)
        .header("x-request-id", "stub-req-1");
    if trailer {
        b = b.header("x-kube-dc-export-trailer", "rows");
    }
    b.body(axum::body::Body::from(body.to_string())).unwrap()
}

#[test]
fn only_a_complete_audit_export_is_kept() {
    let h = Home::new();
    let file = h.path().join("audit.csv");
    let export = |server: &str| {
        h.run_env(
            &[
                "--server",
                server,
                "audit",
                "list",
                "--csv",
                "--org-name",
                "acme",
                "--output-file",
                file.to_str().unwrap(),
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
    };
    let head = "ts,action,result,actor\n";
    // Complete, with the announced trailer: kept, trailer stripped.
    let ok = Stub::start_full(move |_| {
        csv_answer(
            "text/csv",
            true,
            &format!("{head}1,a,b,c\n#kube-dc-export-end rows=1\n"),
        )
    });
    let r = export(&ok.url).ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{head}1,a,b,c\n")
    );
    assert!(r.stderr.contains("exported 1 events"), "{}", r.stderr);
    std::fs::remove_file(&file).unwrap();
    // A header this client does not know (production's is undocumented),
    // without a trailer: passed through byte for byte.
    let prod = "timestamp,service,event.action,\"actor, display\"\n2026-05-12T08:00:00Z,secrets,x,\"a, b\"\n";
    let stub = Stub::start_full(move |_| csv_answer("text/csv", false, prod));
    export(&stub.url).ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), prod);
    std::fs::remove_file(&file).unwrap();
    let bad: Vec<(&str, bool, String, i32, &str)> = vec![
        (
            "text/html",
            false,
            "<html>Sign in</html>".into(),
            8,
            "not text/csv",
        ),
        (
            "application/json",
            false,
            r#"{"events":[]}"#.into(),
            8,
            "not text/csv",
        ),
        // Any header passes (production's is not documented), but every
        // row must have as many fields as it.
        (
            "text/csv",
            false,
            "junk,junk\n1,2,3\n".into(),
            8,
            "row 1 has 3 field(s) but the header has 2",
        ),
        (
            "text/csv",
            false,
            format!("{head}1,a,b"),
            7,
            "last row has no end",
        ),
        // Cut at a row boundary: only the announced trailer can tell.
        (
            "text/csv",
            true,
            format!("{head}1,a,b,c\n"),
            7,
            "end-of-export line is missing",
        ),
        (
            "text/csv",
            true,
            format!("{head}1,a,b,c\n#kube-dc-export-end rows=5\n"),
            7,
            "sent 5 rows but 1 arrived",
        ),
    ];
    for (ctype, trailer, body, code, why) in bad {
        let stub = Stub::start_full(move |_| csv_answer(ctype, trailer, &body));
        let r = export(&stub.url).code(code);
        assert!(r.stderr.contains(why), "{ctype} {why}: {}", r.stderr);
        assert!(!file.exists(), "nothing under the requested name ({why})");
    }
    assert_eq!(
        std::fs::read_dir(h.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("kube-dc-"))
            .count(),
        0
    );
}

#[test]
fn a_killed_export_leaves_no_file_at_all() {
    // A slow export: a chunk every 100 ms for ~10 s.
    let mut chunks = vec![b"ts,action,result,actor\n".to_vec()];
    chunks.extend(std::iter::repeat_n(b"1,a,b,c\n".to_vec(), 100));
    let url = trickle("text/csv", chunks, std::time::Duration::from_millis(100));
    let h = Home::new();
    let out = h.path().join("exports");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("audit.csv");
    let mut child = h
        .cmd()
        .args([
            "--server",
            &url,
            "audit",
            "list",
            "--csv",
            "--org-name",
            "acme",
            "--output-file",
            file.to_str().unwrap(),
        ])
        .env("KUBE_DC_TOKEN", "t")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn env_output_never_drives_the_terminal_but_stays_exact_in_a_pipe() {
    let stub = Stub::start(|_| {
        let mut v: Value = serde_json::from_slice(&secret("db")).unwrap();
        v["value"] =
            json!({"data": {"K": "a\u{1b}]0;owned\u{7}\u{1b}[2Jb"}, "metadata": {"version": 1}});
        ok_json(v)
    });
    let h = Home::new();
    let args = [
        "--server",
        &stub.url,
        "-n",
        "acme-demo",
        "secrets",
        "get",
        "db",
        "--value",
        "-o",
        "env",
    ];
    // Piped: the exact value, read back losslessly by --from-env-file.
    let piped = h.run_env(&args, &[("KUBE_DC_TOKEN", "t")]).ok();
    assert!(piped.stdout.contains('\u{1b}'), "{:?}", piped.stdout);
    // On a terminal (a real pty via script(1)): escaped, as in tables.
    let cmd = std::iter::once(BIN.to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", h.path())
        .env("XDG_CONFIG_HOME", h.path().join("config"))
        .env("XDG_DATA_HOME", h.path().join("data"))
        .env("KUBE_DC_TOKEN", "t")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(r#"K='a\u{1b}]0;owned\u{7}\u{1b}[2Jb'"#),
        "{shown:?}"
    );
    assert!(
        !shown.contains('\u{1b}'),
        "raw escape reached the terminal: {shown:?}"
    );
}

/// Splits a command line as a shell would (double quotes group; no
/// expansion): enough for the README's table.
fn shell_words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[test]
fn migration_table_rows_run() {
    let readme = include_str!("../README.md");
    let table = readme
        .split("<!-- migration-table -->")
        .nth(1)
        .and_then(|t| t.split("<!-- /migration-table -->").next())
        .expect("README has the migration table");
    let stub = Stub::start(reply);
    let h = Home::new();
    std::fs::write(h.path().join("app.env"), "A=1\nexport B='two words'\n").unwrap();
    std::fs::write(h.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    // A logged-in context (tokens in the file store, none left) at the stub.
    let config = format!(
        "current-context: example.com/acme/demo\ntoken-store: file\ncontexts:\n  - name: example.com/acme/demo\n    server: {}\n    org: acme\n    project: demo\n    domain: example.com\n    issuer: http://127.0.0.1:1/realms/acme\n    client-id: kube-dc\n",
        stub.url
    );
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| `kube-dc")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let go = cells[0].trim_start_matches("| ").trim_matches('`');
        let here = cells[1].trim();
        let command = if here == "same" {
            go
        } else {
            here.trim_matches('`')
        };
        let args = shell_words(command);
        assert_eq!(args[0], "kube-dc", "{line}");
        rows += 1;
        // Every Go spelling is accepted as written.
        if here == "same" {
            use clap::Parser;
            kube_dc::cli::Cli::try_parse_from(&args)
                .unwrap_or_else(|e| panic!("{go}: not accepted: {e}"));
        }
        if args[1] == "login" {
            continue; // a real login is tested against the OIDC provider
        }
        let dir = h.path().join("config/kube-dc");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.yaml"), &config).unwrap();
        let out = h
            .cmd()
            .current_dir(h.path())
            .args(&args[1..])
            .env("KUBE_DC_TOKEN", "tok")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(rows >= 30, "{rows} rows");
}

#[test]
fn go_cli_spellings_send_the_same_requests() {
    let stub = Stub::start(reply);
    let h = Home::new();
    let run = |args: &[&str]| {
        let mut all = vec!["--server", stub.url.as_str(), "-p", "demo"];
        all.extend(args);
        h.run_env(&all, &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")])
    };
    let last = |stub: &Stub| stub.take().pop().expect("a request");
    run(&[
        "secrets",
        "import",
        "x",
        "--from",
        "s",
        "--cross-namespace",
        "--source-namespace",
        "acme-other",
    ])
    .ok();
    assert_eq!(
        last(&stub).json(),
        json!({"sourceSecretName": "s", "sourceSecretNamespace": "acme-other", "allowCrossNamespace": true})
    );
    run(&[
        "secrets",
        "destroy-version",
        "db",
        "--version",
        "3",
        "--yes",
    ])
    .ok();
    assert_eq!(
        last(&stub).path,
        "/api/secrets/acme-demo/db/versions/3/destroy"
    );
    for (word, want) in [
        ("yes", true),
        ("no", false),
        ("on", true),
        ("off", false),
        ("TRUE", true),
        ("FALSE", false),
    ] {
        run(&["secrets", "sync", "db", "--enabled", word]).ok();
        assert_eq!(last(&stub).json(), json!({"enabled": want}), "{word}");
    }
    for o in ["JSON", "yml", "YAML", "Table"] {
        run(&["secrets", "list", "-o", o]).ok();
    }
    run(&["secrets", "create", "db", "--sync-keys", " A, ,B"]).ok();
    assert_eq!(
        last(&stub).json(),
        json!({"type": "opaque", "sync": {"enabled": true, "keys": ["A", "B"]}})
    );
    let r = run(&[
        "secrets",
        "create",
        "db",
        "--sync-disabled",
        "--sync-target",
        "t",
        "--sync-refresh",
        "1h",
        "--sync-keys",
        "A",
    ])
    .ok();
    assert_eq!(
        last(&stub).json(),
        json!({"type": "opaque", "sync": {"enabled": false}})
    );
    assert!(
        r.stderr.contains("no effect with --sync-disabled"),
        "{}",
        r.stderr
    );
    // Refused before anything is sent.
    let r = run(&["audit", "list", "--csv", "--project", "demo"]).code(2);
    assert!(r.stderr.contains("whole organization"), "{}", r.stderr);
    // (-p is refused with --org, so this one goes without it.)
    let r = h
        .run_env(
            &[
                "--server",
                stub.url.as_str(),
                "audit",
                "list",
                "--org",
                "--org-name",
                "../secrets/x",
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
        .code(2);
    assert!(r.stderr.contains("invalid organization"), "{}", r.stderr);
    let r = run(&["audit", "list", "--org"]).code(2);
    assert!(r.stderr.contains("--project demo"), "{}", r.stderr);
    for bad in ["a..b", "a.-b", "a-.b"] {
        run(&["secrets", "create", bad]).code(2);
    }
    assert!(stub.take().is_empty(), "nothing was sent for refused input");
}

#[test]
fn extensions_an_installation_ignores_are_detected() {
    // A production-like server: no `cas`, no `version`, and JSON 404s for
    // routes it does not have.
    let stub = Stub::start(|s| {
        let sec = || {
            let mut v: Value = serde_json::from_slice(&secret("db")).unwrap();
            v["value"] = json!({"data": {"K": "current"}, "metadata": {"version": 7}});
            v
        };
        match (s.method.as_str(), s.path.as_str()) {
            ("PUT", _) => ok_json(
                json!({"name": "db", "namespace": "acme-demo", "mount": "kv-demo", "version": 8, "createdTime": "t"}),
            ),
            ("GET", "/api/secrets/acme-demo/db") => ok_json(sec()),
            _ => (
                404,
                "application/json",
                br#"{"error":"Not Found"}"#.to_vec(),
            ),
        }
    });
    let h = Home::new();
    let run = |args: &[&str]| {
        let mut all = vec!["--server", stub.url.as_str(), "-n", "acme-demo"];
        all.extend(args);
        h.run_env(&all, &[("KUBE_DC_TOKEN", "t")])
    };
    let r = run(&[
        "secrets",
        "put",
        "db",
        "--from-literal=K=v",
        "--cas",
        "3",
        "--replace",
    ])
    .code(9);
    assert!(
        r.stderr.contains("ignored --cas 3") && r.stderr.contains("wrote version 8"),
        "{}",
        r.stderr
    );
    let r = run(&["secrets", "get", "db", "--value", "--version", "2"]).code(9);
    assert!(r.stderr.contains("ignored --version 2"), "{}", r.stderr);
    assert!(
        !r.stdout.contains("current"),
        "the wrong version is not shown: {}",
        r.stdout
    );
    // A JSON 404 from an extension route, while the secret exists: exit 9.
    let r = run(&["secrets", "versions", "db"]).code(9);
    assert!(
        r.stderr.contains("not supported by this installation"),
        "{}",
        r.stderr
    );
    // … and while it does not: not found, exit 3.
    run(&["secrets", "versions", "nope"]).code(3);
}
