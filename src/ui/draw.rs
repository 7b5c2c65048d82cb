//! Drawing the view: a title line, the open view, and a key line with the
//! last message. Colour only when the terminal gets it (`NO_COLOR` and
//! `--no-color` turn it off); every state is also written out in text.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row as TRow, Table, TableState};

use super::app::{App, Level, View};
use super::look::{Look, sync_cell};
use crate::output::{age, sanitize};

const LIST_KEYS: &str = "↑↓/jk move  / filter  Enter detail  u used by  a audit  e elevation  R refresh  ? help  q quit";
const DETAIL_KEYS: &str =
    "r reveal  ↑↓ select  c copy  u used by  a audit  e elevation  R refresh  ? help  q back";
const ELEVATION_KEYS: &str = "e elevate (asks a reason)  x release  R refresh  ? help  q back";
const BACK_KEYS: &str = "R refresh  ? help  q back";

pub fn draw(f: &mut Frame, app: &App, look: &Look) {
    let [title, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let view = match app.view {
        View::List => "secrets".to_string(),
        View::Help => "help".to_string(),
        v => {
            let name = app.current().map(|r| r.name.as_str()).unwrap_or("-");
            let what = match v {
                View::Detail => "detail",
                View::UsedBy => "used by",
                View::Audit => "audit",
                _ => "elevation",
            };
            format!("{} · {what}", sanitize(name))
        }
    };
    let head = format!(
        " kube-dc · context {} · namespace {} · {view}",
        sanitize(&app.context),
        sanitize(&app.namespace)
    );
    f.render_widget(
        Paragraph::new(head).style(Style::default().add_modifier(Modifier::BOLD)),
        title,
    );
    match app.view {
        View::List => list(f, body, app, look),
        View::Detail => super::detail::detail(f, body, app, look),
        View::UsedBy => super::panels::used_by(f, body, app),
        View::Audit => super::panels::audit(f, body, app, look),
        View::Elevation => super::panels::elevation(f, body, app, look),
        View::Help => super::panels::help(f, body),
    }
    let hint = if app.filtering {
        format!("filter: {}▏  Enter keep  Esc clear", app.filter)
    } else if let Some(r) = &app.reason {
        format!("reason: {r}▏  Enter elevate  Esc cancel")
    } else {
        match app.view {
            View::List => LIST_KEYS,
            View::Detail => DETAIL_KEYS,
            View::Elevation => ELEVATION_KEYS,
            View::Help => "any key: back",
            _ => BACK_KEYS,
        }
        .to_string()
    };
    let message = match &app.message {
        Some((m, Level::Error)) => Line::from(Span::styled(format!(" {m}"), look.fg(Color::Red))),
        Some((m, Level::Info)) => Line::from(format!(" {m}")),
        None => Line::from(""),
    };
    f.render_widget(
        Paragraph::new(vec![message, Line::from(format!(" {hint}"))]),
        keys,
    );
}

fn list(f: &mut Frame, area: Rect, app: &App, look: &Look) {
    let visible = app.visible();
    if visible.is_empty() {
        let text = if app.loaded_at.is_none() {
            "loading…".to_string()
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
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::api::{Secret, Sensitive};
    use crate::listing::SyncState;
    use crate::ui::app::Row;

    fn screen(app: &App, w: u16, h: u16, color: bool) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app, &Look { color })).unwrap();
        let buf = t.backend().buffer().clone();
        let lines = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect();
        (lines, buf)
    }

    fn app() -> App {
        let mut app = App::new("local", "local-default");
        let row = |name: &str, sync, version| Row {
            name: name.into(),
            kind: "opaque".into(),
            sync,
            target: if sync == SyncState::Disabled {
                "-".into()
            } else {
                name.into()
            },
            version,
            updated: None,
        };
        app.set_rows(vec![
            row("api-key", SyncState::Ready, Some(3)),
            row("db-creds", SyncState::Pending, None),
            row("legacy", SyncState::Disabled, Some(1)),
        ]);
        app
    }

    #[test]
    fn list_layout() {
        let (lines, _) = screen(&app(), 80, 8, false);
        assert_eq!(
            lines,
            [
                " kube-dc · context local · namespace local-default · secrets",
                "  NAME      TYPE    SYNC        TARGET    VERSION  UPDATED",
                "> api-key   opaque  ● Ready     api-key   3        -",
                "  db-creds  opaque  ● Pending   db-creds  -        -",
                "  legacy    opaque  ○ Disabled  -         1        -",
                "",
                "",
                " ↑↓/jk move  / filter  Enter detail  u used by  a audit  e elevation  R refresh",
            ]
        );
    }

    #[test]
    fn dots_are_coloured_only_with_colour() {
        let (_, plain) = screen(&app(), 80, 8, false);
        let (_, colour) = screen(&app(), 80, 8, true);
        // The dot of the Ready row (column 20 of line 2).
        assert_eq!(plain[(20, 2)].symbol(), "●");
        assert_eq!(plain[(20, 2)].fg, Color::Reset);
        assert_eq!(colour[(20, 2)].fg, Color::Green);
        assert_eq!(colour[(20, 3)].fg, Color::Yellow);
        assert_eq!(colour[(20, 4)].symbol(), "○");
        assert_eq!(colour[(20, 4)].fg, Color::DarkGray);
    }

    #[test]
    fn detail_masks_values_until_revealed_and_escapes_them() {
        let mut a = app();
        a.view = View::Detail;
        a.detail = Some(Secret {
            name: "api-key".into(),
            namespace: "local-default".into(),
            kind: "opaque".into(),
            ..Default::default()
        });
        let (lines, _) = screen(&a, 80, 16, false);
        let text = lines.join("\n");
        assert!(
            text.contains("Values        •••• (r reveals them"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"));
        a.revealed = Some((
            vec![
                ("TOKEN".into(), Sensitive::new("s3cr3t")),
                ("BELL".into(), Sensitive::new("a\u{7}\u{1b}[2Jb")),
            ],
            std::time::Instant::now(),
        ));
        let (lines, _) = screen(&a, 80, 16, false);
        let text = lines.join("\n");
        assert!(text.contains("TOKEN = s3cr3t"), "{text}");
        // Control characters are shown, never sent to the terminal.
        assert!(text.contains(r"BELL = a\u{7}\u{1b}[2Jb"), "{text}");
    }

    #[test]
    fn a_narrow_terminal_still_draws_every_part() {
        let (lines, _) = screen(&app(), 36, 6, false);
        assert!(lines[0].starts_with(" kube-dc · context local"));
        // UPDATED, TARGET and VERSION gave way; NAME and SYNC did not.
        assert_eq!(lines[1], "  NAME      TYPE    SYNC", "{lines:?}");
        assert_eq!(lines[2], "> api-key   opaque  ● Ready", "{lines:?}");
        assert!(lines[5].starts_with(" ↑↓/jk move"));
    }
}
