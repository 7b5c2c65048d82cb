//! What the handlers share: the authorization check, input checks and
//! small response helpers.

use std::sync::Arc;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use kube_dc_api::Permission;

use super::audit_layer::{Committed, Resolved};
use crate::app::Backend;
use crate::authn::Identity;
use crate::authz::{Access, Decision, Op};
use crate::error::{ApiError, AuditNote};
use crate::store::SecretRecord;
use kube_dc_api::event::{Fact, Version};
use kube_dc_api::validate::{self, MAX_TOTAL_VALUE_BYTES};
use kube_dc_api::wire::{Data, Grant, SyncSpec};

pub(crate) type Shared = Arc<Backend>;
pub(crate) type ApiResult = Result<Response, ApiError>;

/// Raw body limit: the 1 MiB value limit plus room for JSON escaping.
pub(crate) const BODY_LIMIT: usize = 4 * MAX_TOTAL_VALUE_BYTES;

// ---- helpers ------------------------------------------------------------

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

/// The caller's right to make the request, established before the handler
/// runs from the permission the route layer resolved and the namespace,
/// organization or project in the path. A handler that takes it needs no
/// check of its own.
pub(crate) struct Authorized {
    access: Option<Access>,
    elevation: Option<Grant>,
    /// The route and the permission it needed.
    pub(crate) resolved: Resolved,
}

impl Authorized {
    /// What the audit event records about the access.
    pub(crate) fn note(&self) -> AuditNote {
        let mut n = AuditNote::default();
        match &self.access {
            Some(Access::ProjectRole(r)) => n = n.with(Fact::Role(r.as_str().into())),
            Some(Access::OrgAdmin { .. }) => n = n.with(Fact::Role("org-admin".into())),
            None => {}
        }
        if let Some(g) = &self.elevation {
            n = n
                .with(Fact::ElevationId(g.elevation_id.clone()))
                .with(Fact::Reason(g.reason.clone()));
        }
        n
    }
}

impl axum::extract::FromRequestParts<Shared> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        b: &Shared,
    ) -> Result<Self, ApiError> {
        let lost = || ApiError::internal("the request lost its route on the way to its handler");
        let id = parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(lost)?;
        let resolved = *parts.extensions.get::<Resolved>().ok_or_else(lost)?;
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, b)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
        let (access, elevation) = match resolved.permission {
            Permission::Project(op) => {
                let (access, elevation) = authorize(b, &id, param("ns"), op).await?;
                (Some(access), elevation)
            }
            Permission::OrgAdmin => {
                require_org_admin(b, &id, param("org"), resolved.route.endpoint().service)?;
                (None, None)
            }
            Permission::ProjectMember => {
                require_member(b, &id, param("org"), param("project"))?;
                (None, None)
            }
            Permission::Caller => (None, None),
        };
        Ok(Authorized {
            access,
            elevation,
            resolved,
        })
    }
}

/// `{ns}` and `{name}` of a secret's route, each checked once as a
/// Kubernetes name. It comes after [`Authorized`] in a handler's
/// arguments, so a caller without the right is refused before being told
/// anything about the name.
pub(crate) struct SecretPath {
    pub ns: String,
    pub name: String,
}

impl axum::extract::FromRequestParts<Shared> for SecretPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        b: &Shared,
    ) -> Result<Self, ApiError> {
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, b)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let (ns, name) = (get("ns"), get("name"));
        validate::check_name("namespace", &ns).map_err(ApiError::bad_request)?;
        validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
        Ok(SecretPath { ns, name })
    }
}

/// An organization admin, or refused with a hint about what `service`
/// (the route's: `audit`, `org-admin`) offers others instead.
pub(crate) fn require_org_admin(
    b: &Backend,
    id: &Identity,
    org: &str,
    service: &str,
) -> Result<(), ApiError> {
    if b.bindings.is_org_admin(id, org) {
        return Ok(());
    }
    let hint = if service == "audit" {
        "org-wide audit is for organization admins; project members can list their project's events with --project"
    } else {
        "elevation windows are for organization admins (members of the organization's admin groups); with a project role, read values in that project without one, or ask an organization admin"
    };
    Err(ApiError::forbidden(
        format!("{} is not an admin of organization {org:?}", id.username),
        Some(hint.into()),
    ))
}

/// A member of the project (any role) or an admin of its organization.
fn require_member(b: &Backend, id: &Identity, org: &str, project: &str) -> Result<(), ApiError> {
    let ns = b.projects.namespace_of(org, project).ok_or_else(|| {
        ApiError::not_found(format!(
            "organization {org:?} has no project {project:?} known to this backend"
        ))
    })?;
    if b.bindings.project_role(id, ns).is_none() && !b.bindings.is_org_admin(id, org) {
        return Err(ApiError::forbidden(
            format!("{} is not a member of project {project:?}", id.username),
            None,
        ));
    }
    Ok(())
}

/// The namespace's owner; an unknown or ambiguous namespace is refused.
pub(crate) fn owner<'a>(b: &'a Backend, ns: &str) -> Result<&'a crate::projects::Owner, ApiError> {
    b.projects.owner(ns).map_err(|e| match e {
        crate::projects::OwnerError::Unknown => ApiError::not_found(e.message(ns)),
        crate::projects::OwnerError::Ambiguous(_) => ApiError::conflict(e.message(ns)),
    })
}

