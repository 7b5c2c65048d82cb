//! Drawing the view: a title line, the open view, and a key line with the
//! last message. Colour only when the terminal gets it (`NO_COLOR` and
//! `--no-color` turn it off); every state is also written out in text.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row as TRow, Table, TableState};

use super::app::{App, Level, REVEAL_FOR, View};
use super::look::{Look, sync_cell};
use super::text::fit_keys;
use crate::output::{age, sanitize};

const LIST_KEYS: &[&str] = &[
    "↑↓ move",
    "Enter detail",
    "/ filter",
    "n new",
    "i import",
    "d delete",
    "t deleted",
    "u used by",
    "a audit",
    "e elevation",
    "R refresh",
    "? help",
    "q quit",
];
const DETAIL_KEYS: &[&str] = &[
    "r reveal",
    "c copy",
    "p put",
    "s sync",
    "v versions",
    "d delete",
    "u used by",
    "a audit",
    "PgDn scroll",
    "? help",
    "q back",
];
const VERSION_KEYS: &[&str] = &[
    "↑↓ select",
    "b roll back",
    "x destroy",
    "R refresh",
    "? help",
    "q back",
];
const DELETED_KEYS: &[&str] = &[
    "↑↓ select",
    "Enter restore",
    "R refresh",
    "? help",
    "q back",
];
const ELEVATION_KEYS: &[&str] = &[
    "e elevate (asks a reason)",
    "x release",
    "R refresh",
    "? help",
    "q back",
];
const BACK_KEYS: &[&str] = &["R refresh", "? help", "q back"];
const FORM_KEYS: &[&str] = &[
    "Tab/↑↓ field",
    "Space toggle",
    "←→ choose",
    "Ctrl-O value from file",
    "Ctrl-U clear",
    "Enter send",
    "Esc cancel",
];

fn title(app: &App) -> String {
    let view = match (app.view, &app.form) {
        (_, Some(f)) => sanitize(&f.title),
        (View::List, _) => "secrets".to_string(),
        (View::Deleted, _) => "deleted secrets".to_string(),
        (View::Help, _) => "help".to_string(),
        (v, _) => {
            let name = app.current().map(|r| r.name.as_str()).unwrap_or("-");
            let what = match v {
                View::Detail => "detail",
                View::UsedBy => "used by",
                View::Audit => "audit",
                View::Versions => "versions",
                _ => "elevation",
            };
            format!("{} · {what}", sanitize(name))
        }
    };
    let mut head = format!(
        " kube-dc · context {} · namespace {} · {view}",
        sanitize(&app.context),
        sanitize(&app.namespace)
    );
    if !app.filter.is_empty() && !app.filtering && matches!(app.view, View::List) {
        head.push_str(&format!(
            " · filter {:?} (Esc clears)",
            sanitize(&app.filter)
        ));
    }
    head
}

/// The status line: the last message, else what is revealed and for how
/// long, else why the refresh waits.
fn status(app: &App, look: &Look) -> Line<'static> {
    match (&app.message, &app.revealed) {
        (Some((m, Level::Error)), _) => {
            Line::from(Span::styled(format!(" {m}"), look.fg(Color::Red)))
        }
        (Some((m, Level::Info)), _) => Line::from(format!(" {m}")),
        (None, Some(r)) => {
            let left = r.at + REVEAL_FOR;
            let secs = left
                .saturating_duration_since(crate::clock::instant())
                .as_secs_f64()
                .ceil();
            Line::from(format!(
                " {} value(s) of version {} revealed (audited) · hidden in {secs:.0} s",
                r.values.len(),
                r.version
            ))
        }
        (None, None) => Line::from(app.held.map(|h| format!(" {h}")).unwrap_or_default()),
    }
}

