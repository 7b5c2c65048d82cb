//! OpenBao as the value engine: a KV v2 mount per project namespace
//! (`kv-<namespace>`), one path per secret, OpenBao's versions kept in step
//! with the SQL store's (every write is a check-and-set on the version the
//! SQL store recorded last).
//!
//! The client speaks to one of several addresses (the nodes of a Raft
//! cluster): a node that does not answer, is sealed, or is a standby that
//! cannot reach an active node is skipped for the next, round after round,
//! until [`OpenBaoConfig::failover`] has passed — the budget of the whole
//! operation, not of each attempt: exhausted, the operation fails as
//! unavailable (a 503 with `Retry-After`). A write whose answer was
//! lost on the way may have been applied; when its check-and-set then
//! fails, the version it would have made is compared with what was sent,
//! so a retried write is acknowledged once, and never twice.
//!
//! Calls are async, on a runtime of the engine's own (a small pool of
//! threads and kept-alive connections), so that many run at once and none
//! holds the store's writer; the store's blocking callers wait for them
//! there. This file is the client (addresses, failover, the KV v2 calls);
//! the store's value interface on top of it is in `values`.

mod kv;
mod values;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::store::{EngineHealth, Result, StoreError};

/// The ACL policy the backend's token needs (also shipped as
/// `backend/packaging/openbao-policy.hcl`).
pub const POLICY_FILE: &str = "backend/packaging/openbao-policy.hcl";

#[derive(Clone, Debug)]
/// How to reach OpenBao.
pub struct OpenBaoConfig {
    /// Base URLs (`http://127.0.0.1:8200`), tried in order.
    pub addrs: Vec<String>,
    /// The token the backend uses (see [`POLICY_FILE`]).
    pub token: Zeroizing<String>,
    /// A CA certificate to trust for `https://` addresses.
    pub ca_cert: Option<PathBuf>,
    /// How long one operation may take, failovers included (an election).
    pub failover: Duration,
    /// Mount name before the namespace: `kv-` (the platform's), or another
    /// when several backends share one OpenBao.
    pub mount_prefix: String,
}

