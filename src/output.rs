//! The one place that writes to stdout and stderr (clippy enforces it).
//!
//! Everything the CLI prints: data to stdout through the [`Printer`],
//! messages to stderr. Server-provided text is stripped of terminal control
//! sequences before it reaches a table or a message.

#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

pub use crate::format::{OutputArg, OutputFileParser, OutputFormat, OutputParser};
use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde_json::Value;

use crate::error::{CliError, Result};

/// Removes terminal control sequences (ESC … sequences, other C0 and C1
/// controls except newline and tab) from text that came from a server.
pub fn sanitize(text: &str) -> String {
    sanitized(text).into_owned()
}

/// How many terminal columns `text` takes: its length when it is printable
/// ASCII (nearly every cell; the Unicode tables cost a lookup per
/// character), else its Unicode width.
fn columns(text: &str) -> usize {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        text.len()
    } else {
        unicode_width::UnicodeWidthStr::width(text)
    }
}

/// [`sanitize`], borrowing `text` when it has nothing to strip (most text:
/// a table of 10,000 rows then copies none of its cells).
pub fn sanitized(text: &str) -> Cow<'_, str> {
    // Most text has no control character at all: no C0 byte, no DEL, and
    // no 0xC2 lead byte (every C1 control starts with it in UTF-8).
    if text.bytes().all(|b| b >= 0x20 && b != 0x7f && b != 0xc2) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final; OSC: ESC ] … BEL or ESC \; else one char.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for n in chars.by_ref() {
                            if ('\u{40}'..='\u{7e}').contains(&n) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(n) = chars.next() {
                            if n == '\u{7}' {
                                break;
                            }
                            if n == '\u{1b}' && chars.peek() == Some(&'\\') {
                                chars.next();
                                break;
                            }
                        }
                    }
                    Some(_) => {
                        chars.next();
                    }
                    None => {}
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A value shown in a table: control characters made visible, never
/// executed by the terminal.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// The terminal itself, for `kube-dc ui` (which draws there, in the
/// alternate screen, rather than printing).
pub fn terminal() -> std::io::Stdout {
    std::io::stdout()
}

/// One cell of [`Printer::print_grid`].
pub struct GridCell<'a> {
    pub text: Cow<'a, str>,
    pub color: Option<Color>,
}

impl From<String> for GridCell<'_> {
    fn from(text: String) -> Self {
        Self {
            text: Cow::Owned(text),
            color: None,
        }
    }
}

impl<'a> From<Cow<'a, str>> for GridCell<'a> {
    fn from(text: Cow<'a, str>) -> Self {
        Self { text, color: None }
    }
}

fn crossterm_color(c: Color) -> crossterm::style::Color {
    use crossterm::style::Color as C;
    match c {
        Color::Black => C::Black,
        Color::Red => C::Red,
        Color::DarkRed => C::DarkRed,
        Color::Green => C::Green,
        Color::DarkGreen => C::DarkGreen,
        Color::Yellow => C::Yellow,
        Color::DarkYellow => C::DarkYellow,
        Color::Blue => C::Blue,
        Color::DarkBlue => C::DarkBlue,
        Color::Magenta => C::Magenta,
        Color::DarkMagenta => C::DarkMagenta,
        Color::Cyan => C::Cyan,
        Color::DarkCyan => C::DarkCyan,
        Color::White => C::White,
        Color::Grey => C::Grey,
        Color::DarkGrey => C::DarkGrey,
        _ => C::Reset,
    }
}

pub struct Printer {
    /// `-o`'s format; see [`Printer::format`].
    format: std::cell::Cell<OutputFormat>,
    /// `-o` was typed; a format from `KUBE_DC_OUTPUT` is a preference, and a
    /// command that cannot print it prints its own default instead.
    explicit: bool,
    pub color: bool,
    pub stderr_is_tty: bool,
    /// `-o jsonpath=TEMPLATE`'s template.
    pub jsonpath: Option<String>,
    /// `--dry-run`: what is printed is the plan, in any format.
    pub plan_only: bool,
}

impl Printer {
    pub fn new(output: Option<OutputArg>, no_color: bool, explicit: bool) -> Self {
        let no_color = no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (format, jsonpath) = match output {
            Some(o) => (Some(o.format), o.jsonpath),
            None => (None, None),
        };
        Self {
            jsonpath,
            format: std::cell::Cell::new(format.unwrap_or(OutputFormat::Table)),
            explicit,
            color: !no_color && std::io::stdout().is_terminal(),
            stderr_is_tty: std::io::stderr().is_terminal(),
            plan_only: false,
        }
    }

