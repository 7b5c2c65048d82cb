//! The API view of a stored secret: spec, KV metadata and the status
//! conditions of the platform's controller.

use crate::app::Backend;
use crate::clock::rfc3339;
use crate::store::SecretRecord;
use kube_dc_api::wire::{Condition, OpenbaoMeta, Secret, SecretStatus, SyncSpec};

/// The API view of a record, in the namespace's context: whether that
/// namespace is a project decides whether the secret can be reconciled.
pub(crate) fn view(b: &Backend, rec: &SecretRecord) -> Secret {
    to_wire(rec, is_project(b, &rec.namespace))
}

/// Whether the namespace is a project's (its secrets can be reconciled).
pub(crate) fn is_project(b: &Backend, ns: &str) -> bool {
    b.projects.owner(ns).is_ok_and(|o| o.project.is_some())
}

/// `{"items": [...]}` of the live secrets of `ns` (or, `deleted`, of the
/// soft-deleted ones, with `"deleted": true`). The store reads the rows on
/// a blocking thread and hands them over in batches, copied but not
/// decoded, while this task turns them into records and views and
/// serializes them: reading and the rest overlap, on two cores about
/// evenly, and neither the records nor their views are held (10,000
/// secrets make about 7 MB of JSON).
pub(crate) async fn list_json(
    db: &crate::store::AsyncStore,
    ns: String,
    is_project: bool,
    deleted: bool,
) -> crate::store::Result<Vec<u8>> {
    const BATCH: usize = 256;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::store::PackedRows>(4);
    let read = db.call(move |s| {
        s.list_packed(&ns, deleted, BATCH, |rows| {
            // A closed channel means the encoder is gone: nothing to do.
            let _ = tx.blocking_send(rows);
        })
    });
    let encode = async {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(b"{\"items\":[");
        let mut first = true;
        while let Some(rows) = rx.recv().await {
            for rec in crate::store::secret_records(&rows) {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, &into_wire(rec?, is_project))
                    .expect("a view serializes to memory");
            }
        }
        // A list of deleted secrets says so: a server that does not know
        // the parameter answers with the live ones, which a client must
        // not show as deleted.
        out.extend_from_slice(if deleted {
            b"],\"deleted\":true}".as_slice()
        } else {
            b"]}".as_slice()
        });
        Ok(out)
    };
    let (read, out) = tokio::join!(read, encode);
    read.and(out)
}

fn condition(
    kind: &'static str,
    ok: bool,
    reason: &'static str,
    message: String,
    at: &Option<String>,
) -> Condition {
    Condition {
        kind: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: at.clone(),
    }
}

/// Whether the projected Secret holds what it is asked to: a readable
/// current version, with every key the allowlist names. With the reason
/// and message of the `Synced` condition.
fn projection(rec: &SecretRecord, target: &str) -> (bool, &'static str, String) {
    match &rec.kv {
        None => (
            false,
            "AwaitingValues",
            format!(
                "no values yet: Secret {target} is wired and fills when the first version is written"
            ),
        ),
        Some(kv) if !rec.current_readable => (
            false,
            "CurrentVersionDestroyed",
            format!(
                "version {} was destroyed: Secret {target} holds no values until a new version is written",
                kv.current_version
            ),
        ),
        Some(kv) => {
            let missing: Vec<&str> = match (&rec.sync.keys, &rec.current_keys) {
                (Some(want), Some(have)) => want
                    .iter()
                    .filter(|k| !have.contains(k))
                    .map(String::as_str)
                    .collect(),
                _ => Vec::new(),
            };
            if missing.is_empty() {
                (
                    true,
                    "SecretSynced",
                    format!("values projected into Secret {target}"),
                )
            } else {
                (
                    false,
                    "KeysMissing",
                    format!(
                        "the key allowlist names {}, which version {} does not hold",
                        missing.join(", "),
                        kv.current_version
                    ),
                )
            }
        }
    }
}

