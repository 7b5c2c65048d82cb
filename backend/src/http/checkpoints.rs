//! Signed checkpoints (**extension**, `kube_dc_api::checkpoint`): the
//! signing key's public half, the kept checkpoints, and one signed on
//! request.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audit_layer::Draft;
use super::support::{ApiResult, Authorized, Shared, committed};
use crate::clock::rfc3339;
use crate::error::{ApiError, AuditNote, parse_query};
use crate::store::Sign;
use kube_dc_api::checkpoint::CheckpointList;

/// Checkpoints a list answers unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// The signing key; a backend that cannot load it answers 500 saying why.
fn key_of(b: &Shared) -> Result<std::sync::Arc<crate::audit_key::AuditKey>, ApiError> {
    b.audit_key()
        .map_err(|e| ApiError::internal(format!("the audit signing key: {e}")))
}

pub(crate) async fn audit_key(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(_org): Path<String>,
) -> ApiResult {
    Ok(Json(key_of(&b)?.doc()).into_response())
}

pub(crate) async fn list_checkpoints(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        limit: Option<String>,
    }
    let q: Q = parse_query(q.as_deref())?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=kube_dc_api::AUDIT_MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit: {l:?} must be a whole number from 1 to {}",
                    kube_dc_api::AUDIT_MAX_LIMIT
                ))
            })?,
    };
    let items = b.db().call(move |s| s.checkpoints(&org, limit)).await?;
    Ok(Json(CheckpointList { items }).into_response())
}

pub(crate) async fn sign_checkpoint(
    State(b): State<Shared>,
    _checked: Authorized,
    Extension(d): Extension<Draft>,
    Path(org): Path<String>,
) -> ApiResult {
    let signer: std::sync::Arc<dyn Sign> = key_of(&b)?;
    let now = b.now();
    let event = d.allowed(&AuditNote::default());
    let o = org.clone();
    let made = b
        .db()
        .call(move |s| s.sign_checkpoint(&o, now, rfc3339(now), signer, Some(&event)))
        .await?;
    match made {
        Some(c) => Ok(committed(Json(c))),
        None => Err(ApiError::conflict(format!(
            "organization {org:?} has no audit events yet: there is nothing to sign"
        ))),
    }
}

/// Signs a checkpoint of every organization whose chain grew since its
/// newest one (the backend's own: no request, no event). Returns how many.
pub async fn sign_due(b: &Shared) -> Result<usize, String> {
    let signer: std::sync::Arc<dyn Sign> = b
        .audit_key()
        .map_err(|e| format!("the audit signing key: {e}"))?;
    let orgs = b
        .db()
        .call(|s| s.orgs_past_checkpoint())
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for org in orgs {
        let now = b.now();
        let signer = signer.clone();
        let made = b
            .db()
            .call(move |s| s.sign_checkpoint(&org, now, rfc3339(now), signer, None))
            .await
            .map_err(|e| e.to_string())?;
        n += usize::from(made.is_some());
    }
    Ok(n)
}
