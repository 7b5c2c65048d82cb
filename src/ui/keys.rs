//! The keys of the view: what each does to the state, and which
//! [`Action`] it asks the loop for. A form, a question, a filter or a
//! reason being typed takes every key first.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, App, Confirm, Level, View};
use super::form::{Form, Outcome};

impl App {
    fn back(&mut self) -> Action {
        match self.view {
            // Esc takes back a kept filter before it quits.
            View::List if !self.filter.is_empty() => {
                self.filter.clear();
                self.selected = 0;
                Action::None
            }
            View::List => Action::Quit,
            View::Help => {
                self.view = self.help_from;
                Action::None
            }
            View::Detail | View::Deleted => {
                self.hide();
                self.view = View::List;
                Action::None
            }
            _ => {
                // Back to the secret's detail when it is the one open.
                let name = self.current().map(|r| r.name.clone());
                self.view = if self
                    .detail
                    .as_ref()
                    .is_some_and(|d| Some(&d.name) == name.as_ref())
                {
                    View::Detail
                } else {
                    View::List
                };
                Action::None
            }
        }
    }

    fn say(&mut self, text: &str) -> Action {
        self.message = Some((text.into(), Level::Info));
        Action::None
    }

    /// A question answered on the key line.
    fn on_confirm(&mut self, k: KeyEvent) -> Action {
        let Some(c) = &mut self.confirm else {
            return Action::None;
        };
        match (&c.expect, k.code) {
            (None, KeyCode::Char('y' | 'Y')) => {
                self.confirm.take().map_or(Action::None, |c| c.then)
            }
            (None, _) | (Some(_), KeyCode::Esc) => {
                self.confirm = None;
                self.say("cancelled: nothing was changed")
            }
            (Some(_), KeyCode::Backspace) => {
                c.typed.pop();
                Action::None
            }
            (Some(_), KeyCode::Char(ch)) => {
                c.typed.push(ch);
                Action::None
            }
            (Some(want), KeyCode::Enter) => {
                if c.typed == *want {
                    self.confirm.take().map_or(Action::None, |c| c.then)
                } else {
                    self.confirm = None;
                    self.say("the name typed did not match: nothing was changed")
                }
            }
            _ => Action::None,
        }
    }

    /// Asks `question`; `y` then does `then`.
    pub fn ask(&mut self, question: String, then: Action) {
        self.confirm = Some(Confirm {
            question,
            expect: None,
            typed: String::new(),
            then,
            details: Vec::new(),
        });
    }

