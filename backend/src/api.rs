//! The handlers of the routes of `kube_dc_api::Route` (the router and the
//! audit layer are in `routes`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authn::Identity;
use crate::authz::{Access, Decision, Op};
use crate::error::{ApiError, AuditNote, parse_json, parse_query};
use crate::kube::{Manifests, SCANNER_VERSION};
use crate::routes::{Committed, Draft, Resolved};
use crate::store::{AuditFilter, NewSecret, SecretRecord, now_ms, rfc3339};
use crate::validate::{self, MAX_TOTAL_VALUE_BYTES};
use crate::wire::*;
use crate::{Backend, rotation};
use kube_dc_api::Permission;

type Shared = Arc<Backend>;
type ApiResult = Result<Response, ApiError>;

pub use crate::routes::{REQUEST_ID, router};

/// Raw body limit: the 1 MiB value limit plus room for JSON escaping.
pub(crate) const BODY_LIMIT: usize = 4 * MAX_TOTAL_VALUE_BYTES;

/// A request path as it may appear in an audit event: printable, bounded.
pub(crate) fn printable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(512).collect()
}

// ---- helpers ------------------------------------------------------------

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

struct Authorized {
    access: Access,
    elevation: Option<Grant>,
}

impl Authorized {
    fn note(&self) -> AuditNote {
        let mut n = AuditNote::default();
        match &self.access {
            Access::ProjectRole(r) => n = n.with("role", r.as_str()),
            Access::OrgAdmin { .. } => n = n.with("role", "org-admin"),
        }
        if let Some(g) = &self.elevation {
            n = n
                .with("elevation_id", g.elevation_id.clone())
                .with("reason", g.reason.clone());
        }
        n
    }
}

/// The namespace's owner; an unknown or ambiguous namespace is refused.
fn owner<'a>(b: &'a Backend, ns: &str) -> Result<&'a crate::projects::Owner, ApiError> {
    b.projects.owner(ns).map_err(|e| match e {
        crate::projects::OwnerError::Unknown => ApiError::not_found(e.message(ns)),
        crate::projects::OwnerError::Ambiguous(_) => ApiError::conflict(e.message(ns)),
    })
}

async fn authorize(b: &Shared, id: &Identity, ns: &str, op: Op) -> Result<Authorized, ApiError> {
    validate::check_name("namespace", ns).map_err(ApiError::bad_request)?;
    let owner = owner(b, ns)?;
    let (org, project) = (owner.org.clone(), owner.project.clone().unwrap_or_default());
    let role = b.bindings.project_role(id, ns);
    let needs_window = role.is_none_or(|r| r < op.min_role()) && b.bindings.is_org_admin(id, &org);
    let elevation = if needs_window {
        let (store, user, org, project) = (
            b.store.clone(),
            id.username.clone(),
            org.clone(),
            project.clone(),
        );
        blocking(move || Ok(store.active_elevation(&user, &org, &project, now_ms())?)).await?
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
        Ok(access) => Ok(Authorized { access, elevation }),
        Err(d) => Err(ApiError::forbidden(d.message, d.hint)),
    }
}

/// A response to a change whose audit event committed with the change.
fn committed(resp: impl IntoResponse) -> Response {
    let mut r = resp.into_response();
    r.extensions_mut().insert(Committed);
    r
}

fn with_note(resp: impl IntoResponse, note: AuditNote) -> Response {
    let mut r = resp.into_response();
    r.extensions_mut().insert(note);
    r
}

fn check_data(data: &Data) -> Result<(), ApiError> {
    let mut total = 0usize;
    for (k, v) in data {
        validate::check_key(k).map_err(ApiError::bad_request)?;
        total += k.len() + v.len();
    }
    if total > MAX_TOTAL_VALUE_BYTES {
        return Err(ApiError::too_large(format!(
            "the values total {total} bytes; a secret holds at most {MAX_TOTAL_VALUE_BYTES} bytes (1 MiB)"
        )));
    }
    Ok(())
}

fn check_sync(s: &SyncSpec) -> Result<(), ApiError> {
    if let Some(t) = &s.target_secret_name {
        validate::check_name("target Secret name", t).map_err(ApiError::bad_request)?;
    }
    if let Some(r) = &s.refresh_interval {
        validate::check_refresh_interval(r).map_err(ApiError::bad_request)?;
    }
    for k in s.keys.iter().flatten() {
        validate::check_key(k).map_err(ApiError::bad_request)?;
    }
    Ok(())
}

fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    if let Some(d) = d
        && d.chars().count() > validate::MAX_DESCRIPTION_CHARS
    {
        return Err(ApiError::bad_request(format!(
            "description is {} characters; at most {} are allowed",
            d.chars().count(),
            validate::MAX_DESCRIPTION_CHARS
        )));
    }
    Ok(())
}

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

async fn load_live(b: &Shared, ns: &str, name: &str) -> Result<SecretRecord, ApiError> {
    validate::check_name("secret name", name).map_err(ApiError::bad_request)?;
    let (store, ns2, name2) = (b.store.clone(), ns.to_string(), name.to_string());
    blocking(move || Ok(store.get(&ns2, &name2)?))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("secret {name:?} not found in namespace {ns:?}"))
        })
}

// ---- secrets ------------------------------------------------------------

pub(crate) async fn list_secrets(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(r): Extension<Resolved>,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {}
    parse_query::<Q>(q.as_deref())?;
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let store = b.store.clone();
    let recs = blocking(move || Ok(store.list(&ns)?)).await?;
    let items: Vec<Secret> = recs.iter().map(|rec| view(&b, rec)).collect();
    Ok(with_note(Json(ItemList { items }), a.note()))
}

pub(crate) async fn create_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    // Every field is optional: no body at all is a create with defaults.
    let req: CreateRequest = parse_json(if body.is_empty() { b"{}" } else { &body })?;
    validate::check_type(&req.kind).map_err(ApiError::bad_request)?;
    check_description(req.description.as_deref())?;
    check_sync(&req.sync)?;
    if let Some(d) = &req.initial_values {
        check_data(d)?;
    }
    // Rotation is scheduled only for passwords; on another type the create
    // succeeds and the status says `RotationConfigInvalid`, as in production.
    let mut interval = None;
    if let Some(rot) = &req.rotation {
        let every = validate::check_rotation(rot).map_err(ApiError::bad_request)?;
        if rot.enabled && req.kind == "password" {
            if req.initial_values.is_some() {
                return Err(ApiError::bad_request(
                    "rotation generates the value of this secret; omit initialValues",
                ));
            }
            interval = Some(every);
        }
    }
    let data = match (&req.rotation, interval) {
        (Some(rot), Some(_)) => Some(rotation::generate(rot)),
        _ => req.initial_values.clone(),
    };
    let new = NewSecret {
        namespace: ns.clone(),
        name: name.clone(),
        kind: req.kind.clone(),
        description: req.description.clone(),
        sync: req.sync.clone(),
        rotation: req.rotation.clone(),
        rotation_interval: interval,
        imported_from: None,
    };
    let store = b.store.clone();
    let fault = b.config.fault.clone();
    let event = d.allowed(&a.note());
    let rec = blocking(move || {
        Ok(store.create(
            new,
            data.as_ref(),
            now_ms(),
            || crate::fault_point(fault.as_deref(), "create"),
            Some(&event),
        )?)
    })
    .await?;
    let version = rec.kv.as_ref().map(|k| k.current_version).unwrap_or(0);
    let mut secret = view(&b, &rec);
    secret.kv_version = Some(version);
    Ok(committed(Json(secret)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GetQuery {
    /// Checked here; the route layer resolved its meaning.
    #[serde(default)]
    #[allow(dead_code)]
    include_value: bool,
    #[serde(default)]
    version: Option<u64>,
}

pub(crate) async fn get_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: GetQuery = parse_query(q.as_deref())?;
    // The route layer resolved the flag from the same decoded query.
    let reveal = r.permission == Permission::Project(Op::RevealValues);
    if let Some(v) = q.version {
        validate::check_version("version", v).map_err(ApiError::bad_request)?;
    }
    if q.version.is_some() && !reveal {
        return Err(ApiError::bad_request("version=N needs includeValue=true"));
    }
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let rec = load_live(&b, &ns, &name).await?;
    let mut secret = view(&b, &rec);
    let mut note = a.note();
    if reveal {
        let store = b.store.clone();
        let (ns2, name2, version) = (ns.clone(), name.clone(), q.version);
        let read = blocking(move || Ok(store.read_version(&ns2, &name2, version)?)).await?;
        match read {
            Some(v) => {
                note = note.with("version", v.version);
                secret.value = Some(SecretValue {
                    data: v.data,
                    metadata: ValueMetadata {
                        version: v.version,
                        created_time: Some(rfc3339(v.created_at)),
                        custom_metadata: None,
                    },
                });
            }
            None => secret.value_missing = Some(true),
        }
    }
    Ok(with_note(Json(secret), note))
}

pub(crate) async fn update_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let req: UpdateRequest = parse_json(&body)?;
    let rec = load_live(&b, &ns, &name).await?;
    check_description(req.description.as_deref())?;
    let mut rot = None;
    if let Some(r) = &req.rotation {
        if r.enabled && rec.kind != "password" {
            return Err(ApiError::bad_request(format!(
                "rotation applies only to type password, not {:?}",
                rec.kind
            )));
        }
        rot = Some((
            r.clone(),
            validate::check_rotation(r).map_err(ApiError::bad_request)?,
        ));
    }
    let store = b.store.clone();
    let event = d.allowed(&a.note());
    let rec = blocking(move || {
        Ok(store.update_spec(
            &ns,
            &name,
            req.description.as_deref(),
            rot.as_ref().map(|(r, d)| (r, *d)),
            now_ms(),
            Some(&event),
        )?)
    })
    .await?;
    Ok(committed(Json(view(&b, &rec))))
}

