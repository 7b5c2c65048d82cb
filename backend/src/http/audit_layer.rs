//! The per-route layer: authentication, the audit classification of a
//! request (from the route that matched and its *decoded* parameters,
//! never the raw URL text), and the audit event, written durably before the
//! response leaves — or, for a change, in the same transaction as it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::authz::Op;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kube_dc_api::endpoints::{
    IDEMPOTENCY_KEY, Permission, Route, Scope, UNMATCHED_ACTION, decode_query,
};
use kube_dc_api::event::{Actor, AuditEvent, RequestInfo, Subject};

use super::RequestId;
use crate::app::Backend;
use crate::authn::{AuthError, Identity};
use crate::error::{ApiError, AuditNote};
use crate::rotation;
use crate::store::AuditRecord;

type Shared = Arc<Backend>;

/// What the route layer resolved for the handler: the permission the
/// request needs after the route's query flag is applied.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    pub permission: Permission,
    /// The route that matched.
    pub route: Route,
}

/// What an API request is about, for its audit event.
struct EventTarget {
    service: &'static str,
    action: &'static str,
    resource: String,
    org: String,
    project: Option<String>,
    namespace: Option<String>,
}

/// Marks a response whose audit event is already written.
#[derive(Clone, Copy)]
struct Audited;

fn target(
    b: &Backend,
    id: &Identity,
    route: Route,
    action: &'static str,
    params: &HashMap<String, String>,
) -> EventTarget {
    let ep = route.endpoint();
    let p = |k: &str| params.get(k).cloned().unwrap_or_default();
    match ep.scope {
        Scope::Namespace => {
            let ns = p("ns");
            // Filed under the owning organization; a request for a
            // namespace nobody (or more than one) owns is filed under the
            // caller's own organization.
            let (org, project) = match b.projects.owner(&ns) {
                Ok(o) => (o.org.clone(), o.project.clone()),
                Err(_) => (id.org.clone().unwrap_or_default(), None),
            };
            EventTarget {
                service: ep.service,
                action,
                resource: params.get("name").cloned().unwrap_or_else(|| ns.clone()),
                org,
                project,
                namespace: Some(ns),
            }
        }
        Scope::Org => EventTarget {
            service: ep.service,
            action,
            resource: p("org"),
            org: p("org"),
            project: None,
            namespace: None,
        },
        Scope::OrgProject => EventTarget {
            service: ep.service,
            action,
            resource: p("project"),
            org: p("org"),
            project: Some(p("project")),
            namespace: None,
        },
    }
}

struct Origin {
    request_id: String,
    source_ip: String,
    method: Method,
    path: String,
}

impl Origin {
    fn of(req: &Request) -> Self {
        Origin {
            request_id: req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            source_ip: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "local".into()),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
        }
    }
}

