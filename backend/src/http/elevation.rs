//! Organization admin elevation windows.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use kube_dc_api::event::Fact;
use kube_dc_api::validate;

use super::audit_layer::Draft;
use super::support::{ApiResult, Authorized, Shared, committed};
use crate::authn::Identity;
use crate::error::{ApiError, AuditNote, parse_json};
use kube_dc_api::wire::{ElevateRequest, ElevationStatus, ItemList};

pub(crate) async fn elevate(
    State(b): State<Shared>,
    _checked: Authorized,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    validate::check_name("project", &project).map_err(ApiError::bad_request)?;
    // A window opens on a project the organization owns, never on a name
    // that merely looks like one.
    if b.projects.namespace_of(&org, &project).is_none() {
        return Err(ApiError::not_found(format!(
            "organization {org:?} has no project {project:?} known to this backend"
        )));
    }
    let req: ElevateRequest = parse_json(if body.is_empty() { b"{}" } else { &body })?;
    let reason = req.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "a reason is required (e.g. an incident number): it is stored on every value read in the window",
        ));
    }
    if reason.chars().count() > 1024 {
        return Err(ApiError::bad_request(
            "reason is longer than 1024 characters",
        ));
    }
    let ttl = b.config.elevation_ttl;
    let user = id.username.clone();
    let event = d.allowed(&AuditNote::default().with(Fact::Reason(reason.clone())));
    let g = b
        .db()
        .elevate(user, org, project, reason, ttl, now, event)
        .await?;
    Ok(committed(Json(g)))
}

pub(crate) async fn elevation_status(
    State(b): State<Shared>,
    _checked: Authorized,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    let now = b.now();
    let user = id.username.clone();
    let g = b.db().active_elevation(user, org, project, now).await?;
    Ok(Json(ElevationStatus {
        active: g.is_some(),
        grant: g,
    })
    .into_response())
}

pub(crate) async fn release(
    State(b): State<Shared>,
    _checked: Authorized,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    let now = b.now();
    let user = id.username.clone();
    let event = d.allowed(&AuditNote::default());
    let g = b.db().release(user, org, project, now, event).await?;
    Ok(committed(Json(g)))
}

pub(crate) async fn list_elevations(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(org): Path<String>,
) -> ApiResult {
    let now = b.now();
    let items = b.db().active_elevations(org, now).await?;
    Ok(Json(ItemList { items }).into_response())
}
