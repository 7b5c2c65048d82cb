//! The forms of the view — new secret (`n`), import (`i`), put values
//! (`p`), sync settings (`s`) — as state and keys, apart from the terminal
//! and the API. A form checks its fields with the same rules as the CLI's
//! flags before anything is sent; the request itself is built in
//! `submit.rs`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::api::{Secret, Sensitive};
use kube_dc_api::wire::Data;
use kube_dc_api::wire::SECRET_TYPES;

/// Import's type choice: keep the imported Secret's (none sent), or one.
pub const IMPORT_TYPES: &[&str] = &[
    "(default)",
    "opaque",
    "password",
    "api-key",
    "tls",
    "db-static",
];

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Text(String),
    Toggle(bool),
    Choice(&'static [&'static str], usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub label: &'static str,
    pub input: Input,
    /// Said beside the field (a default, a format).
    pub note: &'static str,
}

impl Field {
    fn text(label: &'static str, v: &str, note: &'static str) -> Self {
        Field {
            label,
            input: Input::Text(v.into()),
            note,
        }
    }
    fn choice(label: &'static str, options: &'static [&'static str]) -> Self {
        Field {
            label,
            input: Input::Choice(options, 0),
            note: "← → to choose",
        }
    }
    fn toggle(label: &'static str, on: bool, note: &'static str) -> Self {
        Field {
            label,
            input: Input::Toggle(on),
            note,
        }
    }
}

/// One `KEY = value` row; the value is typed masked, or is a file's path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueRow {
    pub key: String,
    pub value: Sensitive,
    /// The value is the content of the file at this path (`Ctrl-O`).
    pub file: Option<String>,
    /// Prefilled and not yet touched: the first key typed replaces it.
    pub prefilled: bool,
}

impl ValueRow {
    pub fn is_empty(&self) -> bool {
        self.key.is_empty() && self.value.is_empty() && self.file.is_none()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Create,
    Import,
    /// New values for `name`, read at `version` (check-and-set on it).
    Put {
        name: String,
        version: u64,
        before: Data,
    },
    /// The settings of `name`, as they were (only changes are sent).
    Sync {
        name: String,
        before: Vec<Input>,
    },
}

/// Where the cursor is: a field, or a value row's key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Field(usize),
    Key(usize),
    Value(usize),
}

/// What a key did to the form.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Submit,
    Cancel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub kind: Kind,
    pub title: String,
    pub fields: Vec<Field>,
    /// Value rows (create and put); the last one is always empty.
    pub rows: Vec<ValueRow>,
    pub has_rows: bool,
    pub focus: Focus,
    /// The last attempt's error (the form stays open and keeps its input).
    pub error: Option<String>,
    /// A put that removes keys has been shown the list once: Enter again
    /// writes.
    pub removal_confirmed: bool,
}

impl Form {
    fn new(kind: Kind, title: String, fields: Vec<Field>, has_rows: bool) -> Self {
        Form {
            kind,
            title,
            focus: if fields.is_empty() {
                Focus::Key(0)
            } else {
                Focus::Field(0)
            },
            fields,
            rows: vec![ValueRow::default()],
            has_rows,
            error: None,
            removal_confirmed: false,
        }
    }

    /// `n`: the seed's create form.
    pub fn create(ns: &str) -> Self {
        Form::new(
            Kind::Create,
            format!("New secret in {ns}"),
            vec![
                Field::text("Name", "", "lowercase letters, digits, '-', '.'"),
                Field::choice("Type", SECRET_TYPES),
                Field::text("Description", "", "optional"),
                Field::toggle("Sync", true, "project into a Kubernetes Secret (Space)"),
                Field::text("Target", "", "default: the secret's name"),
                Field::text("Refresh", "", "default: 1h (10s to 7d)"),
                Field::text("Keys", "", "comma-separated; default: all"),
            ],
            true,
        )
    }

