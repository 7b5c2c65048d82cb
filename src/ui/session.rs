//! The view's requests: each [`Action`] carried out through the same API
//! client as the commands, so that every read and every change is audited
//! as the CLI's. Loads are here; changes in `changes.rs`.

use std::io::Write;
use std::time::Instant;

use super::app::{self, Action, App, Level, Problem, Revealed, Row};
use crate::api::Client;
use crate::error::Result;
use crate::session::Ctx;
use kube_dc_api::event::Shown;

pub(super) struct Session<'a> {
    pub ctx: &'a Ctx,
    pub client: Client,
    pub ns: String,
}

impl Session<'_> {
    pub async fn load_rows(&self, app: &mut App) -> Result<()> {
        let doc = self.client.list_secrets(&self.ns).await?;
        let rows: crate::listing::Rows = doc.typed()?;
        app.set_rows(rows.items.iter().map(Row::of).collect());
        Ok(())
    }

    pub fn org_project(&self) -> Result<(String, String)> {
        let t = self.ctx.target()?;
        Ok((t.org(crate::config::env_org().as_deref())?, t.project()?))
    }

    /// Carries out `action`; false when the view should end. A failure is
    /// kept in `app.problem`, shown in the body with its hints.
    pub async fn run(&self, app: &mut App, action: Action) -> bool {
        match Box::pin(self.perform(app, action)).await {
            Ok(go_on) => go_on,
            Err(e) => {
                if let Some(f) = &mut app.form {
                    // A form keeps its input and shows why it was not sent.
                    f.error = Some(super::say(&e));
                } else {
                    app.problem = Some(Problem::of(&e));
                }
                true
            }
        }
    }

    pub(super) async fn perform(&self, app: &mut App, action: Action) -> Result<bool> {
        let name = app.current().map(|r| r.name.clone());
        match action {
            Action::None => {}
            Action::Quit => return Ok(false),
            Action::Refresh => {
                self.load_rows(app).await?;
                return Box::pin(self.perform(app, app.view.load())).await;
            }
            Action::LoadDetail => {
                let Some(name) = name else { return Ok(true) };
                let (s, _) = self.client.get_secret(&self.ns, &name, false, None).await?;
                let (versions, _) = self.client.versions(&self.ns, &name).await?;
                let now = s.openbao.as_ref().map(|o| o.current_version);
                // Values of a version that is no longer current are not
                // shown as the secret's values.
                if let Some(v) = app.revealed.as_ref().map(|r| r.version)
                    && now != Some(v)
                {
                    app.hide();
                    app.message = Some((
                        format!("values hidden: version {v} is no longer the current one"),
                        Level::Info,
                    ));
                }
                app.detail = Some(s);
                app.versions = versions.items;
            }
            Action::LoadVersions => {
                let Some(name) = name else { return Ok(true) };
                let (versions, _) = self.client.versions(&self.ns, &name).await?;
                app.versions = versions.items;
                // Newest first, as `secrets versions`.
                app.versions.sort_by_key(|v| std::cmp::Reverse(v.version));
                app.version_selected = app
                    .version_selected
                    .min(app.versions.len().saturating_sub(1));
            }
            Action::LoadDeleted => {
                let doc = self.client.list_deleted_secrets(&self.ns).await?;
                let rows: crate::listing::Rows = doc.typed()?;
                if !rows.deleted {
                    app.deleted = Some(Vec::new());
                    return Err(crate::error::CliError::new(
                        crate::error::ErrorKind::NotSupported,
                        "this installation does not list soft-deleted secrets (it ignored ?deleted=true)",
                    ));
                }
                app.deleted = Some(rows.items.iter().map(Row::of_deleted).collect());
                app.deleted_selected = app.deleted_selected.min(rows.items.len().saturating_sub(1));
            }
            Action::Reveal => {
                let Some(name) = name else { return Ok(true) };
                let (s, _) = self.client.get_secret(&self.ns, &name, true, None).await?;
                match s.value {
                    Some(v) => {
                        app.revealed = Some(Revealed {
                            values: v.data.into_iter().collect(),
                            version: v.metadata.version,
                            at: Instant::now(),
                        });
                        app.value_selected = 0;
                        app.follow.set(true);
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
                write!(out, "\x1b]52;c;{code}\x07").map_err(super::io)?;
                out.flush().map_err(super::io)?;
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
                let (g, _) = crate::ops::sent(self.client.elevate(&org, &project, &reason).await?)?;
                app.message = Some((
                    format!("elevated in {project} until {}", g.expires_at),
                    Level::Info,
                ));
                return Box::pin(self.perform(app, Action::LoadElevation)).await;
            }
            Action::Release => {
                let (org, project) = self.org_project()?;
                crate::ops::sent(self.client.release(&org, &project).await?)?;
                app.message = Some((format!("released the window in {project}"), Level::Info));
                return Box::pin(self.perform(app, Action::LoadElevation)).await;
            }
            change => return self.change(app, change).await,
        }
        Ok(true)
    }
}
