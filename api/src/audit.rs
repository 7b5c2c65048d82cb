//! The audit log's integrity rules, shared by the backend (which writes the
//! chain and the CSV export) and the CLI (which verifies an exported file
//! offline): the hash chain, the CSV columns, and CSV cell neutralisation.

/// Server default and maximum of an audit query's `limit`.
pub const DEFAULT_LIMIT: usize = 500;
/// The most events one audit query answers, whatever `limit` asks.
pub const MAX_LIMIT: usize = 5000;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of an organization's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Columns of the audit CSV export, in order. `ts` is the event time;
/// `event` is the event exactly as it was hashed; every other column is the
/// event field of the same name.
pub const CSV_COLUMNS: &[&str] = &[
    "ts",
    "service",
    "action",
    "result",
    "actor",
    "actor_email",
    "resource",
    "namespace",
    "project",
    "org",
    "request_id",
    "source_ip",
    "elevation_id",
    "reason",
    "status",
    "prev_hash",
    "hash",
    "event",
];

/// Response header by which kube-dc's backend announces that its CSV export
/// ends with a trailer line, `#kube-dc-export-end rows=N` (production
/// exports have none; clients that know the header check and strip it).
pub const TRAILER_HEADER: &str = "x-kube-dc-export-trailer";
/// The response header of a CSV export that honoured `after=HASH` (its
/// value: that hash): its rows are exactly the events after that event.
pub const AFTER_HEADER: &str = "x-kube-dc-export-after";
/// The text that starts an export's trailer line, before its row count.
pub const TRAILER_PREFIX: &str = "#kube-dc-export-end rows=";

/// The hash of an event: SHA-256 over the previous event's hash, the event
/// time in epoch milliseconds and the event's JSON text.
pub fn chain_hash(prev: &str, ts_ms: i64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(ts_ms.to_string().as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    format!("{:x}", h.finalize())
}

/// A cell as it may be written to a CSV file that a spreadsheet will open:
/// one starting with `=`, `+`, `-`, `@`, tab or carriage return would be
/// taken for a formula, so it is prefixed with `'` (OWASP's advice).
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// Fields a query adds to every listed event (its place in the chain); no
/// event's own text has them.
pub const QUERY_FIELDS: [&str; 3] = ["seq", "prev_hash", "hash"];

/// The text of one event field for a CSV cell (before neutralisation).
pub fn field_text(body: &Map<String, Value>, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// What an offline check of an exported CSV found.
#[derive(Debug, Default, PartialEq)]
pub struct ExportCheck {
    /// Rows whose hash matched their event.
    pub verified: usize,
    /// File lines of rows whose `prev_hash` is not the previous row's
    /// `hash`: rows are missing before them (a filtered export has such
    /// gaps by design).
    pub gaps: Vec<usize>,
    /// Whether the first row is the organization's first event.
    pub from_genesis: bool,
    /// File lines (1-based; the header is line 1) of rows that fail, with
    /// why.
    pub failures: Vec<(usize, String)>,
    /// The last row's `hash` in chain order: a later export continues this
    /// file when its first `prev_hash` equals it.
    pub last_hash: Option<String>,
    /// The first row's `prev_hash`: where this file's chain starts.
    pub first_prev_hash: Option<String>,
    /// How many rows it holds.
    pub rows: usize,
    /// The file line of the last row in chain order.
    pub last_line: Option<usize>,
    /// The last row's `org` column, when the file has one.
    pub org: Option<String>,
    /// The file line of the row whose hash [`check_export_reaching`] looked
    /// for, and how many rows there are up to and including it.
    pub reached: Option<(usize, usize)>,
}

/// A reader that notes the offset of every `\n` it passes on, for the
/// rows still to be numbered ([`Lines`]).
struct Newlines<R> {
    inner: R,
    at: u64,
    seen: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>,
}

impl<R: std::io::Read> std::io::Read for Newlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = self.seen.borrow_mut();
        let at = self.at;
        seen.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| at + i as u64),
        );
        self.at += n as u64;
        Ok(n)
    }
}

/// Checks an audit CSV export: every row's hash against its event and
/// time, every displayed column against the event, and the links between
/// rows.
pub fn check_export(input: impl std::io::Read) -> Result<ExportCheck, String> {
    check_export_reaching(input, None)
}

/// Rows looked at before deciding which way the file's chain runs.
const LOOKAHEAD: usize = 64;

