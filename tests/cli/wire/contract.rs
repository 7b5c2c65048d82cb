//! Every command sends the request the contract names: method, path,
//! query and body, recorded by a stub.

use std::collections::BTreeSet;

use kube_dc_api::Route;
use serde_json::{Value, json};

use super::reply;
use crate::common::*;

struct Case {
    args: Vec<&'static str>,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: Option<Value>,
}

fn case(
    args: &[&'static str],
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: Option<Value>,
) -> Case {
    Case {
        args: args.to_vec(),
        method,
        path,
        query,
        body,
    }
}

#[test]
fn requests_match_the_contract() {
    let stub = Stub::start(reply);
    let h = Home::new();
    let cases = vec![
        case(
            &["secrets", "list"],
            "GET",
            "/api/secrets/acme-demo",
            None,
            None,
        ),
        case(
            &["secrets", "get", "db"],
            "GET",
            "/api/secrets/acme-demo/db",
            None,
            None,
        ),
        case(
            &["secrets", "get", "db", "--value"],
            "GET",
            "/api/secrets/acme-demo/db",
            Some("includeValue=true"),
            None,
        ),
        case(
            &["secrets", "get", "db", "--value", "--version", "3"],
            "GET",
            "/api/secrets/acme-demo/db",
            Some("includeValue=true&version=3"),
            None,
        ),
        case(
            &[
                "secrets",
                "create",
                "db",
                "--from-literal=A=1",
                "--description",
                "d",
                "--sync-target",
                "db-env",
                "--sync-refresh",
                "2h",
                "--sync-keys",
                "A,B",
            ],
            "POST",
            "/api/secrets/acme-demo/db",
            None,
            Some(
                json!({"type": "opaque", "description": "d", "sync": {"enabled": true, "targetSecretName": "db-env", "refreshInterval": "2h", "keys": ["A", "B"]}, "initialValues": {"A": "1"}}),
            ),
        ),
        case(
            &["secrets", "create", "db", "--sync-disabled"],
            "POST",
            "/api/secrets/acme-demo/db",
            None,
            Some(json!({"type": "opaque", "sync": {"enabled": false}})),
        ),
        case(
            &["secrets", "apply", "-f", "MANIFEST"],
            "POST",
            "/api/secrets/acme-demo/rotated",
            None,
            Some(
                json!({"type": "password", "sync": {"enabled": true}, "rotation": {"enabled": true, "interval": "90d", "generator": {"length": 32, "charset": "alnum-symbol"}}}),
            ),
        ),
        case(
            &["secrets", "apply", "-f", "MANIFEST-DB"],
            "PATCH",
            "/api/secrets/acme-demo/db",
            None,
            Some(json!({"description": "changed"})),
        ),
        case(
            &["secrets", "put", "db", "--from-literal=K=v=w", "--replace"],
            "PUT",
            "/api/secrets/acme-demo/db/values",
            None,
            Some(json!({"data": {"K": "v=w"}})),
        ),
        case(
            &[
                "secrets",
                "put",
                "db",
                "--from-literal=K=v",
                "--cas",
                "1",
                "--replace",
            ],
            "PUT",
            "/api/secrets/acme-demo/db/values",
            None,
            Some(json!({"data": {"K": "v"}, "cas": 1})),
        ),
        case(
            &["secrets", "sync", "db", "--enabled", "false"],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(json!({"enabled": false})),
        ),
        case(
            &["secrets", "sync", "db", "--keys", ""],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(json!({"keys": []})),
        ),
        case(
            &[
                "secrets",
                "sync",
                "db",
                "--enabled",
                "true",
                "--target",
                "t",
                "--refresh",
                "1h",
                "--keys",
                "A,B",
            ],
            "POST",
            "/api/secrets/acme-demo/db/sync",
            None,
            Some(
                json!({"enabled": true, "targetSecretName": "t", "refreshInterval": "1h", "keys": ["A", "B"]}),
            ),
        ),
        case(
            &[
                "secrets",
                "import",
                "app-config",
                "--from",
                "legacy-app-credentials",
            ],
            "POST",
            "/api/secrets/acme-demo/app-config/import",
            None,
            Some(json!({"sourceSecretName": "legacy-app-credentials"})),
        ),
        case(
            &[
                "secrets",
                "import",
                "x",
                "--from",
                "s",
                "--from-namespace",
                "acme-other",
                "--allow-cross-namespace",
                "--type",
                "tls",
                "--description",
                "d",
            ],
            "POST",
            "/api/secrets/acme-demo/x/import",
            None,
            Some(
                json!({"sourceSecretName": "s", "sourceSecretNamespace": "acme-other", "type": "tls", "description": "d", "allowCrossNamespace": true}),
            ),
        ),
        case(
            &["secrets", "delete", "db"],
            "DELETE",
            "/api/secrets/acme-demo/db",
            None,
            None,
        ),
        case(
            &["secrets", "delete", "db", "--destroy", "--yes"],
            "DELETE",
            "/api/secrets/acme-demo/db",
            Some("destroy=true"),
            None,
        ),
        case(
            &["secrets", "destroy-version", "db", "3", "--yes"],
            "POST",
            "/api/secrets/acme-demo/db/versions/3/destroy",
            None,
            None,
        ),
        case(
            &["secrets", "consumers", "db"],
            "GET",
            "/api/secrets/acme-demo/db/consumers",
            None,
            None,
        ),
        case(
            &["secrets", "versions", "db"],
            "GET",
            "/api/secrets/acme-demo/db/versions",
            None,
            None,
        ),
        case(
            &["secrets", "restore", "db"],
            "POST",
            "/api/secrets/acme-demo/db/restore",
            None,
            None,
        ),
        case(
            &["audit", "list"],
            "GET",
            "/api/audit/orgs/acme/projects/demo",
            None,
            None,
        ),
        case(
            &[
                "audit",
                "list",
                "--org",
                "--service",
                "secrets",
                "--actor",
                "a b",
                "--result",
                "denied",
                "--until",
                "2026-05-12T08:00:00+02:00",
                "--limit",
                "10",
            ],
            "GET",
            "/api/audit/orgs/acme",
            Some(
                "service=secrets&actor=a+b&result=denied&until=2026-05-12T08%3A00%3A00%2B02%3A00&limit=10",
            ),
            None,
        ),
        case(
            &["audit", "list", "--org-name", "other", "--org"],
            "GET",
            "/api/audit/orgs/other",
            None,
            None,
        ),
        case(
            &["audit", "list", "--csv"],
            "GET",
            "/api/audit/orgs/acme/csv",
            None,
            None,
        ),
        case(
            &["orgs", "elevate", "demo", "--reason", "IR-1"],
            "POST",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            Some(json!({"reason": "IR-1"})),
        ),
        case(
            &["orgs", "status", "demo"],
            "GET",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            None,
        ),
        case(
            &["orgs", "release", "demo"],
            "DELETE",
            "/api/orgs/acme/projects/demo/elevate",
            None,
            None,
        ),
        case(
            &["orgs", "elevations", "--org", "other"],
            "GET",
            "/api/orgs/other/elevations",
            None,
            None,
        ),
    ];
    let manifest = h.write(
        "rotated.yaml",
        "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: { name: rotated }\n\
         spec: { type: password, rotation: { enabled: true, interval: 90d } }\n",
    );
    let manifest_db = h.write(
        "db.yaml",
        "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: { name: db }\n\
         spec: { type: opaque, description: changed }\n",
    );
    let mut covered = BTreeSet::new();
    for c in cases {
        // The namespace names the project, except for organization-wide
        // commands, which say -n/-p does not narrow them.
        let mut args = vec!["--server", stub.url.as_str()];
        if !org_wide(&c.args) {
            args.extend(["-n", "acme-demo"]);
        }
        args.extend(c.args.iter().map(|a| match *a {
            "MANIFEST" => manifest.as_str(),
            "MANIFEST-DB" => manifest_db.as_str(),
            a => a,
        }));
        let r = h.run_env(
            &args,
            &[("KUBE_DC_TOKEN", "tok-123"), ("KUBE_DC_ORG", "acme")],
        );
        assert_eq!(r.code, 0, "{:?}: {}", c.args, r.stderr);
        let seen = stub.take();
        let last = seen
            .last()
            .unwrap_or_else(|| panic!("{:?} sent nothing", c.args));
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            (c.method, c.path),
            "{:?}",
            c.args
        );
        assert_eq!(last.query.as_deref(), c.query, "{:?}", c.args);
        // Every request the CLI sends is a route of the endpoint table.
        for req in &seen {
            let (route, _) = Route::recognize(&req.method, &req.path).unwrap_or_else(|| {
                panic!(
                    "{:?} sent {} {}, which is no route",
                    c.args, req.method, req.path
                )
            });
            covered.insert(route);
        }
        assert_eq!(last.headers["authorization"], "Bearer tok-123");
        assert_eq!(last.headers["accept"], "application/json");
        assert!(last.headers.contains_key("x-request-id"));
        match &c.body {
            Some(b) => {
                assert_eq!(&last.json(), b, "{:?}", c.args);
                assert_eq!(last.headers["content-type"], "application/json");
            }
            None => assert!(last.body.is_empty(), "{:?} sent a body", c.args),
        }
    }
    // Every route of the table is used by some verb, but for the local
    // backend's own inspection and audit-chain routes; the change stream
    // and the audit feed, whose verbs run until stopped (tests/cli/watch.rs
    // and tests/cli/audit_feed.rs against the backend; wire::compat
    // against production); and the signed checkpoints, which a stub cannot
    // sign (tests/cli/audit_feed.rs against the backend).
    let unused: BTreeSet<Route> = Route::ALL
        .iter()
        .copied()
        .filter(|r| !covered.contains(r))
        .collect();
    assert_eq!(
        unused,
        BTreeSet::from([
            Route::KubernetesSecrets,
            Route::AuditVerify,
            Route::WatchSecrets,
            Route::AuditKey,
            Route::ListCheckpoints,
            Route::SignCheckpoint,
            Route::FollowAuditOrg,
            Route::FollowAuditProject,
        ]),
        "routes no CLI verb exercises"
    );
    // A duration becomes epoch seconds; unknown event fields survive -o json.
    let r = h
        .run_env(
            &[
                "--server", &stub.url, "-p", "demo", "audit", "list", "--since", "1h", "-o", "json",
            ],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        )
        .ok();
    let q = stub.take().pop().unwrap().query.unwrap();
    let since: u64 = q.strip_prefix("since=").unwrap().parse().unwrap();
    assert!(since > 1_700_000_000, "{q}");
    assert_eq!(
        r.json()["events"][0]["body"]["future_field"],
        json!({"x": 1})
    );
    let t = h
        .run_env(
            &["--server", &stub.url, "-p", "demo", "audit", "list"],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        )
        .ok();
    assert!(
        t.stdout.contains("2026-05-12T08:00:00.000Z"),
        "epoch-nanosecond ts shown as a time: {}",
        t.stdout
    );
}
