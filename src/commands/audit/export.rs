//! `kube-dc audit list --csv`: the server's CSV streamed to a file or
//! stdout, checked as it goes, so that only a complete export is kept.

use std::path::Path;

use futures_util::StreamExt;
use kube_dc_api::audit::TRAILER_PREFIX;

use crate::atomic::AtomicFile;
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};

/// Watches an export as it streams: counts records (newlines outside
/// quotes) and each record's fields (commas outside quotes), and holds back
/// the last line, which is the trailer when the server announced one. The
/// header is passed through whatever it names (production's is not
/// documented): what is checked is what any CSV stream shows — every row
/// has the header's number of fields, and the last row ends.
pub(super) struct Guard {
    in_quotes: bool,
    records: u64,
    pub(super) header: Vec<u8>,
    /// Fields of the record being read so far (commas seen + 1).
    fields: usize,
    /// The header's number of fields.
    width: usize,
    /// The first record whose width differs from the header's: its number
    /// (0-based, the header is 0) and width. Blank lines are no records
    /// to a CSV reader, and are not counted against the header.
    uneven: Option<(u64, usize)>,
    /// Bytes seen before the current chunk, and the offset just after the
    /// last newline outside quotes (where the current line began).
    seen: u64,
    line_start: u64,
    /// Bytes not yet passed on: from the start of the last line.
    held: Vec<u8>,
    /// Whether to keep the last two complete records (`last`, `prev`) and
    /// the one being read (`cur`): an incremental export reads its cursor
    /// from the last row.
    track: bool,
    cur: Vec<u8>,
    last: Vec<u8>,
    prev: Vec<u8>,
}

const MAX_HEADER: usize = 64 * 1024;

impl Guard {
    pub(super) fn new() -> Self {
        Guard {
            in_quotes: false,
            records: 0,
            header: Vec::new(),
            fields: 1,
            width: 0,
            uneven: None,
            seen: 0,
            line_start: 0,
            held: Vec::new(),
            track: false,
            cur: Vec::new(),
            last: Vec::new(),
            prev: Vec::new(),
        }
    }

    pub(super) fn tracking() -> Self {
        Guard {
            track: true,
            ..Self::new()
        }
    }

    /// The last data row's bytes once [`Guard::finish`] has counted `rows`
    /// (none when there are none).
    pub(super) fn last_row(&self, rows: u64, trailer: bool) -> Option<&[u8]> {
        (rows > 0).then(|| {
            if trailer {
                &self.prev[..]
            } else {
                &self.last[..]
            }
        })
    }

