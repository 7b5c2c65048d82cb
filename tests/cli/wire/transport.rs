//! The transport: credential URLs, retries, timeouts, bounded answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;

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
pub(crate) fn trickle(
    head_ctype: &str,
    chunks: Vec<Vec<u8>>,
    pause: std::time::Duration,
) -> String {
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

/// A write answered 503 is sent again, with the same `Idempotency-Key`,
/// only where the server sent the key back (kube-dc's backend honours it on
/// create and put: a retry is answered as the first attempt was if that
/// one was applied after all); elsewhere the 503 is the answer.
#[test]
fn a_503_write_is_retried_with_its_key_only_where_the_key_is_honoured() {
    for honoured in [true, false] {
        let puts = Arc::new(AtomicUsize::new(0));
        let n = puts.clone();
        let stub = Stub::start_full(move |s| {
            use axum::response::IntoResponse;
            if s.method != "PUT" {
                let (status, ctype, body) = crate::wire::reply(s);
                return (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", ctype)],
                    body,
                )
                    .into_response();
            }
            let key = s
                .headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_string())
                .expect("a put carries an Idempotency-Key");
            let mut r = if n.fetch_add(1, Ordering::SeqCst) == 0 {
                let body = r#"{"error":"OpenBao did not answer in time"}"#;
                let mut r = (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response();
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                r
            } else {
                axum::Json(serde_json::json!({"name": "db", "namespace": "acme-demo", "mount": "kv-acme-demo", "version": 2, "createdTime": "2026-01-01T00:00:00Z"})).into_response()
            };
            if honoured {
                r.headers_mut()
                    .insert("idempotency-key", key.parse().unwrap());
            }
            r
        });
        let h = Home::new();
        let r = h.run_env(
            &[
                "--server",
                &stub.url,
                "-p",
                "demo",
                "secrets",
                "put",
                "db",
                "--from-literal=A=1",
                "--replace",
            ],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        );
        let sent: Vec<String> = stub
            .take()
            .iter()
            .filter(|s| s.method == "PUT")
            .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_string())
            .collect();
        if honoured {
            r.ok();
            assert_eq!(sent.len(), 2, "{sent:?}");
            assert_eq!(sent[0], sent[1], "the retry carries the same key");
        } else {
            r.code(8);
            assert_eq!(sent.len(), 1, "no retry where the key is not honoured");
        }
    }
}