    /// What a key does: whatever is being typed (a question, a form, a
    /// filter, a reason) takes it first; else the keys every view shares,
    /// then the open view's own, then those about the selected secret.
    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        self.problem = None;
        if self.confirm.is_some() {
            return self.on_confirm(k);
        }
        if self.form.is_some() {
            return self.on_form(k);
        }
        if self.filtering {
            return self.on_filter(k.code);
        }
        if self.reason.is_some() {
            return self.on_reason(k.code);
        }
        if let Some(a) = self.on_shared_key(k.code) {
            return a;
        }
        let own = match self.view {
            View::List => self.on_list_key(k.code),
            View::Deleted => self.on_deleted_key(k.code),
            View::Versions => self.on_versions_key(k.code),
            View::Detail => self.on_detail_key(k.code),
            View::Elevation => self.on_elevation_key(k.code),
            _ => None,
        };
        own.or_else(|| self.on_secret_key(k.code))
            .unwrap_or_else(|| match k.code {
                KeyCode::Char('e') => self.go(View::Elevation),
                _ => Action::None,
            })
    }

    fn on_form(&mut self, k: KeyEvent) -> Action {
        let Some(form) = &mut self.form else {
            return Action::None;
        };
        match form.on_key(k) {
            Outcome::Stay => Action::None,
            Outcome::Submit => Action::Submit,
            Outcome::Cancel => {
                self.form = None;
                self.say("cancelled: nothing was sent")
            }
        }
    }

    /// Typing a filter takes every key; Enter keeps it, Esc drops it.
    fn on_filter(&mut self, c: KeyCode) -> Action {
        match c {
            KeyCode::Enter => self.filtering = false,
            KeyCode::Esc => {
                self.filtering = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(ch) => self.filter.push(ch),
            _ => {}
        }
        self.selected = 0;
        self.clamp_selection();
        Action::None
    }

    /// Typing an elevation's reason takes every key; Enter asks for it.
    fn on_reason(&mut self, c: KeyCode) -> Action {
        let Some(reason) = &mut self.reason else {
            return Action::None;
        };
        match c {
            KeyCode::Esc => self.reason = None,
            KeyCode::Backspace => {
                reason.pop();
            }
            KeyCode::Char(ch) => reason.push(ch),
            KeyCode::Enter => {
                let r = self.reason.take().unwrap_or_default();
                if r.trim().is_empty() {
                    self.message = Some(("an elevation needs a reason".into(), Level::Error));
                    return Action::None;
                }
                return Action::Elevate(r);
            }
            _ => {}
        }
        Action::None
    }

    /// Keys every view shares: leave, help, refresh. In the help, any key
    /// goes back.
    fn on_shared_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match (self.view, c) {
            (View::Help, _) => self.back(),
            (View::List, KeyCode::Char('q')) => Action::Quit,
            (_, KeyCode::Char('q') | KeyCode::Esc) => self.back(),
            (_, KeyCode::Char('?')) => {
                self.help_from = self.view;
                self.view = View::Help;
                Action::None
            }
            (_, KeyCode::Char('R')) => {
                // An asked-for refresh hides values (the seed's dashboard).
                self.hide();
                Action::Refresh
            }
            _ => return None,
        })
    }

    fn on_list_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match c {
            KeyCode::Char('/') => {
                self.filtering = true;
                Action::None
            }
            KeyCode::Char('n') => {
                self.form = Some(Form::create(&self.namespace));
                Action::None
            }
            KeyCode::Char('i') => {
                self.form = Some(Form::import(&self.namespace));
                Action::None
            }
            KeyCode::Char('t') => self.go(View::Deleted),
            c if self.move_in_list(c) => Action::None,
            KeyCode::Enter if self.current().is_some() => self.go(View::Detail),
            _ => return None,
        })
    }

    fn on_deleted_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match c {
            c if self.move_in_deleted(c) => Action::None,
            KeyCode::Enter => {
                if let Some(n) = self.deleted_current().cloned() {
                    self.ask(
                        format!("Restore secret {n} with its value history? y/N"),
                        Action::Restore(n),
                    );
                }
                Action::None
            }
            _ => return None,
        })
    }

    fn on_versions_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match c {
            c if self.move_in_versions(c) => Action::None,
            KeyCode::Char('x') => match self.version_current() {
                Some((v, false)) => Action::AskDestroyVersion(v),
                Some((v, true)) => self.say(&format!("version {v} is already destroyed")),
                None => Action::None,
            },
            KeyCode::Char('b') => {
                let name = self.current().map(|r| r.name.clone());
                match (self.version_current(), name) {
                    (Some((v, false)), Some(name)) => {
                        self.ask(
                            format!(
                                "Write the values of version {v} of {name} again, as a new version? y/N"
                            ),
                            Action::Rollback { name, version: v },
                        );
                        Action::None
                    }
                    (Some((v, true)), _) => self.say(&format!(
                        "version {v} is destroyed: it has no values to roll back to"
                    )),
                    _ => Action::None,
                }
            }
            _ => return None,
        })
    }

    fn on_detail_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match c {
            KeyCode::Char('r') => Action::Reveal,
            KeyCode::Char('c') => match &self.revealed {
                Some(r) => match r.values.get(self.value_selected) {
                    Some((_, v)) => Action::Copy(v.clone()),
                    None => Action::None,
                },
                None => self.say("reveal the values first (r)"),
            },
            KeyCode::Char('s') => {
                if let Some(s) = &self.detail {
                    self.form = Some(Form::sync(s));
                }
                Action::None
            }
            c if self.move_in_detail(c) => Action::None,
            _ => return None,
        })
    }

    fn on_elevation_key(&mut self, c: KeyCode) -> Option<Action> {
        Some(match c {
            KeyCode::Char('e') => {
                self.reason = Some(String::new());
                Action::None
            }
            KeyCode::Char('x') => Action::Release,
            _ => return None,
        })
    }

    /// Keys about the selected secret, in the views that show one.
    fn on_secret_key(&mut self, c: KeyCode) -> Option<Action> {
        self.current()?;
        let (list_or_detail, view) = (matches!(self.view, View::List | View::Detail), self.view);
        Some(match c {
            KeyCode::Char('p') if list_or_detail => Action::OpenPut,
            KeyCode::Char('v') if list_or_detail => {
                self.version_selected = 0;
                self.go(View::Versions)
            }
            KeyCode::Char('d') if list_or_detail => Action::AskDelete { destroy: false },
            KeyCode::Char('D') if list_or_detail => Action::AskDelete { destroy: true },
            KeyCode::Char('u') if list_or_detail || view == View::Audit => self.go(View::UsedBy),
            KeyCode::Char('a') if list_or_detail || view == View::UsedBy => self.go(View::Audit),
            _ => return None,
        })
    }

    /// ↑↓ jk g G Home End in the list; true if `c` was one of them.
    fn move_in_list(&mut self, c: KeyCode) -> bool {
        let n = self.visible().len();
        step(&mut self.selected, c, n)
    }

    fn move_in_deleted(&mut self, c: KeyCode) -> bool {
        let n = self.deleted.as_ref().map_or(0, Vec::len);
        step(&mut self.deleted_selected, c, n)
    }

    fn move_in_versions(&mut self, c: KeyCode) -> bool {
        step(&mut self.version_selected, c, self.versions.len())
    }

    /// In the detail: ↑↓ jk select a revealed value (or scroll when none
    /// is shown), PgUp PgDn and Space scroll a page, g G the top and end.
    fn move_in_detail(&mut self, c: KeyCode) -> bool {
        let n = self.value_keys().len();
        let s = self.scroll.get();
        match c {
            KeyCode::Down | KeyCode::Char('j') if n > 0 => {
                self.value_selected = (self.value_selected + 1).min(n - 1);
            }
            KeyCode::Up | KeyCode::Char('k') if n > 0 => {
                self.value_selected = self.value_selected.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j') => self.scroll.set(s + 1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll.set(s.saturating_sub(1)),
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll.set(s + 8),
            KeyCode::PageUp => self.scroll.set(s.saturating_sub(8)),
            KeyCode::Home | KeyCode::Char('g') => self.scroll.set(0),
            KeyCode::End | KeyCode::Char('G') => self.scroll.set(usize::MAX / 2),
            _ => return false,
        }
        // The drawing keeps the selected value in sight after a move.
        self.follow
            .set(matches!(c, KeyCode::Up | KeyCode::Down | KeyCode::Char('j' | 'k')) && n > 0);
        true
    }

    pub fn deleted_current(&self) -> Option<&String> {
        self.deleted
            .as_ref()
            .and_then(|d| d.get(self.deleted_selected))
            .map(|r| &r.name)
    }

    /// The selected version and whether it is destroyed.
    pub fn version_current(&self) -> Option<(u64, bool)> {
        self.versions
            .get(self.version_selected)
            .map(|v| (v.version, v.destroyed))
    }
}

/// ↑↓ jk g G in a list of `n`; true if `c` was one of them.
fn step(at: &mut usize, c: KeyCode, n: usize) -> bool {
    match c {
        KeyCode::Down | KeyCode::Char('j') => *at += 1,
        KeyCode::Up | KeyCode::Char('k') => *at = at.saturating_sub(1),
        KeyCode::Home | KeyCode::Char('g') => *at = 0,
        KeyCode::End | KeyCode::Char('G') => *at = usize::MAX,
        _ => return false,
    }
    *at = (*at).min(n.saturating_sub(1));
    true
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
