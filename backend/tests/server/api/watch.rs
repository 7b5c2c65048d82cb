//! The change stream's guarantees that need the backend in hand: a stream
//! that is not read falls behind the hub's backlog and then reads what it
//! missed from the log (nothing lost, nothing twice, no writer held back);
//! a cursor this backend never gave is answered 410.

use axum::body::Body;
use axum::http::Request;
use futures_util::StreamExt;
use tower::ServiceExt;

use super::secrets;
use crate::common::*;

#[tokio::test]
async fn a_stream_not_read_falls_behind_and_still_gets_every_change_once() {
    const N: u64 = 200;
    let versions = lagging_stream("?every=true", N).await;
    assert_eq!(versions, (2..=N + 1).collect::<Vec<_>>());
}

/// Without `every=true`, the versions a stream had not sent come as the
/// newest: in order, none twice, ending at the last.
#[tokio::test]
async fn a_stream_not_read_gets_the_newest_of_a_run_of_versions() {
    const N: u64 = 200;
    let versions = lagging_stream("", N).await;
    assert_eq!(versions.last(), Some(&(N + 1)));
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(versions.len() < N as usize, "{versions:?}");
}

/// The versions a stream opened with `query`, not read while `n` versions
/// of one secret are written, then gets (until the last).
async fn lagging_stream(query: &str, n: u64) -> Vec<u64> {
    // A backlog of 2 batches: the stream below falls behind at once.
    let s = Server::start_with(|c| c.watch_backlog = 2, &[]).await;
    s.create("busy", serde_json::json!({"N": "0"})).await;
    // Through the router itself: nobody reads the body until the writes
    // are done (over a socket, the server would drain it into the kernel's
    // buffers).
    let req = Request::get(format!("/api/watch/secrets/{NS}{query}"))
        .header("authorization", format!("Bearer {}", s.token(ADMIN)))
        .body(Body::empty())
        .unwrap();
    let resp = kube_dc_backend::router(s.backend.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        kube_dc_api::wire::changes::CONTENT_TYPE
    );
    for i in 1..=n {
        let r = s
            .put(
                ADMIN,
                &secrets("/busy/values"),
                serde_json::json!({"data": {"N": i.to_string()}}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        // Let the hub publish each commit as its own batch.
        tokio::task::yield_now().await;
    }
    let mut body = resp.into_body().into_data_stream();
    let mut buf = Vec::new();
    let mut versions = Vec::new();
    let mut heartbeats = 0;
    let began = std::time::Instant::now();
    while versions.last() != Some(&(n + 1)) {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "version {} never came: {versions:?}",
            n + 1
        );
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
            .await
            .expect("the stream went quiet")
            .expect("the stream ended")
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(at) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=at).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            match v["type"].as_str() {
                Some("change") => {
                    assert_eq!(v["secret"], "busy");
                    assert!(v.get("data").is_none() && !v.to_string().contains("\"N\""));
                    versions.push(v["version"].as_u64().unwrap());
                }
                _ => heartbeats += 1,
            }
        }
    }
    assert_eq!(heartbeats, 1, "the first line is a heartbeat");
    versions
}

#[tokio::test]
async fn a_cursor_resumes_and_one_never_given_is_gone() {
    let s = Server::start().await;
    s.create("a", serde_json::json!({"K": "v"})).await;
    let events = s.audit("service=secrets").await;
    let created = events
        .iter()
        .find(|e| e["body"]["action"] == "secrets.secret.create")
        .unwrap()["body"]["seq"]
        .as_i64()
        .unwrap();
    // After the create's cursor minus one: the create is the first change.
    let req = Request::get(format!("/api/watch/secrets/{NS}?after={}", created - 1))
        .header("authorization", format!("Bearer {}", s.token(DEV)))
        .body(Body::empty())
        .unwrap();
    let resp = kube_dc_backend::router(s.backend.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    while text.lines().count() < 2 {
        let chunk = body.next().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "heartbeat");
    assert_eq!(lines[0]["cursor"], (created - 1).to_string());
    assert_eq!(lines[1]["change"], "created");
    assert_eq!(lines[1]["cursor"], created.to_string());

    let r = s
        .get(DEV, &format!("/api/watch/secrets/{NS}?after=99999999"))
        .await;
    assert_eq!(r.status.as_u16(), 410, "{}", r.text);
    assert!(r.text.contains("list again"), "{}", r.text);
    let r = s
        .get(DEV, &format!("/api/watch/secrets/{NS}?after=abc"))
        .await;
    assert_eq!(r.status.as_u16(), 400);
    let r = s.get(STRANGER, &format!("/api/watch/secrets/{NS}")).await;
    assert_eq!(r.status.as_u16(), 403);
}
