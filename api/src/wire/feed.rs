//! The live audit feed (**extension**): `GET /api/watch/audit/orgs/{org}`
//! (organization admins) and `…/projects/{project}` (project members)
//! answer JSON lines (`application/x-ndjson`) over one long-lived response,
//! one [`FeedLine`] per line.
//!
//! - The first line is a `heartbeat` whose cursor is the hash of the event
//!   the feed starts after (empty when the chain has no event before it).
//! - Then one `event` per appended audit event, in chain order: its time
//!   and its body exactly as an audit listing shows it (with `seq`,
//!   `prev_hash` and `hash`); its cursor is its `hash`.
//! - A `heartbeat` every 15 s keeps proxies from closing an idle feed.
//! - `?after=HASH` resumes after that event (the same cursor as the CSV
//!   export's `after`): none missed, none twice, across restarts of the
//!   backend too. `?since=` starts at a time instead; neither: from now.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `type` of [`FeedLine`]: one audit event.
pub const EVENT: &str = "event";

/// One line of the feed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedLine {
    /// [`EVENT`] or `heartbeat`; a client skips types it does not know.
    #[serde(rename = "type")]
    pub kind: String,
    /// The hash of the last event sent (or where the feed starts).
    pub cursor: String,
    /// The event's time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The event, as a listing shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Map<String, Value>>,
}
