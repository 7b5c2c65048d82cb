//! The terminal view's state and its keys, apart from the terminal and the
//! API (so that both can be tested alone): a key changes the state and may
//! ask for an [`Action`], which the loop in `mod.rs` carries out.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::form::Form;
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

    /// A soft-deleted secret: `updated` is when it was deleted.
    pub fn of_deleted(r: &listing::Row) -> Self {
        Row {
            updated: r.deleted_time().map(str::to_string),
            ..Row::of(r)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    List,
    /// The soft-deleted secrets, to restore.
    Deleted,
    Detail,
    Versions,
    UsedBy,
    Audit,
    Elevation,
    Help,
}

impl View {
    /// What showing this view loads (the list itself is loaded apart).
    pub fn load(self) -> Action {
        match self {
            View::Detail => Action::LoadDetail,
            View::UsedBy => Action::LoadConsumers,
            View::Audit => Action::LoadAudit,
            View::Elevation => Action::LoadElevation,
            View::Versions => Action::LoadVersions,
            View::Deleted => Action::LoadDeleted,
            View::List | View::Help => Action::None,
        }
    }
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
#[derive(Clone, Debug, PartialEq)]
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
    LoadVersions,
    LoadDeleted,
    /// `p`: read the values (audited, as `secrets edit`) into a form.
    OpenPut,
    /// Send the open form.
    Submit,
    /// `d`/`D`: show the workloads that use the secret, then ask.
    AskDelete {
        destroy: bool,
    },
    Delete {
        name: String,
        destroy: bool,
    },
    /// `x` in the versions: ask (showing the workloads for the current one).
    AskDestroyVersion(u64),
    DestroyVersion {
        name: String,
        version: u64,
    },
    Rollback {
        name: String,
        version: u64,
    },
    Restore(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// A question on the key line before an irreversible or disruptive step:
/// `y` goes on, any other key does not; with `expect`, the name must be
/// typed and Enter pressed.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub expect: Option<String>,
    pub typed: String,
    pub then: Action,
    /// Shown under the question (the workloads that use the secret).
    pub details: Vec<String>,
}

/// An error as the body shows it: the message and each hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub message: String,
    pub hints: Vec<String>,
}

impl Problem {
    pub fn of(e: &crate::error::CliError) -> Self {
        Problem {
            message: e.to_string(),
            hints: e.hints.clone(),
        }
    }
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
    pub version_selected: usize,
    /// Revealed values: of which version, when they were revealed.
    pub revealed: Option<Revealed>,
    pub value_selected: usize,
    /// The detail's first row on screen; the drawing clamps it (and keeps
    /// the selected value in sight), hence a Cell.
    pub scroll: Cell<usize>,
    /// Scroll to the selected value at the next drawing.
    pub follow: Cell<bool>,
    pub consumers: Option<Vec<Consumer>>,
    pub events: Vec<Event>,
    pub elevation: Option<ElevationStatus>,
    pub deleted: Option<Vec<Row>>,
    pub deleted_selected: usize,
    /// The reason being typed for an elevation.
    pub reason: Option<String>,
    pub form: Option<Form>,
    pub confirm: Option<Confirm>,
    pub message: Option<(String, Level)>,
    /// The last failure, shown in the body with its hints until a key.
    pub problem: Option<Problem>,
    pub loaded_at: Option<Instant>,
    /// Why the automatic refresh waits (said on the status line).
    pub held: Option<&'static str>,
}

/// Values on screen, and what they are.
#[derive(Clone, Debug, PartialEq)]
pub struct Revealed {
    pub values: Vec<(String, Sensitive)>,
    pub version: u64,
    pub at: Instant,
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
            version_selected: 0,
            revealed: None,
            value_selected: 0,
            scroll: Cell::new(0),
            follow: Cell::new(false),
            consumers: None,
            events: Vec::new(),
            elevation: None,
            deleted: None,
            deleted_selected: 0,
            reason: None,
            form: None,
            confirm: None,
            message: None,
            problem: None,
            loaded_at: None,
            held: None,
        }
    }

    /// Something is being typed or asked: the view does not refresh under it.
    pub fn busy_typing(&self) -> bool {
        self.form.is_some() || self.confirm.is_some() || self.reason.is_some() || self.filtering
    }

    /// Puts the selection on `name` (after a create or an import).
    pub fn select(&mut self, name: &str) {
        if let Some(i) = self.visible().iter().position(|r| r.name == name) {
            self.selected = i;
        } else if !self.filter.is_empty() {
            // A filter that hides it would hide what was just made.
            self.filter.clear();
            self.selected = self
                .visible()
                .iter()
                .position(|r| r.name == name)
                .unwrap_or(0);
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
        self.clamp_selection();
        self.loaded_at = Some(crate::clock::instant());
    }

    pub(super) fn clamp_selection(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// Forgets revealed values (refresh, leaving the view, timeout).
    pub fn hide(&mut self) {
        self.revealed = None;
        self.value_selected = 0;
    }

    /// Leaves any view for `view`, loading what it shows.
    pub(super) fn go(&mut self, view: View) -> Action {
        if view != View::Detail && self.view == View::Detail {
            self.hide();
        }
        if view == View::Detail && self.view == View::List {
            self.scroll.set(0);
        }
        self.view = view;
        view.load()
    }

    /// Hides values revealed longer than [`REVEAL_FOR`] ago; true if it did.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self
            .revealed
            .as_ref()
            .is_some_and(|r| now.duration_since(r.at) >= REVEAL_FOR)
        {
            self.hide();
            self.message = Some(("values hidden again".into(), Level::Info));
            return true;
        }
        false
    }

    /// When revealed values must be hidden, if any are shown.
    pub fn reveal_deadline(&self) -> Option<Instant> {
        self.revealed.as_ref().map(|r| r.at + REVEAL_FOR)
    }

    /// The keys of the revealed values, in order.
    pub fn value_keys(&self) -> Vec<String> {
        self.revealed
            .as_ref()
            .map(|r| r.values.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }
}
