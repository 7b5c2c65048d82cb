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

pub mod changes;
pub mod feed;
mod org;
mod status;
pub use changes::ChangeLine;
pub use org::{
    AuditResponse, ElevateRequest, ElevationStatus, ErrorBody, Grant, KubeSecretInfo, ListedEvent,
};
pub use status::{Condition, Readiness, SecretStatus, projection_ready};

/// A secret value. Its `Debug` never shows the content, so a value cannot
/// leak through `{:?}` in a log line or an error.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The plain value; call only where the user asked to see it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether it is empty.
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

/// The secret types (`spec.type`) the platform knows.
pub const SECRET_TYPES: &[&str] = &["opaque", "password", "api-key", "tls", "db-static"];

/// The type of a secret created or imported without one.
pub const DEFAULT_SECRET_TYPE: &str = "opaque";

/// Projection settings. Sync is on unless turned off, as in the product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSpec {
    #[serde(default = "default_true")]
    /// Whether the values are projected into a Kubernetes Secret.
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The projected Secret's name (the secret's own name when absent).
    pub target_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// How often the projection refreshes (`1h` when absent).
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The keys projected (every key when absent).
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
    /// Turns the projection on or off.
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Moves the projection to another Secret.
    pub target_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Changes how often the projection refreshes.
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Changes which keys are projected (empty: every key).
    pub keys: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// How rotation makes a new password.
pub struct Generator {
    #[serde(default = "default_length")]
    /// How many characters.
    pub length: u32,
    #[serde(default = "default_charset")]
    /// Which characters: `alnum`, `alnum-symbol` or `hex`.
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
/// A password's scheduled rotation.
pub struct Rotation {
    #[serde(default)]
    /// Whether rotation runs.
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    /// How often (the CRD's interval syntax, `90d`).
    pub interval: String,
    #[serde(default)]
    /// How the new value is made.
    pub generator: Generator,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// The secret's KV v2 metadata in OpenBao, as production reports it.
pub struct OpenbaoMeta {
    /// The current version (0: none written yet).
    pub current_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When the first version was written.
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When the current version was written.
    pub updated_time: Option<String>,
    #[serde(default)]
    /// How many versions are kept.
    pub max_versions: u32,
    #[serde(default)]
    /// Whether every write must name the version it replaces.
    pub cas_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// OpenBao's custom metadata of the path, as it was sent.
    pub custom_metadata: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// Which version a value read returned.
pub struct ValueMetadata {
    /// The version read.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When it was written.
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// OpenBao's custom metadata of the version, as it was sent.
    pub custom_metadata: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
/// A version's values (`?includeValue=true`).
pub struct SecretValue {
    /// Key → value.
    pub data: Data,
    /// Which version these are.
    pub metadata: ValueMetadata,
}

/// A ManagedSecret as the API returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// The secret's name.
    pub name: String,
    /// Its project's backing namespace.
    pub namespace: String,
    #[serde(rename = "type")]
    /// Its type ([`SECRET_TYPES`]).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What it is for, shown in the dashboard.
    pub description: Option<String>,
    #[serde(default)]
    /// Whether and where its values are projected.
    pub sync: SyncSpec,
    #[serde(default)]
    /// What the platform reports of it.
    pub status: SecretStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its rotation, for type password.
    pub rotation: Option<Rotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its KV metadata (none before the platform made it).
    pub openbao: Option<OpenbaoMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its values, when they were asked for.
    pub value: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Values were asked for and there are none (production's marker).
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
/// A list answer: `{"items": [...]}`.
pub struct ItemList<T> {
    /// The items.
    pub items: Vec<T>,
}

/// Body of `POST /api/secrets/NS/NAME`: the production create. The first
/// version, when `initialValues` is given, is written atomically with the
/// resource.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type", default = "default_type")]
    /// The secret's type (`opaque` when absent).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What it is for.
    pub description: Option<String>,
    #[serde(default)]
    /// Whether and where its values are projected.
    pub sync: SyncSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its rotation, for type password.
    pub rotation: Option<Rotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its first version, written with it in one step.
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
    /// The new description.
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The new rotation.
    pub rotation: Option<Rotation>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// Body of `PUT /api/secrets/NS/NAME/values`: a new version with exactly these keys.
pub struct PutValuesRequest {
    /// Key → value: the whole new version.
    pub data: Data,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Check-and-set (extension): the version this write replaces.
    pub cas: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// The answer to a values write.
pub struct PutValuesResponse {
    /// The secret.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The KV mount written (`kv-<namespace>`).
    pub mount: String,
    /// The version written.
    pub version: u64,
    #[serde(default)]
    /// When it was written.
    pub created_time: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
/// Body of `POST /api/secrets/NS/NAME/import`: adopt a Kubernetes Secret.
pub struct ImportRequest {
    /// The Secret to import.
    pub source_secret_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its namespace, when not the project's own (needs `allowCrossNamespace`).
    pub source_secret_namespace: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    /// The new secret's type.
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The new secret's description.
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Allows a source in another namespace (an audited cross-namespace read).
    pub allow_cross_namespace: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// The answer to a delete.
pub struct DeleteResponse {
    /// The secret.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// It was deleted.
    pub deleted: bool,
    /// It was destroyed (with every version), not only soft-deleted.
    pub destroyed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// The answer to a version's destroy.
pub struct DestroyVersionResponse {
    /// The secret.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The version destroyed.
    pub destroyed_version: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
/// A workload that uses a secret's projection.
pub struct Consumer {
    /// Its kind (`Deployment`, `Pod`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    #[serde(default)]
    /// How it refers to the Secret (`envFrom`, `volume`, `env PASSWORD`, …).
    pub references: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// The workloads that use a secret's projection.
pub struct ConsumersResponse {
    /// The workloads.
    pub items: Vec<Consumer>,
    #[serde(default)]
    /// The projected Secret they use.
    pub secret: String,
    #[serde(default)]
    /// Which scanner answered (production reports one).
    pub scanner_version: String,
    #[serde(default)]
    /// Whether the answer came from a cache.
    pub cached: bool,
    /// Manifests the scanner could not read: objects with at least `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// One version of a secret.
pub struct VersionInfo {
    /// Its number.
    pub version: u64,
    #[serde(default)]
    /// When it was written.
    pub created_time: String,
    #[serde(default)]
    /// Whether its values were destroyed.
    pub destroyed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When its values were deleted (production's KV field), if they were.
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
