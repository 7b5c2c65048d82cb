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

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::store::{EngineVersions, Result, Sealed, StoreError, Values};
use crate::wire::Data;

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

    /// The KV v2 metadata of a secret (`None`: OpenBao keeps none).
    fn metadata(&self, ns: &str, name: &str) -> Result<Option<Value>> {
        let mount = self.mount_of(ns);
        let a = self.request(
            reqwest::Method::GET,
            &format!("{mount}/metadata/{name}"),
            None,
        )?;
        match a.status {
            200 => Ok(Some(a.body["data"].clone())),
            404 => Ok(None),
            403 => Err(self.denied(&format!("reading {mount}/metadata/{name}"), &a)),
            _ => Err(StoreError::Internal(format!(
                "reading {mount}/metadata/{name}: {}",
                a.errors()
            ))),
        }
    }

    fn read_data(&self, ns: &str, name: &str, version: u64) -> Result<Option<Data>> {
        let mount = self.mount_of(ns);
        let a = self.request(
            reqwest::Method::GET,
            &format!("{mount}/data/{name}?version={version}"),
            None,
        )?;
        match a.status {
            200 => {
                let data = a.body["data"]["data"].clone();
                serde_json::from_value(data).map(Some).map_err(|e| {
                    StoreError::Internal(format!(
                        "{mount}/data/{name} version {version} is not a map of strings: {e}"
                    ))
                })
            }
            404 => Ok(None),
            403 => Err(self.denied(&format!("reading {mount}/data/{name}"), &a)),
            _ => Err(StoreError::Internal(format!(
                "reading {mount}/data/{name}: {}",
                a.errors()
            ))),
        }
    }

    fn post_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<()> {
        let a = self.request(method, path, body)?;
        match a.status {
            200 | 204 => Ok(()),
            403 => Err(self.denied(what, &a)),
            _ => Err(StoreError::Internal(format!("{what}: {}", a.errors()))),
        }
    }
}

impl Values for OpenBaoValues {
    fn kind(&self) -> &'static str {
        "openbao"
    }

    fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)> {
        let mount = self.mount_of(ns);
        self.ensure_mount(&mount)?;
        let path = format!("{mount}/data/{name}");
        let mut cas = current;
        let started = Instant::now();
        let version = loop {
            let body = json!({"options": {"cas": cas}, "data": data});
            let a = self.request(reqwest::Method::POST, &path, Some(&body))?;
            match a.status {
                200 => {
                    let got = a.body["data"]["version"].as_u64().unwrap_or(0);
                    if got != cas + 1 {
                        return Err(StoreError::Internal(format!(
                            "OpenBao wrote {path} as version {got}, not {}; the backend \
                             reconciles at its next start",
                            cas + 1
                        )));
                    }
                    break got;
                }
                400 if a.errors().contains("check-and-set") => {
                    let meta = self.metadata(ns, name)?.unwrap_or(Value::Null);
                    let there = meta["current_version"].as_u64().unwrap_or(0);
                    // Applied already by an attempt whose answer was lost?
                    if a.uncertain
                        && there == cas + 1
                        && self.read_data(ns, name, there)?.as_ref() == Some(data)
                    {
                        break there;
                    }
                    // Versions that writes which never committed left
                    // behind, each destroyed by its undo: write after them.
                    let skippable = there > cas
                        && (cas + 1..=there).all(|v| {
                            meta["versions"][v.to_string()]["destroyed"].as_bool() == Some(true)
                        });
                    if skippable && cas == current {
                        cas = there;
                        continue;
                    }
                    // Behind the record: right after an election the new
                    // leader may not have applied every committed entry
                    // yet. Wait for it, within the failover window.
                    if there < cas && started.elapsed() < self.stale_wait() {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    return Err(StoreError::Conflict(format!(
                        "OpenBao's {path} is at version {there}, not {current} as the backend \
                         recorded: a change was made there that the backend did not record. \
                         Restart the backend: it reports and records the difference at start"
                    )));
                }
                403 => return Err(self.denied(&format!("writing {path}"), &a)),
                _ => {
                    return Err(StoreError::Internal(format!(
                        "writing {path}: {}",
                        a.errors()
                    )));
                }
            }
        };
        if current == 0 {
            // The history window, kept by OpenBao itself.
            self.post_ok(
                reqwest::Method::POST,
                &format!("{mount}/metadata/{name}"),
                Some(&json!({"max_versions": max_versions})),
                &format!("setting max_versions of {mount}/metadata/{name}"),
            )?;
        }
        Ok((version, None))
    }

    fn get(&self, ns: &str, name: &str, version: u64, _: Option<Sealed>) -> Result<Data> {
        // A version the backend recorded is there; a node that does not
        // show it yet (just elected) is waited for, within the window.
        let started = Instant::now();
        loop {
            match self.read_data(ns, name, version)? {
                Some(d) => return Ok(d),
                None if started.elapsed() < self.stale_wait() => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                None => break,
            }
        }
        Err(StoreError::Internal(format!(
            "OpenBao has no readable version {version} of {}/data/{name}, which the backend \
             lists as live",
            self.mount_of(ns)
        )))
    }

    fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()> {
        let mount = self.mount_of(ns);
        self.post_ok(
            reqwest::Method::PUT,
            &format!("{mount}/destroy/{name}"),
            Some(&json!({"versions": [version]})),
            &format!("destroying version {version} of {mount}/data/{name}"),
        )
    }

    fn destroy_all(&self, ns: &str, name: &str) -> Result<()> {
        let mount = self.mount_of(ns);
        let a = self.request(
            reqwest::Method::DELETE,
            &format!("{mount}/metadata/{name}"),
            None,
        )?;
        match a.status {
            // 404: nothing was ever written (or the mount is gone).
            200 | 204 | 404 => Ok(()),
            403 => Err(self.denied(&format!("deleting {mount}/metadata/{name}"), &a)),
            _ => Err(StoreError::Internal(format!(
                "deleting {mount}/metadata/{name}: {}",
                a.errors()
            ))),
        }
    }

    fn set_deleted(&self, ns: &str, name: &str, current: u64, deleted: bool) -> Result<()> {
        let mount = self.mount_of(ns);
        let (op, what) = if deleted {
            ("delete", "soft-deleting")
        } else {
            ("undelete", "restoring")
        };
        self.post_ok(
            reqwest::Method::POST,
            &format!("{mount}/{op}/{name}"),
            Some(&json!({"versions": [current]})),
            &format!("{what} version {current} of {mount}/data/{name}"),
        )
    }

    fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        let Some(m) = self.metadata(ns, name)? else {
            return Ok(Some(EngineVersions::default()));
        };
        let mut versions = Vec::new();
        if let Some(vs) = m["versions"].as_object() {
            for (k, v) in vs {
                let Ok(n) = k.parse::<u64>() else { continue };
                let created = v["created_time"]
                    .as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .unwrap_or(0);
                versions.push((n, created, v["destroyed"].as_bool().unwrap_or(false)));
            }
        }
        versions.sort();
        Ok(Some(EngineVersions {
            current: m["current_version"].as_u64().unwrap_or(0),
            versions,
        }))
    }
}