/// The API view of a record. Conditions follow the platform's controller:
/// `Ready` (reconciled: KV metadata and, with sync on, the projection wired —
/// before any value is written), `Synced` (`SyncDisabled` when off; false
/// while the projection lacks values or allowlisted keys, see [`projection`]),
/// `RotationScheduled` (only with rotation enabled; `RotationConfigInvalid`
/// on a type other than `password`).
pub fn to_wire(rec: &SecretRecord, is_project: bool) -> Secret {
    into_wire(rec.clone(), is_project)
}

/// [`to_wire`] of a record that is not needed after: its text is moved
/// into the view, not copied (a list of 10,000 secrets).
pub fn into_wire(mut rec: SecretRecord, is_project: bool) -> Secret {
    let target = rec.sync.target(&rec.name).to_string();
    let mut status = SecretStatus {
        current_version: rec.kv.as_ref().map(|k| k.current_version),
        last_rotated_time: rec.last_rotated.map(rfc3339),
        next_rotation_time: rec.next_rotation.map(rfc3339),
        conditions: Vec::with_capacity(3),
        ..Default::default()
    };
    let at = Some(rfc3339(rec.updated_at));
    status
        .conditions
        .push(ready(&rec, is_project, &target, &at));
    if !rec.sync.enabled {
        status.conditions.push(condition(
            "Synced",
            false,
            "SyncDisabled",
            "sync is disabled: no Kubernetes Secret is projected".into(),
            &at,
        ));
    } else if is_project {
        let (synced, reason, message) = projection(&rec, &target);
        status
            .conditions
            .push(condition("Synced", synced, reason, message, &at));
        status.synced_secret_name = Some(target.clone());
        if synced {
            status.last_synced_time = rec.last_synced.map(rfc3339);
        }
    }
    if let Some(r) = rec.rotation.as_ref().filter(|r| r.enabled) {
        let next = status.next_rotation_time.as_deref().unwrap_or("-");
        status
            .conditions
            .push(rotation_scheduled(&rec, r, next, &at));
    }
    // Moved last: the conditions read them.
    status.current_keys = rec.current_keys.take().filter(|_| rec.current_readable);
    Secret {
        name: rec.name,
        namespace: rec.namespace,
        kind: rec.kind,
        description: rec.description,
        sync: SyncSpec {
            enabled: rec.sync.enabled,
            target_secret_name: Some(target),
            refresh_interval: Some(
                rec.sync
                    .refresh_interval
                    .unwrap_or_else(|| kube_dc_api::DEFAULT_REFRESH_INTERVAL.into()),
            ),
            keys: rec.sync.keys,
        },
        status,
        rotation: rec.rotation,
        openbao: rec.kv.as_ref().map(|k| OpenbaoMeta {
            current_version: k.current_version,
            created_time: Some(rfc3339(k.created_at)),
            updated_time: Some(rfc3339(k.updated_at)),
            max_versions: k.max_versions,
            cas_required: false,
            custom_metadata: None,
        }),
        value: None,
        value_missing: None,
        kv_version: None,
        imported_from: None,
        deleted_time: rec.deleted_at.map(rfc3339),
    }
}

/// `Ready`: reconciled in a Kube-DC project (the projection wired when
/// sync is on), or not, outside one.
fn ready(rec: &SecretRecord, is_project: bool, target: &str, at: &Option<String>) -> Condition {
    if !is_project {
        return condition(
            "Ready",
            false,
            "ProjectAnnotationMissing",
            format!(
                "namespace {:?} is not a Kube-DC project, so nothing is reconciled there",
                rec.namespace
            ),
            at,
        );
    }
    let message = if rec.sync.enabled {
        format!("KV metadata ready; projection into Secret {target} wired")
    } else {
        "KV metadata ready; values stay in the platform store".into()
    };
    condition("Ready", true, "Reconciled", message, at)
}

/// `RotationScheduled`: for type password only.
fn rotation_scheduled(
    rec: &SecretRecord,
    r: &kube_dc_api::wire::Rotation,
    next: &str,
    at: &Option<String>,
) -> Condition {
    if rec.kind != "password" {
        return condition(
            "RotationScheduled",
            false,
            "RotationConfigInvalid",
            format!("rotation applies only to type password, not {:?}", rec.kind),
            at,
        );
    }
    condition(
        "RotationScheduled",
        true,
        "Scheduled",
        format!("every {}; next at {next}", r.interval),
        at,
    )
}
