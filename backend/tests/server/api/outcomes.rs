//! One audit event per request, whose result is the request's outcome:
//! every route of the endpoint table, through success and through each
//! failure it can have, plus requests that fail before routing.

use std::collections::{BTreeMap, BTreeSet};

use kube_dc_api::endpoints::Route;
use kube_dc_backend::store::AuditFilter;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// Who sends a case: a test user, or nobody (no Authorization header).
type Who = Option<(&'static str, &'static [&'static str])>;

struct Case {
    who: Who,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    want: u16,
}

fn case(who: Who, method: Method, path: impl Into<String>, body: Option<Value>, want: u16) -> Case {
    Case {
        who,
        method,
        path: path.into(),
        body: body.map(|b| b.to_string().into_bytes()),
        want,
    }
}

fn sp(path: &str) -> String {
    format!("/api/secrets/{NS}{path}")
}

/// The cases, in order (later ones rely on earlier ones' effects).
fn cases() -> Vec<Case> {
    use Method as M;
    let (a, u, dev, oa, nobody) = (Some(ADMIN), Some(USER), Some(DEV), Some(ORG_ADMIN), None);
    let stranger = Some(STRANGER);
    let elevate = "/api/orgs/acme/projects/demo/elevate";
    vec![
        // ListSecrets
        case(a, M::GET, sp(""), None, 200),
        case(a, M::GET, sp("?deleted=true"), None, 200),
        case(stranger, M::GET, sp(""), None, 403),
        case(a, M::GET, "/api/secrets/nobody-owns-this", None, 404),
        case(a, M::GET, sp("?bogus=1"), None, 400),
        case(nobody, M::GET, sp(""), None, 401),
        // CreateSecret
        case(
            a,
            M::POST,
            sp("/new1"),
            Some(json!({"type": "opaque", "initialValues": {"A": "1"}})),
            200,
        ),
        case(
            a,
            M::POST,
            sp("/new1"),
            Some(json!({"type": "opaque"})),
            409,
        ),
        case(a, M::POST, sp("/new2"), Some(json!({"type": "bogus"})), 400),
        case(u, M::POST, sp("/new3"), Some(json!({})), 403),
        case(
            a,
            M::POST,
            sp("/todel"),
            Some(json!({"initialValues": {"K": "v"}})),
            200,
        ),
        case(
            a,
            M::POST,
            sp("/other"),
            Some(json!({"sync": {"enabled": true}})),
            200,
        ),
        // GetSecret
        case(a, M::GET, sp("/db"), None, 200),
        case(a, M::GET, sp("/db?includeValue=true"), None, 200),
        case(a, M::GET, sp("/missing"), None, 404),
        case(u, M::GET, sp("/db?includeValue=true"), None, 403),
        case(a, M::GET, sp("/db?version=1"), None, 400),
        // UpdateSecret
        case(
            a,
            M::PATCH,
            sp("/db"),
            Some(json!({"description": "d"})),
            200,
        ),
        case(
            a,
            M::PATCH,
            sp("/missing"),
            Some(json!({"description": "d"})),
            404,
        ),
        case(
            u,
            M::PATCH,
            sp("/db"),
            Some(json!({"description": "d"})),
            403,
        ),
        case(a, M::PATCH, sp("/db"), Some(json!({"nope": 1})), 400),
        // PutValues
        case(
            a,
            M::PUT,
            sp("/db/values"),
            Some(json!({"data": {"PASSWORD": "p2", "USER": "app"}})),
            200,
        ),
        case(
            a,
            M::PUT,
            sp("/db/values"),
            Some(json!({"data": {"PASSWORD": "p3"}, "cas": 1})),
            409,
        ),
        case(
            a,
            M::PUT,
            sp("/missing/values"),
            Some(json!({"data": {"A": "1"}})),
            404,
        ),
        case(
            u,
            M::PUT,
            sp("/db/values"),
            Some(json!({"data": {"A": "1"}})),
            403,
        ),
        case(
            a,
            M::PUT,
            sp("/db/values"),
            Some(json!({"data": {"bad key": "1"}})),
            400,
        ),
        // SyncSecret
        case(
            a,
            M::POST,
            sp("/db/sync"),
            Some(json!({"enabled": true})),
            200,
        ),
        case(
            a,
            M::POST,
            sp("/db/sync"),
            Some(json!({"keys": ["NOPE"]})),
            400,
        ),
        case(
            a,
            M::POST,
            sp("/db/sync"),
            Some(json!({"targetSecretName": "other"})),
            409,
        ),
        case(
            a,
            M::POST,
            sp("/missing/sync"),
            Some(json!({"enabled": true})),
            404,
        ),
        case(
            u,
            M::POST,
            sp("/db/sync"),
            Some(json!({"enabled": true})),
            403,
        ),
        // ImportSecret
        case(
            dev,
            M::POST,
            sp("/imported/import"),
            Some(json!({"sourceSecretName": "legacy-app-credentials"})),
            200,
        ),
        case(
            dev,
            M::POST,
            sp("/imported/import"),
            Some(json!({"sourceSecretName": "legacy-app-credentials"})),
            409,
        ),
        case(
            dev,
            M::POST,
            sp("/imp2/import"),
            Some(json!({"sourceSecretName": "no-such-secret"})),
            404,
        ),
        case(dev, M::POST, sp("/imp3/import"), Some(json!({})), 400),
        case(
            u,
            M::POST,
            sp("/imp4/import"),
            Some(json!({"sourceSecretName": "legacy-app-credentials"})),
            403,
        ),
        // ListVersions
        case(a, M::GET, sp("/db/versions"), None, 200),
        case(a, M::GET, sp("/missing/versions"), None, 404),
        case(stranger, M::GET, sp("/db/versions"), None, 403),
        // DestroyVersion
        case(a, M::POST, sp("/db/versions/1/destroy"), None, 200),
        case(a, M::POST, sp("/db/versions/99/destroy"), None, 404),
        case(a, M::POST, sp("/db/versions/0/destroy"), None, 400),
        case(dev, M::POST, sp("/db/versions/2/destroy"), None, 403),
        // Consumers
        case(a, M::GET, sp("/db/consumers"), None, 200),
        case(a, M::GET, sp("/missing/consumers"), None, 404),
        case(stranger, M::GET, sp("/db/consumers"), None, 403),
        // DeleteSecret, then RestoreSecret
        case(a, M::DELETE, sp("/todel"), None, 200),
        case(a, M::DELETE, sp("/missing"), None, 404),
        case(u, M::DELETE, sp("/db"), None, 403),
        case(a, M::DELETE, sp("/db?bogus=1"), None, 400),
        case(a, M::GET, sp("/todel"), None, 404),
        case(a, M::POST, sp("/todel/restore"), None, 200),
        case(a, M::POST, sp("/db/restore"), None, 409),
        case(a, M::POST, sp("/missing/restore"), None, 404),
        case(u, M::POST, sp("/todel/restore"), None, 403),
        // KubernetesSecrets
        case(
            a,
            M::GET,
            format!("/api/local/namespaces/{NS}/kubernetes-secrets"),
            None,
            200,
        ),
        case(
            stranger,
            M::GET,
            format!("/api/local/namespaces/{NS}/kubernetes-secrets"),
            None,
            403,
        ),
        // Audit
        case(oa, M::GET, "/api/audit/orgs/acme?limit=5", None, 200),
        case(a, M::GET, "/api/audit/orgs/acme", None, 403),
        case(oa, M::GET, "/api/audit/orgs/acme?result=bogus", None, 400),
        case(
            a,
            M::GET,
            "/api/audit/orgs/acme/projects/demo?limit=5",
            None,
            200,
        ),
        case(
            stranger,
            M::GET,
            "/api/audit/orgs/acme/projects/demo",
            None,
            403,
        ),
        case(a, M::GET, "/api/audit/orgs/acme/projects/nope", None, 404),
        case(oa, M::GET, "/api/audit/orgs/acme/csv", None, 200),
        case(a, M::GET, "/api/audit/orgs/acme/csv", None, 403),
        case(oa, M::GET, "/api/audit/orgs/acme/verify", None, 200),
        case(a, M::GET, "/api/audit/orgs/acme/verify", None, 403),
        case(a, M::GET, "/api/audit/orgs/acme/key", None, 200),
        case(oa, M::POST, "/api/audit/orgs/acme/checkpoints", None, 200),
        case(a, M::POST, "/api/audit/orgs/acme/checkpoints", None, 403),
        case(
            oa,
            M::GET,
            "/api/audit/orgs/acme/checkpoints?limit=5",
            None,
            200,
        ),
        case(
            oa,
            M::GET,
            "/api/audit/orgs/acme/checkpoints?limit=0",
            None,
            400,
        ),
        case(a, M::GET, "/api/audit/orgs/acme/checkpoints", None, 403),
        case(a, M::GET, "/api/watch/audit/orgs/acme", None, 403),
        case(
            oa,
            M::GET,
            "/api/watch/audit/orgs/acme?after=nothex",
            None,
            400,
        ),
        case(
            oa,
            M::GET,
            "/api/watch/audit/orgs/acme?since=1&after=00",
            None,
            400,
        ),
        // Elevation
        case(oa, M::POST, elevate, Some(json!({"reason": "IR-1"})), 200),
        case(oa, M::POST, elevate, Some(json!({"reason": " "})), 400),
        case(dev, M::POST, elevate, Some(json!({"reason": "x"})), 403),
        case(
            oa,
            M::POST,
            "/api/orgs/acme/projects/nope/elevate",
            Some(json!({"reason": "x"})),
            404,
        ),
        case(oa, M::GET, elevate, None, 200),
        case(oa, M::GET, "/api/orgs/acme/elevations", None, 200),
        case(a, M::GET, "/api/orgs/acme/elevations", None, 403),
        case(oa, M::DELETE, elevate, None, 200),
        case(oa, M::DELETE, elevate, None, 404),
        // Before routing: unknown route, wrong method, undecodable segment.
        case(a, M::GET, "/api/nothing/here", None, 404),
        case(a, M::PATCH, sp("/db/values"), Some(json!({})), 405),
        case(a, M::GET, sp("/%ff"), None, 400),
        case(a, M::GET, "/api/secrets/%ff%fe", None, 400),
    ]
}

/// Every event of every organization, by request id (read on a thread of
/// its own: the store's calls block).
fn events_by_request(s: &Server) -> BTreeMap<String, Vec<Value>> {
    let store = s.backend.store.clone();
    std::thread::spawn(move || events_in(&store))
        .join()
        .unwrap()
}

fn events_in(store: &kube_dc_backend::store::Store) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for org in store.audit_orgs().unwrap() {
        let f = AuditFilter {
            org,
            limit: Some(1_000_000),
            ..Default::default()
        };
        for row in store.query_audit(&f).unwrap() {
            let body: Value = serde_json::from_str(&row.text).unwrap();
            let id = body["request_id"].as_str().unwrap_or_default().to_string();
            by_id.entry(id).or_default().push(body);
        }
    }
    by_id
}

fn result_of(status: u16) -> &'static str {
    match status {
        200..=299 => "allowed",
        401 | 403 => "denied",
        _ => "error",
    }
}

