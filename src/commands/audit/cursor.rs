//! `kube-dc audit list --csv --cursor FILE`: an exact incremental export.
//!
//! The cursor file records the hash of the last event exported. The next
//! run asks the server for the events after that event (`after=HASH`, an
//! extension of kube-dc's backend, which says it honoured it in the
//! `x-kube-dc-export-after` header), in pages, each after the last row of
//! the one before: no event is exported twice or skipped, whatever arrives
//! meanwhile, and the export's first `prev_hash` is the cursor's hash, so
//! `kube-dc audit verify A.csv B.csv` proves the two files consecutive. The
//! cursor is written (atomically, mode 0600) only once the export is
//! complete and written.
//!
//! An installation without the extension (production: no export trailer,
//! no `after`) gets what it offers: one export from the cursor's last time
//! (`since`, inclusive), from which the rows at that time whose request id
//! the previous export already held are dropped (`time_window`).

use std::path::Path;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::export::{Guard, not_an_export};
use crate::atomic::AtomicFile;
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};

/// Events asked for per request: `KUBE_DC_AUDIT_PAGE` (1–5000), default
/// the server's maximum.
fn page_size() -> usize {
    std::env::var("KUBE_DC_AUDIT_PAGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=kube_dc_api::AUDIT_MAX_LIMIT).contains(n))
        .unwrap_or(kube_dc_api::AUDIT_MAX_LIMIT)
}
pub(super) const KIND: &str = "kube-dc audit cursor v1";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    pub kind: String,
    pub org: String,
    /// The installation it belongs to.
    pub server: String,
    /// The hash of the last event exported: the next export's first
    /// `prev_hash`.
    pub last_hash: String,
    pub last_ts: String,
    pub last_request_id: String,
    /// Events the export that wrote it held.
    pub exported: u64,
    /// Whether it was written by an exact (`after`) export; false: by the
    /// time-window export of an installation without the extension.
    #[serde(default = "exact_default")]
    pub exact: bool,
    /// Time-window exports: the request ids of the rows at `last_ts`, which
    /// the next export (starting at `last_ts`, inclusive) drops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundary_request_ids: Vec<String>,
}

fn exact_default() -> bool {
    true
}

/// The cursor at `path`, if there is one, for organization `org` at
/// `server`. One written at another address is taken when its position can
/// be checked there (an exact cursor: the server answers 400 for a hash it
/// does not hold) or when the user says it is the same installation
/// (`rebind`); another organization's never is.
pub(super) fn read_cursor(
    path: &Path,
    org: &str,
    server: &str,
    rebind: bool,
) -> Result<Option<Cursor>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::other(format!(
                "cannot read the cursor {}: {e}",
                path.display()
            )));
        }
    };
    let c: Cursor = serde_json::from_str(&text)
        .ok()
        .filter(|c: &Cursor| c.kind == KIND)
        .ok_or_else(|| {
            CliError::usage(format!("{} is not a kube-dc audit cursor", path.display())).hint(
                "give the file a previous `--cursor` run wrote, or a new path to export everything",
            )
        })?;
    if c.org != org {
        return Err(CliError::usage(format!(
            "the cursor {} belongs to organization {:?}, not {org:?}",
            path.display(),
            c.org
        ))
        .hint("use one cursor file per organization"));
    }
    if c.server != server {
        if !c.exact && !rebind {
            return Err(CliError::usage(format!(
                "the cursor {} was written at {}, not {server}, by a time-window export, which \
                 this address cannot check",
                path.display(),
                c.server
            ))
            .hint(
                "if this is the same installation under another address, add --cursor-rebind to \
                 continue from the cursor here; otherwise use one cursor file per installation",
            ));
        }
        crate::output::note(&format!(
            "the cursor {} was written at {}; continuing from its last event at {server}{}",
            path.display(),
            c.server,
            if c.exact {
                " (which the server checks it holds)"
            } else {
                ""
            }
        ));
    }
    Ok(Some(c))
}

/// After an export with nothing new: the cursor stays where it was, at
/// the address it was used at now (so a rebound cursor is rebound once).
fn keep_at(path: &Path, previous: Option<Cursor>, server: &str) -> Result<()> {
    match previous {
        Some(mut c) if c.server != server => {
            c.server = server.to_string();
            let text = serde_json::to_vec_pretty(&c).map_err(|e| CliError::other(e.to_string()))?;
            crate::atomic::write(path, &text)
        }
        _ => Ok(()),
    }
}

