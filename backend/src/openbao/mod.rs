//! OpenBao as the value engine: a KV v2 mount per project namespace
//! (`kv-<namespace>`), one path per secret, OpenBao's versions kept in step
//! with the SQL store's (every write is a check-and-set on the version the
//! SQL store recorded last).
//!
//! The client speaks to one of several addresses (the nodes of a Raft
//! cluster): a node that does not answer, is sealed, or is a standby that
//! cannot reach an active node is skipped for the next, round after round,
//! until [`OpenBaoConfig::failover`] has passed. A write whose answer was
//! lost on the way may have been applied; when its check-and-set then
//! fails, the version it would have made is compared with what was sent,
//! so a retried write is acknowledged once, and never twice.
//!
//! This file is the client (addresses, failover, the KV v2 calls); the
//! store's value interface on top of it is in `values`.

mod values;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::store::{Result, StoreError};
use kube_dc_api::wire::Data;

/// The ACL policy the backend's token needs (also shipped as
/// `backend/packaging/openbao-policy.hcl`).
pub const POLICY_FILE: &str = "backend/packaging/openbao-policy.hcl";

#[derive(Clone, Debug)]
pub struct OpenBaoConfig {
    /// Base URLs (`http://127.0.0.1:8200`), tried in order.
    pub addrs: Vec<String>,
    pub token: Zeroizing<String>,
    pub ca_cert: Option<PathBuf>,
    /// How long one request may wait for a usable node (an election).
    pub failover: Duration,
    /// Mount name before the namespace: `kv-` (the platform's), or another
    /// when several backends share one OpenBao.
    pub mount_prefix: String,
}

pub struct OpenBaoValues {
    http: reqwest::blocking::Client,
    cfg: OpenBaoConfig,
    /// The address that answered last.
    preferred: AtomicUsize,
    /// Mounts known to exist.
    mounts: Mutex<HashSet<String>>,
}

/// One answer: status and JSON body (`Null` when empty).
struct Answer {
    status: u16,
    body: Value,
    /// An earlier attempt of this request may have reached a node.
    uncertain: bool,
}

impl Answer {
    fn errors(&self) -> String {
        match self.body["errors"].as_array() {
            Some(e) if !e.is_empty() => e
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            _ => format!("HTTP {}", self.status),
        }
    }
}

impl OpenBaoValues {
    /// The KV v2 mount of a project namespace's values.
    pub fn mount_of(&self, ns: &str) -> String {
        format!("{}{ns}", self.cfg.mount_prefix)
    }

