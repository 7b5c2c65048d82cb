//! `GET /api/watch/secrets/{ns}` (**extension**): a project's changes as
//! JSON lines over one long-lived response (`kube_dc_api::wire::changes`).
//! Opening it is one audit event; its notices are not events of their own.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::support::{ApiResult, Authorized, Shared, blocking, owner, with_note};
use crate::changes::{Batch, Change, PAGE, decode, encode};
use crate::error::{ApiError, parse_query};
use kube_dc_api::wire::ChangeLine;
use kube_dc_api::wire::changes::CONTENT_TYPE;

/// How often an idle stream says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The least time between two writes of one stream, after a quiet spell.
const GAP: Duration = Duration::from_millis(10);

/// The most it grows to while every write is followed by another at once
/// (a storm of changes): the lines wait up to this long, and a thousand
/// streams make ten writes a second each instead of a hundred.
const MAX_GAP: Duration = Duration::from_millis(100);

/// The most one write of a stream holds (lines are never split).
const CHUNK: usize = 256 * 1024;

/// How far back among its unsent lines a stream looks for a new version
/// that a newer one supersedes.
const LOOK_BACK: usize = 64;

pub(crate) async fn watch_secrets(
    State(b): State<Shared>,
    a: Authorized,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    /// `after`: the cursor of the last line seen; `every`: each new
    /// version, not only the newest of a run.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        after: Option<String>,
        #[serde(default)]
        every: bool,
    }
    let q = parse_query::<Q>(q.as_deref())?;
    let o = owner(&b, &ns)?;
    let (org, project) = (o.org.clone(), o.project.clone().unwrap_or_default());
    // Subscribed before the head is read: nothing committed after it is
    // missed.
    let rx = b.changes.subscribe(&b.store, b.config.watch_backlog);
    let store = b.store.clone();
    let head = blocking(move || Ok(store.audit_head()?)).await?;
    let after = match q.after.as_deref() {
        None => head,
        Some(c) => {
            let n: i64 = c.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "after={c:?} is not a cursor of this stream (a cursor is a line's \"cursor\")"
                ))
            })?;
            if n > head {
                return Err(ApiError::new(
                    StatusCode::GONE,
                    format!(
                        "cursor {n} was not given by this backend (its log ends at {head}): list again and watch from now"
                    ),
                ));
            }
            n
        }
    };
    let watch = Watch {
        b,
        org,
        project,
        cursor: after,
        every: q.every,
        pending: VecDeque::from([Pending::other(encode(&ChangeLine::heartbeat(
            after.to_string(),
        )))]),
        catch_up: after < head,
        rx,
        tick: tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
        sent: None,
        gap: GAP,
    };
    let body = Body::from_stream(futures_util::stream::unfold(watch, Watch::next));
    let headers = [
        (header::CONTENT_TYPE, CONTENT_TYPE),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    Ok(with_note((headers, body), a.note()))
}

/// A line a stream has yet to send.
struct Pending {
    line: Bytes,
    /// The secret it is a change of.
    secret: Option<std::sync::Arc<str>>,
    /// Whether it is a new version of that secret.
    new_version: bool,
}

impl Pending {
    /// A line that is not a change (a heartbeat).
    fn other(line: Bytes) -> Self {
        Pending {
            line,
            secret: None,
            new_version: false,
        }
    }
}

/// One open stream.
struct Watch {
    b: Shared,
    org: String,
    project: String,
    /// The last change sent (or where the stream started).
    cursor: i64,
    /// Each new version is sent (else a newer one supersedes an unsent
    /// one).
    every: bool,
    /// Lines to send, encoded.
    pending: VecDeque<Pending>,
    /// Read the log from `cursor` before taking batches again.
    catch_up: bool,
    rx: tokio::sync::broadcast::Receiver<Batch>,
    tick: tokio::time::Interval,
    /// When the last write went out.
    sent: Option<tokio::time::Instant>,
    /// The least time until the next write: [`GAP`], doubled up to
    /// [`MAX_GAP`] while writes follow each other without a pause.
    gap: Duration,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if !self.pending.is_empty() {
                let chunk = self.chunk();
                let now = tokio::time::Instant::now();
                self.gap = match self.sent {
                    Some(t) if now < t + 2 * self.gap => (2 * self.gap).min(MAX_GAP),
                    _ => GAP,
                };
                self.sent = Some(now);
                return Some((Ok(chunk), self));
            }
            if self.catch_up {
                self.read_log().await?;
                continue;
            }
            // At most one write per gap: under a storm of changes a stream
            // sends them in a few large writes, and its task is not woken
            // for each commit (writers keep the CPU).
            if let Some(t) = self.sent {
                tokio::time::sleep_until(t + self.gap).await;
            }
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(batch) => {
                        self.take(&batch);
                        // And whatever else is already there.
                        loop {
                            match self.rx.try_recv() {
                                Ok(batch) => self.take(&batch),
                                Err(TryRecvError::Lagged(_)) => {
                                    self.catch_up = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    // Fallen behind: what it missed is in the log.
                    Err(RecvError::Lagged(_)) => self.catch_up = true,
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    let beat = encode(&ChangeLine::heartbeat(self.cursor.to_string()));
                    self.pending.push_back(Pending::other(beat));
                }
            }
        }
    }

    /// The pending lines as one write, up to [`CHUNK`] bytes.
    fn chunk(&mut self) -> Bytes {
        if self.pending.len() == 1 {
            return self.pending.pop_front().map(|p| p.line).unwrap_or_default();
        }
        let held = self.pending.iter().map(|p| p.line.len()).sum();
        let mut out = Vec::with_capacity(CHUNK.min(held));
        while let Some(p) = self.pending.front() {
            if !out.is_empty() && out.len() + p.line.len() > CHUNK {
                break;
            }
            out.extend_from_slice(&p.line);
            self.pending.pop_front();
        }
        out.into()
    }

    fn take(&mut self, batch: &Batch) {
        for c in batch.changes(self.every) {
            if c.seq > self.cursor && c.org == self.org && c.project == self.project {
                self.cursor = c.seq;
                self.push(c);
            }
        }
    }

    /// Queues a change of this stream's project; a new version drops the
    /// unsent line of the same secret's previous new version, if nothing
    /// else of that secret came between (`changes::coalesce`).
    fn push(&mut self, c: &Change) {
        if c.new_version && !self.every {
            let last_of_secret = self
                .pending
                .iter()
                .rev()
                .take(LOOK_BACK)
                .position(|p| p.secret.is_some() && p.secret == c.secret);
            if let Some(back) = last_of_secret {
                let i = self.pending.len() - 1 - back;
                if self.pending[i].new_version {
                    self.pending.remove(i);
                }
            }
        }
        self.pending.push_back(Pending {
            line: c.line.clone(),
            secret: c.secret.clone(),
            new_version: c.new_version,
        });
    }

    /// One page of the project's changes after the cursor; the last page
    /// ends the catching up. None: the log cannot be read (the stream ends;
    /// the client resumes from its cursor).
    async fn read_log(&mut self) -> Option<()> {
        let store = self.b.store.clone();
        let (org, project, after) = (self.org.clone(), self.project.clone(), self.cursor);
        let rows = tokio::task::spawn_blocking(move || {
            let head = store.audit_head()?;
            store.secret_changes(Some((&org, &project)), after, head, PAGE)
        })
        .await
        .ok()?
        .ok()?;
        if rows.len() < PAGE {
            self.catch_up = false;
        }
        for row in &rows {
            if let Some(c) = decode(row) {
                self.push(&c);
            }
            self.cursor = self.cursor.max(row.seq);
        }
        Some(())
    }
}
