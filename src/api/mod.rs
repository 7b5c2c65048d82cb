//! Typed client of the Secrets Manager API (`CONTRACT.md`).
//!
//! Two transports carry the same requests: the embedded backend, called
//! in-process (the `local` context: no port is opened at all), and HTTP(S)
//! to a real installation. Everything above the transport — paths, bodies,
//! error mapping — is shared, so the local context exercises the same code
//! as production.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::net::{check_credential_url, http_client};
pub use kube_dc_api::endpoints::{Origin, Route};
pub use kube_dc_api::wire::*;

use crate::config::{Backend, Target};
use crate::error::{CliError, ErrorKind, Result};

pub type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, String>> + Send>>;

enum Transport {
    /// The embedded backend, called in-process (feature `local`).
    #[cfg(feature = "local")]
    Local(axum::Router),
    Http {
        http: reqwest::Client,
        base: String,
        token: Option<Sensitive>,
    },
}

pub struct Client {
    transport: Transport,
    verbose: bool,
    timeout: Duration,
}

/// A 2xx response, body read in full.
pub struct Raw {
    pub status: u16,
    pub body: Bytes,
}

/// A 2xx response whose body is read as it arrives.
pub struct Streamed {
    pub status: u16,
    pub content_type: String,
    /// The server announced an end-of-export trailer line
    /// ([`kube_dc_api::audit::TRAILER_HEADER`]).
    pub trailer: bool,
    pub body: ByteStream,
}

impl Client {
    /// `token`: the bearer for a remote target.
    pub fn new(
        target: &Target,
        timeout: Duration,
        verbose: bool,
        token: Option<Sensitive>,
    ) -> Result<Self> {
        let transport = match &target.backend {
            #[cfg(feature = "local")]
            Backend::Local { data_dir, user } => {
                let backend =
                    kube_dc_backend::Backend::embedded(data_dir, crate::config::LOCAL_ORG, user)
                        .map_err(|e| CliError::other(format!("local context: {e}")))?;
                Transport::Local(backend.router())
            }
            #[cfg(not(feature = "local"))]
            Backend::Local { .. } => {
                return Err(CliError::usage(
                    "this kube-dc was built without the local context (cargo feature `local`)",
                )
                .hint("use a remote context: kube-dc login --domain DOMAIN --org ORG, or --server URL"));
            }
            Backend::Remote { base_url } => {
                check_credential_url("server URL", base_url)?;
                let http = http_client(target.ca_cert.as_deref(), target.insecure, timeout)?;
                Transport::Http {
                    http,
                    base: base_url.clone(),
                    token,
                }
            }
        };
        Ok(Self {
            transport,
            verbose,
            timeout,
        })
    }

    fn trace_request(
        &self,
        method: &Method,
        path: &str,
        request_id: &str,
        body_len: Option<usize>,
    ) {
        if !self.verbose {
            return;
        }
        let (base, auth) = match &self.transport {
            #[cfg(feature = "local")]
            Transport::Local(_) => ("local:".to_string(), false),
            Transport::Http { base, token, .. } => (base.clone(), token.is_some()),
        };
        use crate::output::trace;
        trace(&format!("> {method} {base}{path}"));
        trace(&format!("> x-request-id: {request_id}"));
        if auth {
            trace("> authorization: Bearer [redacted]");
        }
        if let Some(n) = body_len {
            trace(&format!("> body: {n} bytes [redacted]"));
        }
    }

    fn trace_response(&self, status: u16, request_id: Option<&str>, started: Instant) {
        if self.verbose {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            use crate::output::trace;
            trace(&format!(
                "< {status} {reason} ({} ms)",
                started.elapsed().as_millis()
            ));
            if let Some(id) = request_id {
                trace(&format!("< x-request-id: {id}"));
            }
        }
    }

