//! The terminal view's state and its keys, apart from the terminal and the
//! API (so that both can be tested alone): a key changes the state and may
//! ask for an [`Action`], which the loop in `mod.rs` carries out.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::api::{Consumer, ElevationStatus, Secret, Sensitive, VersionInfo};
use crate::listing::{self, SyncState};

/// How long revealed values stay on screen.
pub const REVEAL_FOR: Duration = Duration::from_secs(30);

/// One row of the list.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub kind: String,
    pub sync: SyncState,
    pub target: String,
    pub version: Option<u64>,
    pub updated: Option<String>,
}

impl Row {
    /// A listed secret as the view lists it.
    pub fn of(r: &listing::Row) -> Self {
        Row {
            name: r.name.to_string(),
            kind: r.kind().to_string(),
            sync: r.sync_state(),
            target: r.target().to_string(),
            version: r.version(),
            updated: r.updated().map(str::to_string),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    List,
    Detail,
    UsedBy,
    Audit,
    Elevation,
    Help,
}

/// One audit event, as the view shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub time: String,
    pub action: String,
    pub actor: String,
    pub result: String,
}

/// What the loop must do after a key.
#[derive(Debug, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// Reload the list (and the open view).
    Refresh,
    LoadDetail,
    Reveal,
    /// Copy this value to the clipboard (OSC 52).
    Copy(Sensitive),
    LoadConsumers,
    LoadAudit,
    LoadElevation,
    Elevate(String),
    Release,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

pub struct App {
    /// Context and namespace, for the title.
    pub context: String,
    pub namespace: String,
    pub rows: Vec<Row>,
    pub filter: String,
    pub filtering: bool,
    /// Index into the filtered rows.
    pub selected: usize,
    pub view: View,
    /// Where `?` was pressed, to go back to.
    pub help_from: View,
    pub detail: Option<Secret>,
    pub versions: Vec<VersionInfo>,
    /// Revealed values, when they were revealed.
    pub revealed: Option<(Vec<(String, Sensitive)>, Instant)>,
    pub value_selected: usize,
    pub consumers: Option<Vec<Consumer>>,
    pub events: Vec<Event>,
    pub elevation: Option<ElevationStatus>,
    /// The reason being typed for an elevation.
    pub reason: Option<String>,
    pub message: Option<(String, Level)>,
    pub loaded_at: Option<Instant>,
}

impl App {
    pub fn new(context: &str, namespace: &str) -> Self {
        Self {
            context: context.into(),
            namespace: namespace.into(),
            rows: Vec::new(),
            filter: String::new(),
            filtering: false,
            selected: 0,
            view: View::List,
            help_from: View::List,
            detail: None,
            versions: Vec::new(),
            revealed: None,
            value_selected: 0,
            consumers: None,
            events: Vec::new(),
            elevation: None,
            reason: None,
            message: None,
            loaded_at: None,
        }
    }

    /// The rows the filter lets through.
    pub fn visible(&self) -> Vec<&Row> {
        let f = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|r| f.is_empty() || r.name.to_lowercase().contains(&f))
            .collect()
    }

    pub fn current(&self) -> Option<&Row> {
        self.visible().get(self.selected).copied()
    }

    /// New rows: the selection stays on the same name when it can.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        let keep = self.current().map(|r| r.name.clone());
        self.rows = rows;
        self.selected = keep
            .and_then(|n| self.visible().iter().position(|r| r.name == n))
            .unwrap_or(0);
        self.clamp();
        self.loaded_at = Some(Instant::now());
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// Forgets revealed values (refresh, leaving the view, timeout).
    pub fn hide(&mut self) {
        self.revealed = None;
        self.value_selected = 0;
    }