/// Hash, time and request id of a CSV row, by the header's column names.
fn row_facts(header: &[u8], row: &[u8]) -> Option<(String, String, String)> {
    let record = |bytes: &[u8]| {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .next()?
            .ok()
    };
    let (h, r) = (record(header)?, record(row)?);
    let col = |name: &str| {
        h.iter()
            .position(|c| c == name)
            .and_then(|i| r.get(i))
            .map(str::to_string)
    };
    Some((
        col("hash")?,
        col("ts").unwrap_or_default(),
        col("request_id").unwrap_or_default(),
    ))
}

/// One incremental export: where from and where to.
pub struct Export<'a> {
    pub ctx: &'a Session,
    pub client: &'a crate::api::Client,
    pub org: &'a str,
    /// The query without `after` and `limit`.
    pub base: &'a str,
    pub cursor_path: &'a Path,
    /// The output file (None: stdout).
    pub file: Option<&'a Path>,
    /// `--cursor-rebind`: a cursor written at another address is this
    /// installation's.
    pub rebind: bool,
}

/// The export itself: exact pages after the cursor's hash where the
/// installation offers them (kube-dc's `after` extension), else a time
/// window (`time_window`).
pub async fn export(job: Export<'_>, since_given: bool) -> Result<()> {
    let server = job.ctx.target()?.server_label();
    let previous = read_cursor(job.cursor_path, job.org, &server, job.rebind)?;
    if previous.as_ref().is_some_and(|c| !c.exact) {
        return time_window(job, previous).await;
    }
    if let (Some(c), true) = (&previous, since_given) {
        return Err(CliError::usage(format!(
            "--since applies to the first export only: the cursor {} already starts after {} ({})",
            job.cursor_path.display(),
            c.last_ts,
            c.last_request_id
        ))
        .hint("leave out --since, or give a new cursor file to start over"));
    }
    let mut sink = job.file.map(AtomicFile::create).transpose()?;
    let Some(pages) = exact_pages(&job, previous.as_ref(), &mut sink).await? else {
        // An installation without the extension: its own export, by time.
        drop(sink);
        return time_window(job, previous).await;
    };
    if let Some(f) = sink {
        f.finish()?;
    }
    let Some((last_hash, last_ts, last_request_id)) = pages.last else {
        crate::output::note(&match &previous {
            Some(c) => format!(
                "no new events since the cursor ({}, {})",
                c.last_ts, c.last_request_id
            ),
            None => "no events to export".to_string(),
        });
        return keep_at(job.cursor_path, previous, &server);
    };
    let cursor = Cursor {
        kind: KIND.into(),
        org: job.org.into(),
        server,
        last_hash,
        last_ts,
        last_request_id,
        exported: pages.total,
        exact: true,
        boundary_request_ids: Vec::new(),
    };
    let text = serde_json::to_vec_pretty(&cursor).map_err(|e| CliError::other(e.to_string()))?;
    crate::atomic::write(job.cursor_path, &text)?;
    crate::output::note(&format!(
        "exported {} events{}; cursor {} now after {} ({})",
        pages.total,
        job.file
            .map(|f| format!(" to {}", f.display()))
            .unwrap_or_default(),
        job.cursor_path.display(),
        cursor.last_ts,
        cursor.last_request_id
    ));
    Ok(())
}

/// What the exact pages held: how many rows, and the last one's hash,
/// time and request id.
struct Pages {
    total: u64,
    last: Option<(String, String, String)>,
}