    /// Sends a request; a non-2xx answer becomes a [`CliError`]. `extension`:
    /// the route is one of this project's extensions, so a 404/405 that is
    /// not an API error means the installation lacks it. `whole`: the
    /// answer is read in full, so `--timeout` bounds the whole exchange; a
    /// streamed answer runs as long as data keeps coming (each read waits
    /// at most `--timeout`).
    ///
    /// A 429 or 503 with `Retry-After` is retried (at most
    /// [`MAX_ATTEMPTS`] times in all, waiting as asked up to
    /// [`MAX_RETRY_WAIT`]) when the request is safe to repeat: any 429 (the
    /// server refused it unprocessed) and a 503 to a GET.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extension: bool,
        whole: bool,
    ) -> Result<Streamed> {
        let mut attempt = 1;
        loop {
            let request_id = uuid::Uuid::new_v4().to_string();
            self.trace_request(&method, path, &request_id, body.as_ref().map(Vec::len));
            let started = Instant::now();
            let a = self
                .once(&method, path, body.clone(), &request_id, whole)
                .await?;
            self.trace_response(a.status, a.request_id.as_deref(), started);
            if (200..300).contains(&a.status) {
                return Ok(Streamed {
                    status: a.status,
                    content_type: a.content_type,
                    trailer: a.trailer,
                    body: a.body,
                });
            }
            let retryable = a.status == 429 || (a.status == 503 && method == Method::GET);
            if let Some(wait) = a.retry_after.filter(|_| retryable) {
                let reason = StatusCode::from_u16(a.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                if attempt < MAX_ATTEMPTS && wait <= MAX_RETRY_WAIT {
                    crate::output::note(&format!(
                        "the server answered {} {reason} and asked to retry in {}s; retrying ({} of {MAX_ATTEMPTS})",
                        a.status,
                        wait.as_secs(),
                        attempt + 1
                    ));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                let body = collect(a.body, 64 * 1024).await.unwrap_or_default();
                let e = api_error(
                    a.status,
                    a.request_id.or(Some(request_id)),
                    &a.content_type,
                    &body,
                    extension,
                    &method,
                    path,
                );
                let why = if attempt >= MAX_ATTEMPTS {
                    format!("gave up after {attempt} attempts")
                } else {
                    format!(
                        "it asked to wait {}s, longer than kube-dc waits ({}s)",
                        wait.as_secs(),
                        MAX_RETRY_WAIT.as_secs()
                    )
                };
                return Err(e.hint(format!("{why}; try again later")));
            }
            let body = collect(a.body, 64 * 1024).await.unwrap_or_default();
            return Err(api_error(
                a.status,
                a.request_id.or(Some(request_id)),
                &a.content_type,
                &body,
                extension,
                &method,
                path,
            ));
        }
    }

    /// One exchange over the transport.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<Vec<u8>>,
        request_id: &str,
        whole: bool,
    ) -> Result<Answer> {
        match &self.transport {
            #[cfg(feature = "local")]
            Transport::Local(router) => {
                use tower::ServiceExt;
                let mut req = http::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header("x-request-id", request_id)
                    .header("accept", "application/json");
                if body.is_some() {
                    req = req.header("content-type", "application/json");
                }
                let req = req
                    .body(axum::body::Body::from(body.unwrap_or_default()))
                    .map_err(|e| CliError::other(format!("bad request: {e}")))?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| CliError::other(format!("local backend: {e}")))?;
                let (parts, body) = resp.into_parts();
                let header = |k: &str| {
                    parts
                        .headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let stream = body
                    .into_data_stream()
                    .map(|r| r.map_err(|e| e.to_string()));
                Ok(Answer {
                    status: parts.status.as_u16(),
                    request_id: header("x-request-id"),
                    content_type: header("content-type").unwrap_or_default(),
                    trailer: header(kube_dc_api::audit::TRAILER_HEADER).is_some(),
                    retry_after: None,
                    body: Box::pin(stream),
                })
            }
            Transport::Http { http, base, token } => {
                let url = format!("{base}{path}");
                let mut req = http
                    .request(method.clone(), &url)
                    .header("x-request-id", request_id)
                    .header("accept", "application/json");
                if whole {
                    req = req.timeout(self.timeout);
                }
                if let Some(t) = token {
                    req = req.bearer_auth(t.expose());
                }
                if let Some(b) = body {
                    req = req.header("content-type", "application/json").body(b);
                }
                let resp = req.send().await.map_err(|e| self.network_error(&url, e))?;
                let header = |k: &str| {
                    resp.headers()
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let (request_id, content_type, retry_after) = (
                    header("x-request-id"),
                    header("content-type").unwrap_or_default(),
                    header("retry-after").and_then(|v| parse_retry_after(&v)),
                );
                let trailer = header(kube_dc_api::audit::TRAILER_HEADER).is_some();
                let status = resp.status().as_u16();
                let stream = resp.bytes_stream().map(|r| r.map_err(|e| e.to_string()));
                Ok(Answer {
                    status,
                    request_id,
                    content_type,
                    trailer,
                    retry_after,
                    body: Box::pin(stream),
                })
            }
        }
    }

    fn network_error(&self, url: &str, e: reqwest::Error) -> CliError {
        let mut msg = if e.is_timeout() {
            format!(
                "no answer from {url} within {}s",
                self.timeout.as_secs_f32()
            )
        } else if e.is_connect() {
            format!("cannot connect to {url}")
        } else {
            format!("request to {url} failed")
        };
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        let mut detail = String::new();
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        if !detail.is_empty() {
            msg.push_str(&format!(": {detail}"));
        }
        let network_timeout = e.is_timeout();
        let mut err = CliError::new(ErrorKind::Network, msg).with_source(e);
        if detail.to_lowercase().contains("certificate") {
            err = err.hint("trust the installation's CA with --ca-cert FILE");
        } else if network_timeout {
            err = err.hint("raise --timeout, or check the server address");
        }
        err
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extension: bool,
    ) -> Result<Raw> {
        let s = self.send(method, path, body, extension, true).await?;
        let body = collect_at_most(s.body, MAX_JSON_BYTES).await?;
        Ok(Raw {
            status: s.status,
            body,
        })
    }

    /// Sends JSON, reads JSON: the typed view and the raw document (which
    /// keeps every field the server sent, for -o json|yaml).
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        extension: bool,
    ) -> Result<(T, Value)> {
        let bytes = body
            .map(|b| {
                serde_json::to_vec(b).map_err(|e| CliError::other(format!("encoding request: {e}")))
            })
            .transpose()?;
        let raw = self.raw(method.clone(), path, bytes, extension).await?;
        let value: Value = serde_json::from_slice(&raw.body).map_err(|e| {
            CliError::new(
                ErrorKind::Server,
                format!("{method} {path}: the server's answer is not JSON: {e}"),
            )
        })?;
        let typed = serde_json::from_value(value.clone()).map_err(|e| {
            CliError::new(
                ErrorKind::Server,
                format!("{method} {path}: the server's answer has an unexpected shape: {e}"),
            )
        })?;
        Ok((typed, value))
    }
}

