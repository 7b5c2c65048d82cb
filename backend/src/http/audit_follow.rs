//! `GET /api/watch/audit/orgs/{org}[/projects/{project}]` (**extension**):
//! the audit events as they are appended, as JSON lines
//! (`kube_dc_api::wire::feed`). Opening it is one audit event.
//!
//! Each feed reads the log itself, page by page after its cursor, when
//! this process commits and every [`POLL`] otherwise (another process's
//! commits): a feed's memory is one page, and a feed that is not read
//! holds no writer back — it simply reads further behind.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use serde::Deserialize;

use super::audit::{parse_time_param, resolve_after};
use super::support::{ApiResult, Authorized, Shared, blocking, with_note};
use super::watch::HEARTBEAT;
use crate::changes::POLL;
use crate::clock::rfc3339;
use crate::error::{ApiError, parse_query};
use crate::store::{AuditFilter, AuditRow};
use kube_dc_api::wire::changes::CONTENT_TYPE;

/// Events read from the log at once.
const PAGE: usize = 512;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Q {
    /// The hash of the last event seen.
    after: Option<String>,
    /// Start at this time instead (epoch seconds or RFC 3339).
    since: Option<String>,
}

pub(crate) async fn follow_org(
    State(b): State<Shared>,
    a: Authorized,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    follow(b, a, org, None, q).await
}

pub(crate) async fn follow_project(
    State(b): State<Shared>,
    a: Authorized,
    Path((org, project)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    follow(b, a, org, Some(project), q).await
}

async fn follow(
    b: Shared,
    a: Authorized,
    org: String,
    project: Option<String>,
    q: Option<String>,
) -> ApiResult {
    let q: Q = parse_query(q.as_deref())?;
    if q.after.is_some() && q.since.is_some() {
        return Err(ApiError::bad_request(
            "give after (a cursor) or since (a time), not both",
        ));
    }
    let since_ms = q
        .since
        .as_deref()
        .map(|v| parse_time_param("since", v))
        .transpose()?;
    // Subscribed before the start is read: nothing committed after it is
    // missed.
    let commits = b.store.commit_signal();
    let (seq, hash) = match q.after {
        Some(h) => {
            if !(h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())) {
                return Err(ApiError::bad_request(format!(
                    "after: {h:?} is not an event's hash (64 hex digits, a feed line's cursor)"
                )));
            }
            (resolve_after(&b, &org, h.clone()).await?, h)
        }
        None if since_ms.is_some() => (0, String::new()),
        None => {
            let (store, o) = (b.store.clone(), org.clone());
            blocking(move || Ok(store.audit_head_of(&o)?))
                .await?
                .unwrap_or((0, String::new()))
        }
    };
    let feed = Feed {
        b,
        filter: AuditFilter {
            org,
            project,
            since_ms,
            limit: Some(PAGE),
            ..Default::default()
        },
        seq,
        hash: hash.clone(),
        pending: VecDeque::from([heartbeat(&hash)]),
        more: true,
        commits,
        tick: tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
    };
    let body = Body::from_stream(futures_util::stream::unfold(feed, Feed::next));
    let headers = [
        (header::CONTENT_TYPE, CONTENT_TYPE),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    Ok(with_note((headers, body), a.note()))
}

fn heartbeat(cursor: &str) -> Bytes {
    // `type` first, as every line of the feed (and the change stream).
    let cursor = serde_json::to_string(cursor).expect("JSON to memory");
    format!("{{\"type\":\"heartbeat\",\"cursor\":{cursor}}}\n").into()
}

/// One open feed.
struct Feed {
    b: Shared,
    filter: AuditFilter,
    /// The last event sent (or where the feed starts).
    seq: i64,
    hash: String,
    /// Lines to send.
    pending: VecDeque<Bytes>,
    /// The last page was full: read again before waiting.
    more: bool,
    commits: tokio::sync::watch::Receiver<u64>,
    tick: tokio::time::Interval,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if !self.pending.is_empty() {
                let mut out = Vec::new();
                while let Some(line) = self.pending.pop_front() {
                    out.extend_from_slice(&line);
                }
                return Some((Ok(out.into()), self));
            }
            if !self.more {
                tokio::select! {
                    changed = self.commits.changed() => if changed.is_err() { return None },
                    () = tokio::time::sleep(POLL) => {}
                    _ = self.tick.tick() => {
                        self.pending.push_back(heartbeat(&self.hash));
                        continue;
                    }
                }
            }
            // The log cannot be read: the feed ends; the client resumes
            // from its cursor.
            self.read_page().await?;
        }
    }

    async fn read_page(&mut self) -> Option<()> {
        let store = self.b.store.clone();
        let mut f = self.filter.clone();
        f.after_seq = Some(self.seq);
        let rows = tokio::task::spawn_blocking(move || {
            let mut rows: Vec<AuditRow> = Vec::new();
            store
                .scan_audit(&f, false, |r| {
                    rows.push(r);
                    true
                })
                .map(|()| rows)
        })
        .await
        .ok()?
        .ok()?;
        self.more = rows.len() >= PAGE;
        if rows.is_empty() {
            return Some(());
        }
        let mut out = Vec::with_capacity(rows.iter().map(|r| r.text.len() + 256).sum());
        for r in &rows {
            out.extend_from_slice(b"{\"type\":\"event\",\"cursor\":");
            serde_json::to_writer(&mut out, &r.hash).ok()?;
            out.extend_from_slice(b",\"ts\":");
            serde_json::to_writer(&mut out, &rfc3339(r.ts)).ok()?;
            out.extend_from_slice(b",\"body\":");
            r.write_body_json(&mut out).ok()?;
            out.extend_from_slice(b"}\n");
        }
        if let Some(last) = rows.last() {
            self.seq = last.seq;
            self.hash = last.hash.clone();
        }
        self.pending.push_back(out.into());
        Some(())
    }
}
