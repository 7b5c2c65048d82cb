//! The KV v2 calls the engine is made of: a project's mount (created and
//! waited for), metadata, one version's values, the current version, and
//! the calls that must find what they change.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Answer, BaoClient, POLICY_FILE};
use crate::store::{Result, StoreError};
use kube_dc_api::wire::Data;

impl BaoClient {
    pub(super) fn denied(&self, what: &str, a: &Answer) -> StoreError {
        // The server's set-up, not the request: an internal error.
        StoreError::Internal(format!(
            "OpenBao refused {what}: {}. The backend's token needs the policy in {POLICY_FILE}",
            a.errors()
        ))
    }

    /// Creates the project's KV v2 mount the first time it is needed, and
    /// waits (within the operation's budget) until it accepts requests: a
    /// freshly enabled KV v2 mount refuses them while OpenBao upgrades it.
    pub(super) async fn ensure_mount(&self, mount: &str, deadline: Instant) -> Result<()> {
        if self.mounts.lock().unwrap().contains(mount) {
            return Ok(());
        }
        let a = self
            .request(
                reqwest::Method::GET,
                &format!("sys/mounts/{mount}"),
                None,
                deadline,
            )
            .await?;
        if a.status != 200 {
            let a = self
                .request(
                    reqwest::Method::POST,
                    &format!("sys/mounts/{mount}"),
                    Some(&json!({"type": "kv", "options": {"version": "2"},
                                 "description": "kube-dc secret values"})),
                    deadline,
                )
                .await?;
            match a.status {
                200 | 204 => {}
                // Created meanwhile by another writer.
                400 if a.errors().contains("path is already in use") => {}
                403 => {
                    return Err(self.denied(
                        &format!(
                            "creating the KV v2 mount {mount} (create it, or allow sys/mounts/kv-*)"
                        ),
                        &a,
                    ));
                }
                _ => {
                    return Err(StoreError::Internal(format!(
                        "creating the KV v2 mount {mount}: {}",
                        a.errors()
                    )));
                }
            }
        }
        // Its configuration answers once the upgrade is over (`request`
        // waits through the "upgrading" answers).
        let a = self
            .request(
                reqwest::Method::GET,
                &format!("{mount}/config"),
                None,
                deadline,
            )
            .await?;
        if a.status == 403 {
            // A policy without `config`: the first write waits instead.
            tracing::debug!("{mount}/config is not readable with this token");
        }
        self.mounts.lock().unwrap().insert(mount.to_string());
        Ok(())
    }

    /// One KV v2 call for `what` (the error's wording): the answer's body,
    /// unparsed, on 2xx, `None` on 404, an error naming the policy on 403.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        deadline: Instant,
    ) -> Result<Option<bytes::Bytes>> {
        let a = self.request(method, path, body, deadline).await?;
        match a.status {
            200..=299 => Ok(Some(a.bytes)),
            404 => Ok(None),
            403 => Err(self.denied(what, &a)),
            _ => Err(StoreError::Internal(format!("{what}: {}", a.errors()))),
        }
    }

    /// The KV v2 metadata of a secret (`None`: OpenBao keeps none).
    pub(super) async fn metadata(
        &self,
        ns: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<Value>> {
        let path = format!("{}/metadata/{name}", self.mount_of(ns));
        let what = format!("reading {path}");
        let body = self
            .call(reqwest::Method::GET, &path, None, &what, deadline)
            .await?;
        Ok(body.map(|b| {
            let mut v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
            v.get_mut("data").map_or(Value::Null, Value::take)
        }))
    }

    /// One version's values (`None`: not readable — deleted, destroyed or
    /// never written).
    pub(super) async fn read_data(
        &self,
        ns: &str,
        name: &str,
        version: u64,
        deadline: Instant,
    ) -> Result<Option<Data>> {
        let path = format!("{}/data/{name}", self.mount_of(ns));
        let what = format!("reading {path}");
        let Some(body) = self
            .call(
                reqwest::Method::GET,
                &format!("{path}?version={version}"),
                None,
                &what,
                deadline,
            )
            .await?
        else {
            return Ok(None);
        };
        let read: KvRead =
            serde_json::from_slice(&body).map_err(|e| not_values(&path, Some(version), &e))?;
        Ok(read.data.data)
    }

    /// The current version's number and values (`None`: none readable —
    /// no version, deleted or destroyed).
    pub(super) async fn read_current(&self, ns: &str, name: &str) -> Result<Option<(u64, Data)>> {
        let deadline = self.deadline();
        let path = format!("{}/data/{name}", self.mount_of(ns));
        let what = format!("reading {path}");
        let Some(body) = self
            .call(reqwest::Method::GET, &path, None, &what, deadline)
            .await?
        else {
            return Ok(None);
        };
        let read: KvRead =
            serde_json::from_slice(&body).map_err(|e| not_values(&path, None, &e))?;
        match (read.data.metadata.and_then(|m| m.version), read.data.data) {
            (Some(version), Some(data)) => Ok(Some((version, data))),
            _ => Ok(None),
        }
    }

    /// A call that must find what it changes.
    pub(super) async fn post_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        deadline: Instant,
    ) -> Result<()> {
        match self.call(method, path, body, what, deadline).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::Internal(format!(
                "{what}: not found (HTTP 404)"
            ))),
        }
    }
}

/// A KV v2 read that is not a map of strings. Only where, never serde's
/// text: that quotes what it found, which may be a value.
fn not_values(path: &str, version: Option<u64>, e: &serde_json::Error) -> StoreError {
    let which = version.map_or(String::new(), |v| format!(" version {v}"));
    StoreError::Internal(format!(
        "{path}{which} is not a map of strings (line {}, column {} of OpenBao's answer)",
        e.line(),
        e.column()
    ))
}

/// A KV v2 read's answer, parsed straight into the values (no JSON tree
/// holding them on the way).
#[derive(serde::Deserialize)]
struct KvRead {
    data: KvReadData,
}

#[derive(serde::Deserialize)]
struct KvReadData {
    /// `null` for a version deleted or destroyed (OpenBao answers those
    /// with 404, but a proxy or another version may not).
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    metadata: Option<KvReadMetadata>,
}

#[derive(serde::Deserialize)]
struct KvReadMetadata {
    #[serde(default)]
    version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::{KvRead, not_values};

    #[test]
    fn a_value_that_is_not_a_string_is_refused_without_quoting_it() {
        let body = br#"{"data": {"data": {"PORT": 54321}, "metadata": {"version": 2}}}"#;
        let e = serde_json::from_slice::<KvRead>(body).err().unwrap();
        let shown = not_values("kv-acme-demo/data/db", Some(2), &e).to_string();
        assert!(shown.contains("kv-acme-demo/data/db version 2 is not a map of strings"));
        assert!(!shown.contains("54321"), "{shown}");
    }

    #[test]
    fn a_read_without_values_is_none() {
        let body = br#"{"data": {"data": null, "metadata": {"version": 3}}}"#;
        let read: KvRead = serde_json::from_slice(body).unwrap();
        assert!(read.data.data.is_none());
        assert_eq!(read.data.metadata.and_then(|m| m.version), Some(3));
    }
}
