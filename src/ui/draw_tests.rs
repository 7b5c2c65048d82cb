//! What the view draws, on a test backend.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use ratatui::style::Color;

use crate::api::{Secret, Sensitive};
use crate::listing::SyncState;
use crate::ui::app::{App, View};
use crate::ui::app::{Revealed, Row};
use crate::ui::{Look, draw};

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
            " ↑↓ move  Enter detail  / filter  n new  i import  d delete  ? help  q quit",
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

fn detail_app() -> App {
    let mut a = app();
    a.view = View::Detail;
    a.detail = Some(Secret {
        name: "api-key".into(),
        namespace: "local-default".into(),
        kind: "opaque".into(),
        ..Default::default()
    });
    a
}

fn reveal(a: &mut App, values: &[(&str, &str)]) {
    a.revealed = Some(Revealed {
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), Sensitive::new(*v)))
            .collect(),
        version: 3,
        at: std::time::Instant::now(),
    });
}

#[test]
fn detail_masks_values_until_revealed_and_escapes_them() {
    let mut a = detail_app();
    let (lines, _) = screen(&a, 80, 16, false);
    let text = lines.join("\n");
    assert!(
        text.contains("Values        •••• (r reveals them"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"));
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    reveal(
        &mut a,
        &[
            ("TOKEN", "s3cr3t"),
            ("BELL", "a\u{7}\u{1b}[2Jb"),
            ("tls.crt", pem),
        ],
    );
    let (lines, _) = screen(&a, 80, 20, false);
    let text = lines.join("\n");
    assert!(text.contains("TOKEN = s3cr3t"), "{text}");
    // Control characters are shown, never sent to the terminal.
    assert!(text.contains(r"BELL = a\u{7}\u{1b}[2Jb"), "{text}");
    // A PEM keeps its lines, each on its own row.
    let begin = lines
        .iter()
        .position(|l| l.trim() == "-----BEGIN CERTIFICATE-----");
    let end = lines
        .iter()
        .position(|l| l.trim() == "-----END CERTIFICATE-----");
    assert!(
        matches!((begin, end), (Some(b), Some(e)) if e == b + 2),
        "{text}"
    );
    assert!(
        text.contains("3 value(s) of version 3 revealed (audited) · hidden in 30 s"),
        "{text}"
    );
}

#[test]
fn a_small_terminal_scrolls_the_detail_to_the_values_and_keeps_help() {
    let mut a = detail_app();
    a.detail.as_mut().unwrap().description =
        Some("the payment provider's API key, rotated by hand".into());
    reveal(
        &mut a,
        &[("A", "1"), ("LONG", &"x".repeat(100)), ("Z", "last-value")],
    );
    let (lines, _) = screen(&a, 40, 15, false);
    let text = lines.join("\n");
    assert!(
        !text.contains("last-value"),
        "below the fold at first:\n{text}"
    );
    assert!(text.contains("PgDn more"), "{text}");
    // The key line is not cut: help and back stay.
    assert!(lines[14].ends_with("? help  q back"), "{text}");
    // End: the values are in sight, the long one wrapped, not cut.
    a.scroll.set(usize::MAX / 2);
    let (lines, _) = screen(&a, 40, 15, false);
    let text = lines.join("\n");
    assert!(text.contains("Z = last-value"), "{text}");
    assert_eq!(lines[1..].join("").matches('x').count(), 100, "{text}");
    // Selecting a value scrolls to it.
    a.scroll.set(0);
    a.value_selected = 2;
    a.follow.set(true);
    let (lines, _) = screen(&a, 40, 15, false);
    assert!(lines.join("\n").contains("Z = last-value"));
}

#[test]
fn errors_show_in_the_body_with_hints_and_the_filter_is_shown() {
    let mut a = App::new("local", "nope");
    a.loaded_at = Some(std::time::Instant::now());
    a.problem = Some(crate::ui::app::Problem {
        message: "no project owns namespace nope (HTTP 404)".into(),
        hints: vec!["kube-dc config get-contexts".into()],
    });
    let (lines, _) = screen(&a, 60, 10, false);
    let text = lines.join("\n");
    assert!(!text.contains("no secrets in"), "{text}");
    assert!(
        text.contains("error: no project owns namespace nope (HTTP 404)"),
        "{text}"
    );
    assert!(text.contains("hint: kube-dc config get-contexts"), "{text}");
    let mut a = app();
    a.filter = "db".into();
    let (lines, _) = screen(&a, 100, 8, false);
    assert!(
        lines[0].ends_with("· filter \"db\" (Esc clears)"),
        "{lines:?}"
    );
}

#[test]
fn a_narrow_terminal_still_draws_every_part() {
    let (lines, _) = screen(&app(), 36, 6, false);
    assert!(lines[0].starts_with(" kube-dc · context local"));
    // UPDATED, TARGET and VERSION gave way; NAME and SYNC did not.
    assert_eq!(lines[1], "  NAME      TYPE    SYNC", "{lines:?}");
    assert_eq!(lines[2], "> api-key   opaque  ● Ready", "{lines:?}");
    assert_eq!(lines[5], " ↑↓ move  ? help  q quit", "{lines:?}");
}
