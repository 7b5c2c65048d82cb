//! Routes of `CONTRACT.md` and the middleware every API request passes:
//! request id, authentication, then — after the handler — the audit event,
//! written durably before the response leaves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::authn::{AuthError, Identity};
use crate::authz::{Access, Decision, Op};
use crate::error::{ApiError, AuditNote, parse_json, parse_query};
use crate::kube::{Manifests, SCANNER_VERSION};
use crate::store::{AuditFilter, NewSecret, SecretRecord, now_ms, rfc3339};
use crate::validate::{self, MAX_TOTAL_VALUE_BYTES};
use crate::wire::*;
use crate::{Backend, rotation};

type Shared = Arc<Backend>;
type ApiResult = Result<Response, ApiError>;

pub const REQUEST_ID: &str = "x-request-id";
/// Raw body limit: the 1 MiB value limit plus room for JSON escaping.
const BODY_LIMIT: usize = 4 * MAX_TOTAL_VALUE_BYTES;

pub fn router(b: Shared) -> Router {
    let secrets = Router::new()
        .route("/{ns}", get(list_secrets).post(create_secret))
        .route(
            "/{ns}/{name}",
            get(get_secret).delete(delete_secret).patch(update_secret),
        )
        .route("/{ns}/{name}/values", axum::routing::put(put_values))
        .route("/{ns}/{name}/sync", post(sync_secret))
        .route("/{ns}/{name}/import", post(import_secret))
        .route("/{ns}/{name}/versions", get(list_versions))
        .route(
            "/{ns}/{name}/versions/{version}/destroy",
            post(destroy_version),
        )
        .route("/{ns}/{name}/consumers", get(consumers))
        .route("/{ns}/{name}/restore", post(restore_secret));
    let api = Router::new()
        .nest("/api/secrets", secrets)
        .route("/api/audit/orgs/{org}", get(audit_org))
        .route("/api/audit/orgs/{org}/csv", get(audit_csv))
        .route("/api/audit/orgs/{org}/verify", get(audit_verify))
        .route(
            "/api/audit/orgs/{org}/projects/{project}",
            get(audit_project),
        )
        .route(
            "/api/orgs/{org}/projects/{project}/elevate",
            post(elevate).get(elevation_status).delete(release),
        )
        .route("/api/orgs/{org}/elevations", get(list_elevations))
        .route(
            "/api/local/namespaces/{ns}/kubernetes-secrets",
            get(kube_secrets),
        )
        .fallback(|| async { ApiError::not_found("no such API route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
        })
        .layer(middleware::from_fn_with_state(b.clone(), api_middleware))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/openapi.yaml",
            get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], crate::OPENAPI) }),
        )
        .merge(api)
        .layer(middleware::from_fn(request_id_middleware))
        .with_state(b)
}

#[derive(Clone)]
struct RequestId(String);

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Echo the caller's X-Request-Id (when sane), else make one; put it on
/// every response, and into every JSON error body as `requestId`.
async fn request_id_middleware(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let resp = next.run(req).await;
    let mut resp = if resp.status().is_client_error() || resp.status().is_server_error() {
        json_error_with_id(resp, &id).await
    } else {
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// Errors are JSON `{"error": …, "requestId": …}` — also those produced by
/// the framework itself (plain-text rejections such as 405 or 413).
async fn json_error_with_id(resp: Response, id: &str) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 256 * 1024)
        .await
        .unwrap_or_default();
    let mut obj = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(o)) if o.contains_key("error") => o,
        _ => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let mut o = Map::new();
            o.insert(
                "error".into(),
                Value::String(if text.is_empty() {
                    parts
                        .status
                        .canonical_reason()
                        .unwrap_or("error")
                        .to_lowercase()
                } else {
                    text
                }),
            );
            o
        }
    };
    obj.insert("requestId".into(), Value::String(id.to_string()));
    let body = serde_json::to_vec(&obj).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// What an API request is about, for the audit event.
struct Target {
    service: &'static str,
    action: &'static str,
    resource: String,
    org: String,
    project: Option<String>,
    namespace: Option<String>,
}

