//! Bad input is a 4xx, never a 5xx.

use reqwest::Method;
use serde_json::json;

use super::secrets;
use crate::common::*;

#[tokio::test]
async fn bad_input_is_a_4xx_never_a_5xx() {
    let s = Server::start().await;
    s.create("ok", json!({"K": "v"})).await;
    let big = "x".repeat(1024 * 1024);
    let cases: Vec<(Method, String, Option<Vec<u8>>, u16)> = vec![
        (
            Method::POST,
            secrets("/Bad%20Name"),
            Some(br#"{}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"type": "magic"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"initialValues": {"bad key": "v"}}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(br#"{"name": "a"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(format!(r#"{{"description": "{}"}}"#, "d".repeat(257)).into_bytes()),
            400,
        ),
        (
            Method::POST,
            secrets("/a"),
            Some(b"{not json".to_vec()),
            400,
        ),
        (Method::POST, secrets(""), Some(b"{}".to_vec()), 405),
        (
            Method::POST,
            secrets("/a"),
            Some(format!(r#"{{"initialValues": {{"K": "{big}"}}}}"#).into_bytes()),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(format!(r#"{{"data": {{"K": "{big}"}}}}"#).into_bytes()),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(vec![b' '; 5 * 1024 * 1024]),
            413,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": {"K": 5}}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": ["K"]}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/ok/values"),
            Some(br#"{"data": {"..": "v"}}"#.to_vec()),
            400,
        ),
        (
            Method::PUT,
            secrets("/NOPE/values"),
            Some(br#"{"data": {}}"#.to_vec()),
            400,
        ),
        (Method::GET, secrets("/ok?includeValue=maybe"), None, 400),
        (Method::GET, secrets("/ok?version=2"), None, 400),
        (Method::GET, secrets("/ok?unknown=1"), None, 400),
        (Method::GET, "/api/secrets/Bad_NS".into(), None, 400),
        (Method::DELETE, secrets("/ok?destroy=perhaps"), None, 400),
        (
            Method::POST,
            "/api/orgs/acme/projects/Bad_Project/elevate".into(),
            Some(br#"{"reason": "x"}"#.to_vec()),
            400,
        ),
        (
            Method::POST,
            "/api/orgs/acme/projects/demo/elevate".into(),
            Some(br#"{"reason": 5}"#.to_vec()),
            400,
        ),
    ];
    let admin = s.token(ADMIN);
    let org_admin = s.token(ORG_ADMIN);
    for (m, path, body, want) in cases {
        let token = if path.starts_with("/api/orgs") {
            &org_admin
        } else {
            &admin
        };
        let r = s.call_raw(Some(token), m.clone(), &path, body, None).await;
        assert_eq!(r.status.as_u16(), want, "{m} {path}: {}", r.text);
    }
    // Values never echo back in errors.
    let r = s
        .call_raw(
            Some(&admin),
            Method::PUT,
            &secrets("/ok/values"),
            Some(br#"{"data": {"K": 424242}}"#.to_vec()),
            None,
        )
        .await;
    assert!(!r.text.contains("424242"), "{}", r.text);
}
