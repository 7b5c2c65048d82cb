//! Every request's method, path, query and JSON body, pinned to
//! CONTRACT.md with a recording stub; and how the CLI copes with
//! installations that lack extensions or answer with proxy pages.

mod common;

use common::*;
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
        ("POST", "/api/secrets/acme-demo") => (201, "application/json", secret("db")),
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
            v["value"] = json!({"data": {"K": "v"}, "metadata": {"version": 1}});
            ok_json(v)
        }
        (_, p) if p.starts_with("/api/secrets/") => (200, "application/json", secret("db")),
        (_, p) if p.starts_with("/api/audit/") => ok_json(
            json!({"events": [{"ts": "1778572800000000000", "body": {"service": "secrets", "action": "reveal", "result": "allowed", "actor": "a", "resource": "r", "future_field": {"x": 1}}}], "query": {}, "returned": 1, "limit": 500}),
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
            "/api/secrets/acme-demo",
            None,
            Some(
                json!({"name": "db", "type": "opaque", "description": "d", "sync": {"enabled": true, "targetSecretName": "db-env", "refreshInterval": "2h", "keys": ["A", "B"]}, "data": {"A": "1"}}),
            ),
        ),
        case(
            &["secrets", "create", "db", "--sync-disabled"],
            "POST",
            "/api/secrets/acme-demo",
            None,
            Some(json!({"name": "db", "type": "opaque", "sync": {"enabled": false}})),
        ),
        case(
            &["secrets", "put", "db", "--from-literal=K=v=w"],
            "PUT",
            "/api/secrets/acme-demo/db/values",
            None,
            Some(json!({"data": {"K": "v=w"}})),
        ),
        case(
            &["secrets", "put", "db", "--from-literal=K=v", "--cas", "1"],
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
    for c in cases {
        let mut args = vec!["--server", stub.url.as_str(), "-p", "demo"];
        args.extend(&c.args);
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
        t.stdout.contains("2026-05-12T08:00:00Z"),
        "epoch-nanosecond ts shown as a time: {}",
        t.stdout
    );
}

#[test]
fn create_falls_back_when_the_installation_cannot_seed_values() {
    // An installation whose create does not take `data`, and whose value
    // write then fails: the user is told what exists and how to go on.
    let stub = Stub::start(|s| {
        if s.method == "POST" && s.path == "/api/secrets/acme-demo" {
            if s.json().get("data").is_some() {
                return (
                    400,
                    "application/json",
                    br#"{"error":"json: unknown field \"data\""}"#.to_vec(),
                );
            }
            return (201, "application/json", secret("db"));
        }
        if s.method == "PUT" {
            return (
                503,
                "text/html",
                b"<html><body>upstream unavailable</body></html>".to_vec(),
            );
        }
        (200, "application/json", secret("db"))
    });
    let h = Home::new();
    let r = h
        .run_env(
            &[
                "--server",
                &stub.url,
                "-n",
                "acme-demo",
                "secrets",
                "create",
                "db",
                "--from-literal=K=s3cr3t-fallback",
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
        .code(8);
    let seen = stub.take();
    let steps: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("POST", "/api/secrets/acme-demo"),
            ("POST", "/api/secrets/acme-demo"),
            ("PUT", "/api/secrets/acme-demo/db/values")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        seen[2].json(),
        json!({"data": {"K": "s3cr3t-fallback"}, "cas": 0})
    );
    assert!(
        r.stderr
            .contains("was created, but writing its values failed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("503 Service Unavailable"), "{}", r.stderr);
    assert!(
        r.stderr.contains("kube-dc secrets put db")
            && r.stderr.contains("kube-dc secrets delete db"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("s3cr3t-fallback"));
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
    let stub = Stub::start(|_| (200, "text/csv", b"ts,service\n2026,secrets\n".to_vec()));
    let h = Home::new();
    let file = h.path().join("x.csv");
    let export = |server: &str| {
        let out = file.to_str().unwrap();
        let args = [
            "--server",
            server,
            "-n",
            "acme-demo",
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
        "ts,service\n2026,secrets\n"
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
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 100000\r\n\r\nts,service\n2026,secr");
            }
        });
        format!("http://{addr}")
    }
}