fn authorization(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn authenticate(b: &Backend, authorization: Option<&str>) -> Result<Identity, Response> {
    b.auth.authenticate(authorization).await.map_err(|e| {
        let status = match e {
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut err = ApiError::new(status, e.to_string());
        err.hint = e.hint();
        let mut resp = err.into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    })
}

/// Per route: authenticate, classify from the route and its decoded path and
/// query, run the handler, audit.
pub(crate) async fn route_layer(
    State((b, route)): State<(Shared, Route)>,
    params: Result<Path<HashMap<String, String>>, axum::extract::rejection::PathRejection>,
    req: Request,
    next: Next,
) -> Response {
    let ep = route.endpoint();
    // A method router answers other methods too (405): those are not this
    // route, and the unmatched layer audits them.
    let same_method =
        req.method().as_str() == ep.method || (req.method() == Method::HEAD && ep.method == "GET");
    if !same_method {
        return next.run(req).await;
    }
    // A path whose parameters do not decode (`%ff` is not UTF-8) never
    // reaches the handler: it is a 400, audited once by the unmatched layer.
    let Ok(Path(params)) = params else {
        return ApiError::bad_request(
            "a path segment is not valid percent-encoded UTF-8; names are Kubernetes names (a-z, 0-9, '-', '.')",
        )
        .into_response();
    };
    let origin = Origin::of(&req);
    // A write that honours `Idempotency-Key` says so by sending it back,
    // whatever its outcome: a client then knows a retry with it is safe.
    let keyed = route
        .honours_idempotency_key()
        .then(|| req.headers().get(IDEMPOTENCY_KEY).cloned())
        .flatten();
    let resp = route_inner(b, route, params, origin, req, next).await;
    match keyed {
        Some(k) => {
            let mut resp = resp;
            resp.headers_mut().insert(IDEMPOTENCY_KEY, k);
            resp
        }
        None => resp,
    }
}

async fn route_inner(
    b: Shared,
    route: Route,
    params: HashMap<String, String>,
    origin: Origin,
    mut req: Request,
    next: Next,
) -> Response {
    let ep = route.endpoint();
    let query = decode_query(req.uri().query());
    let (action, permission) = ep.resolve(&query);
    // The event of a read that reveals no value may be relaxed (see
    // `Store::relax_read_events`); every other event is durable.
    let durable = !matches!(*req.method(), Method::GET | Method::HEAD)
        || permission == Permission::Project(Op::RevealValues);
    let (identity, resp) = match authenticate(&b, authorization(&req).as_deref()).await {
        Ok(id) => {
            let target = target(&b, &id, route, action, &params);
            req.extensions_mut().insert(Draft(
                record(&id, &target, &origin, StatusCode::OK, None, b.now()),
                b.config.clock.clone(),
            ));
            req.extensions_mut().insert(id.clone());
            req.extensions_mut().insert(Resolved { permission, route });
            // Rotation is lazy as well as timed: a due rotation happens
            // before the request that would observe it.
            if ep.scope == Scope::Namespace {
                rotation::run_due(&b).await;
            }
            (id, next.run(req).await)
        }
        Err(resp) => (Identity::default(), resp),
    };
    // A handler that changed something wrote its event in the same
    // transaction as the change.
    if resp.extensions().get::<Committed>().is_some() && resp.status().is_success() {
        let mut resp = resp;
        resp.extensions_mut().insert(Audited);
        return resp;
    }
    let target = target(&b, &identity, route, action, &params);
    let mut resp = audit(&b, identity, target, origin, resp, durable).await;
    resp.extensions_mut().insert(Audited);
    resp
}

/// The audit event a handler commits together with its change: everything
/// but the handler's own notes is known before the handler runs.
#[derive(Clone)]
pub struct Draft(AuditRecord, crate::clock::Clock);

impl Draft {
    /// The event of a successful change, with the handler's notes.
    pub fn allowed(&self, note: &AuditNote) -> AuditRecord {
        let mut rec = self.0.clone();
        rec.ts = self.1.now_ms();
        rec.event.facts.extend(note.0.clone());
        rec
    }
}

/// Marks a response whose audit event was committed with its change.
#[derive(Clone, Copy)]
pub struct Committed;

/// Requests under `/api` that no route took (unknown path, wrong method,
/// undecodable parameters) are audited too.
pub(crate) async fn unmatched_layer(State(b): State<Shared>, req: Request, next: Next) -> Response {
    let origin = Origin::of(&req);
    let authz = authorization(&req);
    let resp = next.run(req).await;
    if resp.extensions().get::<Audited>().is_some() {
        return resp;
    }
    let identity = authenticate(&b, authz.as_deref()).await.unwrap_or_default();
    let target = EventTarget {
        service: "api",
        action: UNMATCHED_ACTION,
        resource: printable(&origin.path),
        org: identity.org.clone().unwrap_or_default(),
        project: None,
        namespace: None,
    };
    audit(&b, identity, target, origin, resp, true).await
}

/// A request path as it may appear in an audit event: printable, bounded.
fn printable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(512).collect()
}

fn record(
    identity: &Identity,
    target: &EventTarget,
    origin: &Origin,
    status: StatusCode,
    note: Option<&AuditNote>,
    now: i64,
) -> AuditRecord {
    let about = Subject {
        service: target.service.into(),
        action: target.action.into(),
        resource: target.resource.clone(),
        org: target.org.clone(),
        project: target.project.clone(),
        namespace: target.namespace.clone(),
    };
    let actor = Actor::caller(&identity.username, &identity.email, &identity.subject);
    let request = RequestInfo {
        id: origin.request_id.clone(),
        source_ip: origin.source_ip.clone(),
        method: origin.method.as_str().into(),
        path: printable(&origin.path),
        status: status.as_u16(),
    };
    let mut event = AuditEvent::request(about, actor, request);
    if let Some(note) = note {
        event.facts.extend(note.0.clone());
    }
    AuditRecord { ts: now, event }
}

async fn audit(
    b: &Backend,
    identity: Identity,
    target: EventTarget,
    origin: Origin,
    resp: Response,
    durable: bool,
) -> Response {
    let rec = record(
        &identity,
        &target,
        &origin,
        resp.status(),
        resp.extensions().get::<AuditNote>(),
        b.now(),
    );
    match b.db().append_audit(rec, durable).await {
        Ok(()) => resp,
        // The database is away: nothing of the request was acknowledged;
        // the caller may try again.
        Err(e @ crate::store::StoreError::Unavailable { .. }) => {
            tracing::warn!("audit write failed: {e}");
            crate::error::ApiError::from(e).into_response()
        }
        Err(e) => {
            tracing::error!("audit write failed: {e}");
            refused()
        }
    }
}

fn refused() -> Response {
    ApiError::internal("the audit event could not be written, so the request was refused")
        .into_response()
}