/// The largest JSON answer read (a list of 10,000 secrets is about 10 MiB).
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One HTTP exchange's answer, body not yet read.
struct Answer {
    status: u16,
    request_id: Option<String>,
    content_type: String,
    trailer: bool,
    retry_after: Option<Duration>,
    body: ByteStream,
}

/// `Retry-After`: delta-seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (at - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    Some(Duration::from_secs(secs as u64))
}

/// Reads a whole answer, refusing one larger than `limit` instead of
/// filling the memory.
async fn collect_at_most(mut s: ByteStream, limit: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!("reading the response failed: {e}"),
            )
        })?;
        if out.len() + chunk.len() > limit {
            return Err(CliError::new(
                ErrorKind::Server,
                format!(
                    "the server's answer is larger than {} MiB; kube-dc stopped reading it",
                    limit / (1024 * 1024)
                ),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Reads at most `limit` bytes (error bodies: the start is enough).
async fn collect(mut s: ByteStream, limit: usize) -> std::result::Result<Bytes, String> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        out.extend_from_slice(&chunk);
        if out.len() > limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(Bytes::from(out))
}

/// Turns a non-2xx answer into an error naming the status and request id.
/// The body is JSON `{"error": …}` from the API, or anything at all from a
/// proxy in between.
fn api_error(
    status: u16,
    request_id: Option<String>,
    ctype: &str,
    body: &[u8],
    extension: bool,
    method: &Method,
    path: &str,
) -> CliError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let api_message = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(crate::output::sanitize);
    let hint = json
        .as_ref()
        .and_then(|v| v.get("hint"))
        .and_then(Value::as_str)
        .map(crate::output::sanitize);
    if extension && (status == 405 || (status == 404 && api_message.is_none())) {
        let route = path.split('?').next().unwrap_or(path);
        let mut e = CliError::new(
            ErrorKind::NotSupported,
            format!(
                "{method} {route} is not supported by this installation (it is an extension of kube-dc's own backend)"
            ),
        );
        e.status = Some(status);
        e.request_id = request_id;
        return e;
    }
    let message = api_message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error");
        if first.is_empty() || ctype.starts_with("text/html") {
            format!("the server answered {status} {reason}")
        } else {
            let mut short: String = crate::output::sanitize(first).chars().take(200).collect();
            if first.chars().count() > 200 {
                short.push('…');
            }
            format!("the server answered {status} {reason}: {short}")
        }
    });
    let mut e = CliError::new(ErrorKind::from_status(status), message);
    e.status = Some(status);
    e.request_id = request_id;
    if let Some(h) = hint {
        e = e.hint(h);
    }
    if status == 401 {
        e = e.hint(
            "log in with `kube-dc login --domain DOMAIN --org ORG`, or set KUBE_DC_TOKEN for CI",
        );
    }
    e
}

