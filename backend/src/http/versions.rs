//! Stored versions: list, destroy one.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use kube_dc_api::event::{Fact, Version};
use kube_dc_api::validate;

use super::audit_layer::Draft;
use super::support::{ApiResult, Authorized, SecretPath, Shared, committed, load_live, with_note};
use crate::error::ApiError;
use kube_dc_api::wire::{DestroyVersionResponse, ItemList};

pub(crate) async fn list_versions(
    State(b): State<Shared>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
) -> ApiResult {
    load_live(&b, &ns, &name).await?;
    let items = b.db().versions(ns, name).await?;
    Ok(with_note(Json(ItemList { items }), a.note()))
}

pub(crate) async fn destroy_version(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    Path((ns, name, version)): Path<(String, String, String)>,
) -> ApiResult {
    let now = b.now();
    let version: u64 = version
        .parse()
        .ok()
        .and_then(|v| validate::check_version("version", v).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid version {version:?}: use a whole number from 1"
            ))
        })?;
    load_live(&b, &ns, &name).await?;
    let event = d.allowed(&a.note().with(Fact::Version(Version(version))));
    b.db()
        .destroy_version(ns.clone(), name.clone(), version, now, event)
        .await?;
    let resp = DestroyVersionResponse {
        name,
        namespace: ns,
        destroyed_version: version,
    };
    Ok(committed(Json(resp)))
}