fn classify(b: &Backend, id: &Identity, method: &Method, path: &str, query: &str) -> Target {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let q = |k: &str| query.split('&').any(|p| p == format!("{k}=true"));
    let m = method.as_str();
    let ns_target = |service, action, ns: &str, rest: &str| {
        let (org, project) = b.bindings.split_namespace(id, ns);
        Target {
            service,
            action,
            resource: format!("secrets/{ns}{rest}"),
            org,
            project: Some(project),
            namespace: Some(ns.to_string()),
        }
    };
    match seg.as_slice() {
        ["api", "secrets", ns] => ns_target(
            "secrets",
            if m == "POST" { "create" } else { "list" },
            ns,
            "",
        ),
        ["api", "secrets", ns, name, rest @ ..] => {
            let action = match (m, rest) {
                ("GET", []) if q("includeValue") => "reveal",
                ("GET", []) => "get",
                ("DELETE", []) if q("destroy") => "destroy",
                ("DELETE", []) => "delete",
                ("PATCH", []) => "update",
                ("PUT", ["values"]) => "put",
                ("POST", ["sync"]) => "sync",
                ("POST", ["import"]) => "import",
                ("GET", ["versions"]) => "versions",
                ("POST", ["versions", _, "destroy"]) => "destroy-version",
                ("GET", ["consumers"]) => "consumers",
                ("POST", ["restore"]) => "restore",
                _ => "unknown",
            };
            ns_target("secrets", action, ns, &format!("/{name}"))
        }
        ["api", "local", "namespaces", ns, "kubernetes-secrets"] => {
            ns_target("secrets", "list-kubernetes-secrets", ns, "")
        }
        ["api", "audit", "orgs", org, rest @ ..] => {
            let (action, project) = match rest {
                [] => ("query", None),
                ["csv"] => ("export", None),
                ["verify"] => ("verify", None),
                ["projects", p] => ("query", Some(p.to_string())),
                _ => ("unknown", None),
            };
            Target {
                service: "audit",
                action,
                resource: format!(
                    "audit/{org}{}",
                    project
                        .as_ref()
                        .map(|p| format!("/{p}"))
                        .unwrap_or_default()
                ),
                org: org.to_string(),
                project,
                namespace: None,
            }
        }
        ["api", "orgs", org, rest @ ..] => {
            let (action, project) = match (m, rest) {
                ("POST", ["projects", p, "elevate"]) => ("elevate", Some(p.to_string())),
                ("GET", ["projects", p, "elevate"]) => ("elevation-status", Some(p.to_string())),
                ("DELETE", ["projects", p, "elevate"]) => ("release", Some(p.to_string())),
                ("GET", ["elevations"]) => ("list-elevations", None),
                _ => ("unknown", None),
            };
            Target {
                service: "org-admin",
                action,
                resource: format!(
                    "orgs/{org}{}",
                    project
                        .as_ref()
                        .map(|p| format!("/projects/{p}"))
                        .unwrap_or_default()
                ),
                org: org.to_string(),
                project,
                namespace: None,
            }
        }
        _ => Target {
            service: "api",
            action: "unknown",
            resource: path.to_string(),
            org: String::new(),
            project: None,
            namespace: None,
        },
    }
}

