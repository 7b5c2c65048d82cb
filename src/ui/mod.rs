//! `kube-dc ui`: the Secrets Manager view in the terminal (ratatui on
//! crossterm, in the alternate screen). Every action goes through the same
//! API client as the commands, so every reveal is audited the same way;
//! revealed values live only in the alternate screen, which leaves no
//! scrollback behind.

mod app;
mod changes;
mod detail;
mod draw;
mod driver;
mod form;
mod form_view;
mod keys;
mod look;
mod pace;
mod panels;
mod submit;
mod text;

use std::time::Duration;

use futures_util::StreamExt;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::error::{CliError, Result};
use crate::session::Session;
pub use app::{Action, App, Level, Row, View};
pub use draw::draw;
use driver::Driver;
pub use look::Look;
use pace::Pacer;

/// Restores the terminal however the view ends (return, error, panic).
struct Screen;

impl Screen {
    fn enter() -> Result<Self> {
        terminal::enable_raw_mode().map_err(io)?;
        let s = Screen;
        execute!(
            crate::output::terminal(),
            terminal::EnterAlternateScreen,
            cursor::Hide,
            // Terminals that report focus (xterm's mode 1004) let the view
            // stop refreshing while another window has it.
            event::EnableFocusChange
        )
        .map_err(io)?;
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            Screen::leave();
            hook(info);
        }));
        Ok(s)
    }

    fn leave() {
        // Wipe the alternate screen (values included) before leaving it.
        let _ = execute!(
            crate::output::terminal(),
            event::DisableFocusChange,
            terminal::Clear(terminal::ClearType::All),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        Screen::leave();
    }
}

pub(super) fn io(e: std::io::Error) -> CliError {
    CliError::from(e)
}

/// The error as the view shows it: the message and its hints on one line.
pub(super) fn say(e: &CliError) -> String {
    let mut s = e.to_string();
    for h in &e.hints {
        s.push_str(" — hint: ");
        s.push_str(h);
    }
    s
}

/// Runs the view until the user leaves it; `refresh`: between automatic
/// refreshes. The caller has checked that there is a terminal.
pub async fn run(ctx: &Session, refresh: Duration) -> Result<()> {
    let ns = ctx.namespace()?;
    let session = Driver {
        ctx,
        client: ctx.client().await?,
        ns: ns.clone(),
    };
    let mut app = App::new(&ctx.target()?.context, &ns);
    let look = Look {
        color: ctx.printer.color,
    };
    if let Err(e) = session.load_rows(&mut app).await {
        app.loaded_at = Some(crate::clock::instant());
        app.problem = Some(app::Problem::of(&e));
    }
    let mut pace = Pacer::new(refresh, crate::clock::instant());
    // Refreshes on the change stream's notices where there is one; else on
    // the period, and the status line says so once.
    let mut notices = crate::ops::watch::Watcher::open_stream(&session.client, &ns)
        .await
        .ok()
        .flatten();
    if notices.is_some() {
        pace.on_notices(crate::clock::instant());
    } else {
        app.message = Some((
            format!(
                "no change stream here: refreshing every {}s (--refresh)",
                refresh.as_secs()
            ),
            app::Level::Info,
        ));
    }
    let _screen = Screen::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(crate::output::terminal())).map_err(io)?;
    let mut events = event::EventStream::new();
    loop {
        app.held = pace.held_by(&app, crate::clock::instant());
        term.draw(|f| draw(f, &app, &look)).map_err(io)?;
        let now = crate::clock::instant();
        let wake = pace.wake(&app, now);
        let notice = async {
            match notices.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        // Waits for a key, a resize, a focus change, a notice or the next
        // deadline: no CPU is used while idle.
        let action = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    pace.key(crate::clock::instant());
                    app.message = None;
                    app.on_key(k)
                }
                Some(Ok(Event::FocusLost)) => {
                    pace.focused = false;
                    Action::None
                }
                Some(Ok(Event::FocusGained)) => {
                    pace.focused = true;
                    Action::None
                }
                Some(Ok(_)) => Action::None,
                Some(Err(e)) => return Err(io(e)),
                None => break,
            },
            n = notice => {
                match n {
                    Ok(_) => pace.notice(crate::clock::instant()),
                    // The stream is gone for good (access taken away):
                    // back to the period.
                    Err(_) => {
                        notices = None;
                        pace = Pacer::new(refresh, crate::clock::instant());
                    }
                }
                let now = crate::clock::instant();
                if pace.due(&app, now) { Action::Refresh } else { Action::None }
            },
            () = tokio::time::sleep(wake.saturating_duration_since(now)) => {
                let now = crate::clock::instant();
                app.expire(now);
                if pace.due(&app, now) {
                    Action::Refresh
                } else {
                    Action::None
                }
            }
        };
        if action == Action::Refresh {
            pace.refreshed(crate::clock::instant());
        }
        if !session.run(&mut app, action).await {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A denial reads as the server's reason and the command that helps
    /// (for an org admin: the elevation).
    #[test]
    fn a_denial_shows_its_reason_and_hints() {
        let mut e = CliError::new(
            crate::error::ErrorKind::PermissionDenied,
            "organization admins read values only inside an elevation window",
        )
        .hint("kube-dc orgs elevate demo --reason \"...\"");
        e.status = Some(403);
        let text = say(&e);
        assert!(
            text.starts_with("organization admins read values only inside"),
            "{text}"
        );
        assert!(text.contains("(HTTP 403)"), "{text}");
        assert!(
            text.ends_with("hint: kube-dc orgs elevate demo --reason \"...\""),
            "{text}"
        );
    }
}
