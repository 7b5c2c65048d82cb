//! `kube-dc ui`: the Secrets Manager view in the terminal (ratatui on
//! crossterm, in the alternate screen). Every action goes through the same
//! API client as the commands, so every reveal is audited the same way;
//! revealed values live only in the alternate screen, which leaves no
//! scrollback behind.

mod app;
mod changes;
mod detail;
mod draw;
mod form;
mod form_view;
mod keys;
mod look;
mod pace;
mod panels;
mod session;
mod submit;
mod text;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::commands::Ctx;
use crate::error::{CliError, Result};
pub use app::{Action, App, Level, Row, View};
pub use draw::draw;
pub use look::Look;
use pace::Pacer;
use session::Session;

/// Browse and change the project's secrets in a terminal view.
///
/// One row per secret with its sync state. Enter opens a secret's detail,
/// `r` reveals its values (audited; multi-line values keep their lines;
/// hidden again after 30 seconds, on leaving, or on `R`), `c` copies the
/// selected value with an OSC 52 escape (works over SSH) without printing
/// it. `n` creates a secret (initial values typed masked, or read from a
/// file), `i` imports a Kubernetes Secret, `p` puts new values, `s` changes
/// the sync, `d` soft-deletes after showing the workloads that use it, `D`
/// destroys (admins; the name is typed to confirm), `v` lists the versions
/// (`b` rolls back, `x` destroys one), `t` the deleted secrets (Enter
/// restores). Each sends the requests of its CLI verb, audited the same.
/// `?` lists every key. Nothing revealed stays in the scrollback.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc ui
  kube-dc ui -p staging --refresh 30
  NO_COLOR=1 kube-dc ui

Refreshes: every refresh is an audited list request, so the view refreshes
on its own only while the terminal has the focus (where the terminal reports
it), nothing is being typed, no values are revealed, and a key was pressed
in the last 10 minutes; R refreshes at once.

Role: any project role (user and up), or organization admin, to browse;
revealing and changing values needs developer or more (organization admins:
an elevation window); destroy needs admin.")]
pub struct UiArgs {
    /// Seconds between automatic refreshes of the list and the open view.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub refresh: u64,
}

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

pub async fn run(ctx: &Ctx, a: UiArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "ui")?;
    if !crate::output::terminal().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::usage("kube-dc ui needs a terminal")
            .hint("for scripts, use kube-dc secrets list / get -o json"));
    }
    let ns = ctx.namespace()?;
    let session = Session {
        ctx,
        client: ctx.client().await?,
        ns: ns.clone(),
    };
    let mut app = App::new(&ctx.target()?.context, &ns);
    let look = Look {
        color: ctx.printer.color,
    };
    if let Err(e) = session.load_rows(&mut app).await {
        app.loaded_at = Some(Instant::now());
        app.problem = Some(app::Problem::of(&e));
    }
    let _screen = Screen::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(crate::output::terminal())).map_err(io)?;
    let mut pace = Pacer::new(Duration::from_secs(a.refresh), Instant::now());
    loop {
        app.held = pace.held_by(&app, Instant::now());
        term.draw(|f| draw(f, &app, &look)).map_err(io)?;
        let now = Instant::now();
        let wake = pace.wake(&app, now);
        // Blocks in poll(2) until a key, a resize, a focus change or the
        // next deadline: no CPU is used while idle.
        let action = if event::poll(wake.saturating_duration_since(now)).map_err(io)? {
            match event::read().map_err(io)? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    pace.key(Instant::now());
                    app.message = None;
                    app.on_key(k)
                }
                Event::FocusLost => {
                    pace.focused = false;
                    Action::None
                }
                Event::FocusGained => {
                    pace.focused = true;
                    Action::None
                }
                Event::Resize(..) => Action::None,
                _ => continue,
            }
        } else {
            let now = Instant::now();
            app.expire(now);
            if pace.due(&app, now) {
                Action::Refresh
            } else {
                Action::None
            }
        };
        if action == Action::Refresh {
            pace.refreshed(Instant::now());
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
