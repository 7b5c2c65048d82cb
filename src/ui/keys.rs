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

    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        self.problem = None;
        if self.confirm.is_some() {
            return self.on_confirm(k);
        }
        if let Some(form) = &mut self.form {
            return match form.on_key(k) {
                Outcome::Stay => Action::None,
                Outcome::Submit => Action::Submit,
                Outcome::Cancel => {
                    self.form = None;
                    self.say("cancelled: nothing was sent")
                }
            };
        }
        // Typing a filter or a reason takes every key but Enter/Esc.
        if self.filtering {
            match k.code {
                KeyCode::Enter | KeyCode::Esc => self.filtering = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            if k.code == KeyCode::Esc {
                self.filter.clear();
            }
            self.selected = 0;
            self.clamp_selection();
            return Action::None;
        }
        if let Some(reason) = &mut self.reason {
            match k.code {
                KeyCode::Esc => self.reason = None,
                KeyCode::Backspace => {
                    reason.pop();
                }
                KeyCode::Char(c) => reason.push(c),
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
            return Action::None;
        }
        let name = self.current().map(|r| r.name.clone());
        match (self.view, k.code) {
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
            (View::List, KeyCode::Char('/')) => {
                self.filtering = true;
                Action::None
            }
            (View::List, KeyCode::Char('n')) => {
                self.form = Some(Form::create(&self.namespace));
                Action::None
            }
            (View::List, KeyCode::Char('i')) => {
                self.form = Some(Form::import(&self.namespace));
                Action::None
            }
            (View::List, KeyCode::Char('t')) => self.go(View::Deleted),
            (View::List, c) if self.move_in_list(c) => Action::None,
            (View::List, KeyCode::Enter) if name.is_some() => self.go(View::Detail),
            (View::Deleted, c) if self.move_in_deleted(c) => Action::None,
            (View::Deleted, KeyCode::Enter) => match self.deleted_current() {
                Some(n) => {
                    self.ask(
                        format!("Restore secret {n} with its value history? y/N"),
                        Action::Restore(n.clone()),
                    );
                    Action::None
                }
                None => Action::None,
            },
            (View::Versions, c) if self.move_in_versions(c) => Action::None,
            (View::Versions, KeyCode::Char('x')) => match self.version_current() {
                Some((v, false)) => Action::AskDestroyVersion(v),
                Some((v, true)) => self.say(&format!("version {v} is already destroyed")),
                None => Action::None,
            },
            (View::Versions, KeyCode::Char('b')) => {
                match (self.version_current(), name) {
                    (Some((v, false)), Some(name)) => {
                        self.ask(
                        format!("Write the values of version {v} of {name} again, as a new version? y/N"),
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
            (View::Detail, KeyCode::Char('r')) => Action::Reveal,
            (View::Detail, KeyCode::Char('c')) => match &self.revealed {
                Some(r) => match r.values.get(self.value_selected) {
                    Some((_, v)) => Action::Copy(v.clone()),
                    None => Action::None,
                },
                None => self.say("reveal the values first (r)"),
            },
            (View::Detail, KeyCode::Char('s')) => match &self.detail {
                Some(s) => {
                    self.form = Some(Form::sync(s));
                    Action::None
                }
                None => Action::None,
            },
            (View::Detail, c) if self.move_in_detail(c) => Action::None,
            (View::List | View::Detail, KeyCode::Char('p')) if name.is_some() => Action::OpenPut,
            (View::List | View::Detail, KeyCode::Char('v')) if name.is_some() => {
                self.version_selected = 0;
                self.go(View::Versions)
            }
            (View::List | View::Detail, KeyCode::Char('d')) if name.is_some() => {
                Action::AskDelete { destroy: false }
            }
            (View::List | View::Detail, KeyCode::Char('D')) if name.is_some() => {
                Action::AskDelete { destroy: true }
            }
            (View::List | View::Detail | View::Audit, KeyCode::Char('u')) if name.is_some() => {
                self.go(View::UsedBy)
            }
            (View::List | View::Detail | View::UsedBy, KeyCode::Char('a')) if name.is_some() => {
                self.go(View::Audit)
            }
            (View::Elevation, KeyCode::Char('e')) => {
                self.reason = Some(String::new());
                Action::None
            }
            (View::Elevation, KeyCode::Char('x')) => Action::Release,
            (_, KeyCode::Char('e')) => self.go(View::Elevation),
            _ => Action::None,
        }
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