    pub fn table(&self, headers: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        if !headers.is_empty() {
            t.set_header(headers.iter().map(Cell::new));
        }
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t
    }

    pub fn colored(&self, text: &str, color: Color) -> Cell {
        let c = Cell::new(text);
        if self.color { c.fg(color) } else { c }
    }

    pub fn print_table(&self, t: &Table) -> Result<()> {
        let mut out = std::io::stdout().lock();
        for line in t.to_string().lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        out.flush()?;
        Ok(())
    }

    /// Prints rows as [`Printer::table`] would draw them (no borders, one
    /// space of padding each side, lines trimmed), without the table's
    /// per-cell bookkeeping: `secrets list` draws 10,000 rows this way.
    /// Cells are single-line, already sanitized text.
    pub fn print_grid<const N: usize>(
        &self,
        headers: [&str; N],
        rows: &[[GridCell; N]],
    ) -> Result<()> {
        let mut widths = headers.map(columns);
        for row in rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(columns(&c.text));
            }
        }
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        let mut line = String::new();
        let mut draw = |cells: [(&str, Option<Color>); N]| -> std::io::Result<()> {
            line.clear();
            for ((text, color), w) in cells.into_iter().zip(widths) {
                let pad = w - columns(text).min(w);
                match color.filter(|_| self.color) {
                    Some(c) => {
                        let cell = format!(" {text}{:pad$} ", "");
                        use crossterm::style::Stylize;
                        line.push_str(&cell.with(crossterm_color(c)).to_string());
                    }
                    None => {
                        line.push(' ');
                        line.push_str(text);
                        line.extend(std::iter::repeat_n(' ', pad + 1));
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())
        };
        draw(headers.map(|h| (h, None)))?;
        for row in rows {
            draw(std::array::from_fn(|i| (&*row[i].text, row[i].color)))?;
        }
        out.flush()?;
        Ok(())
    }

    /// A document as the chosen format renders it: JSON (pretty, one
    /// trailing newline), YAML, or a `-o jsonpath` template's text.
    pub fn render_doc(&self, v: &Value) -> Result<Vec<u8>> {
        match (self.format(), &self.jsonpath) {
            (OutputFormat::JsonPath, Some(t)) => Ok(crate::jsonpath::render(t, v)?.into_bytes()),
            (OutputFormat::Yaml, _) => serde_norway::to_string(v)
                .map(String::into_bytes)
                .map_err(|e| CliError::other(e.to_string())),
            _ => {
                let mut out =
                    serde_json::to_vec_pretty(v).map_err(|e| CliError::other(e.to_string()))?;
                out.push(b'\n');
                Ok(out)
            }
        }
    }

    /// Prints a document as JSON or YAML (the raw server document, so fields
    /// this client does not know are kept).
    pub fn print_doc(&self, v: &Value) -> Result<()> {
        raw_stdout(&self.render_doc(v)?)
    }

    pub fn is_machine(&self) -> bool {
        matches!(
            self.format(),
            OutputFormat::Json | OutputFormat::Yaml | OutputFormat::JsonPath
        )
    }

    /// The output format (after [`Printer::require`], one the command
    /// prints).
    pub fn format(&self) -> OutputFormat {
        self.format.get()
    }

    /// `-o` was typed on the command line (not taken from `KUBE_DC_OUTPUT`).
    pub fn explicit(&self) -> bool {
        self.explicit
    }

    /// Refuses a format a command cannot produce when `-o` asked for it; a
    /// format from `KUBE_DC_OUTPUT` that the command cannot produce gives
    /// way to the command's default (the table, or the first it prints).
    pub fn require(&self, allowed: &[OutputFormat], command: &str) -> Result<()> {
        let format = self.format();
        // A template over the JSON document, wherever there is one.
        let json_path = format == OutputFormat::JsonPath && allowed.contains(&OutputFormat::Json);
        if allowed.contains(&format) || json_path || self.plan_only {
            return Ok(());
        }
        if !self.explicit {
            let fallback = if allowed.contains(&OutputFormat::Table) {
                OutputFormat::Table
            } else {
                allowed.first().copied().unwrap_or(OutputFormat::Table)
            };
            self.format.set(fallback);
            return Ok(());
        }
        let names: Vec<String> = allowed
            .iter()
            .map(|f| format!("{f:?}").to_lowercase())
            .collect();
        if allowed == [OutputFormat::Table] {
            return Err(CliError::usage(format!(
                "{command} cannot print -o {}: it prints no document of its own",
                format!("{format:?}").to_lowercase()
            ))
            .hint("leave out -o"));
        }
        Err(CliError::usage(format!(
            "{command} cannot print -o {}; use one of: {}",
            format!("{format:?}").to_lowercase(),
            names.join(", ")
        )))
    }

    pub fn line(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    /// Bytes to stdout as they are (exports, dotenv, one raw value).
    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        raw_stdout(bytes)
    }

    /// Stdout, for formats written row by row (CSV).
    pub fn stdout(&self) -> impl Write {
        std::io::stdout().lock()
    }

    pub fn stdout_is_terminal(&self) -> bool {
        std::io::stdout().is_terminal()
    }
}