async fn api_middleware(State(b): State<Shared>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let auth = b.auth.authenticate(authz.as_deref()).await;
    let (identity, resp) = match auth {
        Ok(id) => {
            req.extensions_mut().insert(id.clone());
            // Rotation is lazy as well as timed: a due rotation happens before
            // the request that would observe it.
            if path.starts_with("/api/secrets/") {
                rotation::run_due(&b).await;
            }
            (id, next.run(req).await)
        }
        Err(e) => {
            let status = match e {
                AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            let mut resp = ApiError::new(status, e.to_string()).into_response();
            if status == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            (Identity::default(), resp)
        }
    };

    let target = classify(&b, &identity, &method, &path, &query);
    let status = resp.status();
    let result = if status.is_success() {
        "allowed"
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "denied"
    } else {
        "error"
    };
    let mut body = Map::new();
    let actor = if identity.username.is_empty() {
        "anonymous".to_string()
    } else {
        identity.username.clone()
    };
    body.insert("service".into(), target.service.into());
    body.insert("action".into(), target.action.into());
    body.insert("result".into(), result.into());
    body.insert("resource".into(), target.resource.into());
    body.insert("actor".into(), actor.clone().into());
    body.insert("actor_email".into(), identity.email.clone().into());
    body.insert("actor_sub".into(), identity.subject.clone().into());
    body.insert("request_id".into(), request_id.into());
    body.insert("source_ip".into(), source_ip.into());
    body.insert("org".into(), target.org.clone().into());
    if let Some(p) = &target.project {
        body.insert("project".into(), p.clone().into());
    }
    if let Some(ns) = &target.namespace {
        body.insert("namespace".into(), ns.clone().into());
    }
    body.insert("method".into(), method.as_str().into());
    body.insert("path".into(), path.into());
    body.insert("status".into(), status.as_u16().into());
    if let Some(note) = resp.extensions().get::<AuditNote>() {
        for (k, v) in &note.0 {
            body.insert(k.clone(), v.clone());
        }
    }
    let ts = now_ms();
    let store = b.store.clone();
    let org = target.org;
    let project = target.project;
    let service = target.service;
    let written = tokio::task::spawn_blocking(move || {
        store.append_audit(
            ts,
            &org,
            project.as_deref(),
            service,
            result,
            (&actor, &identity.email, &identity.subject),
            &body,
        )
    })
    .await;
    match written {
        Ok(Ok(_)) => resp,
        Ok(Err(e)) => {
            tracing::error!("audit write failed: {e}");
            ApiError::internal("the audit event could not be written, so the request was refused")
                .into_response()
        }
        Err(e) => {
            tracing::error!("audit task failed: {e}");
            ApiError::internal("the audit event could not be written, so the request was refused")
                .into_response()
        }
    }
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

async fn authorize(b: &Shared, id: &Identity, ns: &str, op: Op) -> Result<Authorized, ApiError> {
    validate::check_name("namespace", ns).map_err(ApiError::bad_request)?;
    let (org, project) = b.bindings.split_namespace(id, ns);
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

/// The API view of a record.
pub fn to_wire(rec: &SecretRecord) -> Secret {
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
    if rec.sync.enabled {
        let when = rec.last_synced.map(rfc3339);
        let (st, reason, message) = if rec.current_readable {
            (
                "True",
                "SecretSynced",
                format!("values projected into Secret {target}"),
            )
        } else {
            (
                "False",
                "NoValues",
                "sync is enabled but there is no current value to project yet".to_string(),
            )
        };
        for kind in ["Ready", "Synced"] {
            status.conditions.push(Condition {
                kind: kind.into(),
                status: st.into(),
                reason: reason.into(),
                message: message.clone(),
                last_transition_time: when.clone(),
            });
        }
        if rec.current_readable {
            status.synced_secret_name = Some(target.clone());
            status.last_synced_time = when;
        }
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
                    .unwrap_or_else(|| "1h".into()),
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

async fn list_secrets(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {}
    parse_query::<Q>(q.as_deref())?;
    let a = authorize(&b, &id, &ns, Op::List).await?;
    let store = b.store.clone();
    let recs = blocking(move || Ok(store.list(&ns)?)).await?;
    let items: Vec<Secret> = recs.iter().map(to_wire).collect();
    Ok(with_note(Json(ItemList { items }), a.note()))
}

async fn create_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Write).await?;
    let req: CreateRequest = parse_json(&body)?;
    validate::check_name("secret name", &req.name).map_err(ApiError::bad_request)?;
    validate::check_type(&req.kind).map_err(ApiError::bad_request)?;
    check_description(req.description.as_deref())?;
    check_sync(&req.sync)?;
    if let Some(d) = &req.data {
        check_data(d)?;
    }
    let mut interval = None;
    if let Some(r) = &req.rotation {
        if r.enabled && req.kind != "password" {
            return Err(ApiError::bad_request(format!(
                "rotation applies only to type password, not {:?}",
                req.kind
            )));
        }
        interval = Some(validate::check_rotation(r).map_err(ApiError::bad_request)?);
        if r.enabled && req.data.is_some() {
            return Err(ApiError::bad_request(
                "rotation generates the value of this secret; omit data",
            ));
        }
    }
    let data = match &req.rotation {
        Some(r) if r.enabled => Some(rotation::generate(r)),
        _ => req.data.clone(),
    };
    let new = NewSecret {
        namespace: ns.clone(),
        name: req.name.clone(),
        kind: req.kind.clone(),
        description: req.description.clone(),
        sync: req.sync.clone(),
        rotation: req.rotation.clone(),
        rotation_interval: interval,
        imported_from: None,
    };
    let store = b.store.clone();
    let fault = b.config.fault.clone();
    let rec = blocking(move || {
        Ok(store.create(new, data.as_ref(), now_ms(), || {
            crate::fault_point(fault.as_deref(), "create")
        })?)
    })
    .await?;
    let note = a.note().with("name", req.name.clone()).with(
        "version",
        rec.kv.as_ref().map(|k| k.current_version).unwrap_or(0),
    );
    Ok(with_note((StatusCode::CREATED, Json(to_wire(&rec))), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GetQuery {
    #[serde(default)]
    include_value: bool,
    #[serde(default)]
    version: Option<u64>,
}

async fn get_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: GetQuery = parse_query(q.as_deref())?;
    if q.version.is_some() && !q.include_value {
        return Err(ApiError::bad_request("version=N needs includeValue=true"));
    }
    let op = if q.include_value {
        Op::RevealValues
    } else {
        Op::ReadMetadata
    };
    let a = authorize(&b, &id, &ns, op).await?;
    let rec = load_live(&b, &ns, &name).await?;
    let mut secret = to_wire(&rec);
    let mut note = a.note();
    if q.include_value {
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

async fn update_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Write).await?;
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
    let rec = blocking(move || {
        Ok(store.update_spec(
            &ns,
            &name,
            req.description.as_deref(),
            rot.as_ref().map(|(r, d)| (r, *d)),
            now_ms(),
        )?)
    })
    .await?;
    Ok(with_note(Json(to_wire(&rec)), a.note()))
}

async fn put_values(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Write).await?;
    let req: PutValuesRequest = parse_json(&body)?;
    check_data(&req.data)?;
    load_live(&b, &ns, &name).await?;
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    let now = now_ms();
    let version =
        blocking(move || Ok(store.put_values(&ns2, &name2, &req.data, req.cas, now)?)).await?;
    let mount = format!("kv-{}", b.bindings.split_namespace(&id, &ns).1);
    let resp = PutValuesResponse {
        name,
        namespace: ns,
        mount,
        version,
        created_time: rfc3339(now),
    };
    Ok(with_note(Json(resp), a.note().with("version", version)))
}

async fn sync_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Write).await?;
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
    let rec = blocking(move || Ok(store.update_sync(&ns, &name, &sync2, now_ms())?)).await?;
    let note = a.note().with("sync_enabled", sync.enabled);
    Ok(with_note(Json(to_wire(&rec)), note))
}

async fn import_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Write).await?;
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
    let mut note = a
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
    let rec = blocking(move || {
        Ok(store.create(new, Some(&data), now_ms(), || {
            crate::fault_point(fault.as_deref(), "import")
        })?)
    })
    .await?;
    let mut s = to_wire(&rec);
    s.kv_version = rec.kv.as_ref().map(|k| k.current_version);
    s.imported_from = Some(json!({"namespace": src_ns, "name": req.source_secret_name}));
    note = note.with("version", s.kv_version.unwrap_or(0));
    Ok(with_note(Json(s), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    destroy: bool,
}

async fn delete_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: DeleteQuery = parse_query(q.as_deref())?;
    let op = if q.destroy { Op::Destroy } else { Op::Delete };
    let a = authorize(&b, &id, &ns, op).await?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    blocking(move || {
        if q.destroy {
            Ok(store.destroy(&ns2, &name2)?)
        } else {
            Ok(store.soft_delete(&ns2, &name2, now_ms())?)
        }
    })
    .await?;
    let resp = DeleteResponse {
        name,
        namespace: ns,
        deleted: true,
        destroyed: q.destroy,
    };
    Ok(with_note(Json(resp), a.note()))
}

async fn restore_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Restore).await?;
    validate::check_name("secret name", &name).map_err(ApiError::bad_request)?;
    let store = b.store.clone();
    let rec = blocking(move || Ok(store.restore(&ns, &name, now_ms())?)).await?;
    Ok(with_note(Json(to_wire(&rec)), a.note()))
}

