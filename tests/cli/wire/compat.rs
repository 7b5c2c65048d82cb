//! Against installations of other kinds: production without our
//! extensions, the Go CLI's spellings, the migration table.

use serde_json::{Value, json};

use super::{ok_json, production_only, reply, secret};
use crate::common::*;

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
    let readme = include_str!("../../../README.md");
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
    // Organization-wide with a typed -p: said not to narrow it, and sent.
    let r = run(&["audit", "list", "--csv", "--project", "demo"]).ok();
    assert!(r.stderr.contains("whole organization"), "{}", r.stderr);
    assert!(r.stderr.contains("does not narrow it"), "{}", r.stderr);
    stub.take();
    // Refused before anything is sent.
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

/// `set` makes its change again from a fresh read only when the server
/// says a fresh read can get past the conflict (`retryable`, kube-dc's
/// backend); a conflict it does not explain (production's, a name taken)
/// is answered at once.
#[test]
fn set_retries_only_conflicts_the_server_calls_retryable() {
    for (body, puts, says) in [
        (
            json!({"error": "check-and-set failed", "reason": "cas-mismatch", "retryable": true}),
            3,
            "kept changing",
        ),
        (
            json!({"error": "Kubernetes Secret \"db\" is already the projection of managed secret \"x\"", "reason": "projection-taken", "retryable": false}),
            1,
            "already the projection",
        ),
        (json!({"error": "conflict"}), 1, "conflict"),
    ] {
        let answer = body.to_string().into_bytes();
        let stub = Stub::start(move |s| {
            if s.method == "PUT" {
                (409, "application/json", answer.clone())
            } else {
                super::reply(s)
            }
        });
        let h = Home::new();
        let r = h
            .run_env(
                &[
                    "--server", &stub.url, "-p", "demo", "secrets", "set", "db", "A=1",
                ],
                &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
            )
            .code(6);
        assert!(r.stderr.contains(says), "{body}: {}", r.stderr);
        let sent = stub.take().iter().filter(|s| s.method == "PUT").count();
        assert_eq!(sent, puts, "{body}");
    }
}

/// Production has no change stream: `secrets list --watch` says once that
/// it polls, polls the list at --poll, and reports what changed between
/// two looks (no value is ever read).
#[test]
fn watch_against_production_polls_the_list_and_says_so() {
    let looks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = looks.clone();
    let stub = Stub::start(move |s| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/api/secrets/acme-demo") => {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // From the third look on, db has version 2 and new exists.
            let (v, extra) = if i >= 2 { (2, true) } else { (1, false) };
            let mut items = vec![
                json!({"name": "db", "namespace": "acme-demo", "type": "opaque",
                "sync": {"enabled": true}, "status": {"currentVersion": v}}),
            ];
            if extra {
                items.push(
                    json!({"name": "new", "namespace": "acme-demo", "type": "opaque",
                    "sync": {"enabled": true}, "status": {"currentVersion": 1}}),
                );
            }
            ok_json(json!({ "items": items }))
        }
        _ => (404, "text/plain", b"404 page not found".to_vec()),
    });
    let h = Home::new();
    let mut child = h
        .cmd()
        .args([
            "--server",
            &stub.url,
            "-n",
            "acme-demo",
            "secrets",
            "list",
            "--watch",
            "--poll",
            "1",
            "-o",
            "json",
        ])
        .env("KUBE_DC_TOKEN", "t")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = std::io::BufRead::lines(out);
    let list: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(list["items"][0]["name"], "db");
    let mut changes = Vec::new();
    while changes.len() < 2 {
        let v: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        changes.push((
            v["secret"].clone(),
            v["change"].clone(),
            v["version"].clone(),
        ));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no change stream; polling the list every 1s"),
        "{stderr}"
    );
    assert_eq!(
        changes,
        [
            (json!("db"), json!("new-version"), json!(2)),
            (json!("new"), json!("created"), json!(1)),
        ]
    );
    let seen = stub.take();
    assert!(
        seen.iter()
            .all(|s| !s.query.as_deref().unwrap_or("").contains("includeValue")),
        "no value read"
    );
    assert_eq!(
        seen.iter()
            .filter(|s| s.path.starts_with("/api/watch/"))
            .count(),
        1,
        "the stream is asked for once"
    );
}

#[test]
fn follow_against_production_polls_since_the_last_time_and_drops_repeats_by_request_id() {
    // Production's audit query, newest first: r1 and r2 share a time; from
    // the third look on, r3 (the same time as r2) and r4 (later) exist.
    let looks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen_since = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (n, since) = (looks.clone(), seen_since.clone());
    let ev = |rid: &str, ts: &str| {
        json!({"ts": ts, "body": {"service": "secrets", "action": "secrets.value.read",
               "result": "allowed", "actor": "ada", "resource": "db", "request_id": rid}})
    };
    let stub = Stub::start(move |s| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/api/audit/orgs/acme") => {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            since
                .lock()
                .unwrap()
                .push(s.query.clone().unwrap_or_default());
            let mut events = vec![
                ev("r2", "2026-05-12T08:00:01Z"),
                ev("r1", "2026-05-12T08:00:01Z"),
                ev("r0", "2026-05-12T08:00:00Z"),
            ];
            if i >= 2 {
                events.insert(0, ev("r3", "2026-05-12T08:00:01Z"));
                events.insert(0, ev("r4", "2026-05-12T08:00:02Z"));
            }
            ok_json(json!({"events": events, "returned": events.len(), "limit": 5000}))
        }
        _ => (404, "text/plain", b"404 page not found".to_vec()),
    });
    let h = Home::new();
    let mut child = h
        .cmd()
        .args([
            "--server",
            &stub.url,
            "audit",
            "list",
            "--org",
            "--org-name",
            "acme",
            "-f",
            "--poll",
            "1",
            "-o",
            "jsonl",
        ])
        .env("KUBE_DC_TOKEN", "t")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = std::io::BufRead::lines(out);
    let mut got = Vec::new();
    while got.len() < 2 {
        let v: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        got.push(v["body"]["request_id"].as_str().unwrap().to_string());
    }
    // A few more looks: nothing printed twice.
    while looks.load(std::sync::atomic::Ordering::SeqCst) < 5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let rest = String::from_utf8_lossy(&out.stdout);
    assert!(rest.trim().is_empty(), "nothing more: {rest}");
    assert_eq!(
        got,
        ["r3", "r4"],
        "from now: only the new events, each once"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no live audit feed") && stderr.contains("polling every 1s"),
        "{stderr}"
    );
    let since = seen_since.lock().unwrap();
    assert!(
        since
            .iter()
            .skip(1)
            .all(|q| q.contains("since=2026-05-12T08%3A00%3A0")),
        "each look asks from the last time: {since:?}"
    );
}