/// The engine: the client and the runtime its calls run on.
pub struct OpenBaoValues {
    client: Arc<BaoClient>,
    /// The server's own runtime when it has worker threads; else one of
    /// the engine's own, taken (and shut down without waiting) when the
    /// engine is dropped, which may happen on an async thread.
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

/// The HTTP side: addresses, failover, KV v2 calls.
struct BaoClient {
    http: reqwest::Client,
    cfg: OpenBaoConfig,
    /// `cfg.addrs` parsed once, each with `/v1/` after its path.
    apis: Vec<reqwest::Url>,
    /// The token as a header value, built once and marked sensitive (kept
    /// out of any request's debug output).
    token: reqwest::header::HeaderValue,
    /// The address that answered last.
    preferred: AtomicUsize,
    /// Mounts known to exist and to accept writes.
    mounts: Mutex<HashSet<String>>,
    /// Times an operation moved on to another node.
    failovers: AtomicU64,
}

/// One answer: status and body, parsed only where it is read (a value
/// read is parsed straight into its values).
struct Answer {
    status: u16,
    bytes: bytes::Bytes,
    /// An earlier attempt of this request may have reached a node.
    uncertain: bool,
}

impl Answer {
    /// The body as JSON (`Null` when empty or not JSON).
    fn body(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn errors(&self) -> String {
        match self.body()["errors"].as_array() {
            Some(e) if !e.is_empty() => e
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            _ => format!("HTTP {}", self.status),
        }
    }

    /// A KV v2 mount just enabled (or upgraded) refuses reads and writes
    /// until OpenBao has finished upgrading it: certainly not applied, and
    /// gone in a moment.
    fn upgrading(&self) -> bool {
        if self.status < 400 {
            return false;
        }
        let e = self.errors();
        e.contains("Upgrading from non-versioned to versioned data")
            || e.contains("Waiting for the primary to upgrade from non-versioned to versioned data")
    }

    /// Whether this node's answer means "try another node".
    fn unusable(&self) -> bool {
        self.status >= 500 || (self.status >= 400 && self.errors().contains("sealed"))
    }
}

impl OpenBaoValues {
    /// Values in OpenBao as `cfg` says; refused without an address.
    pub fn new(cfg: OpenBaoConfig) -> std::result::Result<Self, String> {
        if cfg.addrs.is_empty() {
            return Err("--openbao-addr: give at least one address".into());
        }
        // This build's TLS uses ring (installed once per process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(p) = &cfg.ca_cert {
            let pem =
                std::fs::read(p).map_err(|e| format!("--openbao-ca-cert {}: {e}", p.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("--openbao-ca-cert {}: {e}", p.display()))?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| format!("OpenBao client: {e}"))?;
        let apis = cfg
            .addrs
            .iter()
            .map(|a| {
                reqwest::Url::parse(&format!("{}/v1/", a.trim_end_matches('/'))).map_err(|e| {
                    format!(
                        "--openbao-addr {a:?}: not a URL ({e}); give e.g. http://127.0.0.1:8200"
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut token =
            reqwest::header::HeaderValue::from_str(cfg.token.as_str()).map_err(|_| {
                "the OpenBao token (--openbao-token-file, BAO_TOKEN or VAULT_TOKEN) holds \
                 characters an HTTP header cannot carry, such as a line break inside it: \
                 give the token exactly as OpenBao issued it"
                    .to_string()
            })?;
        token.set_sensitive(true);
        let (rt, handle) = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => (None, h),
            _ => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("kube-dc-openbao")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("OpenBao client runtime: {e}"))?;
                let h = rt.handle().clone();
                (Some(rt), h)
            }
        };
        Ok(Self {
            client: Arc::new(BaoClient {
                http,
                cfg,
                apis,
                token,
                preferred: AtomicUsize::new(0),
                mounts: Mutex::new(HashSet::new()),
                failovers: AtomicU64::new(0),
            }),
            rt,
            handle,
        })
    }

    /// The KV v2 mount of a project namespace's values.
    pub fn mount_of(&self, ns: &str) -> String {
        self.client.mount_of(ns)
    }

    /// The runtime the engine's calls run on.
    fn rt(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `op` on the engine's runtime; the future answers with its
    /// result (for async callers on any runtime).
    fn spawn<T, F>(
        &self,
        op: impl FnOnce(Arc<BaoClient>) -> F,
    ) -> futures_util::future::BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let task = self.rt().spawn(op(self.client.clone()));
        Box::pin(async move {
            task.await
                .map_err(|e| StoreError::Internal(format!("OpenBao call failed: {e}")))?
        })
    }

    /// The engine's state for `/readyz`: the first node whose `sys/health`
    /// says it can serve (active, or a standby that forwards).
    pub fn health(&self) -> futures_util::future::BoxFuture<'static, EngineHealth> {
        let task = self.rt().spawn({
            let c = self.client.clone();
            async move { c.health().await }
        });
        Box::pin(async move {
            task.await.unwrap_or_else(|e| EngineHealth {
                ready: false,
                node: String::new(),
                detail: format!("health check failed: {e}"),
                latency_ms: 0,
                failovers: 0,
            })
        })
    }
}

impl Drop for OpenBaoValues {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// How one attempt on one node went.
enum Attempt {
    /// An answer to act on (2xx, or a 4xx that is the node's word).
    Answered(Answer),
    /// The node is upgrading: not applied, and it takes it shortly.
    Upgrading(String),
    /// No usable answer; a write may have been applied all the same.
    Failed { why: String, maybe_applied: bool },
}

impl BaoClient {
    fn mount_of(&self, ns: &str) -> String {
        format!("{}{ns}", self.cfg.mount_prefix)
    }

    /// When an operation started now must be over.
    fn deadline(&self) -> Instant {
        Instant::now() + self.cfg.failover
    }

    /// The operation ran out of its budget.
    fn unavailable(&self, last: &str, tried: usize) -> StoreError {
        StoreError::Unavailable {
            message: format!(
                "OpenBao did not answer within {:?} ({tried} attempt(s)); last: {last}",
                self.cfg.failover
            ),
            retry_after: self.cfg.failover.as_secs().clamp(1, 30),
        }
    }