async fn list_versions(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::ReadMetadata).await?;
    load_live(&b, &ns, &name).await?;
    let store = b.store.clone();
    let items = blocking(move || Ok(store.versions(&ns, &name)?)).await?;
    Ok(with_note(Json(ItemList { items }), a.note()))
}

async fn destroy_version(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name, version)): Path<(String, String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::Destroy).await?;
    let version: u64 = version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid version {version:?}: use a whole number from 1"
        ))
    })?;
    load_live(&b, &ns, &name).await?;
    let store = b.store.clone();
    let (ns2, name2) = (ns.clone(), name.clone());
    blocking(move || Ok(store.destroy_version(&ns2, &name2, version, now_ms())?)).await?;
    let resp = DestroyVersionResponse {
        name,
        namespace: ns,
        destroyed_version: version,
    };
    Ok(with_note(Json(resp), a.note().with("version", version)))
}

async fn consumers(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::ReadMetadata).await?;
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
            errors: (!m.errors.is_empty())
                .then(|| m.errors.iter().map(|e| json!({"error": e})).collect()),
        })
    })
    .await?;
    Ok(with_note(Json(resp), a.note()))
}

/// Model inspection: the Kubernetes Secrets of a namespace as this backend
/// models them — manifest Secrets plus projections of synced ManagedSecrets.
/// Key names only.
async fn kube_secrets(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(ns): Path<String>,
) -> ApiResult {
    let a = authorize(&b, &id, &ns, Op::ReadMetadata).await?;
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
                .filter(|n| (1..=5000).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: {l:?} must be a whole number from 1 to 5000"
                    ))
                })?,
        ),
        None if csv => None,
        None => Some(500),
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
    let limit = f.limit.unwrap_or(500);
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

