//! What the status says is true: a projection is Ready only when it holds
//! the values and keys asked for; deletions can be found again.

use serde_json::{Value, json};

use crate::common::*;

fn synced(secret: &Value) -> (String, String) {
    let c = secret["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Synced")
        .unwrap();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn a_projection_is_ready_only_with_its_values_and_keys() {
    let s = Server::start().await;
    let path = |p: &str| format!("/api/secrets/{NS}{p}");
    // Empty: wired (Ready, as production's controller), but not synced.
    let r = s.post(ADMIN, &path("/empty"), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(synced(&r.body), ("False".into(), "AwaitingValues".into()));
    assert!(r.body["status"]["currentKeys"].is_null());

    let r = s
        .create("db", json!({"USER": "app", "PASSWORD": "p"}))
        .await;
    assert_eq!(synced(&r.body), ("True".into(), "SecretSynced".into()));
    assert_eq!(r.body["status"]["currentKeys"], json!(["PASSWORD", "USER"]));

    // An allowlist naming a key the values lack is refused, naming the keys.
    let r = s
        .post(ADMIN, &path("/db/sync"), json!({"keys": ["NOPE", "USER"]}))
        .await;
    assert_eq!(r.status, 400);
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.contains("NOPE") && msg.contains("PASSWORD, USER"),
        "{msg}"
    );
    let r = s
        .post(ADMIN, &path("/db/sync"), json!({"keys": ["USER"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A later version without the allowlisted key: not Ready, and why.
    s.put(
        ADMIN,
        &path("/db/values"),
        json!({"data": {"PASSWORD": "p2"}}),
    )
    .await;
    let r = s.get(ADMIN, &path("/db")).await;
    assert_eq!(synced(&r.body), ("False".into(), "KeysMissing".into()));
    // A create whose allowlist its initial values do not hold is refused.
    let r = s
        .post(
            ADMIN,
            &path("/bad"),
            json!({"sync": {"enabled": true, "keys": ["X"]}, "initialValues": {"Y": "1"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(s.get(ADMIN, &path("/bad")).await.status, 404);
}

#[tokio::test]
async fn soft_deleted_secrets_are_listed_and_named_as_deleted() {
    let s = Server::start().await;
    let path = |p: &str| format!("/api/secrets/{NS}{p}");
    s.create("gone", json!({"K": "v"})).await;
    s.create("kept", json!({"K": "v"})).await;
    assert_eq!(s.delete(ADMIN, &path("/gone")).await.status, 200);
    let live = s.get(ADMIN, &path("")).await;
    assert!(live.body.get("deleted").is_none());
    assert_eq!(live.body["items"].as_array().unwrap().len(), 1);
    let del = s.get(ADMIN, &path("?deleted=true")).await;
    assert_eq!(del.body["deleted"], true);
    let items = del.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "gone");
    assert!(items[0]["deletedTime"].is_string());
    let r = s.get(ADMIN, &path("/gone")).await;
    assert_eq!(r.status, 404);
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.contains("deleted") && msg.contains("kube-dc secrets restore gone"),
        "{msg}"
    );
}
