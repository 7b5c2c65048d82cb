//! The detail view of one secret: metadata, conditions, sync, versions,
//! rotation, and its values (masked until revealed).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::App;
use super::look::{Look, field, sync_cell};
use crate::listing::SyncState;
use crate::output::{age, escape_value, sanitize};

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
    match &app.revealed {
        None => lines.push(field(
            "Values",
            "•••• (r reveals them; the read is audited)",
        )),
        Some((vals, _)) => {
            lines.push(field(
                "Values",
                "(hidden again on refresh, on leaving, and after 30 s)",
            ));
            for (i, (k, v)) in vals.iter().enumerate() {
                let line = format!("   {} = {}", sanitize(k), escape_value(v.expose()));
                let style = if i == app.value_selected {
                    look.selected()
                } else {
                    Style::default()
                };
                lines.push(Line::from(Span::styled(line, style)));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP)),
        area,
    );
}
