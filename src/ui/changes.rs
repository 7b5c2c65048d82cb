//! The view's changes: each sends the requests of its CLI verb, in the
//! same order (create, import, `edit`'s read and check-and-set write, sync,
//! delete after the consumers, destroy-version after the metadata,
//! rollback, restore), so it leaves the same audit events; then the view
//! reloads what it shows.

use super::app::{Action, App, Confirm, Level, View};
use super::driver::Driver;
use super::form::Form;
use super::submit::Request;
use crate::error::Result;
use crate::ops::{secret, sent, values};
use crate::output::sanitize;

/// Says `text` on the status line.
fn info(app: &mut App, text: String) {
    app.message = Some((text, Level::Info));
}

impl Driver<'_> {
    pub(super) async fn change(&self, app: &mut App, action: Action) -> Result<bool> {
        let name = app.current().map(|r| r.name.clone());
        // Asking and opening forms change nothing yet; a change made
        // reloads what the view shows.
        match action {
            Action::OpenPut => return self.open_put(app, name).await,
            Action::Submit => return self.submit(app).await,
            Action::AskDelete { destroy } => return self.ask_delete(app, name, destroy).await,
            Action::AskDestroyVersion(version) => {
                return self.ask_destroy_version(app, name, version).await;
            }
            Action::Delete { name, destroy } => self.delete(app, name, destroy).await?,
            Action::DestroyVersion { name, version } => {
                self.destroy_version(app, name, version).await?
            }
            Action::Rollback { name, version } => self.rollback(app, name, version).await?,
            Action::Restore(name) => self.restore(app, name).await?,
            _ => return Ok(true),
        }
        Box::pin(self.perform(app, Action::Refresh)).await
    }

    /// As `secrets edit`: the values read (audited), changed in a form,
    /// and written with check-and-set on the version read.
    async fn open_put(&self, app: &mut App, name: Option<String>) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        // As `secrets edit`: the values read (audited), changed, and
        // written with check-and-set on the version read.
        let (s, _) = self.client.get_secret(&self.ns, &name, true, None).await?;
        let (version, data) = match s.value {
            Some(v) => (v.metadata.version, v.data),
            None => (0, Default::default()),
        };
        app.form = Some(Form::put(&name, version, data));
        Ok(true)
    }

    /// The blast radius first, as `secrets delete` does.
    async fn ask_delete(&self, app: &mut App, name: Option<String>, destroy: bool) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        // The blast radius first, as `secrets delete` does.
        let users: Vec<String> = secret::consumers_of(&self.client, &self.ns, &name)
            .await?
            .map(|c| {
                c.items
                    .iter()
                    .map(|i| {
                        format!(
                            "{}/{} ({})",
                            sanitize(&i.kind),
                            sanitize(&i.name),
                            sanitize(&i.references.join(", "))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let used = if users.is_empty() {
            "No workload references it.".to_string()
        } else {
            format!("Used by {} workload(s):", users.len())
        };
        // Destroy is irreversible: the name is typed, not just `y`.
        let (question, expect) = if destroy {
            (
                format!(
                    "Destroy secret {name} and every stored version, irreversibly? {used} Type {name} and Enter to destroy; Esc keeps it."
                ),
                Some(name.clone()),
            )
        } else {
            (
                format!(
                    "Delete secret {name} and its projected Secret? {used} Its value history is kept (an admin can restore it). y/N"
                ),
                None,
            )
        };
        app.confirm = Some(Confirm {
            question,
            expect,
            typed: String::new(),
            then: Action::Delete { name, destroy },
            details: users,
        });
        Ok(true)
    }

    /// As `secrets destroy-version`: is it the current one?
    async fn ask_destroy_version(
        &self,
        app: &mut App,
        name: Option<String>,
        version: u64,
    ) -> Result<bool> {
        let Some(name) = name else { return Ok(true) };
        // As `secrets destroy-version`: is it the current one?
        let current = secret::is_current_version(&self.client, &self.ns, &name, version).await?;
        let mut users = Vec::new();
        let mut question = format!("Erase version {version} of secret {name}, irreversibly? y/N");
        if current {
            if let Some(c) = secret::consumers_of(&self.client, &self.ns, &name).await? {
                users = c
                    .items
                    .iter()
                    .map(|i| format!("{}/{}", sanitize(&i.kind), sanitize(&i.name)))
                    .collect();
            }
            question = format!(
                "Erase version {version}, the CURRENT one, of {name}, irreversibly? The secret then has no readable value and its projected Secret is emptied. y/N"
            );
        }
        app.confirm = Some(Confirm {
            question,
            expect: None,
            typed: String::new(),
            then: Action::DestroyVersion { name, version },
            details: users,
        });
        Ok(true)
    }

    async fn delete(&self, app: &mut App, name: String, destroy: bool) -> Result<()> {
        let (resp, _) = sent(self.client.delete(&self.ns, &name, destroy).await?)?;
        info(
            app,
            if resp.destroyed {
                format!("secret/{} destroyed", resp.name)
            } else {
                format!(
                    "secret/{} deleted (history kept; t lists deleted secrets, an admin restores them there)",
                    resp.name
                )
            },
        );
        app.hide();
        app.detail = None;
        app.view = View::List;
        Ok(())
    }

    async fn destroy_version(&self, app: &mut App, name: String, version: u64) -> Result<()> {
        let (resp, _) = sent(
            self.client
                .destroy_version(&self.ns, &name, version)
                .await?,
        )?;
        app.hide();
        info(
            app,
            format!(
                "secret/{} version {} destroyed",
                resp.name, resp.destroyed_version
            ),
        );
        Ok(())
    }

    async fn rollback(&self, app: &mut App, name: String, version: u64) -> Result<()> {
        let done = values::rollback(&self.client, &self.ns, &name, version).await?;
        app.hide();
        let text = done.summary(&format!("the values of version {version}"));
        match done.warning() {
            Some(w) => app.message = Some((format!("{text}; warning: {w}"), Level::Error)),
            None => info(app, text),
        }
        Ok(())
    }

    async fn restore(&self, app: &mut App, name: String) -> Result<()> {
        let (s, _) = sent(self.client.restore(&self.ns, &name).await?)?;
        info(app, format!("secret/{} restored", s.name));
        Ok(())
    }

    /// Sends the open form (kept open, with the reason, if it fails).
    async fn submit(&self, app: &mut App) -> Result<bool> {
        let Some(form) = &mut app.form else {
            return Ok(true);
        };
        let request = match form.request(&self.ns) {
            Ok(r) => r,
            Err(e) => {
                form.error = Some(e);
                return Ok(true);
            }
        };
        let mut select = None;
        let text = match request {
            Request::Create(name, req) => {
                // One request: the secret and its first version together.
                let (s, _) = sent(secret::create(&self.client, &self.ns, &name, &req).await?)?;
                select = Some(s.name.clone());
                match s.kv_version.unwrap_or(0) {
                    0 => format!("secret/{} created, no values yet (p adds some)", s.name),
                    v => format!("secret/{} created, version {v} written", s.name),
                }
            }
            Request::Import(name, req) => {
                let from = req.source_secret_name.clone();
                let (s, _) = sent(self.client.import(&self.ns, &name, &req).await?)?;
                select = Some(s.name.clone());
                format!(
                    "secret/{} imported from {from} (version {})",
                    s.name,
                    s.kv_version.unwrap_or(1)
                )
            }
            Request::Put {
                name,
                req,
                removed,
                unchanged,
            } => {
                if unchanged {
                    app.form = None;
                    app.message = Some(("no changes: nothing was written".into(), Level::Info));
                    return Ok(true);
                }
                if !removed.is_empty() && !form.removal_confirmed {
                    form.removal_confirmed = true;
                    form.error = Some(format!(
                        "this writes a version without {} (a put writes exactly the keys listed): Enter again to write it, Esc to cancel",
                        removed.join(", ")
                    ));
                    return Ok(true);
                }
                let opened = req.cas.unwrap_or(0);
                let again = "press p to open the current values again";
                let done =
                    values::write_edited(&self.client, &self.ns, &name, opened, req.data, again)
                        .await?;
                app.hide();
                done.summary("edited")
            }
            Request::Sync(name, patch) => {
                let (s, _) = sent(self.client.sync(&self.ns, &name, &patch).await?)?;
                let state = crate::listing::SyncState::of_secret(&s).word();
                format!(
                    "secret/{} sync updated: {}",
                    s.name,
                    state.trim_start_matches(['●', '○', ' '])
                )
            }
        };
        app.form = None;
        app.message = Some((text, Level::Info));
        Box::pin(self.perform(app, Action::Refresh)).await?;
        if let Some(n) = select {
            app.select(&n);
        }
        Ok(true)
    }
}
