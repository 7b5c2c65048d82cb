//! Wire types of the Secrets Manager HTTP API (`docs/contract.md`).
//!
//! The field names here are facts of the production API; the backend
//! serialises these and the CLI deserialises them. Request bodies are strict
//! (unknown fields are refused by the backend); responses are lenient so the
//! CLI keeps working when the platform adds fields.

/// Server-side default of `sync.refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: &str = "1h";

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod org;
mod status;
pub use org::{
    AuditEvent, AuditResponse, ElevateRequest, ElevationStatus, ErrorBody, Grant, KubeSecretInfo,
};
pub use status::{Condition, Readiness, SecretStatus, projection_ready};

/// A secret value. Its `Debug` never shows the content, so a value cannot
/// leak through `{:?}` in a log line or an error.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The plain value; call only where the user asked to see it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Key → value map of one secret version.
pub type Data = BTreeMap<String, Sensitive>;

pub const SECRET_TYPES: &[&str] = &["opaque", "password", "api-key", "tls", "db-static"];

/// The type of a secret created or imported without one.
pub const DEFAULT_SECRET_TYPE: &str = "opaque";

/// Projection settings. Sync is on unless turned off, as in the product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

impl SyncSpec {
    /// The Kubernetes Secret it projects into: `targetSecretName`, which
    /// defaults to the secret's own name.
    pub fn target<'a>(&'a self, secret_name: &'a str) -> &'a str {
        self.target_secret_name.as_deref().unwrap_or(secret_name)
    }
}

impl Default for SyncSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            target_secret_name: None,
            refresh_interval: None,
            keys: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Body of `POST .../sync`: only the fields being changed. `enabled: false`
/// and `keys: []` are real values and must survive serialisation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generator {
    #[serde(default = "default_length")]
    pub length: u32,
    #[serde(default = "default_charset")]
    pub charset: String,
}

impl Default for Generator {
    fn default() -> Self {
        Self {
            length: default_length(),
            charset: default_charset(),
        }
    }
}

fn default_length() -> u32 {
    32
}
fn default_charset() -> String {
    "alnum-symbol".into()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    #[serde(default)]
    pub generator: Generator,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenbaoMeta {
    pub current_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_time: Option<String>,
    #[serde(default)]
    pub max_versions: u32,
    #[serde(default)]
    pub cas_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueMetadata {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretValue {
    pub data: Data,
    pub metadata: ValueMetadata,
}

/// A ManagedSecret as the API returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub name: String,
    pub namespace: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub sync: SyncSpec,
    #[serde(default)]
    pub status: SecretStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openbao: Option<OpenbaoMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_missing: Option<bool>,
    /// Create and import responses only: the KV version written (0 when
    /// none was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_version: Option<u64>,
    /// Import response only: `{"namespace", "name"}` of the source Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<Value>,
    /// **Extension**, in `?deleted=true` lists only: when it was
    /// soft-deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_time: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ItemList<T> {
    pub items: Vec<T>,
}

/// Body of `POST /api/secrets/NS/NAME`: the production create. The first
/// version, when `initialValues` is given, is written atomically with the
/// resource.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub sync: SyncSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_values: Option<Data>,
}

fn default_type() -> String {
    DEFAULT_SECRET_TYPE.into()
}

/// Body of `PATCH /api/secrets/NS/NAME` (extension, used by `apply`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutValuesRequest {
    pub data: Data,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cas: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutValuesResponse {
    pub name: String,
    pub namespace: String,
    pub mount: String,
    pub version: u64,
    #[serde(default)]
    pub created_time: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRequest {
    pub source_secret_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_secret_namespace: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cross_namespace: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeleteResponse {
    pub name: String,
    pub namespace: String,
    pub deleted: bool,
    pub destroyed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroyVersionResponse {
    pub name: String,
    pub namespace: String,
    pub destroyed_version: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub references: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumersResponse {
    pub items: Vec<Consumer>,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub scanner_version: String,
    #[serde(default)]
    pub cached: bool,
    /// Manifests the scanner could not read: objects with at least `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: u64,
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub destroyed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_patch_keeps_false_and_empty_list() {
        let patch = SyncPatch {
            enabled: Some(false),
            keys: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            r#"{"enabled":false,"keys":[]}"#
        );
    }

    #[test]
    fn sync_defaults_to_enabled() {
        let c: CreateRequest = serde_json::from_str(r#"{}"#).unwrap();
        assert!(c.sync.enabled);
        assert_eq!(c.kind, "opaque");
        let c: CreateRequest =
            serde_json::from_str(r#"{"sync":{},"initialValues":{"K":"v"}}"#).unwrap();
        assert!(c.sync.enabled);
        assert_eq!(c.initial_values.unwrap()["K"].expose(), "v");
    }

    #[test]
    fn sensitive_debug_is_redacted() {
        let v = Sensitive::new("hunter2");
        assert_eq!(format!("{v:?}"), "[redacted]");
        let mut d = Data::new();
        d.insert("K".into(), v);
        assert!(!format!("{d:?}").contains("hunter2"));
    }

    #[test]
    fn elevation_status_flattens_grant() {
        let s: ElevationStatus = serde_json::from_str(r#"{"active":false}"#).unwrap();
        assert!(!s.active && s.grant.is_none());
    }
}
