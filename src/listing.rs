//! The secrets list as the API answers it, decoded without copying (a list
//! of 10,000 secrets is one borrowed pass), and the seed's sync state: what
//! `secrets list`, `kube-dc ui` and completion share.

use std::borrow::Cow;

use comfy_table::Color;
use serde::Deserialize;

use crate::output::{GridCell, sanitized};
use kube_dc_api::wire::Readiness;

/// The seed's status dot: green Ready (the projection holds the values and
/// keys asked for), amber Pending (sync on, not yet or not any more), grey
/// Disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    Ready,
    Pending,
    Disabled,
}

impl SyncState {
    /// Sync off; or on, and the projection ready or not.
    pub fn of(enabled: bool, ready: bool) -> Self {
        match (enabled, ready) {
            (false, _) => SyncState::Disabled,
            (true, true) => SyncState::Ready,
            (true, false) => SyncState::Pending,
        }
    }

    /// Of a whole secret.
    pub fn of_secret(s: &crate::api::Secret) -> Self {
        Self::of(s.sync.enabled, s.status.ready())
    }

    /// The state in words.
    pub fn word(self) -> &'static str {
        match self {
            SyncState::Ready => "Ready",
            SyncState::Pending => "Pending",
            SyncState::Disabled => "Disabled",
        }
    }

    /// The dot and the word, as tables show it.
    pub fn label(self) -> &'static str {
        match self {
            SyncState::Ready => "● Ready",
            SyncState::Pending => "● Pending",
            SyncState::Disabled => "○ Disabled",
        }
    }

    pub fn color(self) -> Color {
        match self {
            SyncState::Ready => Color::Green,
            SyncState::Pending => Color::Yellow,
            SyncState::Disabled => Color::DarkGrey,
        }
    }
}

/// The fields of a listed secret that the table shows, borrowed from the
/// answer (a list of 10,000 secrets is decoded without copying its text).
#[derive(Deserialize)]
pub struct Row<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    sync: RowSync<'a>,
    #[serde(default)]
    status: RowStatus,
    #[serde(default, borrow)]
    openbao: Option<RowVersion<'a>>,
    #[serde(rename = "deletedTime", default, borrow)]
    deleted_time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowSync<'a> {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default, borrow)]
    target_secret_name: Option<Cow<'a, str>>,
}

fn enabled_by_default() -> bool {
    true
}

impl Default for RowSync<'_> {
    fn default() -> Self {
        Self {
            enabled: true,
            target_secret_name: None,
        }
    }
}

#[derive(Default, Deserialize)]
struct RowStatus {
    #[serde(default)]
    conditions: Conditions,
}

/// The conditions, folded into whether the projection is ready as they
/// are decoded: none is kept (10,000 rows, 10,000 vectors fewer).
#[derive(Default)]
struct Conditions(Readiness);

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fold;
        impl<'de> serde::de::Visitor<'de> for Fold {
            type Value = Conditions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of conditions")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Conditions, A::Error> {
                let mut r = Readiness::default();
                while let Some(c) = seq.next_element::<RowCondition<'de>>()? {
                    r.see(&c.kind, &c.status);
                }
                Ok(Conditions(r))
            }
        }
        d.deserialize_seq(Fold)
    }
}

#[derive(Deserialize)]
struct RowCondition<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowVersion<'a> {
    current_version: u64,
    #[serde(default, borrow)]
    updated_time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct Rows<'a> {
    #[serde(borrow)]
    pub items: Vec<Row<'a>>,
    /// Set by a server that answered `?deleted=true` (our extension).
    #[serde(default)]
    pub deleted: bool,
}

