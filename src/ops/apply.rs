//! `apply`: ManagedSecret manifests made true — each one created, or its
//! sync, description and rotation changed where they differ, or left alone.

use serde::Deserialize;

use crate::api::{Client, CreateRequest, Rotation, Secret, SyncPatch, SyncSpec, UpdateRequest};
use crate::error::{CliError, ErrorKind, Result};

pub const API_VERSION: &str = "security.kube-dc.com/v1alpha1";

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    api_version: String,
    kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Debug)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    #[serde(rename = "type", default = "opaque")]
    kind: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sync: Option<SyncSpec>,
    #[serde(default)]
    rotation: Option<Rotation>,
}

fn opaque() -> String {
    "opaque".into()
}

/// The manifests of a file (multi-document YAML or JSON), each checked by
/// the contract's rules before any request.
pub fn parse(text: &str, source: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = serde_norway::Value::deserialize(doc)
            .map_err(|e| CliError::usage(format!("{source}: document {}: {e}", i + 1)))?;
        if v.is_null() {
            continue;
        }
        let m: Manifest = serde_norway::from_value(v)
            .map_err(|e| CliError::usage(format!("{source}: document {}: {e}", i + 1)))?;
        if m.api_version != API_VERSION || m.kind != "ManagedSecret" {
            return Err(CliError::usage(format!(
                "{source}: document {} is {}/{}, not {API_VERSION}/ManagedSecret",
                i + 1,
                m.api_version,
                m.kind
            )));
        }
        let check = kube_dc_api::validate::check_name;
        check("metadata.name", &m.metadata.name)
            .map_err(|e| CliError::usage(format!("{source}: {e}")))?;
        kube_dc_api::validate::check_type(&m.spec.kind)
            .map_err(|e| CliError::usage(format!("{source}: spec.{e}")))?;
        if let Some(r) = &m.spec.rotation {
            kube_dc_api::validate::check_rotation(r)
                .map_err(|e| CliError::usage(format!("{source}: spec.rotation: {e}")))?;
        }
        out.push(m);
    }
    if out.is_empty() {
        return Err(CliError::usage(format!(
            "{source} has no ManagedSecret documents"
        )));
    }
    Ok(out)
}

/// What applying one manifest did (or, under `--dry-run`, plans).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl Applied {
    pub fn word(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// The namespace a manifest goes to: its own, or the default; one that
/// disagrees with an explicit `-n` is refused.
pub fn namespace_of(m: &Manifest, default: &str, flag: Option<&str>) -> Result<String> {
    match (&m.metadata.namespace, flag) {
        (Some(mns), Some(flag)) if mns != flag => Err(CliError::usage(format!(
            "{} says namespace {mns:?} but -n says {flag:?}",
            m.metadata.name
        ))),
        (Some(mns), _) => Ok(mns.clone()),
        (None, _) => Ok(default.to_string()),
    }
}

/// Applies one manifest in `ns`: created when missing, else updated.
pub async fn apply(client: &Client, ns: &str, m: &Manifest) -> Result<Applied> {
    let name = &m.metadata.name;
    match client.get_secret(ns, name, false, None).await {
        Err(e) if e.kind == ErrorKind::NotFound => {
            let req = CreateRequest {
                kind: m.spec.kind.clone(),
                description: m.spec.description.clone(),
                sync: m.spec.sync.clone().unwrap_or_default(),
                rotation: m.spec.rotation.clone(),
                initial_values: None,
            };
            super::secret::create(client, ns, name, &req).await?;
            Ok(Applied::Created)
        }
        Err(e) => Err(e),
        Ok((current, _)) => update(client, ns, m, &current).await,
    }
}

async fn update(client: &Client, ns: &str, m: &Manifest, current: &Secret) -> Result<Applied> {
    let name = &m.metadata.name;
    if current.kind != m.spec.kind {
        return Err(CliError::new(
            ErrorKind::Conflict,
            format!(
                "{name} exists with type {}, and a type cannot change",
                current.kind
            ),
        )
        .hint(format!(
            "delete it first (kube-dc secrets delete {name}) to recreate it as {}",
            m.spec.kind
        )));
    }
    let mut changed = false;
    if let Some(want) = &m.spec.sync {
        let target = want.target(name).to_string();
        let refresh = want.refresh_interval.clone().unwrap_or_else(|| "1h".into());
        let patch = SyncPatch {
            enabled: Some(want.enabled),
            target_secret_name: Some(target.clone()),
            refresh_interval: Some(refresh.clone()),
            keys: Some(want.keys.clone().unwrap_or_default()),
        };
        let have = &current.sync;
        let same = have.enabled == want.enabled
            && have.target_secret_name.as_deref() == Some(target.as_str())
            && have.refresh_interval.as_deref() == Some(refresh.as_str())
            && have.keys.clone().unwrap_or_default() == want.keys.clone().unwrap_or_default();
        if !same {
            client.sync(ns, name, &patch).await?;
            changed = true;
        }
    }
    let description_changes =
        m.spec.description.is_some() && m.spec.description != current.description;
    let rotation_changes = m.spec.rotation.is_some() && m.spec.rotation != current.rotation;
    if description_changes || rotation_changes {
        let req = UpdateRequest {
            description: m.spec.description.clone().filter(|_| description_changes),
            rotation: m.spec.rotation.clone().filter(|_| rotation_changes),
        };
        client.update_secret(ns, name, &req).await?;
        changed = true;
    }
    Ok(if changed {
        Applied::Configured
    } else {
        Applied::Unchanged
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_rotation_example_parses() {
        let m = parse(
            "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata:\n  name: app-password\nspec:\n  type: password\n  rotation:\n    enabled: true\n    interval: 90d\n    generator:\n      length: 32\n      charset: alnum-symbol\n  sync:\n    enabled: true\n    targetSecretName: app-password\n",
            "x.yaml",
        )
        .unwrap();
        assert_eq!(m[0].spec.rotation.as_ref().unwrap().interval, "90d");
        assert!(parse("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n", "x").is_err());
        assert!(parse("apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: {name: a}\nspec: {typo: 1}\n", "x").is_err());
        assert!(parse("apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: {name: a}\nspec: {type: password, rotation: {enabled: true, interval: 1h, generator: {length: 4}}}\n", "x").is_err());
    }
}