/// Query string from (name, value) pairs; pairs with no value are left out.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", serde_urlencoded::to_string(set).unwrap_or_default())
    }
}

/// A request for one route of the endpoint table: the path is rendered from
/// the route's template (each value percent-encoded as one segment), and a
/// 404/405 from an extension route means "this installation lacks it".
pub struct Call {
    pub route: Route,
    /// (namespace, name) when the route is about one secret.
    pub secret: Option<(String, String)>,
    /// The rendered path, without the query.
    pub path: String,
    pub query: String,
    /// The request uses an extension field or parameter on a production route.
    pub uses_extension: bool,
}

impl Call {
    pub fn new(route: Route, params: &[&str]) -> Self {
        let named = route.endpoint().params().collect::<Vec<_>>();
        let secret = (named.starts_with(&["ns", "name"]) && params.len() >= 2)
            .then(|| (params[0].to_string(), params[1].to_string()));
        Call {
            route,
            secret,
            path: route.endpoint().path_for(params),
            query: String::new(),
            uses_extension: false,
        }
    }
    pub fn query(mut self, q: String) -> Self {
        self.query = q;
        self
    }
    pub fn extension(mut self, yes: bool) -> Self {
        self.uses_extension = yes;
        self
    }
    fn method(&self) -> Method {
        Method::from_bytes(self.route.endpoint().method.as_bytes()).expect("table method")
    }
    fn path(&self) -> String {
        format!("{}{}", self.path, self.query)
    }
    fn missing_means_unsupported(&self) -> bool {
        self.uses_extension || self.route.endpoint().origin == Origin::Extension
    }
}