/// Pages of [`page_size`] events after the cursor, until a short page,
/// each checked as an export is and written out (the header once). `None`:
/// the installation has no `after` extension (its first answer has no
/// trailer), and nothing was written.
async fn exact_pages(
    job: &Export<'_>,
    previous: Option<&Cursor>,
    sink: &mut Option<AtomicFile>,
) -> Result<Option<Pages>> {
    let p = &job.ctx.printer;
    let mut put = |data: &[u8]| -> Result<()> {
        match sink {
            Some(f) => f.write_all(data),
            None => p.raw(data),
        }
    };
    let mut after = previous.map(|c| c.last_hash.clone());
    let mut header: Option<Vec<u8>> = None;
    let mut pages = Pages {
        total: 0,
        last: None,
    };
    let page = page_size();
    loop {
        let q = page_query(job.base, page, after.as_deref());
        let mut resp = csv_export(job.client, job.org, &q).await?;
        if !resp.trailer && header.is_none() {
            return Ok(None);
        }
        // Exactness rests on the server saying it honoured the cursor.
        if !resp.trailer || (after.is_some() && resp.after.as_deref() != after.as_deref()) {
            return Err(CliError::new(
                ErrorKind::NotSupported,
                "this installation does not offer exact incremental exports (kube-dc's \
                 `after` extension); nothing was written",
            )
            .hint(
                "export time windows instead (--since/--until) and drop the rows whose request_id \
                 the previous file already holds",
            ));
        }
        let (guard, rows) = stream_page(&mut resp, header.is_some(), &mut put).await?;
        match &header {
            Some(h) if *h != guard.header => {
                return Err(not_an_export("its pages have different headers"));
            }
            Some(_) => {}
            None => header = Some(guard.header.clone()),
        }
        if let Some(row) = guard.last_row(rows, resp.trailer) {
            let facts = row_facts(&guard.header, row)
                .ok_or_else(|| not_an_export("its last row has no hash"))?;
            after = Some(facts.0.clone());
            pages.last = Some(facts);
        }
        pages.total += rows;
        if (rows as usize) < page {
            return Ok(Some(pages));
        }
    }
}

/// The query of one page: the base, a limit, and the cursor's hash.
fn page_query(base: &str, page: usize, after: Option<&str>) -> String {
    let mut q = base.to_string();
    let mut add = |k: &str, v: &str| {
        q.push(if q.is_empty() { '?' } else { '&' });
        q.push_str(k);
        q.push('=');
        q.push_str(v);
    };
    add("limit", &page.to_string());
    if let Some(a) = after {
        add("after", a);
    }
    q
}

/// One page's rows through the export checks into `put`, its header left
/// out when one went out already; the checker and how many rows it held.
async fn stream_page(
    resp: &mut crate::api::Streamed,
    header_sent: bool,
    put: &mut impl FnMut(&[u8]) -> Result<()>,
) -> Result<(Guard, u64)> {
    let mut guard = Guard::tracking();
    let mut skip = header_sent;
    let mut emit = |ready: &[u8]| -> Result<()> {
        let ready = if skip {
            match memchr::memchr(b'\n', ready) {
                Some(i) => {
                    skip = false;
                    &ready[i + 1..]
                }
                None => return Ok(()),
            }
        } else {
            ready
        };
        put(ready)
    };
    while let Some(chunk) = resp.body.next().await {
        guard.feed(&chunk.map_err(broke_off)?, &mut emit)?;
    }
    let (rest, rows) = guard.finish(resp.trailer)?;
    emit(&rest)?;
    Ok((guard, rows))
}

/// The stream ended before its end.
fn broke_off(e: String) -> CliError {
    CliError::new(ErrorKind::Network, format!("the export broke off: {e}"))
        .hint("nothing was written, and the cursor is unchanged; run it again")
}

/// The server's CSV export for `q`, refused when it is not CSV.
async fn csv_export(
    client: &crate::api::Client,
    org: &str,
    q: &str,
) -> Result<crate::api::Streamed> {
    let resp = client.audit_csv(org, q).await?;
    if !resp
        .content_type
        .to_ascii_lowercase()
        .starts_with("text/csv")
    {
        return Err(not_an_export(&format!(
            "its content type is {:?}, not text/csv",
            resp.content_type
        )));
    }
    Ok(resp)
}

/// Epoch nanoseconds of an export's `ts` (RFC 3339, or all digits: epoch
/// nanoseconds); None when it is neither.
fn ts_nanos(ts: &str) -> Option<i128> {
    if !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()) {
        return ts.parse().ok();
    }
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// The export of an installation without `after`: everything from the
/// cursor's last time (inclusive), less the rows at that time the previous
/// export held (by request id), and less any older row (should the server
/// not honour `since`). The stream is checked as any export is, kept in a
/// private temporary file, then filtered row by row into the output.
async fn time_window(job: Export<'_>, previous: Option<Cursor>) -> Result<()> {
    let server = job.ctx.target()?.server_label();
    let mut q = job.base.to_string();
    if let Some(c) = &previous {
        q.push(if q.is_empty() { '?' } else { '&' });
        q.push_str(
            &serde_urlencoded::to_string([("since", c.last_ts.as_str())]).unwrap_or_default(),
        );
    }
    let spool = spool(job.client, job.org, &q).await?;
    let w = Window::filter(spool, previous.as_ref())?;
    crate::output::Sink::of(job.file).write(&w.out)?;
    let Some((_, last_ts)) = w.last else {
        crate::output::note("no new events since the cursor");
        return keep_at(job.cursor_path, previous, &server);
    };
    let mut boundary = w.boundary;
    // The boundary carries over when the new export ends at the same time.
    if let Some(c) = &previous
        && ts_nanos(&c.last_ts) == ts_nanos(&last_ts)
    {
        boundary.extend(c.boundary_request_ids.iter().cloned());
    }
    let cursor = Cursor {
        kind: KIND.into(),
        org: job.org.into(),
        server,
        last_hash: String::new(),
        last_request_id: boundary.last().cloned().unwrap_or_default(),
        last_ts,
        exported: w.kept,
        exact: false,
        boundary_request_ids: boundary,
    };
    let text = serde_json::to_vec_pretty(&cursor).map_err(|e| CliError::other(e.to_string()))?;
    crate::atomic::write(job.cursor_path, &text)?;
    crate::output::note(&format!(
        "exported {} events by time ({} already exported dropped); this installation \
         has no exact cursor, so events are told apart by time and request id; cursor {} now at {}",
        w.kept,
        w.dropped,
        job.cursor_path.display(),
        cursor.last_ts
    ));
    Ok(())
}

