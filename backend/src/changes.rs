//! The change stream's hub: one task reads each committed change of a
//! secret from the audit log once and hands it to every open stream.
//!
//! - It wakes when this process commits, and every [`POLL`] otherwise (the
//!   CLI's embedded backend shares its data directory with other `kube-dc`
//!   processes, whose commits only the log shows).
//! - It sends batches over a bounded broadcast channel: a stream that is
//!   not read (a slow client) never holds a writer back; when it falls
//!   more than [`BACKLOG`] batches behind it reads what it missed from the
//!   log by its cursor, so it misses nothing and its memory stays bounded.
//! - It runs only while a stream is open; with none, it only remembers
//!   the log's head.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::store::{ChangeRow, Store};
use kube_dc_api::event::FactKey;
use kube_dc_api::wire::ChangeLine;
use kube_dc_api::wire::changes::{CHANGE, change_of};

/// How often the hub looks at the log for other processes' commits.
pub const POLL: Duration = Duration::from_millis(100);

/// Batches a stream may fall behind before it reads the log instead (the
/// default of `Config::watch_backlog`).
pub const BACKLOG: usize = 256;

/// Rows read from the log at once.
pub const PAGE: usize = 512;

/// One change, decoded and encoded once for every stream.
#[derive(Debug)]
pub struct Change {
    /// Its organization.
    pub org: String,
    /// Its project.
    pub project: String,
    /// Its cursor (the audit event's sequence number).
    pub seq: i64,
    /// Its line, as the stream sends it (JSON and a newline).
    pub line: bytes::Bytes,
}

/// The changes of one look at the log, oldest first.
pub type Batch = Arc<Vec<Change>>;

/// The hub: started by the first stream.
#[derive(Default)]
pub struct Hub {
    tx: OnceLock<broadcast::Sender<Batch>>,
}

impl Hub {
    /// A receiver of every batch from now on (the hub started, holding up
    /// to `backlog` batches, if it was not).
    pub fn subscribe(&self, store: &Arc<Store>, backlog: usize) -> broadcast::Receiver<Batch> {
        self.tx
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(backlog.max(1));
                tokio::spawn(run(store.clone(), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn run(store: Arc<Store>, tx: broadcast::Sender<Batch>) {
    let mut commits = store.commit_signal();
    let mut last = read_head(&store).await.unwrap_or(0);
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(POLL) => {}
        }
        let Some(head) = read_head(&store).await else {
            continue;
        };
        if head <= last {
            continue;
        }
        if tx.receiver_count() == 0 {
            last = head;
            continue;
        }
        // Every change up to the head, page by page.
        while last < head {
            let s = store.clone();
            let rows =
                tokio::task::spawn_blocking(move || s.secret_changes(None, last, head, PAGE))
                    .await
                    .ok()
                    .and_then(Result::ok);
            let Some(rows) = rows else {
                break;
            };
            let through = if rows.len() < PAGE {
                head
            } else {
                rows.last().map_or(head, |r| r.seq)
            };
            let batch: Vec<Change> = rows.iter().filter_map(decode).collect();
            last = through;
            if !batch.is_empty() {
                // No receiver left is not an error: the next look resets.
                let _ = tx.send(Arc::new(batch));
            }
        }
    }
}

async fn read_head(store: &Arc<Store>) -> Option<i64> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.audit_head())
        .await
        .ok()
        .and_then(Result::ok)
}

/// The change an event records, if it records one: an action of the
/// contract's table, not a replay of an earlier write.
pub fn decode(row: &ChangeRow) -> Option<Change> {
    let body: Map<String, Value> = serde_json::from_str(&row.body).ok()?;
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let change = change_of(text("action")?)?;
    if body.get(FactKey::Replayed.as_str()) == Some(&Value::Bool(true)) {
        return None;
    }
    let line = ChangeLine {
        kind: CHANGE.into(),
        cursor: row.seq.to_string(),
        secret: text("resource").map(str::to_string),
        change: Some(change.into()),
        version: FactKey::Version.version_in(&body).map(|v| v.get()),
        time: Some(crate::clock::rfc3339(row.ts)),
        actor: text("actor").map(str::to_string),
    };
    Some(Change {
        org: row.org.clone(),
        project: row.project.clone(),
        seq: row.seq,
        line: encode(&line),
    })
}

/// A line as the stream sends it.
pub fn encode(line: &ChangeLine) -> bytes::Bytes {
    let mut out = serde_json::to_vec(line).expect("a line is JSON");
    out.push(b'\n');
    out.into()
}