/// [`check_export`], also noting where the row whose hash is `want` is (a
/// checkpoint's event): [`ExportCheck::reached`].
///
/// The file is read once, row by row, in constant memory: exports run
/// oldest first and listings (`-o csv`) newest first, and which way the
/// chain runs is decided on the first rows.
pub fn check_export_reaching(
    input: impl std::io::Read,
    want: Option<&str>,
) -> Result<ExportCheck, String> {
    let mut rows = Lines::open(input)?;
    let header = rows.header.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            format!("the file has no {name:?} column: it is not a kube-dc audit export with hashes")
        })
    };
    let cols = Columns {
        ts: col("ts")?,
        prev: col("prev_hash")?,
        hash: col("hash")?,
        event: col("event")?,
    };
    let org_col = header.iter().position(|h| h == "org");
    let mut first: Vec<Row> = Vec::with_capacity(LOOKAHEAD);
    while first.len() < LOOKAHEAD {
        match rows.next_row()? {
            Some(r) => first.push(r),
            None => break,
        }
    }
    let link = |a: &csv::StringRecord, b: &csv::StringRecord| a.get(cols.hash) == b.get(cols.prev);
    let forward = first.windows(2).filter(|w| link(&w[0].1, &w[1].1)).count();
    let backward = first.windows(2).filter(|w| link(&w[1].1, &w[0].1)).count();
    let mut walk = Walk {
        header: &header,
        cols: &cols,
        org_col,
        want,
        newest_first: backward > forward,
        out: ExportCheck::default(),
        before: None,
        reached_at: None,
    };
    for r in first {
        walk.row(r);
    }
    while let Some(r) = rows.next_row()? {
        walk.row(r);
    }
    Ok(walk.finish())
}

/// The rows as they are read, in either direction of the chain.
struct Walk<'a> {
    header: &'a [String],
    cols: &'a Columns,
    org_col: Option<usize>,
    want: Option<&'a str>,
    /// A listing: each row is the one before the previous in the chain.
    newest_first: bool,
    out: ExportCheck,
    /// The previous row read: its line, hash and prev_hash.
    before: Option<(usize, String, String)>,
    /// The read index of the wanted row.
    reached_at: Option<(usize, usize)>,
}

impl Walk<'_> {
    fn row(&mut self, (line, rec): Row) {
        let get = |i: usize| rec.get(i).unwrap_or("");
        let (prev, hash) = (get(self.cols.prev), get(self.cols.hash));
        let out = &mut self.out;
        match &self.before {
            // The chain's first row: where the file starts.
            None if !self.newest_first => {
                out.from_genesis = prev == GENESIS_HASH;
                out.first_prev_hash = Some(prev.to_string());
            }
            // A listing's first row is the chain's last.
            None => {
                out.last_hash = Some(hash.to_string());
                out.last_line = Some(line);
                out.org = self.org_col.map(|i| get(i).to_string());
            }
            Some((_, h, _)) if !self.newest_first && h != prev => out.gaps.push(line),
            // Newest first: the row read before is the next in the chain.
            Some((l, _, p)) if self.newest_first && p != hash => out.gaps.push(*l),
            Some(_) => {}
        }
        if !self.newest_first {
            out.last_hash = Some(hash.to_string());
            out.last_line = Some(line);
            if let Some(i) = self.org_col {
                out.org = Some(get(i).to_string());
            }
        }
        if self.want.is_some_and(|w| w == hash) {
            self.reached_at = Some((line, out.rows));
        }
        out.rows += 1;
        match check_row(self.header, self.cols, &rec) {
            Ok(()) => out.verified += 1,
            Err(why) => out.failures.push((line, why)),
        }
        self.before = Some((line, hash.to_string(), prev.to_string()));
    }

    fn finish(mut self) -> ExportCheck {
        let rows = self.out.rows;
        if self.newest_first {
            // The last row read is the chain's first; gaps and failures in
            // chain order (oldest first), as for an export.
            if let Some((_, _, prev)) = &self.before {
                self.out.from_genesis = prev == GENESIS_HASH;
                self.out.first_prev_hash = Some(prev.clone());
            }
            self.out.gaps.reverse();
            self.out.failures.reverse();
            self.out.reached = self.reached_at.map(|(line, i)| (line, rows - i));
        } else {
            self.out.reached = self.reached_at.map(|(line, i)| (line, i + 1));
        }
        self.out
    }
}

/// A row of an export and the file line it starts on.
type Row = (usize, csv::StringRecord);

