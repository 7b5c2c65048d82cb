//! Typed client of the Secrets Manager API (`docs/contract.md`).
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

pub use crate::net::{check_credential_url, http_client};
pub use kube_dc_api::endpoints::{Origin, Route};
pub use kube_dc_api::wire::{
    Consumer, CreateRequest, ElevationStatus, ImportRequest, ListedEvent, PutValuesRequest,
    Rotation, Secret, Sensitive, SyncPatch, SyncSpec, UpdateRequest, VersionInfo,
};

use crate::auth::Credential;
use crate::config::{Endpoint, Target};
use crate::error::{CliError, ErrorKind, Result};

mod answers;
mod calls;
mod doc;
mod errors;
mod plan;

pub use doc::Doc;
pub use plan::{Plan, PlannedChange};

use answers::{Answer, collect, collect_at_most, request_headers};
pub use answers::{MAX_ATTEMPTS, MAX_JSON_BYTES, MAX_RETRY_WAIT};
pub use calls::{Call, query};
use errors::api_error;

pub type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, String>> + Send>>;

enum Transport {
    /// The embedded backend, called in-process (feature `local`).
    #[cfg(feature = "local")]
    Local(axum::Router),
    Http {
        http: reqwest::Client,
        base: String,
        token: Option<Credential>,
    },
}

pub struct Client {
    transport: Transport,
    verbose: bool,
    timeout: Duration,
    /// `--dry-run`: changes are added to this plan, not sent.
    plan: Option<Plan>,
}

/// Why a retryable answer was not retried again.
fn gave_up(attempt: u32, wait: Duration) -> String {
    let why = if attempt >= MAX_ATTEMPTS {
        format!("gave up after {attempt} attempts")
    } else {
        format!(
            "it asked to wait {}s, longer than kube-dc waits ({}s)",
            wait.as_secs(),
            MAX_RETRY_WAIT.as_secs()
        )
    };
    format!("{why}; try again later")
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
    /// The `after` cursor the server honoured
    /// ([`kube_dc_api::audit::AFTER_HEADER`]), if it said so.
    pub after: Option<String>,
    pub body: ByteStream,
}

