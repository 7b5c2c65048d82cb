//! The detail view of one secret: metadata, conditions, sync, versions,
//! rotation, and its values (masked until revealed).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::look::{Look, field, sync_cell};
use super::text::value_rows;
use crate::api::Secret;
use crate::listing::SyncState;
use crate::output::{age, sanitize};

pub(super) fn detail(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let Some(s) = &app.detail else {
        f.render_widget(Paragraph::new(" loading…"), area);
        return;
    };
    let mut lines = metadata(s, look);
    lines.extend(history(s, app));
    lines.push(Line::from(""));
    let width = usize::from(area.width).saturating_sub(1);
    let mut rows = super::text::wrap_all(lines, width, 16);
    let selected = values(&mut rows, app, look, width);
    scrolled(f, area, app, rows, selected);
}

/// Name, type, description, the sync (with its state) and its conditions.
fn metadata(s: &Secret, look: &Look) -> Vec<Line<'static>> {
    let mut lines = vec![
        field("Name", sanitize(&s.name)),
        field("Namespace", sanitize(&s.namespace)),
        field("Type", sanitize(&s.kind)),
    ];
    if let Some(d) = &s.description {
        lines.push(field("Description", sanitize(d)));
    }
    let sync = SyncState::of_secret(s);
    let projection = if s.sync.enabled {
        format!(
            " → Secret {} every {}{}",
            sanitize(s.sync.target(&s.name)),
            sanitize(s.sync.refresh_interval.as_deref().unwrap_or("1h")),
            s.sync
                .keys
                .as_ref()
                .map(|k| format!(", keys {}", sanitize(&k.join(", "))))
                .unwrap_or_default()
        )
    } else {
        String::new()
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!(" {:<14}", "Sync"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        sync_cell(sync, look),
        Span::raw(projection),
    ]));
    for c in &s.status.conditions {
        lines.push(field(
            &format!("  {}", sanitize(&c.kind)),
            format!(
                "{} {} — {}",
                sanitize(&c.status),
                sanitize(&c.reason),
                sanitize(&c.message)
            ),
        ));
    }
    lines
}

/// The current version, every version kept, and the rotation.
fn history(s: &Secret, app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(o) = &s.openbao {
        lines.push(field(
            "Version",
            format!(
                "{} (keeps {}), updated {}",
                o.current_version,
                o.max_versions,
                age(o.updated_time.as_deref())
            ),
        ));
    }
    if !app.versions.is_empty() {
        let list: Vec<String> = app
            .versions
            .iter()
            .map(|v| {
                if v.destroyed {
                    format!("{} (destroyed)", v.version)
                } else {
                    v.version.to_string()
                }
            })
            .collect();
        lines.push(field("Versions", list.join(", ")));
    }
    lines.push(match &s.rotation {
        Some(r) if r.enabled => field(
            "Rotation",
            format!(
                "every {}, next {}",
                sanitize(&r.interval),
                sanitize(s.status.next_rotation_time.as_deref().unwrap_or("-"))
            ),
        ),
        _ => field("Rotation", "off"),
    });
    lines
}

/// The values, masked or revealed; where the selected one starts and ends
/// among `rows`, to keep it in sight.
fn values(
    rows: &mut Vec<Line<'static>>,
    app: &App,
    look: &Look,
    width: usize,
) -> Option<(usize, usize)> {
    let Some(r) = &app.revealed else {
        rows.extend(super::text::wrap(
            field("Values", "•••• (r reveals them; the read is audited)"),
            width,
            16,
        ));
        return None;
    };
    rows.push(field(
        "Values",
        format!(
            "version {} (hidden again after 30 s, on leaving, on R)",
            r.version
        ),
    ));
    let mut selected = None;
    for (i, (k, v)) in r.values.iter().enumerate() {
        let style = if i == app.value_selected {
            look.selected()
        } else {
            Style::default()
        };
        let start = rows.len();
        rows.extend(super::text::wrap_all(
            value_rows(k, v.expose(), style),
            width,
            5,
        ));
        if i == app.value_selected {
            selected = Some((start, rows.len()));
        }
    }
    selected
}

/// Draws `rows` from the view's scroll position (one row for the rule),
/// moved to keep the selected value in sight after a move.
fn scrolled(
    f: &mut Frame,
    area: Rect,
    app: &App,
    rows: Vec<Line<'static>>,
    selected: Option<(usize, usize)>,
) {
    let height = usize::from(area.height).saturating_sub(1);
    let last = rows.len().saturating_sub(height);
    let mut scroll = app.scroll.get().min(last);
    if let (Some((start, end)), true) = (selected, app.follow.get()) {
        if end > scroll + height {
            scroll = end.saturating_sub(height).min(start);
        }
        if start < scroll {
            scroll = start;
        }
        app.follow.set(false);
    }
    app.scroll.set(scroll);
    let mut block = Block::default().borders(Borders::TOP);
    if rows.len() > height {
        block = block.title(format!(
            " rows {}–{} of {}{} ",
            scroll + 1,
            (scroll + height).min(rows.len()),
            rows.len(),
            if scroll < last { " · PgDn more" } else { "" }
        ));
    }
    f.render_widget(
        Paragraph::new(rows)
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(block),
        area,
    );
}
