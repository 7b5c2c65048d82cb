//! HTTP-level tests of the backend: real HTTP on 127.0.0.1, tokens minted
//! from the test keys and verified through discovery + JWKS.

mod access;
mod audit;
mod consumers;
mod import;
mod input;
mod lifecycle;
mod outcomes;
mod retries;
mod status;
mod watch;

use crate::common::*;
use serde_json::Value;

/// A path under the test project's secrets.
pub(crate) fn secrets(path: &str) -> String {
    format!("/api/secrets/{NS}{path}")
}

pub(crate) trait FaultCall {
    async fn post_expect_fault(&self, path: &str, body: Value) -> u16;
}

impl FaultCall for Server {
    /// A request that is meant to fail inside the server (fault injection):
    /// the harness's "no 5xx" rule does not apply to it.
    async fn post_expect_fault(&self, path: &str, body: Value) -> u16 {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(self.token(DEV))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("injected"), "{v}");
        status
    }
}