pub(crate) async fn put_values(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let req: PutValuesRequest = parse_json(&body)?;
    check_data(&req.data)?;
    if let Some(cas) = req.cas.filter(|c| *c > validate::MAX_VERSION) {
        return Err(ApiError::bad_request(format!(
            "invalid cas {cas}: use the current version, from 0 to {}",
            validate::MAX_VERSION
        )));
    }
    load_live(&b, &ns, &name).await?;
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    let now = now_ms();
    let event = d.allowed(&a.note());
    let version = blocking(move || {
        Ok(store.put_values(&ns2, &name2, &req.data, req.cas, now, Some(&event))?)
    })
    .await?;
    let mount = format!(
        "kv-{}",
        owner(&b, &ns)?.project.as_deref().unwrap_or_default()
    );
    let resp = PutValuesResponse {
        name,
        namespace: ns,
        mount,
        version,
        created_time: rfc3339(now),
    };
    Ok(committed(Json(resp)))
}

pub(crate) async fn sync_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let patch: SyncPatch = parse_json(&body)?;
    let rec = load_live(&b, &ns, &name).await?;
    let mut sync = rec.sync.clone();
    if let Some(e) = patch.enabled {
        sync.enabled = e;
    }
    if let Some(t) = patch.target_secret_name {
        sync.target_secret_name = Some(t);
    }
    if let Some(r) = patch.refresh_interval {
        sync.refresh_interval = Some(r);
    }
    if let Some(k) = patch.keys {
        // An empty list means all keys.
        sync.keys = (!k.is_empty()).then_some(k);
    }
    check_sync(&sync)?;
    let store = b.store.clone();
    let sync2 = sync.clone();
    let event = d.allowed(&a.note().with("sync_enabled", sync.enabled));
    let rec =
        blocking(move || Ok(store.update_sync(&ns, &name, &sync2, now_ms(), Some(&event))?))
            .await?;
    Ok(committed(Json(view(&b, &rec))))
}

