//! The view's requests: each [`Action`] carried out through the same API
//! client as the commands, so that every read and every change is audited
//! as the CLI's. Loads are here; changes in `changes.rs`.

use std::io::Write;

use super::app::{self, Action, App, Level, Problem, Revealed, Row};
use crate::api::Client;
use crate::error::Result;
use crate::session::Session;
use kube_dc_api::event::Shown;

pub(super) struct Driver<'a> {
    pub ctx: &'a Session,
    pub client: Client,
    pub ns: String,
}

impl Driver<'_> {
    pub async fn load_rows(&self, app: &mut App) -> Result<()> {
        let doc = self.client.list_secrets(&self.ns).await?;
        let rows: crate::listing::Rows = doc.typed_long()?;
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
            Action::None => Ok(true),
            Action::Quit => Ok(false),
            Action::Refresh => self.refresh(app).await,
            Action::LoadDetail => self.load_detail(app, name).await,
            Action::LoadVersions => self.load_versions(app, name).await,
            Action::LoadDeleted => self.load_deleted(app).await,
            Action::Reveal => self.reveal(app, name).await,
            Action::Copy(v) => self.copy(app, v).await,
            Action::LoadConsumers => self.load_consumers(app, name).await,
            Action::LoadAudit => self.load_audit(app, name).await,
            Action::LoadElevation => self.load_elevation(app).await,
            Action::Elevate(reason) => self.elevate(app, reason).await,
            Action::Release => self.release(app).await,
            change => self.change(app, change).await,
        }
    }

    /// The list again, then what the open view shows.
    async fn refresh(&self, app: &mut App) -> Result<bool> {
        self.load_rows(app).await?;
        Box::pin(self.perform(app, app.view.load())).await
    }

    /// The open secret's metadata and versions; values of a version no longer current are hidden.
    async fn load_detail(&self, app: &mut App, name: Option<String>) -> Result<bool> {
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
        Ok(true)
    }

    /// The versions, newest first (as `secrets versions`).
    async fn load_versions(&self, app: &mut App, name: Option<String>) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        let (versions, _) = self.client.versions(&self.ns, &name).await?;
        app.versions = versions.items;
        // Newest first, as `secrets versions`.
        app.versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        app.version_selected = app
            .version_selected
            .min(app.versions.len().saturating_sub(1));
        Ok(true)
    }

    /// The soft-deleted secrets (an installation that ignores `?deleted=true` is said to lack them).
    async fn load_deleted(&self, app: &mut App) -> Result<bool> {
        let doc = self.client.list_deleted_secrets(&self.ns).await?;
        let rows: crate::listing::Rows = doc.typed_long()?;
        if !rows.deleted {
            app.deleted = Some(Vec::new());
            return Err(crate::error::CliError::new(
                crate::error::ErrorKind::NotSupported,
                "this installation does not list soft-deleted secrets (it ignored ?deleted=true)",
            ));
        }
        app.deleted = Some(rows.items.iter().map(Row::of_deleted).collect());
        app.deleted_selected = app.deleted_selected.min(rows.items.len().saturating_sub(1));
        Ok(true)
    }

    /// The current values (an audited read), shown until they expire.
    async fn reveal(&self, app: &mut App, name: Option<String>) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        let (s, _) = self.client.get_secret(&self.ns, &name, true, None).await?;
        match s.value {
            Some(v) => {
                app.revealed = Some(Revealed {
                    values: v.data.into_iter().collect(),
                    version: v.metadata.version,
                    at: crate::clock::instant(),
                });
                app.value_selected = 0;
                app.follow.set(true);
            }
            None => {
                app.message = Some(("this secret has no readable value yet".into(), Level::Info));
            }
        }
        Ok(true)
    }

    /// Copies a value with OSC 52: the terminal puts it on the clipboard; nothing is drawn.
    async fn copy(&self, app: &mut App, v: crate::redact::Sensitive) -> Result<bool> {
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
        Ok(true)
    }

    /// The workloads that use the projection.
    async fn load_consumers(&self, app: &mut App, name: Option<String>) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        app.consumers = None;
        let (c, _) = self.client.consumers(&self.ns, &name).await?;
        app.consumers = Some(c.items);
        Ok(true)
    }

    /// The secret's recent audit events (at most 100 of the project's last 500).
    async fn load_audit(&self, app: &mut App, name: Option<String>) -> Result<bool> {
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
        Ok(true)
    }

    /// The caller's elevation window in the project.
    async fn load_elevation(&self, app: &mut App) -> Result<bool> {
        let (org, project) = self.org_project()?;
        let (st, _) = self.client.elevation_status(&org, &project).await?;
        app.elevation = Some(st);
        Ok(true)
    }

    /// Opens an elevation window (audited), then shows it.
    async fn elevate(&self, app: &mut App, reason: String) -> Result<bool> {
        let (org, project) = self.org_project()?;
        let (g, _) = crate::ops::sent(self.client.elevate(&org, &project, &reason).await?)?;
        app.message = Some((
            format!("elevated in {project} until {}", g.expires_at),
            Level::Info,
        ));
        Box::pin(self.perform(app, Action::LoadElevation)).await
    }

    /// Closes the elevation window, then shows it.
    async fn release(&self, app: &mut App) -> Result<bool> {
        let (org, project) = self.org_project()?;
        crate::ops::sent(self.client.release(&org, &project).await?)?;
        app.message = Some((format!("released the window in {project}"), Level::Info));
        Box::pin(self.perform(app, Action::LoadElevation)).await
    }
}