/// The whole export for `q`, checked, in a private temporary file read
/// from its start.
async fn spool(client: &crate::api::Client, org: &str, q: &str) -> Result<std::fs::File> {
    use std::io::{Seek, Write};
    let mut resp = csv_export(client, org, q).await?;
    let mut spool = tempfile::tempfile()
        .map_err(|e| CliError::other(format!("cannot create a temporary file: {e}")))?;
    let mut guard = Guard::new();
    while let Some(chunk) = resp.body.next().await {
        guard.feed(&chunk.map_err(broke_off)?, |ready| {
            spool.write_all(ready).map_err(CliError::from)
        })?;
    }
    let (rest, _) = guard.finish(resp.trailer)?;
    spool.write_all(&rest)?;
    spool.rewind()?;
    Ok(spool)
}

/// A time window's rows less those the previous export held.
struct Window {
    /// The kept rows, as CSV with the export's header.
    out: Vec<u8>,
    kept: u64,
    dropped: u64,
    /// The newest time kept (nanoseconds, and as written).
    last: Option<(i128, String)>,
    /// The request ids of the rows at that time.
    boundary: Vec<String>,
}

impl Window {
    fn filter(spool: std::fs::File, previous: Option<&Cursor>) -> Result<Self> {
        let mut reader = csv::Reader::from_reader(spool);
        let header = reader
            .headers()
            .map_err(|e| not_an_export(&e.to_string()))?
            .clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(ts_at), Some(id_at)) = (col("ts"), col("request_id")) else {
            return Err(
                not_an_export("its header names no ts or no request_id column").hint(
                    "without them an incremental export cannot tell which rows it already holds",
                ),
            );
        };
        let since = previous.and_then(|c| ts_nanos(&c.last_ts));
        let seen: std::collections::HashSet<&str> = previous
            .iter()
            .flat_map(|c| c.boundary_request_ids.iter().map(String::as_str))
            .collect();
        let mut w = Window {
            out: Vec::new(),
            kept: 0,
            dropped: 0,
            last: None,
            boundary: Vec::new(),
        };
        let mut csv_out = csv::Writer::from_writer(Vec::new());
        csv_out.write_record(&header)?;
        for rec in reader.records() {
            let rec = rec.map_err(|e| not_an_export(&e.to_string()))?;
            let (ts, id) = (rec.get(ts_at).unwrap_or(""), rec.get(id_at).unwrap_or(""));
            let t = ts_nanos(ts);
            let old = match (t, since) {
                (Some(t), Some(s)) => t < s || (t == s && seen.contains(id)),
                _ => false,
            };
            if old {
                w.dropped += 1;
                continue;
            }
            csv_out.write_record(&rec)?;
            w.kept += 1;
            if let Some(t) = t {
                w.note_time(t, ts, id);
            }
        }
        w.out = csv_out
            .into_inner()
            .map_err(|e| CliError::other(format!("CSV: {e}")))?;
        Ok(w)
    }

    /// Keeps the newest time and the request ids at it.
    fn note_time(&mut self, t: i128, ts: &str, id: &str) {
        match &self.last {
            Some((lt, _)) if t < *lt => {}
            Some((lt, _)) if t == *lt => self.boundary.push(id.to_string()),
            _ => {
                self.last = Some((t, ts.to_string()));
                self.boundary = vec![id.to_string()];
            }
        }
    }
}
