//! `kube-dc ui`: the Secrets Manager view in the terminal (ratatui on
//! crossterm, in the alternate screen). Every action goes through the same
//! API client as the commands, so every reveal is audited the same way;
//! revealed values live only in the alternate screen, which leaves no
//! scrollback behind.

mod app;
mod detail;
mod draw;
mod look;
mod panels;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::api::Client;
use crate::commands::Ctx;
use crate::error::{CliError, Result};
pub use app::{Action, App, Level, Row, View};
pub use draw::draw;
use kube_dc_api::event::Shown;
pub use look::Look;

/// Browse the project's secrets in a terminal view.
///
/// One row per secret with its sync state; Enter opens a secret's detail,
/// `r` reveals its values (audited, hidden again on refresh, on leaving and
/// after 30 seconds), `c` copies the selected value to the clipboard with
/// an OSC 52 escape (works over SSH) without printing it, `u` lists the
/// workloads that use it, `a` its recent audit events, `e` the elevation
/// window. `?` lists every key. Nothing revealed stays in the scrollback.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc ui
  kube-dc ui -p staging --refresh 30
  NO_COLOR=1 kube-dc ui

Role: any project role (user and up), or organization admin; revealing values
needs developer or more, or an elevation window for organization admins.")]
pub struct UiArgs {
    /// Seconds between refreshes of the list and the open view.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
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
            cursor::Hide
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

fn io(e: std::io::Error) -> CliError {
    CliError::from(e)
}

/// The error as the view shows it: the message and its hints on one line.
fn say(e: &CliError) -> String {
    let mut s = e.to_string();
    for h in &e.hints {
        s.push_str(" — hint: ");
        s.push_str(h);
    }
    s
}

struct Session<'a> {
    ctx: &'a Ctx,
    client: Client,
    ns: String,
}

