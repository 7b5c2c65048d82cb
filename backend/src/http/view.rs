//! The API view of a stored secret: spec, KV metadata and the status
//! conditions of the platform's controller.

#[allow(unused_imports)]
use super::support::*;

/// The API view of a record, in the namespace's context: whether that
/// namespace is a project decides whether the secret can be reconciled.
pub(crate) fn view(b: &Backend, rec: &SecretRecord) -> Secret {
    let is_project = b
        .projects
        .owner(&rec.namespace)
        .is_ok_and(|o| o.project.is_some());
    to_wire(rec, is_project)
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
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

/// The API view of a record. Conditions follow the platform's controller:
/// `Ready` (reconciled: KV metadata and, with sync on, the projection wired —
/// before any value is written), `Synced` (`SyncDisabled` when off),
/// `RotationScheduled` (only with rotation enabled; `RotationConfigInvalid`
/// on a type other than `password`).
pub fn to_wire(rec: &SecretRecord, is_project: bool) -> Secret {
    let target = rec
        .sync
        .target_secret_name
        .clone()
        .unwrap_or_else(|| rec.name.clone());
    let mut status = SecretStatus {
        current_version: rec.kv.as_ref().map(|k| k.current_version),
        last_rotated_time: rec.last_rotated.map(rfc3339),
        next_rotation_time: rec.next_rotation.map(rfc3339),
        ..Default::default()
    };
    let at = Some(rfc3339(rec.updated_at));
    if !is_project {
        status.conditions.push(condition(
            "Ready",
            false,
            "ProjectAnnotationMissing",
            format!(
                "namespace {:?} is not a Kube-DC project, so nothing is reconciled there",
                rec.namespace
            ),
            &at,
        ));
    } else if rec.sync.enabled {
        status.conditions.push(condition(
            "Ready",
            true,
            "Reconciled",
            format!("KV metadata ready; projection into Secret {target} wired"),
            &at,
        ));
    } else {
        status.conditions.push(condition(
            "Ready",
            true,
            "Reconciled",
            "KV metadata ready; values stay in the platform store".into(),
            &at,
        ));
    }
    if !rec.sync.enabled {
        status.conditions.push(condition(
            "Synced",
            false,
            "SyncDisabled",
            "sync is disabled: no Kubernetes Secret is projected".into(),
            &at,
        ));
    } else if is_project {
        let (reason, message) = if rec.current_readable {
            (
                "SecretSynced",
                format!("values projected into Secret {target}"),
            )
        } else {
            (
                "AwaitingValues",
                format!("Secret {target} is wired; it fills when the first version is written"),
            )
        };
        status
            .conditions
            .push(condition("Synced", true, reason, message, &at));
        status.synced_secret_name = Some(target.clone());
        if rec.current_readable {
            status.last_synced_time = rec.last_synced.map(rfc3339);
        }
    }
    if let Some(r) = rec.rotation.as_ref().filter(|r| r.enabled) {
        status.conditions.push(if rec.kind != "password" {
            condition(
                "RotationScheduled",
                false,
                "RotationConfigInvalid",
                format!("rotation applies only to type password, not {:?}", rec.kind),
                &at,
            )
        } else {
            condition(
                "RotationScheduled",
                true,
                "Scheduled",
                format!(
                    "every {}; next at {}",
                    r.interval,
                    status.next_rotation_time.as_deref().unwrap_or("-")
                ),
                &at,
            )
        });
    }
    Secret {
        name: rec.name.clone(),
        namespace: rec.namespace.clone(),
        kind: rec.kind.clone(),
        description: rec.description.clone(),
        sync: SyncSpec {
            enabled: rec.sync.enabled,
            target_secret_name: Some(target),
            refresh_interval: Some(
                rec.sync
                    .refresh_interval
                    .clone()
                    .unwrap_or_else(|| kube_dc_api::DEFAULT_REFRESH_INTERVAL.into()),
            ),
            keys: rec.sync.keys.clone(),
        },
        status,
        rotation: rec.rotation.clone(),
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
    }
}
