//! What the views share: the look (colour or not), the sync cell, a
//! labelled field.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::listing::SyncState;

pub struct Look {
    pub color: bool,
}

impl Look {
    pub(super) fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub(super) fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// The SYNC cell: a dot and the state in words, in the state's colour
/// (the same as the CLI tables', in ratatui's palette).
pub fn sync_cell(s: SyncState, look: &Look) -> Span<'static> {
    let color = match s {
        SyncState::Ready => Color::Green,
        SyncState::Pending => Color::Yellow,
        SyncState::Disabled => Color::DarkGray,
    };
    Span::styled(s.label(), look.fg(color))
}

pub(super) fn field(name: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!(" {name:<14}"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(value.into()),
    ])
}