pub(crate) async fn import_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let req: ImportRequest = parse_json(&body)?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    validate::check_name("source Secret name", &req.source_secret_name)
        .map_err(ApiError::bad_request)?;
    let kind = req.kind.clone().unwrap_or_else(|| "opaque".into());
    validate::check_type(&kind).map_err(ApiError::bad_request)?;
    check_description(req.description.as_deref())?;
    let src_ns = req
        .source_secret_namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    let cross = src_ns != ns;
    let note = a
        .note()
        .with("source", format!("{src_ns}/{}", req.source_secret_name))
        .with("cross_namespace", cross);
    if cross {
        if req.allow_cross_namespace != Some(true) {
            return Err(ApiError::bad_request(format!(
                "the source Secret is in namespace {src_ns:?}, not {ns:?}: a cross-namespace import \
                 needs allowCrossNamespace: true"
            )));
        }
        // Importing copies values out of the source namespace: the caller
        // must be allowed to read them there.
        authorize(&b, &id, &src_ns, Op::RevealValues)
            .await
            .map_err(|e| {
                ApiError::forbidden(
                    format!("source namespace {src_ns:?}: {}", e.message),
                    e.hint,
                )
            })?;
    }
    let manifests_dir = b.config.manifests_dir.clone();
    let src_name = req.source_secret_name.clone();
    let src_ns2 = src_ns.clone();
    let ns_default = ns.clone();
    let data = blocking(move || {
        let m = Manifests::load(manifests_dir.as_deref(), &ns_default);
        let s = m.secret(&src_ns2, &src_name).ok_or_else(|| {
            ApiError::not_found(format!("Kubernetes Secret {src_name:?} not found in namespace {src_ns2:?}"))
        })?;
        let mut data = Data::new();
        for (k, v) in &s.data {
            let text = String::from_utf8(v.clone()).map_err(|_| {
                ApiError::bad_request(format!(
                    "key {k:?} of Secret {src_name:?} is not UTF-8 text; the Secrets Manager stores text values"
                ))
            })?;
            data.insert(k.clone(), Sensitive::new(text));
        }
        Ok(data)
    })
    .await?;
    check_data(&data)?;
    let new = NewSecret {
        namespace: ns.clone(),
        name: name.clone(),
        kind,
        description: req.description.clone(),
        sync: SyncSpec {
            enabled: true,
            target_secret_name: Some(req.source_secret_name.clone()),
            refresh_interval: None,
            keys: None,
        },
        rotation: None,
        rotation_interval: None,
        imported_from: Some(format!("{src_ns}/{}", req.source_secret_name)),
    };
    let store = b.store.clone();
    let fault = b.config.fault.clone();
    let event = d.allowed(&note);
    let rec = blocking(move || {
        Ok(store.create(
            new,
            Some(&data),
            now_ms(),
            || crate::fault_point(fault.as_deref(), "import"),
            Some(&event),
        )?)
    })
    .await?;
    let mut s = view(&b, &rec);
    s.kv_version = rec.kv.as_ref().map(|k| k.current_version);
    s.imported_from = Some(json!({"namespace": src_ns, "name": req.source_secret_name}));
    Ok(committed(Json(s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Checked here; the route layer resolved its meaning.
    #[serde(default)]
    #[allow(dead_code)]
    destroy: bool,
}

pub(crate) async fn delete_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    parse_query::<DeleteQuery>(q.as_deref())?;
    let destroy = r.permission == Permission::Project(Op::Destroy);
    let a = authorize(&b, &id, &ns, r.op()).await?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    let event = d.allowed(&a.note());
    blocking(move || {
        if destroy {
            Ok(store.destroy(&ns2, &name2, Some(&event))?)
        } else {
            Ok(store.soft_delete(&ns2, &name2, now_ms(), Some(&event))?)
        }
    })
    .await?;
    let resp = DeleteResponse {
        name,
        namespace: ns,
        deleted: true,
        destroyed: destroy,
    };
    Ok(committed(Json(resp)))
}

pub(crate) async fn restore_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    let store = b.store.clone();
    let event = d.allowed(&a.note());
    let rec = blocking(move || Ok(store.restore(&ns, &name, now_ms(), Some(&event))?)).await?;
    Ok(committed(Json(view(&b, &rec))))
}

pub(crate) async fn list_versions(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    load_live(&b, &ns, &name).await?;
    let store = b.store.clone();
    let items = blocking(move || Ok(store.versions(&ns, &name)?)).await?;
    Ok(with_note(Json(ItemList { items }), a.note()))
}

