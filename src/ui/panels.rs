//! The views beside the list and the detail: used by, audit, elevation,
//! and the key help.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row as TRow, Table, TableState, Wrap};

use super::app::App;
use super::look::{Look, field};
use super::text::wrap_all;
use crate::output::{age, sanitize};

pub(super) fn used_by(f: &mut Frame, area: Rect, app: &App) {
    let Some(items) = &app.consumers else {
        f.render_widget(Paragraph::new(" loading…"), area);
        return;
    };
    if items.is_empty() {
        f.render_widget(
            Paragraph::new(" no workload references this secret's Secret"),
            area,
        );
        return;
    }
    let rows = items.iter().map(|c| {
        TRow::new(vec![
            sanitize(&c.kind),
            sanitize(&c.name),
            sanitize(&c.namespace),
            sanitize(&c.references.join(", ")),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Fill(2),
            Constraint::Fill(1),
            Constraint::Fill(3),
        ],
    )
    .header(
        TRow::new(["KIND", "NAME", "NAMESPACE", "REFERENCES"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    );
    f.render_widget(t, area);
}

pub(super) fn audit(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    if app.events.is_empty() {
        f.render_widget(Paragraph::new(" no recent events for this secret"), area);
        return;
    }
    let rows = app.events.iter().map(|e| {
        let result = match e.result.as_str() {
            "allowed" => Span::styled(e.result.clone(), look.fg(Color::Green)),
            "denied" => Span::styled(e.result.clone(), look.fg(Color::Yellow)),
            _ => Span::styled(e.result.clone(), look.fg(Color::Red)),
        };
        TRow::new(vec![
            Span::raw(e.time.clone()),
            Span::raw(e.action.clone()),
            Span::raw(e.actor.clone()),
            result,
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(20),
            Constraint::Fill(2),
            Constraint::Fill(1),
            Constraint::Length(8),
        ],
    )
    .header(
        TRow::new(["TIME", "ACTION", "ACTOR", "RESULT"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    );
    f.render_widget(t, area);
}

pub(super) fn elevation(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let lines = match &app.elevation {
        None => vec![Line::from(" loading…")],
        Some(st) => match (&st.grant, st.active) {
            (Some(g), true) => vec![
                Line::from(Span::styled(" ● elevated", look.fg(Color::Green))),
                field("Project", sanitize(&g.project)),
                field("Reason", sanitize(&g.reason)),
                field("Granted", sanitize(&g.granted_at)),
                field("Expires", sanitize(&g.expires_at)),
            ],
            _ => vec![
                Line::from(" ○ not elevated"),
                Line::from(
                    " Organization admins read values only inside a 15-minute, audited window: e opens one.",
                ),
            ],
        },
    };
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

pub(super) fn help(f: &mut Frame, area: Rect) {
    let keys = [
        (
            "↑ ↓  j k",
            "move; in the detail, select a revealed value (or scroll)",
        ),
        (
            "g G  Home End",
            "first, last; PgUp PgDn Space scroll the detail",
        ),
        (
            "/",
            "filter the list by name (Enter keeps it; Esc clears it, then quits)",
        ),
        (
            "Enter",
            "the secret's detail (metadata, sync, versions, rotation)",
        ),
        (
            "r",
            "reveal the values (audited); hidden after 30 s, on leaving and on R",
        ),
        (
            "c",
            "copy the selected value to the clipboard (OSC 52); never printed",
        ),
        (
            "n",
            "new secret: name, type, sync, initial values (typed masked, or a file)",
        ),
        (
            "i",
            "import a Kubernetes Secret (same or, audited, another namespace)",
        ),
        (
            "p",
            "put values: read (audited), change, write with check-and-set",
        ),
        (
            "s",
            "sync settings: enabled, target, refresh, keys (only changes sent)",
        ),
        (
            "d",
            "soft delete, after the workloads that use it (history kept)",
        ),
        (
            "D",
            "destroy, irreversibly (admin; type the name to confirm)",
        ),
        ("v", "versions: b rolls back to one, x destroys one"),
        ("t", "deleted secrets: Enter restores one (admin)"),
        (
            "u",
            "used by: the workloads that reference the synced Secret",
        ),
        ("a", "audit: the recent events of the secret"),
        (
            "e",
            "elevation (org admins): e asks a reason and elevates, x releases",
        ),
        ("R", "refresh now (and hide values)"),
        ("?", "this help"),
        (
            "q  Esc",
            "back; q quits from the list (Ctrl-C quits anywhere)",
        ),
    ];
    let lines: Vec<Line> = keys.iter().map(|(k, what)| field(k, *what)).collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// The versions of the secret, newest first.
pub(super) fn versions(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    if app.versions.is_empty() {
        f.render_widget(Paragraph::new(" no versions yet"), area);
        return;
    }
    // The newest version is the current one (KV v2's current_version).
    let current = app.versions.iter().map(|v| v.version).max();
    let rows = app.versions.iter().map(|v| {
        let state = if v.destroyed && Some(v.version) == current {
            Span::styled("current, destroyed", look.fg(Color::DarkGray))
        } else if v.destroyed {
            Span::styled("destroyed", look.fg(Color::DarkGray))
        } else if Some(v.version) == current {
            Span::styled("current", look.fg(Color::Green))
        } else {
            Span::raw("kept")
        };
        TRow::new(vec![
            Span::raw(v.version.to_string()),
            Span::raw(sanitize(&v.created_time)),
            state,
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(26),
            Constraint::Fill(1),
        ],
    )
    .header(
        TRow::new(["VERSION", "CREATED", "STATE"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(look.selected())
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(app.version_selected));
    f.render_stateful_widget(t, area, &mut state);
}

/// The soft-deleted secrets.
pub(super) fn deleted(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let Some(rows) = &app.deleted else {
        f.render_widget(Paragraph::new(" loading…"), area);
        return;
    };
    if rows.is_empty() {
        f.render_widget(Paragraph::new(" no deleted secrets"), area);
        return;
    }
    let t = Table::new(
        rows.iter().map(|r| {
            TRow::new(vec![
                sanitize(&r.name),
                sanitize(&r.kind),
                format!("{} ago", age(r.updated.as_deref())),
            ])
        }),
        [
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
    )
    .header(
        TRow::new(["NAME", "TYPE", "DELETED"]).style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(look.selected())
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(app.deleted_selected));
    f.render_stateful_widget(t, area, &mut state);
}

/// A question or an error under the view: its rows, wrapped, and the
/// area left above for the view.
pub(super) fn bottom_panel(
    app: &App,
    body: Rect,
    look: &Look,
) -> (Rect, Option<(Rect, Vec<Line<'static>>)>) {
    let width = usize::from(body.width).saturating_sub(1);
    let lines: Vec<Line<'static>> = if let Some(c) = &app.confirm {
        let mut l = vec![Line::from(Span::styled(
            format!(" {}", c.question),
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        l.extend(c.details.iter().map(|d| Line::from(format!("   {d}"))));
        l
    } else if let Some(p) = &app.problem {
        let mut l = vec![Line::from(Span::styled(
            format!(" error: {}", sanitize(&p.message)),
            look.fg(Color::Red),
        ))];
        l.extend(
            p.hints
                .iter()
                .map(|h| Line::from(format!(" hint: {}", sanitize(h)))),
        );
        l
    } else {
        return (body, None);
    };
    let mut lines = wrap_all(lines, width, 3);
    // A rule above, and at most two thirds of the body.
    let most = (usize::from(body.height) * 2 / 3).max(2);
    lines.truncate(most - 1);
    lines.insert(0, Line::from("─".repeat(width + 1)));
    let h = lines.len() as u16;
    let main = Rect {
        height: body.height.saturating_sub(h),
        ..body
    };
    let panel = Rect {
        y: body.y + main.height,
        height: h.min(body.height),
        ..body
    };
    (main, Some((panel, lines)))
}