impl Client {
    /// Sends `call` with an optional JSON body; reads JSON.
    ///
    /// A JSON 404 from an extension route about one secret is ambiguous:
    /// the secret is missing, or the route is. The production route that
    /// reads the secret tells which.
    pub async fn call<T: DeserializeOwned>(
        &self,
        call: Call,
        body: Option<&impl Serialize>,
    ) -> Result<(T, Value)> {
        let res = self
            .json(
                call.method(),
                &call.path(),
                body,
                call.missing_means_unsupported(),
            )
            .await;
        match res {
            Err(e)
                if e.status == Some(404)
                    && e.kind == ErrorKind::NotFound
                    && call.route.endpoint().origin == Origin::Extension
                    && call.secret.is_some() =>
            {
                let (ns, name) = call.secret.clone().unwrap_or_default();
                let probe = Route::GetSecret.endpoint().path_for(&[&ns, &name]);
                match self
                    .json::<Value>(Method::GET, &probe, None::<&()>, false)
                    .await
                {
                    Ok(_) => {
                        let mut u = CliError::new(
                            ErrorKind::NotSupported,
                            format!(
                                "{} {} is not supported by this installation (it is an extension of kube-dc's own backend)",
                                call.route.endpoint().method,
                                call.route.endpoint().path
                            ),
                        );
                        u.status = e.status;
                        u.request_id = e.request_id.clone();
                        Err(u)
                    }
                    Err(_) => Err(e),
                }
            }
            other => other,
        }
    }

    /// Sends `call`; the 2xx body is read as it arrives.
    pub async fn call_streamed(&self, call: Call) -> Result<Streamed> {
        self.send(
            call.method(),
            &call.path(),
            None,
            call.missing_means_unsupported(),
            false,
        )
        .await
    }

    /// The server's version from its health endpoint (`kube-dc-backend`
    /// reports one; an installation that does not answers `None`).
    pub async fn server_version(&self) -> Result<Option<String>> {
        let raw = self.raw(Method::GET, "/healthz", None, false).await?;
        let v: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        Ok(v["version"]
            .as_str()
            .map(|s| format!("kube-dc-backend {s}")))
    }

    pub async fn list_secrets(&self, ns: &str) -> Result<(ItemList<Secret>, Value)> {
        self.call(Call::new(Route::ListSecrets, &[ns]), None::<&()>)
            .await
    }

    pub async fn get_secret(
        &self,
        ns: &str,
        name: &str,
        reveal: bool,
        version: Option<u64>,
    ) -> Result<(Secret, Value)> {
        let q = query(&[
            ("includeValue", reveal.then(|| "true".into())),
            ("version", version.map(|v| v.to_string())),
        ]);
        let call = Call::new(Route::GetSecret, &[ns, name])
            .query(q)
            .extension(version.is_some());
        self.call(call, None::<&()>).await
    }

    /// The production one-round-trip create. A 404/405 here means an
    /// installation older than that route: the caller says so.
    pub async fn create_secret(
        &self,
        ns: &str,
        name: &str,
        req: &CreateRequest,
    ) -> Result<(Secret, Value)> {
        let call = Call::new(Route::CreateSecret, &[ns, name]).extension(true);
        self.call(call, Some(req)).await
    }

    pub async fn update_secret(
        &self,
        ns: &str,
        name: &str,
        req: &UpdateRequest,
    ) -> Result<(Secret, Value)> {
        self.call(Call::new(Route::UpdateSecret, &[ns, name]), Some(req))
            .await
    }

    pub async fn put_values(
        &self,
        ns: &str,
        name: &str,
        req: &PutValuesRequest,
    ) -> Result<(PutValuesResponse, Value)> {
        self.call(Call::new(Route::PutValues, &[ns, name]), Some(req))
            .await
    }

    pub async fn sync(&self, ns: &str, name: &str, patch: &SyncPatch) -> Result<(Secret, Value)> {
        self.call(Call::new(Route::SyncSecret, &[ns, name]), Some(patch))
            .await
    }