/// The project role table (and an organization admin's window) applied to
/// one operation in one namespace.
pub(crate) async fn authorize(
    b: &Shared,
    id: &Identity,
    ns: &str,
    op: Op,
) -> Result<(Access, Option<Grant>), ApiError> {
    let now = b.now();
    validate::check_name("namespace", ns).map_err(ApiError::bad_request)?;
    let owner = owner(b, ns)?;
    let (org, project) = (owner.org.clone(), owner.project.clone().unwrap_or_default());
    let role = b.bindings.project_role(id, ns);
    let needs_window = role.is_none_or(|r| r < op.min_role()) && b.bindings.is_org_admin(id, &org);
    let elevation = if needs_window {
        b.db()
            .active_elevation(id.username.clone(), org.clone(), project.clone(), now)
            .await?
    } else {
        None
    };
    let decision = Decision {
        bindings: &b.bindings,
        id,
        org: &org,
        project: &project,
        namespace: ns,
        elevated: elevation.is_some(),
        enforce_elevation: b.config.enforce_elevation,
    };
    match decision.check(op) {
        Ok(access) => Ok((access, elevation)),
        // The event of a denial says who was refused in which role, as an
        // allowed one does.
        Err(d) => Err(ApiError {
            role: match role {
                Some(r) => Some(r.as_str()),
                None if b.bindings.is_org_admin(id, &org) => Some("org-admin"),
                None => None,
            },
            ..ApiError::forbidden(d.message, d.hint)
        }),
    }
}

/// A response to a change whose audit event committed with the change.
pub(crate) fn committed(resp: impl IntoResponse) -> Response {
    let mut r = resp.into_response();
    r.extensions_mut().insert(Committed);
    r
}

pub(crate) fn with_note(resp: impl IntoResponse, note: AuditNote) -> Response {
    let mut r = resp.into_response();
    r.extensions_mut().insert(note);
    r
}

pub(crate) fn check_data(data: &Data) -> Result<(), ApiError> {
    for k in data.keys() {
        validate::check_key(k).map_err(ApiError::bad_request)?;
    }
    validate::check_values_size(validate::values_size(data))
        .map_err(|e| ApiError::too_large(e.message))
}

pub(crate) fn check_sync(s: &SyncSpec) -> Result<(), ApiError> {
    let keys = s.keys.as_deref().unwrap_or_default();
    validate::check_sync(
        s.target_secret_name.as_deref(),
        s.refresh_interval.as_deref(),
        keys,
    )
    .map_err(|e| ApiError::bad_request(e.message))
}

pub(crate) fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    d.map_or(Ok(()), validate::check_description)
        .map_err(|e| ApiError::bad_request(e.message))
}

/// The live secret of a checked path ([`SecretPath`]).
pub(crate) async fn load_live(b: &Shared, ns: &str, name: &str) -> Result<SecretRecord, ApiError> {
    Ok(b.db().get_live(ns.to_string(), name.to_string()).await?)
}

/// The request's `Idempotency-Key` (an extension; see
/// [`kube_dc_api::endpoints::IDEMPOTENCY_KEY`]) on a route that honours it,
/// with the caller it belongs to; 400 when it is not a key. Reads the one
/// header (a write without it costs nothing more).
pub(crate) struct Keyed(pub Option<crate::store::IdempotencyKey>);

impl axum::extract::FromRequestParts<Shared> for Keyed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &Shared,
    ) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(kube_dc_api::endpoints::IDEMPOTENCY_KEY) else {
            return Ok(Keyed(None));
        };
        let route = match parts.extensions.get::<Resolved>().map(|r| r.route) {
            Some(kube_dc_api::Route::CreateSecret) => "create",
            Some(kube_dc_api::Route::PutValues) => "put",
            _ => return Ok(Keyed(None)),
        };
        let key = v
            .to_str()
            .map_err(|_| ApiError::bad_request("the Idempotency-Key header is not text"))?;
        validate::check_idempotency_key(key).map_err(ApiError::bad_request)?;
        let subject = parts
            .extensions
            .get::<Identity>()
            .map(|id| id.subject.clone())
            .unwrap_or_default();
        Ok(Keyed(Some(crate::store::IdempotencyKey {
            subject,
            key: key.to_string(),
            route,
        })))
    }
}

/// What a retry of a keyed write is answered with: the first attempt's
/// outcome, `w` (`answer` renders it), audited as a replay; 422 when the
/// key was used for another request.
pub(crate) fn replay(
    key: &crate::store::IdempotencyKey,
    w: &crate::store::KeyedWrite,
    (ns, name): (&str, &str),
    note: AuditNote,
    answer: impl FnOnce() -> Result<Response, ApiError>,
) -> ApiResult {
    if !w.is_for(key, ns, name) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "this Idempotency-Key was used for another request ({} of secret {:?} in {:?}): a \
                 key names one write",
                w.route, w.name, w.namespace
            ),
        ));
    }
    let resp = answer()?;
    Ok(with_note(
        resp,
        note.with(Fact::Replayed(true))
            .with(Fact::Version(Version(w.version))),
    ))
}