pub(crate) async fn destroy_version(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Extension(r): Extension<Resolved>,
    Path((ns, name, version)): Path<(String, String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
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
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    let event = d.allowed(&a.note().with("version", version));
    blocking(move || Ok(store.destroy_version(&ns2, &name2, version, now_ms(), Some(&event))?))
        .await?;
    let resp = DestroyVersionResponse {
        name,
        namespace: ns,
        destroyed_version: version,
    };
    Ok(committed(Json(resp)))
}

pub(crate) async fn consumers(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(r): Extension<Resolved>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
    let rec = load_live(&b, &ns, &name).await?;
    let target = rec
        .sync
        .target_secret_name
        .clone()
        .unwrap_or_else(|| rec.name.clone());
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
    Extension(id): Extension<Identity>,
    Extension(r): Extension<Resolved>,
    Path(ns): Path<String>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, r.op()).await?;
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
            let target = rec
                .sync
                .target_secret_name
                .clone()
                .unwrap_or_else(|| rec.name.clone());
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

// ---- audit --------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    service: Option<String>,
    actor: Option<String>,
    result: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

pub fn parse_time_param(name: &str, v: &str) -> Result<i64, ApiError> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        let secs: i64 = v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name}: {v:?} is out of range")))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: {v:?} is out of range")));
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: {v:?} is neither epoch seconds nor an RFC 3339 time (e.g. 2026-05-12T08:00:00Z)"
            ))
        })
}

fn audit_filter(
    org: &str,
    project: Option<String>,
    q: AuditQuery,
    csv: bool,
) -> Result<(AuditFilter, Value), ApiError> {
    if let Some(r) = &q.result
        && !matches!(r.as_str(), "allowed" | "denied" | "error")
    {
        return Err(ApiError::bad_request(format!(
            "result: {r:?} is not one of allowed, denied, error"
        )));
    }
    let limit = match &q.limit {
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: {l:?} must be a whole number from 1 to {AUDIT_MAX_LIMIT}"
                    ))
                })?,
        ),
        None if csv => None,
        None => Some(AUDIT_DEFAULT_LIMIT),
    };
    let since_ms = q
        .since
        .as_deref()
        .map(|v| parse_time_param("since", v))
        .transpose()?;
    let until_ms = q
        .until
        .as_deref()
        .map(|v| parse_time_param("until", v))
        .transpose()?;
    let echo = json!({
        "org": org, "project": project, "service": q.service, "actor": q.actor,
        "result": q.result, "since": q.since, "until": q.until, "limit": limit,
    });
    Ok((
        AuditFilter {
            org: org.to_string(),
            project,
            service: q.service,
            actor: q.actor.filter(|a| !a.is_empty()),
            result: q.result,
            since_ms,
            until_ms,
            limit,
        },
        echo,
    ))
}

fn require_org_admin(b: &Backend, id: &Identity, org: &str) -> Result<(), ApiError> {
    if b.bindings.is_org_admin(id, org) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            format!("{} is not an admin of organization {org:?}", id.username),
            Some("org-wide audit is for organization admins; project members can list their project's events with --project".into()),
        ))
    }
}

async fn audit_query(b: Shared, f: AuditFilter, echo: Value) -> ApiResult {
    let store = b.store.clone();
    let limit = f.limit.unwrap_or(AUDIT_DEFAULT_LIMIT);
    let rows = blocking(move || Ok(store.query_audit(&f)?)).await?;
    let events: Vec<AuditEvent> = rows
        .into_iter()
        .map(|r| AuditEvent {
            ts: Value::String(rfc3339(r.ts)),
            body: r.body,
        })
        .collect();
    Ok(Json(AuditResponse {
        returned: events.len(),
        events,
        query: echo,
        limit,
    })
    .into_response())
}

pub(crate) async fn audit_org(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: AuditQuery = parse_query(q.as_deref())?;
    require_org_admin(&b, &id, &org)?;
    let (f, echo) = audit_filter(&org, None, q, false)?;
    audit_query(b, f, echo).await
}

pub(crate) async fn audit_project(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: AuditQuery = parse_query(q.as_deref())?;
    let ns = b.projects.namespace_of(&org, &project).ok_or_else(|| {
        ApiError::not_found(format!(
            "organization {org:?} has no project {project:?} known to this backend"
        ))
    })?;
    if b.bindings.project_role(&id, ns).is_none() && !b.bindings.is_org_admin(&id, &org) {
        return Err(ApiError::forbidden(
            format!("{} is not a member of project {project:?}", id.username),
            None,
        ));
    }
    let (f, echo) = audit_filter(&org, Some(project), q, false)?;
    audit_query(b, f, echo).await
}

use kube_dc_api::audit::{TRAILER_HEADER, TRAILER_PREFIX, csv_cell, field_text};
use kube_dc_api::{AUDIT_CSV_COLUMNS as CSV_COLUMNS, AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT};

