//! `kube-dc audit list --follow`: the audit events as they are appended,
//! for a shipper (Vector, Fluent Bit, Promtail, a SIEM's agent).
//!
//! - On kube-dc's backend: its live feed (`kube_dc_api::wire::feed`), one
//!   long-lived response resumed after the last event's hash whenever it
//!   drops (a restart of the backend, a proxy's timeout): no event missed,
//!   none twice.
//! - Elsewhere (production has no feed): the audit query polled every
//!   `--poll`, from the last event's time, dropping the events at that
//!   time whose request id was already shown — as the cursor export does
//!   there — and said once on stderr.
//! - With `--cursor FILE` (the same file the CSV export uses), where it got
//!   to is recorded at most once a second and when it stops (Ctrl-C,
//!   SIGTERM): a restarted shipper continues after the last line it wrote.
//!   Killed with SIGKILL, it repeats at most the last second's lines; each
//!   carries its hash (and request id) to drop them by.

use std::collections::HashSet;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Map, Value};

use super::cursor::{Cursor, KIND, read_cursor};
use super::filter::Filters;
use crate::api::{Call, Client, query};
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use crate::output::{OutputFormat, sanitize};
use kube_dc_api::endpoints::Route;
use kube_dc_api::event::Shown;
use kube_dc_api::wire::feed::{EVENT, FeedLine};

/// How often the cursor file is rewritten while events flow.
const CURSOR_EVERY: Duration = Duration::from_secs(1);
/// How long to wait before reconnecting a dropped feed.
const RECONNECT: Duration = Duration::from_secs(1);

/// Where the feed is and what it writes to.
pub struct Follow<'a> {
    pub ctx: &'a Session,
    pub client: &'a Client,
    pub org: &'a str,
    /// Which installation it is (the cursor file records it).
    pub server: String,
    pub project: Option<&'a str>,
    pub filters: Filters<'a>,
    /// `--cursor`: where the position is kept.
    pub cursor: Option<&'a Path>,
    /// `--cursor-rebind`.
    pub rebind: bool,
    /// `--output-file`: appended to.
    pub output_file: Option<&'a Path>,
    /// `--since`, as the server reads it.
    pub since: Option<String>,
    pub poll: Duration,
}

/// The last event written, and what the cursor file said.
#[derive(Default)]
struct Position {
    hash: Option<String>,
    ts: String,
    request_id: String,
    /// Time-window polling: the request ids at `ts` already written.
    boundary: HashSet<String>,
    written: u64,
    /// Changed since the cursor file was written.
    dirty: bool,
}

/// Where the lines go: stdout, or a file appended to (0600).
enum Out {
    Stdout,
    File(std::fs::File),
}

impl Out {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Out::Stdout => crate::output::raw_stdout(bytes),
            Out::File(f) => Ok(f.write_all(bytes)?),
        }
    }
    fn sync(&mut self) -> Result<()> {
        match self {
            Out::Stdout => Ok(()),
            Out::File(f) => Ok(f.sync_data()?),
        }
    }
}

pub async fn follow(job: Follow<'_>) -> Result<()> {
    let server = job.server.as_str();
    let mut pos = Position::default();
    if let Some(path) = job.cursor
        && let Some(c) = read_cursor(path, job.org, server, job.rebind)?
    {
        if job.since.is_some() {
            return Err(CliError::usage(format!(
                "--since applies to the first run only: the cursor {} already starts after {}",
                path.display(),
                c.last_ts
            )));
        }
        pos.hash = c.exact.then(|| c.last_hash.clone());
        pos.ts = c.last_ts.clone();
        pos.request_id = c.last_request_id.clone();
        pos.boundary = c.boundary_request_ids.iter().cloned().collect();
        if !c.exact {
            pos.boundary.insert(c.last_request_id.clone());
        }
    }
    let mut out = match job.output_file {
        None => Out::Stdout,
        Some(p) => Out::File(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| CliError::usage(format!("cannot open {}: {e}", p.display())))?,
        ),
    };
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let res = tokio::select! {
        r = run(&job, &mut pos, &mut out) => r,
        () = &mut stop => Ok(()),
    };
    out.sync()?;
    save(&job, &mut pos)?;
    res
}

