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
use crate::listing::SyncState;
use crate::output::{age, sanitize};

pub(super) fn detail(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let Some(s) = &app.detail else {
        f.render_widget(Paragraph::new(" loading…"), area);
        return;
    };
    let mut lines = vec![
        field("Name", sanitize(&s.name)),
        field("Namespace", sanitize(&s.namespace)),
        field("Type", sanitize(&s.kind)),
    ];
    if let Some(d) = &s.description {
        lines.push(field("Description", sanitize(d)));
    }
    let sync = SyncState::of_secret(s);
    lines.push(Line::from(vec![
        Span::styled(
            format!(" {:<14}", "Sync"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        sync_cell(sync, look),
        Span::raw(if s.sync.enabled {
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
        }),
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
    match &s.rotation {
        Some(r) if r.enabled => lines.push(field(
            "Rotation",
            format!(
                "every {}, next {}",
                sanitize(&r.interval),
                sanitize(s.status.next_rotation_time.as_deref().unwrap_or("-"))
            ),
        )),
        _ => lines.push(field("Rotation", "off")),
    }
    lines.push(Line::from(""));
    let width = usize::from(area.width).saturating_sub(1);
    let mut rows = super::text::wrap_all(lines, width, 16);
    // Where the selected value starts and ends, to keep it in sight.
    let mut selected = None;
    match &app.revealed {
        None => rows.extend(super::text::wrap(
            field("Values", "•••• (r reveals them; the read is audited)"),
            width,
            16,
        )),
        Some(r) => {
            rows.push(field(
                "Values",
                format!(
                    "version {} (hidden again after 30 s, on leaving, on R)",
                    r.version
                ),
            ));
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
        }
    }
    // One row for the rule; the rest shows rows from `scroll` on.
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