    /// `i`: import a Kubernetes Secret.
    pub fn import(ns: &str) -> Self {
        Form::new(
            Kind::Import,
            format!("Import a Kubernetes Secret into {ns}"),
            vec![
                Field::text("Source", "", "the Kubernetes Secret's name"),
                Field::toggle(
                    "Cross-ns",
                    false,
                    "from another namespace (audit-visible; Space)",
                ),
                Field::text(
                    "Namespace",
                    "",
                    "the source's namespace (cross-namespace only)",
                ),
                Field::text("Name", "", "default: the source's name"),
                Field::choice("Type", IMPORT_TYPES),
                Field::text("Description", "", "optional"),
            ],
            false,
        )
    }

    /// `p`: the values of version `version` (read, audited), to change.
    pub fn put(name: &str, version: u64, data: Data) -> Self {
        let mut f = Form::new(
            Kind::Put {
                name: name.into(),
                version,
                before: data.clone(),
            },
            format!("Values of {name} (version {version}): Enter writes a new version"),
            Vec::new(),
            true,
        );
        f.rows = data
            .into_iter()
            .map(|(key, value)| ValueRow {
                key,
                value,
                file: None,
                prefilled: true,
            })
            .collect();
        f.rows.push(ValueRow::default());
        f
    }

    /// `s`: the secret's sync settings as they are.
    pub fn sync(s: &Secret) -> Self {
        let keys = s.sync.keys.clone().unwrap_or_default().join(",");
        let mut f = Form::new(
            Kind::Sync {
                name: s.name.clone(),
                before: Vec::new(),
            },
            format!("Sync of {}: only what you change is sent", s.name),
            vec![
                Field::toggle(
                    "Enabled",
                    s.sync.enabled,
                    "project into a Kubernetes Secret (Space)",
                ),
                Field::text(
                    "Target",
                    s.sync.target_secret_name.as_deref().unwrap_or(""),
                    "default: the secret's name",
                ),
                Field::text(
                    "Refresh",
                    s.sync.refresh_interval.as_deref().unwrap_or(""),
                    "default: 1h (10s to 7d)",
                ),
                Field::text("Keys", &keys, "comma-separated; empty: all"),
            ],
            false,
        );
        let now = f.fields.iter().map(|x| x.input.clone()).collect();
        if let Kind::Sync { before, .. } = &mut f.kind {
            *before = now;
        }
        f
    }

    /// A field's text (empty for toggles and choices).
    pub fn text(&self, label: &str) -> String {
        match self
            .fields
            .iter()
            .find(|f| f.label == label)
            .map(|f| &f.input)
        {
            Some(Input::Text(t)) => t.trim().to_string(),
            _ => String::new(),
        }
    }

    pub fn toggle(&self, label: &str) -> bool {
        matches!(
            self.fields
                .iter()
                .find(|f| f.label == label)
                .map(|f| &f.input),
            Some(Input::Toggle(true))
        )
    }

