//! Reading answers: size limits, `Retry-After`, and the body collectors.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::ByteStream;
use crate::error::{CliError, ErrorKind, Result};

/// The largest JSON answer read (a list of 10,000 secrets is about 10 MiB).
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One HTTP exchange's answer, body not yet read.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) request_id: Option<String>,
    pub(super) content_type: String,
    pub(super) trailer: bool,
    pub(super) after: Option<String>,
    pub(super) retry_after: Option<Duration>,
    /// The `Idempotency-Key` the server sent back: it honoured the key.
    pub(super) key_echo: Option<String>,
    pub(super) body: ByteStream,
}

impl Answer {
    /// An answer from its status and headers, whichever transport it came
    /// over.
    pub(super) fn new(status: u16, headers: &http::HeaderMap, body: ByteStream) -> Self {
        let header = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Answer {
            status,
            request_id: header("x-request-id"),
            content_type: header("content-type").unwrap_or_default(),
            trailer: header(kube_dc_api::audit::TRAILER_HEADER).is_some(),
            after: header(kube_dc_api::audit::AFTER_HEADER),
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v)),
            key_echo: header(kube_dc_api::endpoints::IDEMPOTENCY_KEY),
            body,
        }
    }
}

/// The headers every request carries: its id, what it accepts, with a
/// body that the body is JSON, and a write's `Idempotency-Key` (`key`).
pub(super) fn request_headers(
    request_id: &str,
    key: Option<&str>,
    with_body: bool,
) -> Result<http::HeaderMap> {
    use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
    let mut h = http::HeaderMap::new();
    let id = HeaderValue::from_str(request_id)
        .map_err(|_| CliError::other(format!("request id {request_id:?} is not a header value")))?;
    h.insert("x-request-id", id);
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if with_body {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(k) = key.and_then(|k| HeaderValue::from_str(k).ok()) {
        h.insert(kube_dc_api::endpoints::IDEMPOTENCY_KEY, k);
    }
    Ok(h)
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub(super) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (at - crate::clock::utc()).whole_seconds().max(0);
    Some(Duration::from_secs(secs as u64))
}

/// Reads a whole answer, refusing one larger than `limit` instead of
/// filling the memory.
pub(super) async fn collect_at_most(mut s: ByteStream, limit: usize) -> Result<Bytes> {
    // An answer in one chunk (the local context's always is) is kept as
    // it came, not copied.
    let mut first: Option<Bytes> = None;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!("reading the response failed: {e}"),
            )
        })?;
        let held = first.as_ref().map_or(0, Bytes::len) + out.len();
        if held + chunk.len() > limit {
            return Err(CliError::new(
                ErrorKind::Server,
                format!(
                    "the server's answer is larger than {} MiB; kube-dc stopped reading it",
                    limit / (1024 * 1024)
                ),
            ));
        }
        if let Some(f) = first.take() {
            out.extend_from_slice(&f);
        }
        if out.is_empty() {
            first = Some(chunk);
        } else {
            out.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(out)))
}

/// Reads at most `limit` bytes (error bodies: the start is enough).
pub(super) async fn collect(mut s: ByteStream, limit: usize) -> std::result::Result<Bytes, String> {
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