impl Session<'_> {
    async fn load_rows(&self, app: &mut App) -> Result<()> {
        let doc = self.client.list_secrets(&self.ns).await?;
        let rows: crate::listing::Rows = doc.typed()?;
        app.set_rows(rows.items.iter().map(Row::of).collect());
        Ok(())
    }

    fn org_project(&self) -> Result<(String, String)> {
        let t = self.ctx.target()?;
        Ok((t.org(crate::config::env_org().as_deref())?, t.project()?))
    }

    async fn perform(&self, app: &mut App, action: Action) -> Result<bool> {
        let name = app.current().map(|r| r.name.clone());
        match action {
            Action::None => {}
            Action::Quit => return Ok(false),
            Action::Refresh => {
                self.load_rows(app).await?;
                let again = match app.view {
                    View::Detail => Action::LoadDetail,
                    View::UsedBy => Action::LoadConsumers,
                    View::Audit => Action::LoadAudit,
                    View::Elevation => Action::LoadElevation,
                    View::List | View::Help => Action::None,
                };
                return Box::pin(self.perform(app, again)).await;
            }
            Action::LoadDetail => {
                let Some(name) = name else { return Ok(true) };
                let (s, _) = self.client.get_secret(&self.ns, &name, false, None).await?;
                let (versions, _) = self.client.versions(&self.ns, &name).await?;
                app.detail = Some(s);
                app.versions = versions.items;
            }
            Action::Reveal => {
                let Some(name) = name else { return Ok(true) };
                let (s, _) = self.client.get_secret(&self.ns, &name, true, None).await?;
                match s.value {
                    Some(v) => {
                        let n = v.data.len();
                        app.revealed = Some((v.data.into_iter().collect(), Instant::now()));
                        app.value_selected = 0;
                        app.message = Some((
                            format!(
                                "{n} value(s) of version {} revealed (audited)",
                                v.metadata.version
                            ),
                            Level::Info,
                        ));
                    }
                    None => {
                        app.message =
                            Some(("this secret has no readable value yet".into(), Level::Info));
                    }
                }
            }
            Action::Copy(v) => {
                use base64::Engine as _;
                let code = base64::engine::general_purpose::STANDARD.encode(v.expose());
                let mut out = crate::output::terminal();
                // OSC 52: the terminal puts it on the clipboard; nothing is drawn.
                write!(out, "\x1b]52;c;{code}\x07").map_err(io)?;
                out.flush().map_err(io)?;
                let key = app
                    .value_keys()
                    .get(app.value_selected)
                    .cloned()
                    .unwrap_or_default();
                app.message = Some((
                    format!("copied {key} to the clipboard (OSC 52)"),
                    Level::Info,
                ));
            }
            Action::LoadConsumers => {
                let Some(name) = name else { return Ok(true) };
                app.consumers = None;
                let (c, _) = self.client.consumers(&self.ns, &name).await?;
                app.consumers = Some(c.items);
            }
            Action::LoadAudit => {
                let Some(name) = name else { return Ok(true) };
                let (org, project) = self.org_project()?;
                let q = crate::api::query(&[
                    ("service", Some("secrets".into())),
                    ("limit", Some("500".into())),
                ]);
                let (resp, _) = self.client.audit(&org, Some(&project), &q).await?;
                app.events = resp
                    .events
                    .iter()
                    .map(|e| (e, Shown::of(&e.body)))
                    .filter(|(_, shown)| shown.resource == name)
                    .take(100)
                    .map(|(e, shown)| app::Event {
                        time: e
                            .ts
                            .as_str()
                            .map(|t| t.chars().take(19).collect())
                            .unwrap_or_default(),
                        action: crate::output::sanitize(&shown.action),
                        actor: crate::output::sanitize(&shown.actor),
                        result: crate::output::sanitize(&shown.result),
                    })
                    .collect();
            }
            Action::LoadElevation => {
                let (org, project) = self.org_project()?;
                let (st, _) = self.client.elevation_status(&org, &project).await?;
                app.elevation = Some(st);
            }
            Action::Elevate(reason) => {
                let (org, project) = self.org_project()?;
                let (g, _) = self.client.elevate(&org, &project, &reason).await?;
                app.message = Some((
                    format!("elevated in {project} until {}", g.expires_at),
                    Level::Info,
                ));
                return Box::pin(self.perform(app, Action::LoadElevation)).await;
            }
            Action::Release => {
                let (org, project) = self.org_project()?;
                self.client.release(&org, &project).await?;
                app.message = Some((format!("released the window in {project}"), Level::Info));
                return Box::pin(self.perform(app, Action::LoadElevation)).await;
            }
        }
        Ok(true)
    }
}

pub async fn run(ctx: &Ctx, a: UiArgs) -> Result<()> {
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
        app.message = Some((say(&e), Level::Error));
    }
    let _screen = Screen::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(crate::output::terminal())).map_err(io)?;
    term.draw(|f| draw(f, &app, &look)).map_err(io)?;
    let every = Duration::from_secs(a.refresh);
    let mut next_refresh = Instant::now() + every;
    loop {
        let now = Instant::now();
        let wake = app
            .reveal_deadline()
            .map_or(next_refresh, |d| d.min(next_refresh));
        // Blocks in poll(2) until a key, a resize or the next deadline: no
        // CPU is used while idle.
        let action = if event::poll(wake.saturating_duration_since(now)).map_err(io)? {
            match event::read().map_err(io)? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    app.message = None;
                    app.on_key(k)
                }
                Event::Resize(..) => Action::None,
                _ => continue,
            }
        } else {
            let now = Instant::now();
            app.expire(now);
            if now >= next_refresh {
                // Refreshed data re-hides values.
                app.hide();
                Action::Refresh
            } else {
                Action::None
            }
        };
        if action == Action::Refresh {
            next_refresh = Instant::now() + every;
        }
        match session.perform(&mut app, action).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => app.message = Some((say(&e), Level::Error)),
        }
        term.draw(|f| draw(f, &app, &look)).map_err(io)?;
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