    async fn health(&self) -> EngineHealth {
        let started = Instant::now();
        let mut last = (String::new(), String::from("no address"));
        for (addr, api) in self.cfg.addrs.iter().zip(&self.apis) {
            let url = api_url(api, "sys/health?standbyok=true&perfstandbyok=true");
            let got = tokio::time::timeout(Duration::from_secs(1), self.http.get(url).send()).await;
            let detail = match got {
                Ok(Ok(r)) if r.status().as_u16() == 200 => {
                    return EngineHealth {
                        ready: true,
                        node: addr.clone(),
                        detail: "active or standby, unsealed".into(),
                        latency_ms: started.elapsed().as_millis() as u64,
                        failovers: self.failovers.load(Ordering::Relaxed),
                    };
                }
                Ok(Ok(r)) => match r.status().as_u16() {
                    501 => "not initialized".to_string(),
                    503 => "sealed".to_string(),
                    s => format!("HTTP {s}"),
                },
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 1 s".to_string(),
            };
            last = (addr.clone(), detail);
        }
        EngineHealth {
            ready: false,
            node: last.0,
            detail: last.1,
            latency_ms: started.elapsed().as_millis() as u64,
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }

    /// `path` (with its query, if any) under node `at`'s API, without
    /// parsing the node's address again.
    fn url(&self, at: usize, path: &str) -> reqwest::Url {
        api_url(&self.apis[at], path)
    }

    /// One request, on whichever node can answer it before `deadline`.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Answer> {
        let n = self.cfg.addrs.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut at = first;
        let mut uncertain = false;
        let mut tried = 0usize;
        // One node may not take the whole budget while others could answer.
        let per_attempt = (self.cfg.failover / n as u32).max(Duration::from_millis(500));
        loop {
            let until = deadline.min(Instant::now() + per_attempt);
            let attempt = self.attempt(at, (&method, path, body), until, per_attempt);
            let (last, retry_here) = match attempt.await {
                Attempt::Answered(mut a) => {
                    if at != first {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "OpenBao: moved to {} after {tried} failed attempt(s)",
                            self.cfg.addrs[at]
                        );
                    }
                    self.preferred.store(at, Ordering::Relaxed);
                    a.uncertain = uncertain;
                    return Ok(a);
                }
                // Not applied; the same node will take it shortly.
                Attempt::Upgrading(why) => (why, true),
                Attempt::Failed { why, maybe_applied } => {
                    uncertain |= maybe_applied && method != reqwest::Method::GET;
                    (why, false)
                }
            };
            tried += 1;
            if Instant::now() >= deadline {
                tracing::warn!("OpenBao unavailable: {last}");
                return Err(self.unavailable(&last, tried));
            }
            if retry_here {
                tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(100)))
                    .await;
                continue;
            }
            at = (at + 1) % n;
            if tried.is_multiple_of(n) {
                tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(200)))
                    .await;
            }
        }
    }

    /// One attempt on node `at`, answered by `until` (at most `patience`
    /// from now).
    async fn attempt(
        &self,
        at: usize,
        (method, path, body): (&reqwest::Method, &str, Option<&Value>),
        until: Instant,
        patience: Duration,
    ) -> Attempt {
        let url = self.url(at, path);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header("X-Vault-Token", self.token.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        let sent = tokio::time::timeout_at(until, async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, bytes))
        })
        .await;
        match sent {
            Ok(Ok((status, bytes))) => {
                let a = Answer {
                    status,
                    bytes,
                    uncertain: false,
                };
                if a.upgrading() {
                    Attempt::Upgrading(format!("{url}: {}", a.errors()))
                } else if a.unusable() {
                    // A 5xx from a standby or during an election: the
                    // request may have been forwarded and applied.
                    Attempt::Failed {
                        why: format!("{url}: {}", a.errors()),
                        maybe_applied: true,
                    }
                } else {
                    Attempt::Answered(a)
                }
            }
            // Refused before sending is certain; a connection cut after
            // sending is not.
            Ok(Err(e)) => Attempt::Failed {
                maybe_applied: !e.is_connect(),
                why: format!("{url}: {e}"),
            },
            // No answer in time: a hung node (or a slow election).
            Err(_) => Attempt::Failed {
                why: format!("{url}: no answer within {patience:?}"),
                maybe_applied: true,
            },
        }
    }
}

/// `path` (`kv-x/data/y`, perhaps with `?query`) under `api` (a node's
/// address with `/v1/` after its path).
fn api_url(api: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = api.clone();
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let full = format!("{}{path}", url.path());
    url.set_path(&full);
    url.set_query(query);
    url
}

#[cfg(test)]
mod tests {
    use super::api_url;

    #[test]
    fn a_token_no_header_can_carry_is_refused_at_start_without_quoting_it() {
        let cfg = super::OpenBaoConfig {
            addrs: vec!["http://127.0.0.1:8200".into()],
            token: zeroize::Zeroizing::new("s.secret\npart".into()),
            ca_cert: None,
            failover: std::time::Duration::from_secs(1),
            mount_prefix: "kv-".into(),
        };
        let Err(e) = super::OpenBaoValues::new(cfg) else {
            panic!("a token with a line break was taken");
        };
        assert!(e.contains("BAO_TOKEN") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn a_path_and_its_query_go_under_the_nodes_api() {
        let api = reqwest::Url::parse("https://bao.example:8200/v1/").unwrap();
        assert_eq!(
            api_url(&api, "kv-acme-demo/data/db?version=3").as_str(),
            "https://bao.example:8200/v1/kv-acme-demo/data/db?version=3"
        );
        let behind = reqwest::Url::parse("http://10.0.0.1/bao/v1/").unwrap();
        assert_eq!(
            api_url(&behind, "sys/mounts/kv-acme-demo").as_str(),
            "http://10.0.0.1/bao/v1/sys/mounts/kv-acme-demo"
        );
    }
}