/// The feed where the installation has one; polling where it has not.
async fn run(job: &Follow<'_>, pos: &mut Position, out: &mut Out) -> Result<()> {
    let mut said = false;
    let mut first = true;
    // Where a reconnection starts when no event was seen yet: the feed's
    // first cursor, else (an organization without events then) its start.
    let mut start = job.since.clone();
    loop {
        let route = match job.project {
            Some(_) => Route::FollowAuditProject,
            None => Route::FollowAuditOrg,
        };
        let params: Vec<&str> = std::iter::once(job.org).chain(job.project).collect();
        let q = match &pos.hash {
            Some(h) => query(&[("after", Some(h.clone()))]),
            None => query(&[("since", start.clone())]),
        };
        let call = Call::new(route, &params).query(q).extension(true);
        let streamed = match job.client.call_streamed(call).await {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotSupported && first => {
                crate::output::note(&format!(
                    "this installation has no live audit feed (kube-dc's extension): polling every {}s \
                     from the last event's time, dropping events already shown by request id",
                    job.poll.as_secs()
                ));
                return poll(job, pos, out).await;
            }
            Err(e) if !first && retriable(&e) => {
                if !said {
                    crate::output::note(&format!(
                        "cannot reach the audit feed yet ({}); retrying every {}s",
                        e.message,
                        RECONNECT.as_secs()
                    ));
                    said = true;
                }
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
            Err(e) => return Err(e.context("following the audit log")),
        };
        if said {
            crate::output::note("the audit feed is back; continuing after the last event");
            said = false;
        }
        first = false;
        let mut body = streamed.body;
        let mut buf: Vec<u8> = Vec::new();
        let mut last_save = crate::clock::instant();
        loop {
            let chunk = match body.next().await {
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    crate::output::note(&format!("the audit feed was lost ({e}); reconnecting"));
                    break;
                }
                None => {
                    crate::output::note("the audit feed closed; reconnecting");
                    break;
                }
            };
            buf.extend_from_slice(&chunk);
            let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let rest = buf.split_off(end + 1);
            let lines = std::mem::replace(&mut buf, rest);
            let mut text = Vec::new();
            for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let line: FeedLine = serde_json::from_slice(line).map_err(|e| {
                    CliError::other(format!("the audit feed sent a line that is not one: {e}"))
                })?;
                if line.kind != EVENT {
                    // The first heartbeat says where the feed starts.
                    if pos.hash.is_none() && start.is_none() {
                        if line.cursor.is_empty() {
                            start = Some("0".into());
                        } else {
                            pos.hash = Some(line.cursor);
                        }
                    }
                    continue;
                }
                let (Some(ts), Some(body)) = (line.ts, line.body) else {
                    continue;
                };
                emit(job, pos, &ts, &body, &mut text)?;
                pos.hash = Some(line.cursor);
                pos.dirty = true;
            }
            if !text.is_empty() {
                out.write(&text)?;
            }
            if pos.dirty && last_save.elapsed() >= CURSOR_EVERY {
                out.sync()?;
                save(job, pos)?;
                last_save = crate::clock::instant();
            }
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Errors worth waiting out: the backend restarting, a proxy.
fn retriable(e: &CliError) -> bool {
    !matches!(
        e.kind,
        ErrorKind::Usage
            | ErrorKind::PermissionDenied
            | ErrorKind::NotFound
            | ErrorKind::AuthRequired
    ) && e.status.is_none_or(|s| s >= 500)
}

/// Polling the query (installations without the feed).
async fn poll(job: &Follow<'_>, pos: &mut Position, out: &mut Out) -> Result<()> {
    let f = job.filters;
    let base = |since: Option<String>| {
        query(&[
            ("service", f.service.map(str::to_string)),
            ("actor", f.actor.map(str::to_string)),
            ("result", f.result.map(str::to_string)),
            ("since", since),
            ("limit", Some(kube_dc_api::AUDIT_MAX_LIMIT.to_string())),
        ])
    };
    if pos.ts.is_empty() && job.since.is_none() {
        // From now: the newest time's events count as shown.
        let (resp, _) = job.client.audit(job.org, job.project, &base(None)).await?;
        if let Some(newest) = resp.events.first() {
            pos.ts = super::time::ts_text(newest);
            pos.boundary = resp
                .events
                .iter()
                .filter(|e| super::time::ts_text(e) == pos.ts)
                .map(|e| Shown::of(&e.body).request_id)
                .collect();
        }
    }
    let mut since = if pos.ts.is_empty() {
        job.since.clone()
    } else {
        Some(pos.ts.clone())
    };
    loop {
        let (resp, _) = job
            .client
            .audit(job.org, job.project, &base(since.clone()))
            .await?;
        let mut text = Vec::new();
        for e in resp.events.iter().rev() {
            let ts = super::time::ts_text(e);
            let rid = Shown::of(&e.body).request_id;
            // Older than the last time shown (a server that ignores
            // `since`), or at that time and shown already: a repeat. The
            // times are ts_text's canonical UTC form, ordered as text.
            if ts.as_str() < pos.ts.as_str() || (ts == pos.ts && pos.boundary.contains(&rid)) {
                continue;
            }
            if ts != pos.ts {
                pos.boundary.clear();
            }
            pos.boundary.insert(rid);
            emit(job, pos, &ts, &e.body, &mut text)?;
            pos.dirty = true;
        }
        if !text.is_empty() {
            out.write(&text)?;
            out.sync()?;
            save(job, pos)?;
        }
        if !pos.ts.is_empty() {
            since = Some(pos.ts.clone());
        }
        tokio::time::sleep(job.poll).await;
    }
}

/// One event: kept by the filters, its line added to `text`; the position
/// moves past it either way.
fn emit(
    job: &Follow<'_>,
    pos: &mut Position,
    ts: &str,
    body: &Map<String, Value>,
    text: &mut Vec<u8>,
) -> Result<()> {
    let shown = Shown::of(body);
    pos.ts = ts.to_string();
    pos.request_id = shown.request_id.clone();
    if !(job.filters.local(body) && job.filters.server(body)) {
        return Ok(());
    }
    pos.written += 1;
    let p = &job.ctx.printer;
    let json = |v: &Value, text: &mut Vec<u8>| -> Result<()> {
        serde_json::to_writer(&mut *text, v).map_err(|e| CliError::other(e.to_string()))?;
        text.push(b'\n');
        Ok(())
    };
    match p.format() {
        OutputFormat::Ocsf => json(&super::ocsf::event(ts, body), text)?,
        OutputFormat::Json | OutputFormat::Jsonl => {
            json(&serde_json::json!({"ts": ts, "body": body}), text)?;
        }
        f => {
            let mut cols = vec![
                ts.to_string(),
                shown.service,
                shown.action,
                shown.result,
                shown.actor,
                shown.resource,
                if shown.elevation_id.is_empty() {
                    "-".into()
                } else {
                    shown.elevation_id
                },
            ];
            if f == OutputFormat::Wide {
                cols.push(shown.request_id);
            }
            let line: Vec<String> = cols.iter().map(|c| sanitize(c)).collect();
            text.extend_from_slice(line.join("  ").as_bytes());
            text.push(b'\n');
        }
    }
    Ok(())
}

/// Records the position in the cursor file (when one was given and the
/// position moved).
fn save(job: &Follow<'_>, pos: &mut Position) -> Result<()> {
    let Some(path) = job.cursor else {
        return Ok(());
    };
    if !pos.dirty {
        return Ok(());
    }
    write_cursor(path, job.org, &job.server, pos)?;
    pos.dirty = false;
    Ok(())
}

fn write_cursor(path: &Path, org: &str, server: &str, pos: &Position) -> Result<()> {
    let c = Cursor {
        kind: KIND.into(),
        org: org.into(),
        server: server.into(),
        last_hash: pos.hash.clone().unwrap_or_default(),
        last_ts: pos.ts.clone(),
        last_request_id: pos.request_id.clone(),
        exported: pos.written,
        exact: pos.hash.is_some(),
        boundary_request_ids: if pos.hash.is_some() {
            Vec::new()
        } else {
            pos.boundary.iter().cloned().collect()
        },
    };
    let text = serde_json::to_vec_pretty(&c).map_err(|e| CliError::other(e.to_string()))?;
    crate::atomic::write(path, &text)
}

/// Ends at the first Ctrl-C or SIGTERM.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::other(format!("SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CliError::other(format!("SIGINT handler: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
