//! Writes safe to retry: a create or a write that carries an
//! `Idempotency-Key` is answered, when sent again, as its first attempt
//! was — once, with one version — and audited as a replay.

use axum::http::Method;
use serde_json::json;

use super::secrets;
use crate::common::*;

/// The versions `name` lists.
async fn versions(s: &Server, name: &str) -> Vec<u64> {
    s.get(DEV, &secrets(&format!("/{name}/versions")))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect()
}

#[tokio::test]
async fn a_write_sent_again_with_its_key_is_answered_as_the_first_was() {
    let s = Server::start().await;
    s.create("db", json!({"P": "1"})).await;
    let path = secrets("/db/values");
    let body = json!({"data": {"P": "2"}});
    let first = s
        .keyed(DEV, Method::PUT, &path, body.clone(), "k-put-1")
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["version"], 2);
    // The retry: same answer, no new version.
    let again = s
        .keyed(DEV, Method::PUT, &path, body.clone(), "k-put-1")
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, first.body);
    assert_eq!(versions(&s, "db").await, [1, 2]);
    // Even with the cas the first attempt used (now stale).
    let cas = json!({"data": {"P": "3"}, "cas": 2});
    let first = s
        .keyed(DEV, Method::PUT, &path, cas.clone(), "k-put-2")
        .await;
    assert_eq!(first.body["version"], 3, "{}", first.text);
    let again = s.keyed(DEV, Method::PUT, &path, cas, "k-put-2").await;
    assert_eq!(
        (again.status.as_u16(), &again.body),
        (200, &first.body),
        "{}",
        again.text
    );
    // Audited: the replay is an event of its own, saying so.
    let events = s.audit("limit=20").await;
    let replays: Vec<_> = events
        .iter()
        .filter(|e| e["body"]["replayed"] == true)
        .collect();
    assert_eq!(replays.len(), 2, "{events:?}");
    assert_eq!(replays[0]["body"]["action"], "secrets.value.write");
    // Another caller's key is another key.
    let r = s
        .keyed(ADMIN, Method::PUT, &path, body.clone(), "k-put-1")
        .await;
    assert_eq!(r.body["version"], 4, "{}", r.text);
    // The same key for another write is refused, not replayed.
    s.create("other", json!({"P": "1"})).await;
    let r = s
        .keyed(DEV, Method::PUT, &secrets("/other/values"), body, "k-put-1")
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(versions(&s, "other").await, [1]);
    // A key that is not one.
    let r = s
        .keyed(
            DEV,
            Method::PUT,
            &path,
            json!({"data": {"P": "9"}}),
            "a key",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn a_create_sent_again_with_its_key_is_not_a_conflict() {
    let s = Server::start().await;
    let path = secrets("/api-token");
    let body = json!({"type": "opaque", "initialValues": {"T": "x"}});
    let first = s
        .keyed(ADMIN, Method::POST, &path, body.clone(), "k-create")
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = s
        .keyed(ADMIN, Method::POST, &path, body.clone(), "k-create")
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["name"], "api-token");
    assert_eq!(again.body["kvVersion"], 1, "{}", again.text);
    assert_eq!(versions(&s, "api-token").await, [1]);
    // Without the key, or with another, it exists.
    let r = s.keyed(ADMIN, Method::POST, &path, body, "k-other").await;
    assert_eq!(
        (r.status.as_u16(), r.body["reason"].as_str()),
        (409, Some("exists"))
    );
}