/// Where a command's output goes: stdout, or a file that is complete or
/// absent (written beside its place and renamed over it: `--output-file`).
pub enum Sink<'a> {
    Stdout,
    File(&'a std::path::Path),
}

impl<'a> Sink<'a> {
    /// `--output-file`, or stdout without it.
    pub fn of(path: Option<&'a std::path::Path>) -> Self {
        path.map_or(Sink::Stdout, Sink::File)
    }

    /// Writes the whole output.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        match self {
            Sink::Stdout => raw_stdout(bytes),
            Sink::File(path) => {
                let mut f = crate::atomic::AtomicFile::create(path)?;
                f.write_all(bytes)?;
                f.finish()
            }
        }
    }
}

// Everything else the CLI says goes to stderr, through these.

/// A message for people, on stderr.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// The CLI's own stdout, for relaying a child's output (`secrets run`).
pub fn relay_stdout() -> std::io::Stdout {
    std::io::stdout()
}

/// The CLI's own stderr, for relaying a child's output (`secrets run`).
pub fn relay_stderr() -> std::io::Stderr {
    std::io::stderr()
}

/// Bytes to stdout as they are (for code without a [`Printer`]).
pub fn raw_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

pub fn warn(text: &str) {
    eprintln!("warning: {text}");
}

/// An error and its hints, as the last thing a failed command says.
pub fn error(message: &str, hints: &[String]) {
    eprintln!("error: {message}");
    for h in hints {
        eprintln!("hint: {h}");
    }
}

/// One line of `-v` tracing.
pub fn trace(text: &str) {
    eprintln!("{text}");
}

/// A progress line on stderr (indicatif: throttled redraws, cleared when
/// dropped, so an error never leaves a half line behind). Hidden unless
/// `shown`.
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    pub fn start(shown: bool) -> Self {
        let bar = if shown {
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Progress(bar)
    }

    pub fn update(&self, message: String) {
        self.0.set_message(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks a question on stderr and reads the answer line from stdin.
pub fn ask(question: &str) -> Result<String> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut answer)?;
    Ok(answer)
}

/// "3m", "2h", "5d" since an RFC 3339 time, as kubectl shows ages.
pub fn age(rfc3339: Option<&str>) -> String {
    age_at(crate::clock::utc(), rfc3339)
}

/// [`age`] as of `now` (a table reads the clock once, not once per row).
pub fn age_at(now: time::OffsetDateTime, rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return "-".into();
    };
    let secs = (now - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_unicode_width() {
        for text in [
            "",
            "db-password",
            "● Ready",
            "日本語",
            "e\u{301}",
            "tab\there",
        ] {
            assert_eq!(
                columns(text),
                unicode_width::UnicodeWidthStr::width(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn control_sequences_are_stripped() {
        assert_eq!(sanitize("ok\u{1b}[31mred\u{1b}[0m"), "okred");
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(sanitize("bell\u{7} del\u{7f} c1\u{9b}x"), "bell del c1x");
        assert_eq!(sanitize("line\nnext\ttab"), "line\nnext\ttab");
        // Plain text, and text with other non-ASCII, is kept as it is.
        assert_eq!(sanitize("secret-00042"), "secret-00042");
        assert_eq!(sanitize("© Grüße ✓"), "© Grüße ✓");
        assert_eq!(sanitize("x\u{85}y\u{9f}z"), "xyz");
        assert_eq!(escape_value("a\u{1b}[2J"), "a\\u{1b}[2J");
    }
}
