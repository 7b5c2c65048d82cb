//! Wire types beyond one secret: elevation grants, audit events, the local
//! backend's model inspection, and error bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub elevation_id: String,
    pub user: String,
    pub org: String,
    pub project: String,
    pub reason: String,
    pub granted_at: String,
    pub expires_at: String,
    pub ttl_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevateRequest {
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ElevationStatus {
    pub active: bool,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditEvent {
    /// ISO 8601, or epoch nanoseconds when all digits (production).
    pub ts: Value,
    /// Every field the server sent, known or not.
    pub body: Map<String, Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditResponse {
    pub events: Vec<AuditEvent>,
    #[serde(default)]
    pub query: Value,
    #[serde(default)]
    pub returned: usize,
    #[serde(default)]
    pub limit: usize,
}

/// Model inspection (extension of this backend): a Kubernetes Secret in the
/// modelled namespace. Keys only, never values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeSecretInfo {
    pub name: String,
    pub namespace: String,
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}