    pub fn new(cfg: OpenBaoConfig) -> std::result::Result<Self, String> {
        if cfg.addrs.is_empty() {
            return Err("--openbao-addr: give at least one address".into());
        }
        // This build's TLS uses ring (installed once per process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10));
        if let Some(p) = &cfg.ca_cert {
            let pem =
                std::fs::read(p).map_err(|e| format!("--openbao-ca-cert {}: {e}", p.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("--openbao-ca-cert {}: {e}", p.display()))?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| format!("OpenBao client: {e}"))?;
        Ok(Self {
            http,
            cfg,
            preferred: AtomicUsize::new(0),
            mounts: Mutex::new(HashSet::new()),
        })
    }

    /// How long a node that is behind the backend's record (just elected,
    /// still applying the log) is waited for.
    fn stale_wait(&self) -> Duration {
        self.cfg.failover.min(Duration::from_secs(5))
    }

    /// Whether a node's answer means "try another node".
    fn unusable(a: &Answer) -> bool {
        let e = a.errors();
        a.status >= 500
            || e.contains("Upgrading from non-versioned to versioned data")
            || e.contains("sealed")
    }

    fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let started = Instant::now();
        let n = self.cfg.addrs.len();
        let mut at = self.preferred.load(Ordering::Relaxed) % n;
        let mut uncertain = false;
        let mut tried = 0usize;
        loop {
            let url = format!("{}/v1/{path}", self.cfg.addrs[at].trim_end_matches('/'));
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("X-Vault-Token", self.cfg.token.as_str());
            if let Some(b) = body {
                req = req.json(b);
            }
            let last = match req.send() {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().unwrap_or_default();
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let a = Answer {
                        status,
                        body,
                        uncertain,
                    };
                    if !Self::unusable(&a) {
                        self.preferred.store(at, Ordering::Relaxed);
                        return Ok(a);
                    }
                    // A 5xx from a standby or during an election: the
                    // request may have been forwarded and applied.
                    uncertain |= method != reqwest::Method::GET;
                    format!("{url}: {}", a.errors())
                }
                Err(e) => {
                    // Refused before sending is certain; a timeout or a
                    // connection cut after sending is not.
                    if !e.is_connect() {
                        uncertain |= method != reqwest::Method::GET;
                    }
                    format!("{url}: {e}")
                }
            };
            tried += 1;
            at = (at + 1) % n;
            if started.elapsed() >= self.cfg.failover {
                return Err(StoreError::Internal(format!(
                    "OpenBao did not answer within {:?} ({} attempts); last: {last}",
                    self.cfg.failover, tried
                )));
            }
            if tried.is_multiple_of(n) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn denied(&self, what: &str, a: &Answer) -> StoreError {
        // The server's set-up, not the request: an internal error.
        StoreError::Internal(format!(
            "OpenBao refused {what}: {}. The backend's token needs the policy in {POLICY_FILE}",
            a.errors()
        ))
    }

    /// Creates the project's KV v2 mount the first time it is needed.
    fn ensure_mount(&self, mount: &str) -> Result<()> {
        if self.mounts.lock().unwrap().contains(mount) {
            return Ok(());
        }
        let a = self.request(reqwest::Method::GET, &format!("sys/mounts/{mount}"), None)?;
        if a.status != 200 {
            let a = self.request(
                reqwest::Method::POST,
                &format!("sys/mounts/{mount}"),
                Some(&json!({"type": "kv", "options": {"version": "2"},
                             "description": "kube-dc secret values"})),
            )?;
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
        self.mounts.lock().unwrap().insert(mount.to_string());
        Ok(())
    }

    /// One KV v2 call for `what` (the error's wording): the answer's body
    /// on 2xx, `None` on 404, an error naming the policy on 403.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>> {
        let a = self.request(method, path, body)?;
        match a.status {
            200..=299 => Ok(Some(a.body)),
            404 => Ok(None),
            403 => Err(self.denied(what, &a)),
            _ => Err(StoreError::Internal(format!("{what}: {}", a.errors()))),
        }
    }

    /// The KV v2 metadata of a secret (`None`: OpenBao keeps none).
    fn metadata(&self, ns: &str, name: &str) -> Result<Option<Value>> {
        let path = format!("{}/metadata/{name}", self.mount_of(ns));
        let body = self.call(
            reqwest::Method::GET,
            &path,
            None,
            &format!("reading {path}"),
        )?;
        Ok(body.map(|b| b["data"].clone()))
    }

    /// One version's values (`None`: not readable — deleted, destroyed or
    /// never written).
    fn read_data(&self, ns: &str, name: &str, version: u64) -> Result<Option<Data>> {
        let path = format!("{}/data/{name}", self.mount_of(ns));
        let Some(body) = self.call(
            reqwest::Method::GET,
            &format!("{path}?version={version}"),
            None,
            &format!("reading {path}"),
        )?
        else {
            return Ok(None);
        };
        serde_json::from_value(body["data"]["data"].clone())
            .map(Some)
            .map_err(|e| {
                StoreError::Internal(format!(
                    "{path} version {version} is not a map of strings: {e}"
                ))
            })
    }

    /// A call that must find what it changes.
    fn post_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<()> {
        match self.call(method, path, body, what)? {
            Some(_) => Ok(()),
            None => Err(StoreError::Internal(format!(
                "{what}: not found (HTTP 404)"
            ))),
        }
    }
}
