//! What an event records beyond who did what to which resource: its facts
//! (the caller's role, the elevation it used, the version a write made, an
//! error's message). A closed set, each with its one key in the event's
//! text, so no fact can take the name of a field the event has by type and
//! a reader finds a fact under the same key the backend wrote it with.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// A version of a secret (1, 2, …), as the KV engine numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One fact of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// `role`: the caller's role in the project (`org-admin` for an
    /// organization admin).
    Role(String),
    /// `elevation_id`: the elevation window the request used or opened.
    ElevationId(String),
    /// `reason`: why the window was opened.
    Reason(String),
    /// `expires_at`: when the window it opened closes.
    ExpiresAt(String),
    /// `version`: the version the request wrote or read.
    Version(Version),
    /// `replayed`: a retried write answered with its first answer.
    Replayed(bool),
    /// `sync_enabled`: the projection setting a sync change left.
    SyncEnabled(bool),
    /// `source`: the Kubernetes Secret an import read (`namespace/name`).
    Source(String),
    /// `cross_namespace`: the import read from another namespace.
    CrossNamespace(bool),
    /// `error`: why the request failed.
    Error(String),
    /// `recorded_version`: the version the records hold (start-up check).
    RecordedVersion(Version),
    /// `openbao_version`: the version the value engine holds (start-up
    /// check).
    EngineVersion(Version),
    /// `message`: what the backend found, in words.
    Message(String),
}

/// A fact's key: where it is in an event's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactKey {
    /// [`Fact::Role`].
    Role,
    /// [`Fact::ElevationId`].
    ElevationId,
    /// [`Fact::Reason`].
    Reason,
    /// [`Fact::ExpiresAt`].
    ExpiresAt,
    /// [`Fact::Version`].
    Version,
    /// [`Fact::Replayed`].
    Replayed,
    /// [`Fact::SyncEnabled`].
    SyncEnabled,
    /// [`Fact::Source`].
    Source,
    /// [`Fact::CrossNamespace`].
    CrossNamespace,
    /// [`Fact::Error`].
    Error,
    /// [`Fact::RecordedVersion`].
    RecordedVersion,
    /// [`Fact::EngineVersion`].
    EngineVersion,
    /// [`Fact::Message`].
    Message,
}

impl FactKey {
    /// Every key.
    pub const ALL: [FactKey; 13] = [
        FactKey::Role,
        FactKey::ElevationId,
        FactKey::Reason,
        FactKey::ExpiresAt,
        FactKey::Version,
        FactKey::Replayed,
        FactKey::SyncEnabled,
        FactKey::Source,
        FactKey::CrossNamespace,
        FactKey::Error,
        FactKey::RecordedVersion,
        FactKey::EngineVersion,
        FactKey::Message,
    ];

    /// The key as written in an event's text.
    pub fn as_str(self) -> &'static str {
        match self {
            FactKey::Role => "role",
            FactKey::ElevationId => "elevation_id",
            FactKey::Reason => "reason",
            FactKey::ExpiresAt => "expires_at",
            FactKey::Version => "version",
            FactKey::Replayed => "replayed",
            FactKey::SyncEnabled => "sync_enabled",
            FactKey::Source => "source",
            FactKey::CrossNamespace => "cross_namespace",
            FactKey::Error => "error",
            FactKey::RecordedVersion => "recorded_version",
            FactKey::EngineVersion => "openbao_version",
            FactKey::Message => "message",
        }
    }

    /// The fact's text in a listed event's body (empty when it is not
    /// there or is not text).
    pub fn text_in(self, body: &Map<String, Value>) -> String {
        crate::audit::field_text(body, self.as_str())
    }

    /// The fact as a version in a listed event's body, when it is one.
    pub fn version_in(self, body: &Map<String, Value>) -> Option<Version> {
        body.get(self.as_str())?.as_u64().map(Version)
    }
}

impl Fact {
    /// Its key.
    pub fn key(&self) -> FactKey {
        match self {
            Fact::Role(_) => FactKey::Role,
            Fact::ElevationId(_) => FactKey::ElevationId,
            Fact::Reason(_) => FactKey::Reason,
            Fact::ExpiresAt(_) => FactKey::ExpiresAt,
            Fact::Version(_) => FactKey::Version,
            Fact::Replayed(_) => FactKey::Replayed,
            Fact::SyncEnabled(_) => FactKey::SyncEnabled,
            Fact::Source(_) => FactKey::Source,
            Fact::CrossNamespace(_) => FactKey::CrossNamespace,
            Fact::Error(_) => FactKey::Error,
            Fact::RecordedVersion(_) => FactKey::RecordedVersion,
            Fact::EngineVersion(_) => FactKey::EngineVersion,
            Fact::Message(_) => FactKey::Message,
        }
    }
}

/// A fact's value, written as the untyped events wrote it: text, a
/// boolean or a number.
impl Serialize for Fact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Fact::Role(t)
            | Fact::ElevationId(t)
            | Fact::Reason(t)
            | Fact::ExpiresAt(t)
            | Fact::Source(t)
            | Fact::Error(t)
            | Fact::Message(t) => s.serialize_str(t),
            Fact::Replayed(b) | Fact::SyncEnabled(b) | Fact::CrossNamespace(b) => {
                s.serialize_bool(*b)
            }
            Fact::Version(v) | Fact::RecordedVersion(v) | Fact::EngineVersion(v) => {
                s.serialize_u64(v.0)
            }
        }
    }
}

/// An event's facts, one per key, a later one replacing an earlier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts(Vec<Fact>);

impl Facts {
    /// Adds `fact`, replacing one of the same key.
    pub fn put(&mut self, fact: Fact) {
        match self.0.iter_mut().find(|f| f.key() == fact.key()) {
            Some(f) => *f = fact,
            None => self.0.push(fact),
        }
    }

    /// Adds every fact of `more`, each replacing one of its key.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Fact>) {
        for f in more {
            self.put(f);
        }
    }

    /// The facts, in the order they were added.
    pub fn iter(&self) -> std::slice::Iter<'_, Fact> {
        self.0.iter()
    }

    /// The fact of `key`, if there is one.
    pub fn get(&self, key: FactKey) -> Option<&Fact> {
        self.0.iter().find(|f| f.key() == key)
    }
}

impl<'a> IntoIterator for &'a Facts {
    type Item = &'a Fact;
    type IntoIter = std::slice::Iter<'a, Fact>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Facts {
    type Item = Fact;
    type IntoIter = std::vec::IntoIter<Fact>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
