//! The streamed CSV export of an organization's audit events.

use super::audit::{AuditQuery, audit_filter};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::support::{ApiResult, Authorized, Shared};
use crate::clock::rfc3339;
use crate::error::parse_query;
use futures_util::StreamExt;
use kube_dc_api::AUDIT_CSV_COLUMNS as CSV_COLUMNS;
use kube_dc_api::audit::{TRAILER_HEADER, TRAILER_PREFIX, csv_cell, field_text};

/// Streams the org's events as CSV, oldest first, one chunk at a time: rows
/// are read from SQLite and written to the socket as they come, so memory
/// stays flat however long the log is.
pub(crate) async fn audit_csv(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let mut q: AuditQuery = parse_query(q.as_deref())?;
    let after_hash = q.take_after()?;
    let (mut f, _) = audit_filter(&org, None, q, true)?;
    if let Some(h) = &after_hash {
        f.after_seq = Some(super::audit::resolve_after(&b, &org, h.clone()).await?);
    }
    // Says that `after` was honoured: a client can rely on it for an exact
    // incremental export (an installation without it ignores the parameter).
    let after = after_hash;
    // The scan starts on the body's first poll, which happens after the
    // middleware has committed this request's own audit event: the export
    // always ends with it, and nothing is read before the request is
    // audited.
    let stream = futures_util::stream::once(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let store = b.store.clone();
        tokio::task::spawn_blocking(move || write_rows(&store, &f, tx));
        tokio_stream::wrappers::ReceiverStream::new(rx)
    })
    .flatten();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"".to_string(),
            ),
            (
                header::HeaderName::from_static(TRAILER_HEADER),
                "rows".to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
    .map(|mut resp| {
        if let Some(a) = after.and_then(|a| header::HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(
                header::HeaderName::from_static(kube_dc_api::audit::AFTER_HEADER),
                a,
            );
        }
        resp
    })
}

/// Writes the filtered events as CSV rows into `tx`, then the trailer; a
/// failed scan fails the body instead, so the client sees a broken
/// transfer rather than a short file that looks complete.
fn write_rows(
    store: &crate::store::Store,
    f: &crate::store::AuditFilter,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let fail = tx.clone();
    let mut w = csv::Writer::from_writer(ChunkSender {
        buf: Vec::with_capacity(CHUNK),
        tx,
    });
    let mut open = w.write_record(CSV_COLUMNS).is_ok();
    let mut rows = 0u64;
    let res = store.scan_audit(f, false, |row| {
        // Every cell neutralised against spreadsheet formulas; the
        // event column holds the event exactly as it was hashed, so
        // `kube-dc audit verify FILE` can check the file offline.
        let Ok(body) = row.body() else {
            open = false;
            return false;
        };
        let rec: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|&k| match k {
                "ts" => rfc3339(row.ts),
                "event" => row.text.clone(),
                k => csv_cell(&field_text(&body, k)).into_owned(),
            })
            .collect();
        open = open && w.write_record(&rec).is_ok();
        rows += 1;
        open
    });
    match res {
        Ok(()) => {
            // The announced trailer: a client can tell a complete
            // export from one cut short at a row boundary.
            if let Ok(mut sink) = w.into_inner() {
                use std::io::Write as _;
                let _ = writeln!(sink, "{TRAILER_PREFIX}{rows}");
                // Flushing hands the last partial chunk to the channel.
                let _ = sink.send();
            }
        }
        Err(e) => {
            // Fail the body, so the client sees a broken transfer rather
            // than a short file that looks complete.
            let _ = fail.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }
}

const CHUNK: usize = 64 * 1024;

/// A `Write` that hands the response body over in chunks of about 64 KiB.
struct ChunkSender {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