pub fn draw(f: &mut Frame, app: &App, look: &Look) {
    let [top, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(f.area());
    f.render_widget(
        Paragraph::new(title(app)).style(Style::default().add_modifier(Modifier::BOLD)),
        top,
    );
    let (main, panel) = super::panels::bottom_panel(app, body, look);
    if let Some(form) = &app.form {
        super::form_view::form(f, main, form, look);
    } else {
        match app.view {
            View::List => list(f, main, app, look),
            View::Deleted => super::panels::deleted(f, main, app, look),
            View::Detail => super::detail::detail(f, main, app, look),
            View::Versions => super::panels::versions(f, main, app, look),
            View::UsedBy => super::panels::used_by(f, main, app),
            View::Audit => super::panels::audit(f, main, app, look),
            View::Elevation => super::panels::elevation(f, main, app, look),
            View::Help => super::panels::help(f, main),
        }
    }
    if let Some((area, lines)) = panel {
        f.render_widget(Paragraph::new(lines), area);
    }
    let width = usize::from(keys.width).saturating_sub(1);
    let hint = if let Some(c) = &app.confirm {
        match &c.expect {
            Some(_) => format!("type the name: {}▏  Enter confirm  Esc cancel", c.typed),
            None => "y yes  any other key: no".to_string(),
        }
    } else if app.filtering {
        format!("filter: {}▏  Enter keep  Esc clear", app.filter)
    } else if let Some(r) = &app.reason {
        format!("reason: {r}▏  Enter elevate  Esc cancel")
    } else if app.form.is_some() {
        fit_keys(FORM_KEYS, 2, width)
    } else {
        match app.view {
            View::List => fit_keys(LIST_KEYS, 2, width),
            View::Detail => fit_keys(DETAIL_KEYS, 2, width),
            View::Versions => fit_keys(VERSION_KEYS, 2, width),
            View::Deleted => fit_keys(DELETED_KEYS, 2, width),
            View::Elevation => fit_keys(ELEVATION_KEYS, 2, width),
            View::Help => "any key: back".to_string(),
            _ => fit_keys(BACK_KEYS, 2, width),
        }
    };
    f.render_widget(
        Paragraph::new(vec![status(app, look), Line::from(format!(" {hint}"))]),
        keys,
    );
}

/// The secrets list: header, rows with their sync cell, the selection and
/// the scroll position. Long: one table drawn in one place, its widths
/// and its rows computed together.
fn list(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let visible = app.visible();
    if visible.is_empty() {
        let text = if app.loaded_at.is_none() {
            "loading…".to_string()
        } else if app.problem.is_some() {
            "the list could not be loaded (why: below)".to_string()
        } else if app.filter.is_empty() {
            format!("no secrets in {}", sanitize(&app.namespace))
        } else {
            format!("no secret name contains {:?}", app.filter)
        };
        f.render_widget(Paragraph::new(format!(" {text}")), area);
        return;
    }
    // Columns sized to their content; on a narrow terminal the least
    // needed go first (UPDATED, TARGET, VERSION, TYPE), NAME and SYNC stay.
    let names: Vec<String> = visible.iter().map(|r| sanitize(&r.name)).collect();
    let targets: Vec<String> = visible.iter().map(|r| sanitize(&r.target)).collect();
    let widest = |v: &[String], min: usize| {
        v.iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
            .max(min)
    };
    let kinds = visible
        .iter()
        .map(|r| r.kind.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    // (header, width, drop order: higher goes first)
    let mut cols = vec![
        ("NAME", widest(&names, 4), 0),
        ("TYPE", kinds, 1),
        ("SYNC", 10, 0),
        ("TARGET", widest(&targets, 6), 3),
        ("VERSION", 7, 2),
        ("UPDATED", 7, 4),
    ];
    let room = usize::from(area.width).saturating_sub(2);
    let need = |cols: &[(&str, usize, u8)]| cols.iter().map(|c| c.1 + 2).sum::<usize>();
    while need(&cols) > room {
        match cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.2 > 0)
            .max_by_key(|(_, c)| c.2)
        {
            Some((i, _)) => {
                cols.remove(i);
            }
            None => break,
        }
    }
    let shown: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let rows = visible
        .iter()
        .zip(names)
        .zip(targets)
        .map(|((r, name), target)| {
            let cells: Vec<Span> = shown
                .iter()
                .map(|h| match *h {
                    "NAME" => Span::raw(name.clone()),
                    "TYPE" => Span::raw(sanitize(&r.kind)),
                    "SYNC" => sync_cell(r.sync, look),
                    "TARGET" => Span::raw(target.clone()),
                    "VERSION" => Span::raw(r.version.map_or("-".into(), |v| v.to_string())),
                    _ => Span::raw(age(r.updated.as_deref())),
                })
                .collect();
            TRow::new(cells)
        });
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|c| Constraint::Length(c.1 as u16))
        .collect();
    let table = Table::new(rows, widths)
        .header(TRow::new(shown.clone()).style(Style::default().add_modifier(Modifier::BOLD)))
        .column_spacing(2)
        .row_highlight_style(look.selected())
        .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