impl Client {
    /// `token`: what a remote target's requests authenticate with.
    pub fn new(
        target: &Target,
        timeout: Duration,
        verbose: bool,
        token: Option<Credential>,
    ) -> Result<Self> {
        let transport = match &target.backend {
            #[cfg(feature = "local")]
            Endpoint::Local {
                data_dir,
                user,
                act_as,
            } => {
                use crate::config::ActAs;
                use kube_dc_api::roles::Role;
                use kube_dc_backend::Acting;
                let acting = act_as.map(|r| match r {
                    ActAs::User => Acting::Project(Role::User),
                    ActAs::Developer => Acting::Project(Role::Developer),
                    ActAs::ProjectManager => Acting::Project(Role::ProjectManager),
                    ActAs::Admin => Acting::Project(Role::Admin),
                    ActAs::OrgAdmin => Acting::OrgAdmin,
                });
                let backend = kube_dc_backend::Backend::embedded_as(
                    data_dir,
                    crate::config::LOCAL_ORG,
                    user,
                    acting,
                )
                .map_err(|e| local_open_error(data_dir, e))?;
                Transport::Local(kube_dc_backend::router(backend))
            }
            #[cfg(not(feature = "local"))]
            Endpoint::Local { .. } => {
                return Err(CliError::usage(
                    "this kube-dc was built without the local context (cargo feature `local`)",
                )
                .hint("use a remote context: kube-dc login --domain DOMAIN --org ORG, or --server URL"));
            }
            Endpoint::Remote { base_url } => {
                check_credential_url("server URL", base_url)?;
                let http = if base_url.starts_with("http://") {
                    crate::net::plain_http_client(timeout)?
                } else {
                    http_client(target.ca_cert.as_deref(), target.insecure, timeout)?
                };
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
            plan: None,
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
    /// server refused it unprocessed), a 503 to a GET, and a 503 to a write
    /// whose `Idempotency-Key` the server sent back (kube-dc's backend, on
    /// create and put: the retry, with the same key, is answered as the
    /// first attempt was if that one was applied after all).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extension: bool,
        whole: bool,
    ) -> Result<Streamed> {
        // Every change goes through the plan under --dry-run
        // (`Client::change`); one that did not is refused, never sent.
        if self.plan.is_some() && plan::is_change(method.as_str(), path) {
            return Err(CliError::other(format!(
                "--dry-run: {method} {path} was not planned, so it was not sent (a bug in kube-dc: please report it)"
            )));
        }
        // One key for a write that honours it, however often it is sent
        // (reads are never matched against the table for it).
        let key = (method != Method::GET)
            .then(|| Route::recognize(method.as_str(), path.split('?').next().unwrap_or(path)))
            .flatten()
            .filter(|(r, _)| r.honours_idempotency_key())
            .map(|_| uuid::Uuid::new_v4().to_string());
        let mut attempt = 1;
        loop {
            let request_id = uuid::Uuid::new_v4().to_string();
            self.trace_request(&method, path, &request_id, body.as_ref().map(Vec::len));
            let started = Instant::now();
            let a = self
                .once(
                    &method,
                    path,
                    body.clone(),
                    (&request_id, key.as_deref()),
                    whole,
                )
                .await?;
            self.trace_response(a.status, a.request_id.as_deref(), started);
            if (200..300).contains(&a.status) {
                return Ok(Streamed {
                    status: a.status,
                    content_type: a.content_type,
                    trailer: a.trailer,
                    after: a.after,
                    body: a.body,
                });
            }
            let keyed = key.is_some() && a.key_echo.as_deref() == key.as_deref();
            let retryable =
                a.status == 429 || (a.status == 503 && (method == Method::GET || keyed));
            let wait = a.retry_after.filter(|_| retryable);
            if let Some(wait) = wait.filter(|w| attempt < MAX_ATTEMPTS && *w <= MAX_RETRY_WAIT) {
                let reason = StatusCode::from_u16(a.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
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
            return Err(match wait {
                Some(wait) => e.hint(gave_up(attempt, wait)),
                None => e,
            });
        }
    }

    /// One exchange over the transport.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<Vec<u8>>,
        (request_id, key): (&str, Option<&str>),
        whole: bool,
    ) -> Result<Answer> {
        let headers = request_headers(request_id, key, body.is_some())?;
        match &self.transport {
            #[cfg(feature = "local")]
            Transport::Local(router) => {
                use tower::ServiceExt;
                let mut req = http::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .body(axum::body::Body::from(body.unwrap_or_default()))
                    .map_err(|e| CliError::other(format!("bad request: {e}")))?;
                *req.headers_mut() = headers;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| CliError::other(format!("local backend: {e}")))?;
                let (parts, body) = resp.into_parts();
                let stream = body
                    .into_data_stream()
                    .map(|r| r.map_err(|e| e.to_string()));
                Ok(Answer::new(
                    parts.status.as_u16(),
                    &parts.headers,
                    Box::pin(stream),
                ))
            }
            Transport::Http { http, base, token } => {
                let url = format!("{base}{path}");
                let mut req = http.request(method.clone(), &url).headers(headers);
                if whole {
                    req = req.timeout(self.timeout);
                }
                if let Some(t) = token {
                    req = req.bearer_auth(t.bearer().await?.expose());
                }
                if let Some(b) = body {
                    req = req.body(b);
                }
                let resp = req.send().await.map_err(|e| self.network_error(&url, e))?;
                let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
                let stream = resp.bytes_stream().map(|r| r.map_err(|e| e.to_string()));
                Ok(Answer::new(status, &headers, Box::pin(stream)))
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
    ) -> Result<(T, Doc)> {
        let doc = self.json_doc(method, path, body, extension).await?;
        Ok((doc.typed()?, doc))
    }

    /// Sends JSON, reads the answer as a document to decode later (perhaps
    /// as a view that borrows from it: [`Doc::typed`]).
    pub async fn json_doc(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        extension: bool,
    ) -> Result<Doc> {
        let bytes = body
            .map(|b| {
                serde_json::to_vec(b).map_err(|e| CliError::other(format!("encoding request: {e}")))
            })
            .transpose()?;
        let raw = self.raw(method.clone(), path, bytes, extension).await?;
        Ok(Doc {
            body: raw.body,
            request: format!("{method} {path}"),
        })
    }
}

/// Why the embedded local context could not open, as the CLI's kind of
/// error with what to do about it.
#[cfg(feature = "local")]
fn local_open_error(data_dir: &std::path::Path, e: kube_dc_backend::OpenError) -> CliError {
    use kube_dc_backend::OpenError as E;
    let move_it = "KUBE_DC_LOCAL_DATA_DIR moves the local context's data elsewhere";
    let dir = data_dir.display();
    let denied = |f: &kube_dc_backend::file_error::FileError| {
        f.source.kind() == std::io::ErrorKind::PermissionDenied
    };
    let err = match (&e, e.file()) {
        (_, Some(f)) if denied(f) => CliError::usage(format!("local context: {e}"))
            .hint(format!("check the owner and permissions of {dir}; {move_it}")),
        (_, Some(_)) | (E::Io(_), _) => {
            CliError::other(format!("local context: {e}")).hint(move_it)
        }
        (E::MasterKey(_), _) => CliError::usage(format!("local context: {e}")).hint(
            "the master key seals every value in the local store: restore the file, or start afresh elsewhere with KUBE_DC_LOCAL_DATA_DIR",
        ),
        (E::Store { .. }, _) => CliError::other(format!("local context: {e}")).hint(format!(
            "`kube-dc-backend verify-audit --data-dir {dir}` checks its audit log; {move_it}"
        )),
        (E::Engine(_), _) => CliError::new(ErrorKind::Network, format!("local context: {e}")),
    };
    err.with_source(e)
}