    pub async fn import(
        &self,
        ns: &str,
        name: &str,
        req: &ImportRequest,
    ) -> Result<(Secret, Value)> {
        self.call(Call::new(Route::ImportSecret, &[ns, name]), Some(req))
            .await
    }

    pub async fn delete(
        &self,
        ns: &str,
        name: &str,
        destroy: bool,
    ) -> Result<(DeleteResponse, Value)> {
        let q = query(&[("destroy", destroy.then(|| "true".into()))]);
        let call = Call::new(Route::DeleteSecret, &[ns, name]).query(q);
        self.call(call, None::<&()>).await
    }

    pub async fn destroy_version(
        &self,
        ns: &str,
        name: &str,
        v: u64,
    ) -> Result<(DestroyVersionResponse, Value)> {
        let v = v.to_string();
        self.call(
            Call::new(Route::DestroyVersion, &[ns, name, &v]),
            None::<&()>,
        )
        .await
    }

    pub async fn consumers(&self, ns: &str, name: &str) -> Result<(ConsumersResponse, Value)> {
        self.call(Call::new(Route::Consumers, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn versions(&self, ns: &str, name: &str) -> Result<(ItemList<VersionInfo>, Value)> {
        self.call(Call::new(Route::ListVersions, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn restore(&self, ns: &str, name: &str) -> Result<(Secret, Value)> {
        self.call(Call::new(Route::RestoreSecret, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn audit(
        &self,
        org: &str,
        project: Option<&str>,
        q: &str,
    ) -> Result<(AuditResponse, Value)> {
        let call = match project {
            Some(p) => Call::new(Route::AuditProject, &[org, p]),
            None => Call::new(Route::AuditOrg, &[org]),
        };
        self.call(call.query(q.to_string()), None::<&()>).await
    }

    pub async fn audit_csv(&self, org: &str, q: &str) -> Result<Streamed> {
        self.call_streamed(Call::new(Route::AuditCsv, &[org]).query(q.to_string()))
            .await
    }

    pub async fn elevate(&self, org: &str, project: &str, reason: &str) -> Result<(Grant, Value)> {
        let body = ElevateRequest {
            reason: reason.into(),
        };
        self.call(Call::new(Route::Elevate, &[org, project]), Some(&body))
            .await
    }

    pub async fn elevation_status(
        &self,
        org: &str,
        project: &str,
    ) -> Result<(ElevationStatus, Value)> {
        self.call(
            Call::new(Route::ElevationStatus, &[org, project]),
            None::<&()>,
        )
        .await
    }

    pub async fn release(&self, org: &str, project: &str) -> Result<(Grant, Value)> {
        self.call(Call::new(Route::Release, &[org, project]), None::<&()>)
            .await
    }

    pub async fn elevations(&self, org: &str) -> Result<(ItemList<Grant>, Value)> {
        self.call(Call::new(Route::ListElevations, &[org]), None::<&()>)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_from_proxies_and_missing_extensions() {
        let e = api_error(
            502,
            None,
            "text/html",
            b"<html>Bad gateway</html>",
            false,
            &Method::GET,
            "/api/x",
        );
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.message, "the server answered 502 Bad Gateway");
        let e = api_error(
            404,
            Some("r1".into()),
            "text/plain",
            b"404 page not found\n",
            true,
            &Method::GET,
            "/api/secrets/ns/x/versions",
        );
        assert_eq!(e.kind, ErrorKind::NotSupported);
        let e = api_error(
            404,
            None,
            "application/json",
            br#"{"error":"secret \"x\" not found"}"#,
            true,
            &Method::GET,
            "/p",
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "secret \"x\" not found");
        let e = api_error(
            403,
            None,
            "application/json",
            b"{\"error\":\"no\\u001b[31m\",\"hint\":\"kube-dc orgs elevate p\"}",
            false,
            &Method::GET,
            "/p",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(!e.message.contains('\u{1b}'));
        assert_eq!(e.hints, ["kube-dc orgs elevate p"]);
    }
}
