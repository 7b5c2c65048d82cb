//! The router, built from the contract's endpoint table, and the layers every
//! API request passes: request id; then, per route, authentication, the
//! route's audit classification (from the route that matched and its
//! *decoded* parameters, never the raw URL text), the handler, and the audit
//! event, written durably before the response leaves.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, get, on};
use axum::{Json, Router};
use kube_dc_api::endpoints::Route;
use serde_json::{Map, Value, json};

mod audit;
mod audit_csv;
mod audit_follow;
pub(crate) mod audit_layer;
mod checkpoints;
mod consumers;
mod elevation;
mod import;
mod secrets;
mod support;
mod versions;
mod view;
mod watch;

pub use checkpoints::sign_due as sign_due_checkpoints;
pub use view::to_wire;

use audit_layer::{route_layer, unmatched_layer};

use crate::app::Backend;
use crate::error::ApiError;
use support::BODY_LIMIT;

type Shared = Arc<Backend>;

/// The request id header: given by the caller, or made, and echoed.
pub const REQUEST_ID: &str = "x-request-id";

/// The handler of each route. The match is exhaustive: a route added to the
/// table without a handler does not compile.
fn handler(route: Route) -> MethodRouter<Shared> {
    let ep = route.endpoint();
    let method = Method::from_bytes(ep.method.as_bytes()).expect("table method");
    let f = MethodFilter::try_from(method).expect("table method is routable");
    match route {
        Route::ListSecrets => on(f, secrets::list_secrets),
        Route::CreateSecret => on(f, secrets::create_secret),
        Route::GetSecret => on(f, secrets::get_secret),
        Route::UpdateSecret => on(f, secrets::update_secret),
        Route::DeleteSecret => on(f, secrets::delete_secret),
        Route::PutValues => on(f, secrets::put_values),
        Route::SyncSecret => on(f, secrets::sync_secret),
        Route::ImportSecret => on(f, import::import_secret),
        Route::ListVersions => on(f, versions::list_versions),
        Route::DestroyVersion => on(f, versions::destroy_version),
        Route::Consumers => on(f, consumers::consumers),
        Route::RestoreSecret => on(f, secrets::restore_secret),
        Route::WatchSecrets => on(f, watch::watch_secrets),
        Route::KubernetesSecrets => on(f, consumers::kube_secrets),
        Route::AuditOrg => on(f, audit::audit_org),
        Route::AuditProject => on(f, audit::audit_project),
        Route::AuditCsv => on(f, audit_csv::audit_csv),
        Route::AuditVerify => on(f, audit::audit_verify),
        Route::AuditKey => on(f, checkpoints::audit_key),
        Route::ListCheckpoints => on(f, checkpoints::list_checkpoints),
        Route::SignCheckpoint => on(f, checkpoints::sign_checkpoint),
        Route::FollowAuditOrg => on(f, audit_follow::follow_org),
        Route::FollowAuditProject => on(f, audit_follow::follow_project),
        Route::Elevate => on(f, elevation::elevate),
        Route::ElevationStatus => on(f, elevation::elevation_status),
        Route::Release => on(f, elevation::release),
        Route::ListElevations => on(f, elevation::list_elevations),
    }
}

/// The OpenAPI 3 description of every route this backend serves.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// The HTTP API of a backend: every route of the endpoint table, with
/// request ids, authentication, authorization and one audit event per
/// request.
pub fn router(b: Shared) -> Router {
    let mut api = Router::new();
    for &route in Route::ALL {
        let layered = handler(route).layer(middleware::from_fn_with_state(
            (b.clone(), route),
            route_layer,
        ));
        api = api.route(route.endpoint().path, layered);
    }
    let api = api
        .fallback(|| async { ApiError::not_found("no such API route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
        })
        .layer(middleware::from_fn_with_state(b.clone(), unmatched_layer))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({"ok": true, "version": env!("CARGO_PKG_VERSION")})) }),
        )
        .route("/readyz", get(readyz))
        .route(
            "/openapi.yaml",
            get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }),
        )
        .merge(api)
        .layer(middleware::from_fn(request_id_middleware))
        .with_state(b)
}

/// Readiness, for load balancers: 200 when values can be served, 503 with
/// the reason when the value engine (OpenBao) cannot answer. `/healthz`
/// stays liveness: the process answers.
async fn readyz(axum::extract::State(b): axum::extract::State<Shared>) -> Response {
    use axum::response::IntoResponse;
    let database = database_health(&b).await;
    let engine = match b.store.engine_health() {
        None => None,
        Some(check) => Some(check.await),
    };
    let ready =
        database.get("reachable") == Some(&json!(true)) && engine.as_ref().is_none_or(|h| h.ready);
    let mut body = json!({"ready": ready, "database": database});
    match engine {
        None => body["engine"] = json!("sqlite"),
        Some(h) => {
            body["engine"] = json!("openbao");
            body["openbao"] = json!(h);
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        // An error body keeps its fields (the error layer adds requestId).
        body["error"] = json!(if database.get("reachable") == Some(&json!(true)) {
            "not ready: the value engine is not ready"
        } else {
            "not ready: the database cannot be reached"
        });
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (status, Json(body)).into_response();
    if !ready {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// Whether the store's database answers: a PostgreSQL server is asked
/// (within 3 s); the SQLite file is this process's own.
async fn database_health(b: &Shared) -> serde_json::Value {
    let kind = match b.store.dialect() {
        crate::store::Dialect::Sqlite => return json!({"kind": "sqlite", "reachable": true}),
        crate::store::Dialect::Postgres => "postgres",
    };
    let store = b.store.clone();
    let ping = tokio::task::spawn_blocking(move || store.ping());
    match tokio::time::timeout(std::time::Duration::from_secs(3), ping).await {
        Ok(Ok(Ok(()))) => json!({"kind": kind, "reachable": true}),
        Ok(Ok(Err(e))) => json!({"kind": kind, "reachable": false, "error": e.to_string()}),
        _ => json!({"kind": kind, "reachable": false, "error": "no answer within 3 s"}),
    }
}

#[derive(Clone)]
pub(crate) struct RequestId(pub(crate) String);

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
