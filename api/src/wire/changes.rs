//! The change stream (**extension**): `GET /api/watch/secrets/{ns}` answers
//! JSON lines (`application/x-ndjson`) over one long-lived response, one
//! [`ChangeLine`] per line. Never a value.
//!
//! - The first line is a `heartbeat` carrying the cursor the stream starts
//!   after (the log's head when no `after` was given); a client that lists
//!   after reading it misses nothing.
//! - Then one `change` per committed change of a secret of the project, in
//!   commit order, each with its cursor; a `heartbeat` every 15 s keeps
//!   proxies from closing an idle stream and carries the cursor so far.
//! - `?after=CURSOR` resumes: every change after it, none twice, also
//!   across a restart of the backend (cursors are the audit log's sequence
//!   numbers). A cursor this backend never gave is answered 410.
//! - New versions of one secret in a row ([`NEW_VERSION`] with no other
//!   change of that secret between them) may arrive as the newest only,
//!   when they commit close together or the stream has fallen behind:
//!   its `version` says how many came between. Every other change is
//!   sent, each once.

use serde::{Deserialize, Serialize};

/// A `type` of [`ChangeLine`]: a change of one secret.
pub const CHANGE: &str = "change";
/// A `type` of [`ChangeLine`]: the stream is alive; its cursor so far.
pub const HEARTBEAT: &str = "heartbeat";

/// The `change` word of a new version of a secret's values.
pub const NEW_VERSION: &str = "new-version";

/// The content type of the stream.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// One line of the change stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLine {
    /// [`CHANGE`] or [`HEARTBEAT`]; a client skips types it does not know.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where a stream resumed with `?after=` continues from.
    pub cursor: String,
    /// The secret that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// What happened to it: one of [`CHANGES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// The version it has after the change, when the change made or names
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When it committed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Every `change` word, with the audit action it is recorded as.
pub const CHANGES: [(&str, &str); 10] = [
    ("secrets.secret.create", "created"),
    ("secrets.value.write", NEW_VERSION),
    ("secrets.sync.update", "sync-changed"),
    ("secrets.secret.update", "updated"),
    ("secrets.secret.import", "imported"),
    ("secrets.secret.delete", "deleted"),
    ("secrets.secret.restore", "restored"),
    ("secrets.secret.destroy", "destroyed"),
    ("secrets.version.destroy", "version-destroyed"),
    (crate::endpoints::ROTATE_ACTION, "rotated"),
];

/// The `change` word of an audit action that changes a secret, if it is
/// one.
pub fn change_of(action: &str) -> Option<&'static str> {
    CHANGES.iter().find(|(a, _)| *a == action).map(|(_, c)| *c)
}

impl ChangeLine {
    /// A heartbeat at `cursor`.
    pub fn heartbeat(cursor: impl Into<String>) -> Self {
        ChangeLine {
            kind: HEARTBEAT.into(),
            cursor: cursor.into(),
            ..Default::default()
        }
    }

    /// Whether it is a change (not a heartbeat or a type this client does
    /// not know).
    pub fn is_change(&self) -> bool {
        self.kind == CHANGE
    }
}