    pub fn choice(&self, label: &str) -> &'static str {
        match self
            .fields
            .iter()
            .find(|f| f.label == label)
            .map(|f| &f.input)
        {
            Some(Input::Choice(opts, i)) => opts[*i],
            _ => "",
        }
    }

    /// The cursor's stops in order.
    fn stops(&self) -> Vec<Focus> {
        let mut s: Vec<Focus> = (0..self.fields.len()).map(Focus::Field).collect();
        if self.has_rows {
            for i in 0..self.rows.len() {
                s.push(Focus::Key(i));
                s.push(Focus::Value(i));
            }
        }
        s
    }

    fn step(&mut self, by: isize) {
        let stops = self.stops();
        let at = stops.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let n = stops.len() as isize;
        self.focus = stops[((at + by) % n + n) as usize % n as usize];
    }

    /// One key. Typing edits the focused stop; Tab and ↑↓ move; Space
    /// switches a toggle, ← → a choice; Ctrl-O makes a value a file path;
    /// Ctrl-U clears; Enter submits; Esc cancels.
    pub fn on_key(&mut self, k: KeyEvent) -> Outcome {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Enter => return Outcome::Submit,
            KeyCode::Tab | KeyCode::Down => self.step(1),
            KeyCode::BackTab | KeyCode::Up => self.step(-1),
            KeyCode::Char('o') if ctrl => {
                if let Focus::Value(i) = self.focus {
                    let r = &mut self.rows[i];
                    r.file = match r.file {
                        Some(_) => None,
                        None => Some(String::new()),
                    };
                    r.value = Sensitive::default();
                    r.prefilled = false;
                }
            }
            KeyCode::Char('u') if ctrl => self.edit(|t| t.clear()),
            KeyCode::Backspace => self.edit(|t| {
                t.pop();
            }),
            KeyCode::Char(' ') if self.is_toggle() => {
                if let Focus::Field(i) = self.focus
                    && let Input::Toggle(on) = &mut self.fields[i].input
                {
                    *on = !*on;
                }
            }
            KeyCode::Left | KeyCode::Right => {
                if let Focus::Field(i) = self.focus
                    && let Input::Choice(opts, at) = &mut self.fields[i].input
                {
                    let n = opts.len();
                    *at = if k.code == KeyCode::Right {
                        (*at + 1) % n
                    } else {
                        (*at + n - 1) % n
                    };
                }
            }
            KeyCode::Char(c) if !ctrl => self.edit(|t| t.push(c)),
            _ => {}
        }
        Outcome::Stay
    }

    fn is_toggle(&self) -> bool {
        matches!(self.focus, Focus::Field(i) if matches!(self.fields[i].input, Input::Toggle(_)))
    }

    /// Applies `f` to the focused text; a prefilled value is replaced by
    /// the first edit. Keeps one empty row at the end.
    fn edit(&mut self, f: impl FnOnce(&mut String)) {
        match self.focus {
            Focus::Field(i) => {
                if let Input::Text(t) = &mut self.fields[i].input {
                    f(t);
                }
            }
            Focus::Key(i) => f(&mut self.rows[i].key),
            Focus::Value(i) => {
                let r = &mut self.rows[i];
                match &mut r.file {
                    Some(path) => f(path),
                    None => {
                        let mut v = if r.prefilled {
                            String::new()
                        } else {
                            r.value.expose().to_string()
                        };
                        f(&mut v);
                        r.value = Sensitive::new(v);
                    }
                }
                r.prefilled = false;
            }
        }
        self.removal_confirmed = false;
        if self.has_rows && !self.rows.last().is_some_and(ValueRow::is_empty) {
            self.rows.push(ValueRow::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(f: &mut Form, s: &str) {
        for c in s.chars() {
            f.on_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn typing_fills_fields_and_rows_grow_as_values_are_typed() {
        let mut f = Form::create("ns");
        typed(&mut f, "db-creds");
        f.on_key(key(KeyCode::Tab));
        f.on_key(key(KeyCode::Right));
        assert_eq!(f.choice("Type"), "password");
        f.on_key(key(KeyCode::Tab));
        f.on_key(key(KeyCode::Tab));
        f.on_key(key(KeyCode::Char(' ')));
        assert!(!f.toggle("Sync"));
        for _ in 0..4 {
            f.on_key(key(KeyCode::Tab));
        }
        assert_eq!(f.focus, Focus::Key(0));
        typed(&mut f, "USER");
        assert_eq!(f.rows.len(), 2, "an empty row follows");
        f.on_key(key(KeyCode::Tab));
        typed(&mut f, "a b=c");
        assert_eq!(f.rows[0].value.expose(), "a b=c");
        assert_eq!(f.text("Name"), "db-creds");
        // Ctrl-O: a file path instead.
        f.on_key(KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL));
        typed(&mut f, "/tmp/x");
        assert_eq!(f.rows[0].file.as_deref(), Some("/tmp/x"));
        assert!(f.rows[0].value.is_empty());
        assert_eq!(f.on_key(key(KeyCode::Enter)), Outcome::Submit);
        assert_eq!(f.on_key(key(KeyCode::Esc)), Outcome::Cancel);
    }

    #[test]
    fn a_prefilled_value_is_replaced_by_typing_and_debug_hides_values() {
        let mut data = Data::new();
        data.insert("PASSWORD".into(), Sensitive::new("old-9931"));
        let mut f = Form::put("db", 2, data);
        assert_eq!(f.focus, Focus::Key(0));
        f.on_key(key(KeyCode::Tab));
        typed(&mut f, "new");
        assert_eq!(f.rows[0].value.expose(), "new");
        assert!(!format!("{f:?}").contains("new\""));
        assert!(!format!("{f:?}").contains("old-9931"));
    }
}
