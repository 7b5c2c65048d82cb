//! Wire types beyond one secret: elevation grants, audit events, the local
//! backend's model inspection, and error bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// An elevation window: an organization admin's 15-minute access to a project's values.
pub struct Grant {
    /// The window's id (in every event it covers).
    pub elevation_id: String,
    /// Who elevated.
    pub user: String,
    /// The organization.
    pub org: String,
    /// The project.
    pub project: String,
    /// Why (an incident or ticket).
    pub reason: String,
    /// When it opened.
    pub granted_at: String,
    /// When it closes.
    pub expires_at: String,
    /// How long it lasts, in seconds.
    pub ttl_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When it was released early, if it was.
    pub released_at: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// Body of an elevation request.
pub struct ElevateRequest {
    #[serde(default)]
    /// Why (required: an incident or ticket number).
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// The caller's window in a project.
pub struct ElevationStatus {
    /// Whether one is open.
    pub active: bool,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    /// The open window.
    pub grant: Option<Grant>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// One listed audit event as the server sent it: every field kept, read
/// leniently through the event module's `Shown` (what the backend writes
/// is that module's `AuditEvent`).
pub struct ListedEvent {
    /// ISO 8601, or epoch nanoseconds when all digits (production).
    pub ts: Value,
    /// Every field the server sent, known or not.
    pub body: Map<String, Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// An audit query's answer.
pub struct AuditResponse {
    /// The events, newest first.
    pub events: Vec<ListedEvent>,
    #[serde(default)]
    /// The query as the server understood it.
    pub query: Value,
    #[serde(default)]
    /// How many events it returned.
    pub returned: usize,
    #[serde(default)]
    /// The limit it applied.
    pub limit: usize,
}

/// Model inspection (extension of this backend): a Kubernetes Secret in the
/// modelled namespace. Keys only, never values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeSecretInfo {
    /// The Secret's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its keys (never its values).
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The ManagedSecret that owns it, if one does.
    pub owned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The ManagedSecret version it holds, if it was projected.
    pub version: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// An API error's body.
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The request's id, for the audit log and support.
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What to do about it.
    pub hint: Option<String>,
}
