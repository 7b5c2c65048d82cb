//! Drawing a form: one row per field, then the value rows (masked), then
//! the last attempt's error; scrolled so that the cursor stays in sight.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::form::{Focus, Form, Input};
use super::look::Look;
use super::text::{wrap, wrap_all};
use crate::output::sanitize;

/// Bullets for a typed value: as many as its characters, at most 24.
fn masked(n: usize) -> String {
    "•".repeat(n.min(24))
}

/// An input: padded to a box of at least `min` columns, underlined (the
/// focused one reversed, with a cursor), so that an empty one is seen.
fn cell(text: String, focused: bool, min: usize, look: &Look) -> Span<'static> {
    let shown = if focused { format!("{text}▏") } else { text };
    let pad = min.saturating_sub(shown.chars().count());
    let boxed = format!("{shown}{}", " ".repeat(pad));
    if focused {
        Span::styled(boxed, look.selected())
    } else {
        Span::styled(boxed, Style::default().add_modifier(Modifier::UNDERLINED))
    }
}

/// Long: one form drawn top to bottom — its fields, its value rows, the
/// error and the keys — in the order the eye reads them; split, the layout
/// arithmetic would be passed between pieces.
pub(super) fn form(f: &mut Frame, area: Rect, form: &Form, look: &Look) {
    let width = usize::from(area.width).saturating_sub(1);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut cursor = 0;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = form.focus == Focus::Field(i);
        let (shown, min) = match &field.input {
            Input::Text(t) => (sanitize(t), 24),
            Input::Toggle(on) => (
                format!(
                    "[{}] {}",
                    if *on { "x" } else { " " },
                    if *on { "on" } else { "off" }
                ),
                0,
            ),
            Input::Choice(opts, at) => (format!("‹ {} ›", opts[*at]), 0),
        };
        if focused {
            cursor = rows.len();
        }
        rows.extend(wrap(
            Line::from(vec![
                Span::styled(format!(" {:<13} ", field.label), bold),
                cell(shown, focused, min, look),
                Span::styled(format!("  {}", field.note), look.fg(Color::DarkGray)),
            ]),
            width,
            15,
        ));
    }
    if form.has_rows {
        rows.push(Line::from(Span::styled(
            " Values: KEY = value, typed masked; Ctrl-O takes the value from a file (exactly as it is)",
            bold,
        )));
        for (i, r) in form.rows.iter().enumerate() {
            let value = match (&r.file, r.prefilled) {
                (Some(path), _) => format!("file: {}", sanitize(path)),
                (None, true) => format!(
                    "{} (as it is; type to replace)",
                    masked(r.value.expose().chars().count())
                ),
                (None, false) => masked(r.value.expose().chars().count()),
            };
            let on_key = form.focus == Focus::Key(i);
            let on_value = form.focus == Focus::Value(i);
            if on_key || on_value {
                cursor = rows.len();
            }
            rows.extend(wrap(
                Line::from(vec![
                    Span::raw("   "),
                    cell(sanitize(&r.key), on_key, 16, look),
                    Span::raw(" = "),
                    cell(value, on_value, 24, look),
                ]),
                width,
                22,
            ));
        }
    }
    if let Some(e) = &form.error {
        rows.push(Line::from(""));
        rows.extend(wrap_all(
            vec![Line::from(Span::styled(
                format!(" {}", sanitize(e)),
                look.fg(Color::Red),
            ))],
            width,
            1,
        ));
    }
    let height = usize::from(area.height).saturating_sub(1);
    // The error (at the end) matters most after a failed send; else the cursor.
    let scroll = if form.error.is_some() {
        rows.len().saturating_sub(height)
    } else {
        cursor.saturating_sub(height.saturating_sub(2))
    };
    f.render_widget(
        Paragraph::new(rows)
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(Block::default().borders(Borders::TOP)),
        area,
    );
}
