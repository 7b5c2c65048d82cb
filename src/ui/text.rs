//! Text as the view shows it: values with their own lines, control
//! characters made visible, and lines wrapped to the width (by the view
//! itself, so that it knows how many rows a detail takes and can scroll).

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

/// A value's lines as they are: split at its newlines, every other control
/// character (tab, carriage return, escape …) written out as `\t`, `\r`,
/// `\u{1b}`, so the terminal never acts on it and the reader sees it.
pub fn value_lines(v: &str) -> Vec<String> {
    let mut lines: Vec<String> = v
        .split('\n')
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            for c in l.chars() {
                if c.is_control() {
                    out.push_str(&c.escape_default().to_string());
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect();
    // "a\n" is one line that ends with a newline, not two lines.
    if lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// One revealed value as rows: `KEY = value` for a one-line value; for a
/// multi-line one, `KEY` with how many lines, then each line indented.
pub fn value_rows(key: &str, v: &str, style: Style) -> Vec<Line<'static>> {
    let key = crate::output::sanitize(key);
    let lines = value_lines(v);
    let newline = v.ends_with('\n');
    if lines.len() == 1 && !newline {
        return vec![Line::from(Span::styled(
            format!("   {key} = {}", lines[0]),
            style,
        ))];
    }
    let mut out = vec![Line::from(Span::styled(
        format!(
            "   {key} ({} lines{})",
            lines.len(),
            if newline { ", ends with a newline" } else { "" }
        ),
        style,
    ))];
    out.extend(
        lines
            .into_iter()
            .map(|l| Line::from(Span::styled(format!("     {l}"), style))),
    );
    out
}

/// Wraps `line` to `width` columns, after a space where there is one
/// (no character is dropped: the space ends the row), else anywhere;
/// continuation rows start with `indent` spaces. Styles are kept.
pub fn wrap(line: Line<'static>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 8);
    if line.width() <= width {
        return vec![line];
    }
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut rows: Vec<Vec<(char, Style)>> = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut used = 0;
    for (c, st) in chars {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            // Break after the last space past the indent, if any (so the
            // rest fits on the next row, after its indent).
            let cut = row
                .iter()
                .rposition(|(ch, _)| *ch == ' ')
                .filter(|&i| i >= indent && i + 1 < row.len());
            let rest: Vec<(char, Style)> = match cut {
                Some(i) => row.split_off(i + 1),
                None => Vec::new(),
            };
            rows.push(std::mem::take(&mut row));
            row = std::iter::repeat_n((' ', Style::default()), indent)
                .chain(rest)
                .collect();
            used = row.iter().map(|(ch, _)| ch.width().unwrap_or(0)).sum();
        }
        row.push((c, st));
        used += w;
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows.into_iter().map(spans_of).collect()
}

/// Characters back into spans, one per run of the same style.
fn spans_of(row: Vec<(char, Style)>) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style = None;
    for (c, st) in row {
        if style.is_some_and(|s| s != st) {
            spans.push(Span::styled(
                std::mem::take(&mut text),
                style.unwrap_or_default(),
            ));
        }
        style = Some(st);
        text.push(c);
    }
    if !text.is_empty() {
        spans.push(Span::styled(text, style.unwrap_or_default()));
    }
    Line::from(spans)
}

/// Every line wrapped to `width`.
pub fn wrap_all(lines: Vec<Line<'static>>, width: usize, indent: usize) -> Vec<Line<'static>> {
    lines
        .into_iter()
        .flat_map(|l| wrap(l, width, indent))
        .collect()
}

/// The keys that fit in `width`: the first ones that fit, and always the
/// last `keep` (help, back), so that a narrow terminal still says how to
/// get help and how to leave.
pub fn fit_keys(keys: &[&str], keep: usize, width: usize) -> String {
    let (head, tail) = keys.split_at(keys.len().saturating_sub(keep));
    let tail = tail.join("  ");
    let mut out = String::new();
    for k in head {
        let more = out.chars().count() + k.chars().count() + 2;
        if more + tail.chars().count() + 1 > width {
            break;
        }
        out.push_str(k);
        out.push_str("  ");
    }
    out.push_str(&tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_pem_keeps_its_lines_and_controls_are_written_out() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(
            text(&value_rows("tls.crt", pem, Style::default())),
            [
                "   tls.crt (3 lines, ends with a newline)",
                "     -----BEGIN CERTIFICATE-----",
                "     MIIB",
                "     -----END CERTIFICATE-----",
            ]
        );
        assert_eq!(
            text(&value_rows("K", "a\tb\r\u{1b}[2J", Style::default())),
            [r"   K = a\tb\r\u{1b}[2J"]
        );
        assert_eq!(value_lines("x\n\ny"), ["x", "", "y"]);
        assert_eq!(
            text(&value_rows("K", "", Style::default())),
            ["   K = "],
            "an empty value is one empty line"
        );
    }

    #[test]
    fn long_lines_wrap_with_an_indent_and_keep_every_character() {
        let long = "x".repeat(50);
        let rows = wrap(Line::from(format!("   K = {long}")), 20, 5);
        let shown = text(&rows);
        assert!(shown.iter().all(|r| r.chars().count() <= 20), "{shown:?}");
        let joined: String = shown.iter().map(|r| r.replace(' ', "")).collect();
        assert_eq!(joined, format!("K={long}"));
        assert!(shown[1].starts_with("     x"));
    }

    #[test]
    fn words_are_not_cut_when_a_space_allows() {
        let rows = text(&wrap(
            Line::from(" Delete secret api-key and its projected Secret? y/N"),
            30,
            3,
        ));
        assert_eq!(
            rows,
            [
                " Delete secret api-key and ",
                "   its projected Secret? y/N"
            ]
        );
    }

    #[test]
    fn narrow_key_lines_keep_help_and_back() {
        let keys = ["r reveal", "c copy", "u used by", "? help", "q back"];
        assert_eq!(
            fit_keys(&keys, 2, 80),
            "r reveal  c copy  u used by  ? help  q back"
        );
        assert_eq!(fit_keys(&keys, 2, 30), "r reveal  ? help  q back");
        assert_eq!(fit_keys(&keys, 2, 10), "? help  q back");
    }
}