    /// Hides values revealed longer than [`REVEAL_FOR`] ago; true if it did.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self
            .revealed
            .as_ref()
            .is_some_and(|(_, at)| now.duration_since(*at) >= REVEAL_FOR)
        {
            self.hide();
            self.message = Some(("values hidden again".into(), Level::Info));
            return true;
        }
        false
    }

    /// When revealed values must be hidden, if any are shown.
    pub fn reveal_deadline(&self) -> Option<Instant> {
        self.revealed.as_ref().map(|(_, at)| *at + REVEAL_FOR)
    }

    /// The keys of the revealed values, in order.
    pub fn value_keys(&self) -> Vec<String> {
        self.revealed
            .as_ref()
            .map(|(vals, _)| vals.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    fn go(&mut self, view: View) -> Action {
        if view != View::Detail && self.view == View::Detail {
            self.hide();
        }
        self.view = view;
        match view {
            View::Detail => Action::LoadDetail,
            View::UsedBy => Action::LoadConsumers,
            View::Audit => Action::LoadAudit,
            View::Elevation => Action::LoadElevation,
            View::List | View::Help => Action::None,
        }
    }

    fn back(&mut self) -> Action {
        match self.view {
            View::List => Action::Quit,
            View::Help => {
                self.view = self.help_from;
                Action::None
            }
            View::Detail => {
                self.hide();
                self.view = View::List;
                Action::None
            }
            _ => {
                // Back to the secret's detail when it is open.
                self.view = if self.detail.is_some() {
                    View::Detail
                } else {
                    View::List
                };
                Action::None
            }
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
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
            self.clamp();
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
        match (self.view, k.code) {
            (View::Help, _) => self.back(),
            (_, KeyCode::Char('q') | KeyCode::Esc) => self.back(),
            (_, KeyCode::Char('?')) => {
                self.help_from = self.view;
                self.view = View::Help;
                Action::None
            }
            (_, KeyCode::Char('R')) => {
                self.hide();
                Action::Refresh
            }
            (View::List, KeyCode::Char('/')) => {
                self.filtering = true;
                Action::None
            }
            (View::List, KeyCode::Down | KeyCode::Char('j')) => {
                self.selected += 1;
                self.clamp();
                Action::None
            }
            (View::List, KeyCode::Up | KeyCode::Char('k')) => {
                self.selected = self.selected.saturating_sub(1);
                Action::None
            }
            (View::List, KeyCode::Home | KeyCode::Char('g')) => {
                self.selected = 0;
                Action::None
            }
            (View::List, KeyCode::End | KeyCode::Char('G')) => {
                self.selected = usize::MAX;
                self.clamp();
                Action::None
            }
            (View::List, KeyCode::Enter) if self.current().is_some() => self.go(View::Detail),
            (View::Detail, KeyCode::Char('r')) => Action::Reveal,
            (View::Detail, KeyCode::Down | KeyCode::Char('j')) => {
                let n = self.value_keys().len();
                self.value_selected = (self.value_selected + 1).min(n.saturating_sub(1));
                Action::None
            }
            (View::Detail, KeyCode::Up | KeyCode::Char('k')) => {
                self.value_selected = self.value_selected.saturating_sub(1);
                Action::None
            }
            (View::Detail, KeyCode::Char('c')) => match &self.revealed {
                Some((vals, _)) => match vals.get(self.value_selected) {
                    Some((_, v)) => Action::Copy(v.clone()),
                    None => Action::None,
                },
                None => {
                    self.message = Some(("reveal the values first (r)".into(), Level::Info));
                    Action::None
                }
            },
            (View::List | View::Detail | View::Audit, KeyCode::Char('u'))
                if self.current().is_some() =>
            {
                self.go(View::UsedBy)
            }
            (View::List | View::Detail | View::UsedBy, KeyCode::Char('a'))
                if self.current().is_some() =>
            {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn row(name: &str) -> Row {
        Row {
            name: name.into(),
            kind: "opaque".into(),
            sync: SyncState::Ready,
            target: name.into(),
            version: Some(1),
            updated: None,
        }
    }

    #[test]
    fn filter_moves_and_selection_follows_the_name_across_refreshes() {
        let mut app = App::new("local", "local-default");
        app.set_rows(vec![row("api"), row("db"), row("db-replica"), row("web")]);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.current().unwrap().name, "db");
        app.on_key(key(KeyCode::Char('/')));
        for c in "db-".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.visible().len(), 1);
        assert_eq!(app.current().unwrap().name, "db-replica");
        // Keys typed into the filter did not act ('d', 'b').
        assert_eq!(app.view, View::List);
        app.set_rows(vec![row("aaa"), row("db-replica")]);
        assert_eq!(app.current().unwrap().name, "db-replica");
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.visible().len(), 2);
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
    }

    #[test]
    fn values_are_hidden_on_leaving_on_refresh_and_after_the_timeout() {
        let mut app = App::new("local", "ns");
        app.set_rows(vec![row("db")]);
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::LoadDetail);
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            Action::None,
            "nothing to copy yet"
        );
        assert_eq!(app.on_key(key(KeyCode::Char('r'))), Action::Reveal);
        let t0 = Instant::now();
        let reveal = |app: &mut App| {
            app.revealed = Some((vec![("K".into(), Sensitive::new("v"))], t0));
        };
        reveal(&mut app);
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            Action::Copy(Sensitive::new("v"))
        );
        assert!(!app.expire(t0 + Duration::from_secs(5)));
        assert!(app.expire(t0 + REVEAL_FOR));
        assert!(app.revealed.is_none());
        reveal(&mut app);
        assert_eq!(app.on_key(key(KeyCode::Char('R'))), Action::Refresh);
        assert!(app.revealed.is_none());
        reveal(&mut app);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(app.view, View::List);
        assert!(app.revealed.is_none());
    }

    #[test]
    fn elevation_asks_for_a_reason_and_help_returns_where_it_was() {
        let mut app = App::new("c", "ns");
        assert_eq!(app.on_key(key(KeyCode::Char('e'))), Action::LoadElevation);
        app.on_key(key(KeyCode::Char('e')));
        assert!(app.reason.is_some());
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::None,
            "empty reason"
        );
        app.on_key(key(KeyCode::Char('e')));
        for c in "IR-7 q".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::Elevate("IR-7 q".into())
        );
        assert_eq!(app.on_key(key(KeyCode::Char('x'))), Action::Release);
        app.on_key(key(KeyCode::Char('?')));
        assert_eq!(app.view, View::Help);
        app.on_key(key(KeyCode::Char('z')));
        assert_eq!(app.view, View::Elevation);
    }
}