#[tokio::test]
async fn every_request_has_exactly_one_event_whose_result_is_its_outcome() {
    let s = Server::start_with(|_| {}, &[("secrets.yaml", super::import::LEGACY)]).await;
    s.create("db", json!({"PASSWORD": "p1"})).await;
    let mut covered: BTreeSet<Route> = BTreeSet::new();
    let mut sent: Vec<(String, Case)> = Vec::new();
    for (i, c) in cases().into_iter().enumerate() {
        let id = format!("outcome-{i:03}");
        let token = c.who.map(|w| s.token(w));
        let r = s
            .call_raw(
                token.as_deref(),
                c.method.clone(),
                &c.path,
                c.body.clone(),
                Some(&id),
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            c.want,
            "{} {}: {}",
            c.method,
            c.path,
            r.text
        );
        let path = c.path.split('?').next().unwrap_or_default();
        if let Some((route, _)) = Route::recognize(c.method.as_str(), path)
            && r.status.is_success()
        {
            covered.insert(route);
        }
        sent.push((id, c));
    }
    // The change stream: its answer never ends, so it is opened, its
    // first line read, and closed; one event all the same.
    let resp = s
        .http
        .get(format!("{}/api/watch/secrets/{NS}", s.url))
        .bearer_auth(s.token(DEV))
        .header("x-request-id", "outcome-watch")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(br#"{"type":"heartbeat""#), "{first:?}");
    drop(resp);
    covered.insert(Route::WatchSecrets);
    sent.push((
        "outcome-watch".into(),
        case(
            Some(DEV),
            Method::GET,
            format!("/api/watch/secrets/{NS}"),
            None,
            200,
        ),
    ));

    // The audit feeds: opened, their first line read, closed.
    for (who, path, id) in [
        (
            ORG_ADMIN,
            "/api/watch/audit/orgs/acme".to_string(),
            "outcome-feed-org",
        ),
        (
            DEV,
            "/api/watch/audit/orgs/acme/projects/demo".to_string(),
            "outcome-feed-project",
        ),
    ] {
        let mut resp = s
            .http
            .get(format!("{}{path}", s.url))
            .bearer_auth(s.token(who))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let first = resp.chunk().await.unwrap().unwrap();
        assert!(first.starts_with(br#"{"type":"heartbeat""#), "{first:?}");
        drop(resp);
        covered.insert(Route::recognize("GET", &path).unwrap().0);
        sent.push((id.into(), case(Some(who), Method::GET, path, None, 200)));
    }

    // An oversized body: refused before any handler, one event.
    let big = vec![b'x'; 5 * 1024 * 1024];
    let token = s.token(ADMIN);
    let r = s
        .call_raw(
            Some(&token),
            Method::PUT,
            &sp("/db/values"),
            Some(big),
            Some("outcome-big"),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    sent.push((
        "outcome-big".into(),
        case(Some(ADMIN), Method::PUT, sp("/db/values"), None, 413),
    ));

    let missing: Vec<_> = Route::ALL.iter().filter(|r| !covered.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "routes never driven to success: {missing:?}"
    );

    let events = events_by_request(&s);
    for (id, c) in &sent {
        let evs = events.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            evs.len(),
            1,
            "{} {} ({id}): {} events: {evs:?}",
            c.method,
            c.path,
            evs.len()
        );
        let e = &evs[0];
        assert_eq!(
            e["result"],
            result_of(c.want),
            "{} {}: {e}",
            c.method,
            c.path
        );
        assert_eq!(e["status"], c.want, "{} {}: {e}", c.method, c.path);
    }
}