/// Where an export's chain columns are.
struct Columns {
    ts: usize,
    prev: usize,
    hash: usize,
    event: usize,
}

/// The header, then the rows one at a time, each with the file line it
/// starts on (a quoted value may span lines), counted from the newlines up
/// to its first byte: the csv crate's own line count is one off in CRLF
/// files, where a row's position is the `\n` of the `\r\n` before it.
struct Lines<R: std::io::Read> {
    rd: csv::Reader<Newlines<R>>,
    newlines: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>,
    /// Newlines before the offsets still in `newlines`.
    counted: usize,
    read: usize,
    header: Vec<String>,
}

impl<R: std::io::Read> Lines<R> {
    fn open(input: R) -> Result<Self, String> {
        let newlines = std::rc::Rc::new(std::cell::RefCell::new(Default::default()));
        let mut rd = csv::Reader::from_reader(Newlines {
            inner: input,
            at: 0,
            seen: newlines.clone(),
        });
        let header: Vec<String> = rd
            .headers()
            .map_err(|e| format!("cannot read the header row: {e}"))?
            .iter()
            .map(str::to_string)
            .collect();
        Ok(Self {
            rd,
            newlines,
            counted: 0,
            read: 0,
            header,
        })
    }

    fn next_row(&mut self) -> Result<Option<Row>, String> {
        let mut rec = csv::StringRecord::new();
        let more = self
            .rd
            .read_record(&mut rec)
            .map_err(|e| format!("row {}: {e}", self.read + 1))?;
        if !more {
            return Ok(None);
        }
        self.read += 1;
        let line = match rec.position() {
            Some(p) => {
                let mut seen = self.newlines.borrow_mut();
                while seen.front().is_some_and(|&at| at <= p.byte()) {
                    seen.pop_front();
                    self.counted += 1;
                }
                1 + self.counted
            }
            None => self.read + 1,
        };
        Ok(Some((line, rec)))
    }
}

/// One row against its hash: the time readable, the hash over its time,
/// previous hash and event, and every other column what the event says.
fn check_row(header: &[String], c: &Columns, rec: &csv::StringRecord) -> Result<(), String> {
    let get = |i: usize| rec.get(i).unwrap_or("");
    let (prev, hash, event) = (get(c.prev), get(c.hash), get(c.event));
    let ts_ms = parse_ts_ms(get(c.ts))
        .ok_or_else(|| format!("ts {:?} is not an RFC 3339 time", get(c.ts)))?;
    if chain_hash(prev, ts_ms, event) != hash {
        return Err("its event, time or prev_hash does not match its hash".into());
    }
    let body: Map<String, Value> =
        serde_json::from_str(event).map_err(|_| "its event is not a JSON object".to_string())?;
    let edited: Vec<&str> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| ![c.ts, c.prev, c.hash, c.event].contains(i) && !h.is_empty())
        .filter(|(i, h)| csv_cell(&field_text(&body, h)) != get(*i))
        .map(|(_, h)| h.as_str())
        .collect();
    if !edited.is_empty() {
        return Err(format!(
            "column {} differs from its hashed event",
            edited.join(", ")
        ));
    }
    Ok(())
}