/// Streams the org's events as CSV, oldest first, one chunk at a time: rows
/// are read from SQLite and written to the socket as they come, so memory
/// stays flat however long the log is.
pub(crate) async fn audit_csv(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: AuditQuery = parse_query(q.as_deref())?;
    require_org_admin(&b, &id, &org)?;
    let (f, _) = audit_filter(&org, None, q, true)?;
    // The scan starts on the body's first poll, which happens after the
    // middleware has committed this request's own audit event: the export
    // always ends with it, and nothing is read before the request is
    // audited.
    let stream = futures_util::stream::once(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let store = b.store.clone();
        tokio::task::spawn_blocking(move || {
            let fail = tx.clone();
            let mut w = csv::Writer::from_writer(ChunkSender {
                buf: Vec::with_capacity(CHUNK),
                tx,
            });
            let mut open = w.write_record(CSV_COLUMNS).is_ok();
            let mut rows = 0u64;
            let res = store.scan_audit(&f, false, |row| {
                // Every cell neutralised against spreadsheet formulas; the
                // event column holds the event exactly as it was hashed, so
                // `kube-dc audit verify FILE` can check the file offline.
                let rec: Vec<String> = CSV_COLUMNS
                    .iter()
                    .map(|&k| match k {
                        "ts" => rfc3339(row.ts),
                        "event" => row.text.clone(),
                        k => csv_cell(&field_text(&row.body, k)).into_owned(),
                    })
                    .collect();
                open = open && w.write_record(&rec).is_ok();
                rows += 1;
                open
            });
            match res {
                Ok(()) => {
                    // The announced trailer: a client can tell a complete
                    // export from one cut short at a row boundary.
                    if let Ok(mut sink) = w.into_inner() {
                        use std::io::Write as _;
                        let _ = writeln!(sink, "{TRAILER_PREFIX}{rows}");
                        // Flushing hands the last partial chunk to the channel.
                        let _ = sink.send();
                    }
                }
                Err(e) => {
                    // Fail the body, so the client sees a broken transfer rather
                    // than a short file that looks complete.
                    let _ = fail.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    })
    .flatten();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
            (header::HeaderName::from_static(TRAILER_HEADER), "rows"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

const CHUNK: usize = 64 * 1024;

/// A `Write` that hands the response body over in chunks of about 64 KiB.
struct ChunkSender {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) async fn audit_verify(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
    let store = b.store.clone();
    let res = blocking(move || Ok(store.verify_audit(&org)?)).await?;
    Ok(Json(match res {
        Ok(n) => json!({"ok": true, "events": n}),
        Err((seq, why)) => {
            json!({"ok": false, "brokenAt": seq, "error": format!("event {seq}: {why}")})
        }
    })
    .into_response())
}

// ---- org admin elevation -------------------------------------------------

pub(crate) async fn elevate(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
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
    let store = b.store.clone();
    let ttl = b.config.elevation_ttl;
    let user = id.username.clone();
    let (org2, project2, reason2) = (org.clone(), project.clone(), reason.clone());
    let event = d.allowed(&AuditNote::default().with("reason", reason));
    let g = blocking(move || {
        Ok(store.elevate(
            &user,
            &org2,
            &project2,
            &reason2,
            ttl,
            now_ms(),
            Some(&event),
        )?)
    })
    .await?;
    Ok(committed(Json(g)))
}

pub(crate) async fn elevation_status(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    let store = b.store.clone();
    let user = id.username.clone();
    let g = blocking(move || Ok(store.active_elevation(&user, &org, &project, now_ms())?)).await?;
    Ok(Json(ElevationStatus {
        active: g.is_some(),
        grant: g,
    })
    .into_response())
}

pub(crate) async fn release(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    let store = b.store.clone();
    let user = id.username.clone();
    let p2 = project.clone();
    let event = d.allowed(&AuditNote::default());
    let g = blocking(move || Ok(store.release(&user, &org, &p2, now_ms(), Some(&event))?))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no active elevation for project {project:?}"))
        })?;
    Ok(committed(Json(g)))
}

pub(crate) async fn list_elevations(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
    let store = b.store.clone();
    let items = blocking(move || Ok(store.active_elevations(&org, now_ms())?)).await?;
    Ok(Json(ItemList { items }).into_response())
}
