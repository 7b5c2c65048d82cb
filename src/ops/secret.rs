//! A secret as a whole: create, and what deleting it, erasing its current
//! version or moving its projection would take from the workloads that
//! use it (asked before the change, by the CLI and the terminal view).

use crate::api::{Client, CreateRequest, Doc, Secret, SyncPatch};
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::wire::ConsumersResponse;

/// `create`: the secret and its first version in one request, so a failure
/// leaves nothing behind. `None` under `--dry-run`.
pub async fn create(
    client: &Client,
    ns: &str,
    name: &str,
    req: &CreateRequest,
) -> Result<Option<(Secret, Doc)>> {
    client
        .create_secret(ns, name, req)
        .await
        .map_err(too_old_for_create)
}

/// A 404/405 from the create route: the installation predates the
/// production one-round-trip create. Nothing was created; say so.
fn too_old_for_create(e: CliError) -> CliError {
    if e.kind != ErrorKind::NotSupported {
        return e;
    }
    let status = e.status.unwrap_or(0);
    CliError {
        message: format!(
            "this installation is too old for `secrets create`: it answered {status} to \
             POST /api/secrets/NAMESPACE/NAME, the platform's create route; nothing was created"
        ),
        ..e
    }
    .hint("upgrade the Kube-DC backend, or create the ManagedSecret with kubectl and then `kube-dc secrets put`")
}

/// The workloads that use the secret's projection. A secret without a
/// consumers view (soft-deleted, or an installation without it) has none.
pub async fn consumers_of(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<ConsumersResponse>> {
    match client.consumers(ns, name).await {
        Ok((c, _)) => Ok(Some(c)),
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::NotSupported) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether erasing `version` erases the current one (then the secret has
/// no readable value, and its projection empties).
pub async fn is_current_version(
    client: &Client,
    ns: &str,
    name: &str,
    version: u64,
) -> Result<bool> {
    let (s, _) = client.get_secret(ns, name, false, None).await?;
    Ok(s.openbao.as_ref().map(|o| o.current_version) == Some(version))
}

/// What a sync change takes away: the Secret the workloads reference
/// stops being filled (`Stop`) or is replaced by another (`Move`).
#[derive(Debug, PartialEq, Eq)]
pub enum CutOff {
    Stop { current: String },
    Move { current: String, to: String },
}

impl CutOff {
    /// The question to ask before it.
    pub fn question(&self, name: &str) -> String {
        match self {
            CutOff::Stop { current } => format!("Stop projecting {name} into Secret {current}?"),
            CutOff::Move { current, to } => {
                format!("Project {name} into Secret {to} instead of {current}?")
            }
        }
    }

    pub fn current(&self) -> &str {
        match self {
            CutOff::Stop { current } | CutOff::Move { current, .. } => current,
        }
    }
}

/// Whether `patch` turns off or moves a projection that exists. Only those
/// can cut workloads off: other changes read nothing.
pub async fn sync_cut_off(
    client: &Client,
    ns: &str,
    name: &str,
    patch: &SyncPatch,
) -> Result<Option<CutOff>> {
    if patch.enabled != Some(false) && patch.target_secret_name.is_none() {
        return Ok(None);
    }
    let (secret, _) = client.get_secret(ns, name, false, None).await?;
    if !secret.sync.enabled {
        return Ok(None);
    }
    let current = secret.sync.target(name).to_string();
    Ok(match (patch.enabled, &patch.target_secret_name) {
        (Some(false), _) => Some(CutOff::Stop { current }),
        (_, Some(to)) if *to != current => Some(CutOff::Move {
            current,
            to: to.clone(),
        }),
        _ => None,
    })
}
