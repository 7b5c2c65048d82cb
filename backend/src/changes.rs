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
//! - New versions of one secret in a row are sent as the newest
//!   ([`coalesce`]): of those read from the log together here, and of
//!   those a stream has not sent yet when a newer one arrives, so under a
//!   storm of writes to one secret (thousands a second) no stream is sent
//!   a line per version; the version number says how many came between.
//!   A stream opened with `every=true` is sent each.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::store::{ChangeRow, Store};
use kube_dc_api::event::FactKey;
use kube_dc_api::wire::ChangeLine;
use kube_dc_api::wire::changes::{CHANGE, NEW_VERSION, change_of};

/// How often the hub looks at the log for other processes' commits.
pub const POLL: Duration = Duration::from_millis(100);

/// Batches a stream may fall behind before it reads the log instead (the
/// default of `Config::watch_backlog`).
pub const BACKLOG: usize = 256;

/// Rows read from the log at once.
pub const PAGE: usize = 512;

/// The least time between two looks at the log: under a storm of commits
/// the hub sends a batch per look, not per commit, so each stream takes
/// a few batches per write instead of hundreds (a change waits up to this
/// long more).
pub const LOOK_GAP: Duration = Duration::from_millis(5);

/// One change, decoded and encoded once for every stream.
#[derive(Clone, Debug)]
pub struct Change {
    /// Its organization.
    pub org: String,
    /// Its project.
    pub project: String,
    /// Its cursor (the audit event's sequence number).
    pub seq: i64,
    /// Its line, as the stream sends it (JSON and a newline).
    pub line: bytes::Bytes,
    /// The secret that changed.
    pub secret: Option<Arc<str>>,
    /// Whether the change is a new version (`new-version`), which a newer
    /// one of the same secret supersedes.
    pub new_version: bool,
}

impl Change {
    /// Whether `later`, a change after this one with nothing else of this
    /// secret between them, makes this one unnecessary to send: both are
    /// new versions of the same secret of the same project.
    pub fn superseded_by(&self, later: &Change) -> bool {
        self.new_version
            && later.new_version
            && self.secret.is_some()
            && self.secret == later.secret
            && self.project == later.project
            && self.org == later.org
    }
}

/// `batch` without each new version that a later new version of the same
/// secret supersedes (nothing else of that secret between them), in order.
pub fn coalesce(batch: &[Change]) -> Vec<Change> {
    kept(batch, &superseded(batch))
}

/// The changes of `batch` not `gone`.
fn kept(batch: &[Change], gone: &[bool]) -> Vec<Change> {
    batch
        .iter()
        .zip(gone)
        .filter(|(_, gone)| !**gone)
        .map(|(c, _)| c.clone())
        .collect()
}

/// For each change of `batch`, whether a later one supersedes it.
fn superseded(batch: &[Change]) -> Vec<bool> {
    // From the newest back: the next change of each secret, if it is a
    // new version, supersedes this one.
    let mut gone = vec![false; batch.len()];
    let mut next: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, c) in batch.iter().enumerate().rev() {
        let Some(secret) = c.secret.as_deref() else {
            continue;
        };
        let key = (c.org.as_str(), c.project.as_str(), secret);
        if let Some(&j) = next.get(&key) {
            gone[i] = c.superseded_by(&batch[j]);
        }
        next.insert(key, i);
    }
    gone
}

/// The changes of one look at the log, oldest first.
pub type Batch = Arc<Looked>;

/// The changes of one look at the log: each, and without the new
/// versions a newer one in the same look supersedes.
#[derive(Debug)]
pub struct Looked {
    /// Every change.
    pub all: Vec<Change>,
    /// [`coalesce`]d, where that dropped any.
    pub newest: Option<Vec<Change>>,
}

impl Looked {
    /// Of `all`, with its coalesced form when that is shorter (only then
    /// is a change copied).
    pub fn new(all: Vec<Change>) -> Self {
        let newest = superseded(&all).contains(&true).then(|| coalesce(&all));
        Looked { all, newest }
    }

    /// The changes a stream is sent: each (`every`), or the newest.
    pub fn changes(&self, every: bool) -> &[Change] {
        match (&self.newest, every) {
            (Some(n), false) => n,
            _ => &self.all,
        }
    }
}

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
    let mut looked = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(looked + LOOK_GAP).await;
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(POLL) => {}
        }
        looked = tokio::time::Instant::now();
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
                let _ = tx.send(Arc::new(Looked::new(batch)));
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
        secret: line.secret.as_deref().map(Arc::from),
        new_version: change == NEW_VERSION,
        line: encode(&line),
    })
}

/// A line as the stream sends it.
pub fn encode(line: &ChangeLine) -> bytes::Bytes {
    let mut out = serde_json::to_vec(line).expect("a line is JSON");
    out.push(b'\n');
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, project: &str, secret: &str, new_version: bool) -> Change {
        Change {
            org: "acme".into(),
            project: project.into(),
            seq,
            line: bytes::Bytes::from(seq.to_string()),
            secret: Some(Arc::from(secret)),
            new_version,
        }
    }

    /// A new version goes when a newer one of the same secret follows with
    /// nothing else of that secret between; every other change stays, and
    /// the order is kept.
    #[test]
    fn only_superseded_new_versions_are_dropped() {
        let batch = vec![
            change(1, "demo", "a", true),
            change(2, "demo", "b", true),
            change(3, "demo", "a", true),
            change(4, "demo", "a", false), // sync changed: a line of its own
            change(5, "demo", "a", true),
            change(6, "other", "a", true), // another project's "a"
            change(7, "demo", "a", true),
            change(8, "demo", "b", false),
        ];
        let kept: Vec<i64> = coalesce(&batch).iter().map(|c| c.seq).collect();
        assert_eq!(kept, [2, 3, 4, 6, 7, 8]);
        let looked = Looked::new(batch);
        assert_eq!(looked.changes(true).len(), 8, "every=true: each");
        assert_eq!(looked.changes(false).len(), 6);
        let plain = Looked::new(vec![
            change(1, "demo", "a", true),
            change(2, "demo", "b", true),
        ]);
        assert!(
            plain.newest.is_none(),
            "nothing dropped: nothing kept twice"
        );
    }
}
