//! The modelled cluster: workloads that use a secret, and the Kubernetes
//! Secrets of a namespace (model inspection).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use super::support::{ApiResult, Authorized, SecretPath, Shared, blocking, load_live, with_note};
use crate::kube::{Manifests, SCANNER_VERSION};
use kube_dc_api::wire::{ConsumersResponse, ItemList, KubeSecretInfo};

pub(crate) async fn consumers(
    State(b): State<Shared>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
) -> ApiResult {
    let rec = load_live(&b, &ns, &name).await?;
    let target = rec.sync.target(&rec.name).to_string();
    let dir = b.config.manifests_dir.clone();
    let t2 = target.clone();
    let resp = blocking(move || {
        let m = Manifests::load(dir.as_deref(), &ns);
        Ok(ConsumersResponse {
            items: m.consumers(&ns, &t2),
            secret: t2,
            scanner_version: SCANNER_VERSION.into(),
            cached: false,
            // Only this namespace's unreadable documents, and never a
            // parser message (it can quote a value).
            errors: {
                let mine: Vec<Value> = m
                    .errors
                    .iter()
                    .filter(|e| e.namespace == ns)
                    .map(|e| e.to_json())
                    .collect();
                (!mine.is_empty()).then_some(mine)
            },
        })
    })
    .await?;
    Ok(with_note(Json(resp), a.note()))
}

/// Model inspection: the Kubernetes Secrets of a namespace as this backend
/// models them — manifest Secrets plus projections of synced ManagedSecrets.
/// Key names only.
pub(crate) async fn kube_secrets(
    State(b): State<Shared>,
    a: Authorized,
    Path(ns): Path<String>,
) -> ApiResult {
    let store = b.store.clone();
    let dir = b.config.manifests_dir.clone();
    let items = blocking(move || {
        let m = Manifests::load(dir.as_deref(), &ns);
        let mut out: BTreeMap<String, KubeSecretInfo> = m
            .secrets
            .iter()
            .filter(|s| s.namespace == ns)
            .map(|s| {
                (
                    s.name.clone(),
                    KubeSecretInfo {
                        name: s.name.clone(),
                        namespace: ns.clone(),
                        keys: s.data.keys().cloned().collect(),
                        owned_by: None,
                        version: None,
                    },
                )
            })
            .collect();
        for rec in store.list(&ns)? {
            if !rec.sync.enabled || !rec.current_readable {
                continue;
            }
            let Some(v) = store.read_version(&ns, &rec.name, None)? else {
                continue;
            };
            let target = rec.sync.target(&rec.name).to_string();
            let keys = v
                .data
                .keys()
                .filter(|k| rec.sync.keys.as_ref().is_none_or(|allow| allow.contains(k)))
                .cloned()
                .collect();
            out.insert(
                target.clone(),
                KubeSecretInfo {
                    name: target,
                    namespace: ns.clone(),
                    keys,
                    owned_by: Some(format!("ManagedSecret/{}", rec.name)),
                    version: Some(v.version),
                },
            );
        }
        Ok(out.into_values().collect::<Vec<_>>())
    })
    .await?;
    Ok(with_note(Json(ItemList { items }), a.note()))
}