impl Row<'_> {
    /// Whether the projection is ready (`Ready` true, `Synced` not false).
    fn ready(&self) -> bool {
        self.status.conditions.0.ready()
    }

    /// The Secret it is projected into (`-` with sync off).
    pub fn target(&self) -> &str {
        match (&self.sync.target_secret_name, self.sync.enabled) {
            (_, false) => "-",
            (Some(t), true) => t,
            (None, true) => &self.name,
        }
    }

    /// The seed's status dot.
    pub fn sync_state(&self) -> SyncState {
        SyncState::of(self.sync.enabled, self.ready())
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The current version, if any.
    pub fn version(&self) -> Option<u64> {
        self.openbao.as_ref().map(|o| o.current_version)
    }

    /// When the values last changed (RFC 3339), if ever.
    pub fn updated(&self) -> Option<&str> {
        self.openbao
            .as_ref()
            .and_then(|o| o.updated_time.as_deref())
    }

    /// When it was soft-deleted (`list --deleted` only).
    pub fn deleted_time(&self) -> Option<&str> {
        self.deleted_time.as_deref()
    }

    /// NAME, TYPE, SYNC (with its colour), TARGET, VERSION and the raw
    /// update time.
    pub fn cells(&self) -> [GridCell<'_>; 6] {
        let state = self.sync_state();
        let (version, updated) = match &self.openbao {
            Some(o) => (
                Cow::Owned(o.current_version.to_string()),
                Cow::Borrowed(o.updated_time.as_deref().unwrap_or_default()),
            ),
            None => (Cow::Borrowed("-"), Cow::Borrowed("")),
        };
        [
            sanitized(&self.name).into(),
            sanitized(&self.kind).into(),
            GridCell {
                text: state.label().into(),
                color: Some(state.color()),
            },
            sanitized(self.target()).into(),
            version.into(),
            updated.into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slim view reads what the full wire type reads: sync off, on and
    /// Ready, on and Pending, sync absent (on by default), no KV metadata.
    #[test]
    fn rows_read_the_states_the_full_view_reads() {
        let doc = serde_json::json!({"items": [
            {"name": "off", "namespace": "p", "type": "opaque", "sync": {"enabled": false, "targetSecretName": "x"},
             "openbao": {"currentVersion": 3, "updatedTime": "2026-01-01T00:00:00Z"}},
            {"name": "ready", "namespace": "p", "type": "opaque", "sync": {"enabled": true, "targetSecretName": "tgt"},
             "status": {"conditions": [{"type": "Synced", "status": "True"},
                                        {"type": "Ready", "status": "True", "message": "a \"quoted\" text"}]}},
            {"name": "empty", "namespace": "p", "type": "opaque", "sync": {"enabled": true},
             "status": {"conditions": [{"type": "Ready", "status": "True"},
                                        {"type": "Synced", "status": "False", "reason": "AwaitingValues"}]}},
            {"name": "pending", "namespace": "p", "type": "password", "sync": {"enabled": true},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            {"name": "bare\u{1b}[31m", "namespace": "p", "type": "opaque", "extra": {"future": [1, 2]}}
        ]});
        let text = serde_json::to_vec(&doc).unwrap();
        let rows: Rows = serde_json::from_slice(&text).unwrap();
        let full: kube_dc_api::wire::ItemList<crate::api::Secret> =
            serde_json::from_slice(&text).unwrap();
        let got: Vec<[String; 6]> = rows
            .items
            .iter()
            .map(|r| r.cells().map(|c| c.text.into_owned()))
            .collect();
        assert_eq!(
            got[0],
            [
                "off",
                "opaque",
                "○ Disabled",
                "-",
                "3",
                "2026-01-01T00:00:00Z"
            ]
        );
        assert_eq!(got[1], ["ready", "opaque", "● Ready", "tgt", "-", ""]);
        // Wired (Ready) but holding no values (Synced false): not Ready.
        assert_eq!(got[2], ["empty", "opaque", "● Pending", "empty", "-", ""]);
        assert_eq!(
            got[3],
            ["pending", "password", "● Pending", "pending", "-", ""]
        );
        assert_eq!(got[4], ["bare", "opaque", "● Pending", "bare", "-", ""]);
        for (row, s) in got.iter().zip(&full.items) {
            assert_eq!(row[2], SyncState::of_secret(s).label(), "{}", s.name);
        }
    }

    /// The SIMD decoder the list uses reads every string as serde_json
    /// does: escapes, `\u` escapes (a surrogate pair among them), text
    /// outside ASCII, and a condition's fields in any order.
    #[test]
    fn the_long_decoder_reads_what_serde_json_reads() {
        let text = r#"{"items": [
            {"name": "a\"b\\c\/d\n", "type": "op\u00e9n", "sync": {"enabled": true, "targetSecretName": "t\ud83d\ude00"},
             "status": {"conditions": [{"status": "True", "type": "Ready", "message": "\u0000 x"}, {"type": "Synced", "status": "True"}]},
             "openbao": {"currentVersion": 18446744073709551615, "updatedTime": "2026-01-01T00:00:00Z", "customMetadata": {"k": [null, 1.5e3, false]}}},
            {"name": "héllo ☃", "type": "opaque", "deletedTime": null}
        ], "deleted": true}"#;
        let doc = crate::api::Doc::of("GET /x", text.as_bytes().to_vec());
        let cells = |rows: &Rows| -> Vec<[String; 6]> {
            rows.items
                .iter()
                .map(|r| r.cells().map(|c| c.text.into_owned()))
                .collect()
        };
        let slow: Rows = doc.typed().unwrap();
        let fast: Rows = doc.typed_long().unwrap();
        assert_eq!(cells(&fast), cells(&slow));
        assert_eq!(fast.items[0].name, "a\"b\\c/d\n");
        assert_eq!(fast.items[0].target(), "t\u{1f600}");
        assert!(fast.deleted);
        let bad = crate::api::Doc::of("GET /x", b"{\"items\": [{\"name\": 1}]}".to_vec());
        let e = bad.typed_long::<Rows>().err().unwrap();
        assert!(e.to_string().contains("unexpected shape"), "{e}");
    }
}