async fn audit_org(
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

async fn audit_project(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: AuditQuery = parse_query(q.as_deref())?;
    let ns = format!("{org}-{project}");
    if b.bindings.project_role(&id, &ns).is_none() && !b.bindings.is_org_admin(&id, &org) {
        return Err(ApiError::forbidden(
            format!("{} is not a member of project {project:?}", id.username),
            None,
        ));
    }
    let (f, echo) = audit_filter(&org, Some(project), q, false)?;
    audit_query(b, f, echo).await
}

pub const CSV_COLUMNS: &[&str] = &[
    "ts",
    "service",
    "action",
    "result",
    "actor",
    "actor_email",
    "resource",
    "request_id",
    "source_ip",
    "project",
    "elevation_id",
    "reason",
    "status",
    "hash",
];

/// Streams the org's events as CSV, oldest first, one chunk at a time: rows
/// are read from SQLite and written to the socket as they come, so memory
/// stays flat however long the log is.
async fn audit_csv(
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
            let res = store.scan_audit(&f, false, |row| {
                let cell = |k: &str| match row.body.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                };
                let mut rec: Vec<String> = CSV_COLUMNS[1..].iter().map(|k| cell(k)).collect();
                rec.insert(0, rfc3339(row.ts));
                open = open && w.write_record(&rec).is_ok();
                open
            });
            match res {
                Ok(()) => {
                    // Flushing hands the last partial chunk to the channel.
                    if let Ok(mut sink) = w.into_inner() {
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

async fn audit_verify(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
    let store = b.store.clone();
    let res = blocking(move || Ok(store.verify_audit()?)).await?;
    Ok(Json(match res {
        Ok(n) => json!({"ok": true, "events": n}),
        Err((seq, why)) => {
            json!({"ok": false, "brokenAt": seq, "error": format!("event {seq}: {why}")})
        }
    })
    .into_response())
}

// ---- org admin elevation -------------------------------------------------

async fn elevate(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
    validate::check_name("project", &project).map_err(ApiError::bad_request)?;
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
    let g =
        blocking(move || Ok(store.elevate(&user, &org2, &project2, &reason2, ttl, now_ms())?))
            .await?;
    let note = AuditNote::default()
        .with("elevation_id", g.elevation_id.clone())
        .with("reason", reason)
        .with("expires_at", g.expires_at.clone());
    Ok(with_note(Json(g), note))
}

async fn elevation_status(
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

async fn release(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    let store = b.store.clone();
    let user = id.username.clone();
    let p2 = project.clone();
    let g = blocking(move || Ok(store.release(&user, &org, &p2, now_ms())?))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no active elevation for project {project:?}"))
        })?;
    let note = AuditNote::default().with("elevation_id", g.elevation_id.clone());
    Ok(with_note(Json(g), note))
}

async fn list_elevations(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Path(org): Path<String>,
) -> ApiResult {
    require_org_admin(&b, &id, &org)?;
    let store = b.store.clone();
    let items = blocking(move || Ok(store.active_elevations(&org, now_ms())?)).await?;
    Ok(Json(ItemList { items }).into_response())
}