fn parse_ts_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The link is SHA-256 of `prev`, the time and the body, one per line,
    /// in lowercase hex: what any verifier outside this code recomputes.
    #[test]
    fn a_link_is_the_sha256_of_prev_time_and_body_in_hex() {
        assert_eq!(
            chain_hash("0000", 1_700_000_000_000, r#"{"a":1}"#),
            "83247e16cd970380932874d7b8d7b6d100099d597b1830a276e8154a4c9105a7"
        );
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(bad).starts_with('\''), "{bad:?}");
        }
        for ok in ["alice", "", "1", "{\"a\":1}", "secrets.value.read"] {
            assert_eq!(csv_cell(ok), ok);
        }
    }

    fn export(rows: &[(i64, &str)]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_COLUMNS).unwrap();
        let mut prev = GENESIS_HASH.to_string();
        for (ts, body) in rows {
            let hash = chain_hash(&prev, *ts, body);
            let b: Map<String, Value> = serde_json::from_str(body).unwrap();
            let ts_text = time::OffsetDateTime::from_unix_timestamp_nanos(*ts as i128 * 1_000_000)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let mut rec: Vec<String> = vec![ts_text];
            for c in &CSV_COLUMNS[1..CSV_COLUMNS.len() - 3] {
                rec.push(csv_cell(&field_text(&b, c)).into_owned());
            }
            rec.extend([prev.clone(), hash.clone(), body.to_string()]);
            w.write_record(&rec).unwrap();
            prev = hash;
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn a_row_is_found_and_counted_the_same_in_either_order_and_gaps_named_in_chain_order() {
        let rows: Vec<(i64, String)> = (1..=200)
            .map(|i| {
                (
                    1_700_000_000_000 + i,
                    format!(r#"{{"action":"a{i}","org":"acme"}}"#),
                )
            })
            .collect();
        let refs: Vec<(i64, &str)> = rows.iter().map(|(t, b)| (*t, b.as_str())).collect();
        let text = export(&refs);
        let lines: Vec<&str> = text.lines().collect();
        // The hash of the 150th event: its row's second-to-last hash column.
        let want = {
            let mut rd = csv::Reader::from_reader(text.as_bytes());
            let rec = rd.records().nth(149).unwrap().unwrap();
            rec.get(CSV_COLUMNS.len() - 2).unwrap().to_string()
        };
        let fwd = check_export_reaching(text.as_bytes(), Some(&want)).unwrap();
        assert_eq!(fwd.reached, Some((151, 150)), "{fwd:?}");
        assert_eq!(
            (fwd.rows, fwd.from_genesis, fwd.org.as_deref()),
            (200, true, Some("acme"))
        );
        // Newest first (a listing): the same row, the same count.
        let mut rev = lines.clone();
        rev[1..].reverse();
        let bwd = check_export_reaching(rev.join("\n").as_bytes(), Some(&want)).unwrap();
        assert_eq!(bwd.reached, Some((52, 150)), "{bwd:?}");
        assert_eq!(
            (bwd.last_hash, bwd.first_prev_hash),
            (fwd.last_hash, fwd.first_prev_hash)
        );
        assert!(bwd.gaps.is_empty() && bwd.from_genesis);
        // Two rows cut, newest first: the gaps named at the rows after them
        // in chain order, oldest first, as for an export.
        let cut: Vec<&str> = rev
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 10 && *i != 100)
            .map(|(_, l)| *l)
            .collect();
        let g = check_export(cut.join("\n").as_bytes()).unwrap();
        assert_eq!(g.gaps, vec![99, 10], "{g:?}");
    }

    #[test]
    fn an_export_verifies_and_edits_are_found() {
        let text = export(&[
            (1_700_000_000_001, r#"{"action":"a","actor":"=evil()"}"#),
            (1_700_000_000_002, r#"{"action":"b","actor":"bob"}"#),
            (1_700_000_000_003, r#"{"action":"c","actor":"carol"}"#),
        ]);
        let ok = check_export(text.as_bytes()).unwrap();
        assert_eq!(
            (ok.verified, ok.from_genesis, ok.gaps.len()),
            (3, true, 0),
            "{ok:?}"
        );
        // A displayed cell edited.
        let edited = text.replace(",bob,", ",mallory,");
        let c = check_export(edited.as_bytes()).unwrap();
        assert_eq!(c.failures.len(), 1, "{c:?}");
        assert_eq!(c.failures[0].0, 3, "bob's row is file line 3: {c:?}");
        // The same file with CRLF line ends (saved on Windows, or by a
        // spreadsheet): the same line named.
        let crlf = edited.replace('\n', "\r\n");
        let c = check_export(crlf.as_bytes()).unwrap();
        assert_eq!(c.failures.len(), 1, "{c:?}");
        assert_eq!(c.failures[0].0, 3, "CRLF: {c:?}");
        // Newest first (a listing) verifies the same.
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1..].reverse();
        let c = check_export(lines.join("\n").as_bytes()).unwrap();
        assert_eq!((c.verified, c.gaps.len()), (3, 0), "{c:?}");
        // A row removed: a gap.
        let lines: Vec<&str> = text.lines().collect();
        let cut = [lines[0], lines[1], lines[3]].join("\n");
        let c = check_export(cut.as_bytes()).unwrap();
        // The gap is before file line 3 (the header is line 1).
        assert_eq!((c.verified, c.gaps.clone()), (2, vec![3]));
        // An event edited (its hash no longer matches).
        let forged = text.replace(r#""action"":""c"""#, r#""action"":""d"""#);
        let c = check_export(forged.as_bytes()).unwrap();
        assert_eq!(c.failures.len(), 1, "{c:?}");
    }
}
