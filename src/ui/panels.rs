//! The views beside the list and the detail: used by, audit, elevation,
//! and the key help.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row as TRow, Table, Wrap};

use super::app::App;
use super::look::{Look, field};
use crate::output::sanitize;

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
        ("↑ ↓  j k", "move (list), select a value (detail)"),
        ("g G  Home End", "first, last secret"),
        (
            "/",
            "filter the list by name (Enter keeps it, Esc clears it)",
        ),
        (
            "Enter",
            "the secret's detail: metadata, conditions, sync, versions, rotation",
        ),
        (
            "r",
            "reveal the values (audited; hidden again on refresh, on leaving, after 30 s)",
        ),
        (
            "c",
            "copy the selected value to the clipboard (OSC 52, works over SSH); never printed",
        ),
        (
            "u",
            "used by: the workloads that reference the synced Secret",
        ),
        ("a", "audit: the recent events of the secret"),
        (
            "e",
            "elevation (org admins): status; e again asks a reason and elevates, x releases",
        ),
        ("R", "refresh now (the list also refreshes on its own)"),
        ("?", "this help"),
        ("q  Esc", "back; quit from the list (Ctrl-C quits anywhere)"),
    ];
    let lines: Vec<Line> = keys.iter().map(|(k, what)| field(k, *what)).collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
