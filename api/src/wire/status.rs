//! A secret's status as the platform's controller reports it, and the one
//! rule for whether its projection is ready.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// One condition of a secret's status, as the platform's controller sets it.
pub struct Condition {
    /// `Ready`, `Synced`, `RotationScheduled`, … (a server's own words are
    /// kept as they came; the backend's are static, and a list of 10,000
    /// secrets makes none of them).
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// `True`, `False` or `Unknown`.
    pub status: Cow<'static, str>,
    #[serde(default)]
    /// A one-word reason (`Reconciled`, `KeysMissing`, …).
    pub reason: Cow<'static, str>,
    #[serde(default)]
    /// What it means, for people.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When it last changed.
    pub last_transition_time: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// What the platform reports of a secret.
pub struct SecretStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Its conditions (`Ready`, `Synced`, `RotationScheduled`).
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The Kubernetes Secret the values are projected into.
    pub synced_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The current version.
    pub current_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When the projection was last refreshed.
    pub last_synced_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When rotation last wrote a value.
    pub last_rotated_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When rotation writes the next one.
    pub next_rotation_time: Option<String>,
    /// **Extension**: the current version's key names (never values), so a
    /// client can say what a `put` removes without reading values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_keys: Option<Vec<String>>,
}

/// Whether conditions (type, status) say the projection exists as asked:
/// `Ready` is true (reconciled) and `Synced` is not false. Production's
/// controller reports `Ready=True` as soon as the projection is wired, even
/// before a value exists; `Synced` says whether it holds the values.
pub fn projection_ready<'a>(conditions: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    let mut r = Readiness::default();
    for (kind, status) in conditions {
        r.see(kind, status);
    }
    r.ready()
}

/// [`projection_ready`] one condition at a time (a client reading a list
/// folds each condition as it is decoded, keeping none).
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    ready: bool,
    synced: bool,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            ready: false,
            synced: true,
        }
    }
}

impl Readiness {
    /// One condition's type and status.
    pub fn see(&mut self, kind: &str, status: &str) {
        match kind {
            "Ready" => self.ready = status == "True",
            "Synced" => self.synced = status != "False",
            _ => {}
        }
    }

    /// `Ready` true, and `Synced` not false.
    pub fn ready(self) -> bool {
        self.ready && self.synced
    }
}

impl SecretStatus {
    /// The condition of type `kind`, if reported.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Whether the projection is ready ([`projection_ready`]).
    pub fn ready(&self) -> bool {
        projection_ready(
            self.conditions
                .iter()
                .map(|c| (c.kind.as_ref(), c.status.as_ref())),
        )
    }

    /// Why the projection is not ready: the first false `Ready` or
    /// `Synced` condition (a disabled sync is not a reason: nothing is
    /// asked for).
    pub fn not_ready_because(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| {
            (c.kind == "Ready" || c.kind == "Synced")
                && c.status != "True"
                && c.reason != "SyncDisabled"
        })
    }
}