    /// Takes a chunk and passes on, through `out`, the bytes that are safe
    /// to write now: everything before the last complete line (which may be
    /// the trailer). Only that line and what follows it are copied and held;
    /// the rest goes out straight from the chunk.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let header_open = self.records == 0;
        let mut record_from = 0;
        for i in memchr::memchr3_iter(b'"', b'\n', b',', chunk) {
            match chunk[i] {
                b'"' => self.in_quotes = !self.in_quotes,
                _ if self.in_quotes => {}
                b',' => self.fields += 1,
                _ => {
                    let at = self.seen + i as u64;
                    let blank = at == self.line_start;
                    if self.records == 0 {
                        self.take_header(&chunk[..=i])?;
                        self.width = self.fields;
                    } else if !blank && self.fields != self.width && self.uneven.is_none() {
                        self.uneven = Some((self.records, self.fields));
                    }
                    self.records += 1;
                    self.fields = 1;
                    self.line_start = at + 1;
                    if self.track {
                        self.cur.extend_from_slice(&chunk[record_from..=i]);
                        self.prev = std::mem::take(&mut self.last);
                        self.last = std::mem::take(&mut self.cur);
                        record_from = i + 1;
                    }
                }
            }
        }
        if self.track {
            self.cur.extend_from_slice(&chunk[record_from..]);
        }
        self.seen += chunk.len() as u64;
        if header_open && self.records == 0 {
            self.take_header(chunk)?;
        }
        let Some(last) = memchr::memrchr(b'\n', chunk) else {
            self.held.extend_from_slice(chunk);
            return Ok(());
        };
        match memchr::memrchr(b'\n', &chunk[..last]) {
            // Both newlines in this chunk: all held bytes and the chunk up to
            // the line before the last go out.
            Some(before) => {
                out(&self.held)?;
                out(&chunk[..=before])?;
                self.held.clear();
                self.held.extend_from_slice(&chunk[before + 1..]);
            }
            // The line before the last began in the held bytes.
            None => {
                let keep_from = memchr::memrchr(b'\n', &self.held).map_or(0, |p| p + 1);
                out(&self.held[..keep_from])?;
                self.held.drain(..keep_from);
                self.held.extend_from_slice(chunk);
            }
        }
        Ok(())
    }

    fn take_header(&mut self, part: &[u8]) -> Result<()> {
        if self.header.len() + part.len() > MAX_HEADER {
            return Err(not_an_export("its first line never ends"));
        }
        self.header.extend_from_slice(part);
        Ok(())
    }

    /// The end of the stream: the bytes still to write, once the export is
    /// known to be complete.
    pub(super) fn finish(&mut self, trailer: bool) -> Result<(Vec<u8>, u64)> {
        if self.records == 0 {
            return Err(not_an_export("it is empty"));
        }
        if !self.held.is_empty() && !self.held.ends_with(b"\n") || self.in_quotes {
            return Err(truncated("its last row has no end"));
        }
        // The announced trailer is one field wide by design.
        let last = self.records - 1;
        if let Some((row, width)) = self.uneven.filter(|&(row, _)| !(trailer && row == last)) {
            return Err(not_an_export(&format!(
                "row {row} has {width} field(s) but the header has {}",
                self.width
            )));
        }
        if !trailer {
            return Ok((std::mem::take(&mut self.held), self.records - 1));
        }
        // Announced: the held line is the trailer, with the row count.
        let line = String::from_utf8_lossy(&self.held).trim_end().to_string();
        let announced: Option<u64> = line
            .strip_prefix(TRAILER_PREFIX)
            .and_then(|n| n.parse().ok());
        let rows = self.records - 2; // header and trailer
        match announced {
            Some(n) if n == rows => Ok((Vec::new(), rows)),
            Some(n) => Err(truncated(&format!(
                "the server sent {n} rows but {rows} arrived"
            ))),
            None => Err(truncated("the announced end-of-export line is missing")),
        }
    }
}

pub(super) fn not_an_export(why: &str) -> CliError {
    CliError::new(
        ErrorKind::Server,
        format!("the server's answer is not an audit CSV export: {why}"),
    )
}

fn truncated(why: &str) -> CliError {
    CliError::new(
        ErrorKind::Network,
        format!("the export is incomplete: {why}"),
    )
}

