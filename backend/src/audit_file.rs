//! `serve --audit-file FILE`: every committed audit event, also appended
//! to a file as one JSON line — the shape of Vault's file audit device,
//! with the chain fields (`seq`, `prev_hash`, `hash`) in each line, so a
//! shipper (Vector, Fluent Bit, Promtail) can forward it and `seq` tells a
//! repeat from a new line.
//!
//! - Appended only (`O_APPEND`), owner-only (0600), synced after each
//!   batch; reopened on SIGHUP, so logrotate can move it (`create` or
//!   `nocreate` with a `postrotate` that sends SIGHUP).
//! - Where it got to is the last line's `seq`, else (a file just rotated)
//!   `FILE.pos` beside it: a restarted backend continues there, so an
//!   event is written at least once, and twice only when the backend died
//!   between writing a batch and noting it. A file that never held a line
//!   starts at the events committed from now on.
//! - Lines are `{"ts": RFC 3339, "body": {the event, seq, prev_hash,
//!   hash}}`, as an audit listing's items.

use std::future::Future;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::Backend;
use crate::changes::POLL;
use crate::clock::rfc3339;

/// Events read from the log at once.
const PAGE: usize = 1024;

/// Opens `path` and finds where it got to; the future then mirrors until
/// it is dropped.
pub async fn mirror(
    b: Arc<Backend>,
    path: PathBuf,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut file = open(&path)?;
    let pos_file = pos_path(&path);
    let mut pos = match last_seq(&mut file)?.or_else(|| read_pos(&pos_file)) {
        Some(p) => p,
        None => {
            let s = b.store.clone();
            tokio::task::spawn_blocking(move || s.audit_head())
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?
        }
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut commits = b.store.commit_signal();
    Ok(async move {
        loop {
            tokio::select! {
                _ = commits.changed() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = hup.recv() => match open(&path) {
                    Ok(f) => {
                        tracing::info!("--audit-file {}: reopened (SIGHUP)", path.display());
                        file = f;
                    }
                    Err(e) => tracing::warn!("--audit-file {}: cannot reopen: {e}", path.display()),
                },
            }
            loop {
                let s = b.store.clone();
                let rows = tokio::task::spawn_blocking(move || s.audit_after(pos, PAGE)).await;
                let rows = match rows {
                    Ok(Ok(rows)) => rows,
                    Ok(Err(e)) => {
                        tracing::warn!("--audit-file: reading the log: {e}");
                        break;
                    }
                    Err(_) => break,
                };
                let Some(last) = rows.last().map(|r| r.seq) else {
                    break;
                };
                let mut out = Vec::with_capacity(rows.iter().map(|r| r.text.len() + 256).sum());
                for r in &rows {
                    out.extend_from_slice(b"{\"ts\":");
                    let _ = serde_json::to_writer(&mut out, &rfc3339(r.ts));
                    out.extend_from_slice(b",\"body\":");
                    if r.write_body_json(&mut out).is_err() {
                        out.extend_from_slice(b"null");
                    }
                    out.extend_from_slice(b"}\n");
                }
                if let Err(e) = file.write_all(&out).and_then(|()| file.sync_data()) {
                    tracing::warn!("--audit-file {}: {e}; retrying", path.display());
                    break;
                }
                pos = last;
                write_pos(&pos_file, pos);
                if rows.len() < PAGE {
                    break;
                }
            }
        }
    })
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

fn pos_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pos");
    PathBuf::from(p)
}

fn read_pos(p: &Path) -> Option<i64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn write_pos(p: &Path, seq: i64) {
    let tmp = p.with_extension("pos.new");
    if std::fs::write(&tmp, seq.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, p);
    }
}

/// The `seq` of the file's last complete line, if it has one.
fn last_seq(file: &mut std::fs::File) -> std::io::Result<Option<i64>> {
    let len = file.seek(SeekFrom::End(0))?;
    let from = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    let seq = text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        v.get("body")?.get("seq")?.as_i64()
    });
    Ok(seq)
}