/// Streams the server's CSV straight to the file (or stdout) chunk by
/// chunk: memory stays flat however many events there are. A file is kept
/// only when the export is complete.
pub async fn export_csv(
    ctx: &Session,
    client: &crate::api::Client,
    org: &str,
    q: &str,
    file: Option<&Path>,
) -> Result<()> {
    let mut sink = match file {
        Some(p) => Some(AtomicFile::create(p)?),
        None => None,
    };
    let mut resp = client.audit_csv(org, q).await?;
    let ctype = resp.content_type.to_ascii_lowercase();
    if !ctype.starts_with("text/csv") {
        return Err(not_an_export(&format!(
            "its content type is {:?}, not text/csv",
            resp.content_type
        ))
        .hint("check --server: a proxy or login page may be answering instead of the backend"));
    }
    let progress =
        ctx.printer.stderr_is_tty && file.is_some() && crate::output::stderr_is_terminal();
    let mut guard = Guard::new();
    let mut bytes = 0u64;
    let bar = crate::output::Progress::start(progress);
    let p = &ctx.printer;
    let put = |data: &[u8], sink: &mut Option<AtomicFile>| -> Result<()> {
        match sink {
            Some(f) => f.write_all(data),
            None => p.raw(data),
        }
    };
    let incomplete_hint = if file.is_some() {
        "nothing was written under the requested name; run it again"
    } else {
        "the output above is incomplete"
    };
    while let Some(chunk) = resp.body.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!("the export broke off after {bytes} bytes: {e}"),
            )
            .hint(incomplete_hint)
        })?;
        bytes += chunk.len() as u64;
        guard
            .feed(&chunk, |ready| put(ready, &mut sink))
            .map_err(|e| e.hint(incomplete_hint))?;
        if progress {
            bar.update(format!(
                "exporting… {} events, {:.1} MB",
                guard.records.saturating_sub(1),
                bytes as f64 / 1e6
            ));
        }
    }
    let (rest, rows) = guard
        .finish(resp.trailer)
        .map_err(|e| e.hint(incomplete_hint))?;
    put(&rest, &mut sink)?;
    if let Some(f) = sink {
        f.finish()?;
        drop(bar);
        crate::output::note(&format!(
            "exported {rows} events to {}",
            file.map(|p| p.display().to_string()).unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], trailer: bool) -> Result<(Vec<u8>, u64)> {
        let mut g = Guard::new();
        let mut out = Vec::new();
        for c in chunks {
            g.feed(c, |ready| {
                out.extend_from_slice(ready);
                Ok(())
            })?;
        }
        let (rest, rows) = g.finish(trailer)?;
        out.extend(rest);
        Ok((out, rows))
    }

    #[test]
    fn complete_exports_pass_and_cut_ones_do_not() {
        let h: &[u8] = b"ts,action,result,actor\n";
        let (out, rows) = run(&[h, b"1,a,\"x\ny\",b\n2,", b"c,d,e\n"], false).unwrap();
        // A header split across chunks, with a quoted name.
        let (out2, _) = run(&[b"ts,\"act", b"ion\",result,actor\n1,a,b,c\n"], false).unwrap();
        assert_eq!(out2, b"ts,\"action\",result,actor\n1,a,b,c\n");
        assert_eq!((out.len(), rows), (h.len() + 20, 2));
        // With the trailer: checked and stripped.
        let (out, rows) = run(&[h, b"1,a,b,c\n#kube-dc-export-end rows=1\n"], true).unwrap();
        assert_eq!((out, rows), ([h, b"1,a,b,c\n"].concat(), 1));
        // Cut at a row boundary: only the trailer can tell.
        assert!(run(&[h, b"1,a,b,c\n"], true).is_err());
        assert!(
            run(
                &[h, b"1,a,b,c\n2,a,b,c\n#kube-dc-export-end rows=3\n"],
                true
            )
            .is_err()
        );
        // Cut inside a row, or inside quotes.
        assert!(run(&[h, b"1,a,b"], false).is_err());
        assert!(run(&[h, b"1,\"a\nb"], false).is_err());
        // Any header passes through (production's is not documented) …
        let other: &[u8] = b"time,who,what,\"a,b\"\n1,x,y,z\n";
        assert_eq!(run(&[other], false).unwrap(), (other.to_vec(), 1));
        // … but every row has its number of fields.
        let e = run(&[h, b"1,a,b,c\n2,a\n"], false).unwrap_err();
        assert!(
            e.message
                .contains("row 2 has 2 field(s) but the header has 4"),
            "{}",
            e.message
        );
        assert!(run(&[h, b"1,a,b,c,d\n"], false).is_err());
        // Not an export at all.
        assert!(run(&[b"{\"error\":1}"], false).is_err());
        assert!(run(&[], false).is_err());
    }
}
