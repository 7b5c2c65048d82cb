//! The one table of endpoints. Each route exists here once: its method, its
//! path template, the audit action it is recorded as (`service.object.verb`),
//! the permission it needs, and whether production serves it or it is one
//! of this project's extensions. The backend's router and audit layer and
//! the CLI's client are built from this table; a test checks
//! `backend/openapi.yaml` against it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::roles::Op;

/// Whether the production platform serves a route, or only this project's
/// own backend does (a client must degrade on 404/405 from those).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The production platform serves it.
    Production,
    /// Only this project's backend serves it; a client degrades on 404/405.
    Extension,
}

/// What the caller must be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// An operation on a project's secrets, by the role table.
    Project(Op),
    /// A member of the project (any role), or an admin of its organization.
    ProjectMember,
    /// An admin of the organization.
    OrgAdmin,
    /// Any authenticated caller, about their own grants.
    Caller,
}

/// Which path parameters say what an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `{ns}` (and maybe `{name}`): a project's backing namespace.
    Namespace,
    /// `{org}` only.
    Org,
    /// `{org}` and `{project}`.
    OrgProject,
}

/// A query flag that turns a request into another operation when it is
/// `true` after decoding (`?includeValue=true` reads values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The query parameter, true after decoding.
    pub param: &'static str,
    /// The audit action the request is then recorded as.
    pub action: &'static str,
    /// The permission it then needs.
    pub permission: Permission,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// One route: what it is, how it is audited and who may call it.
pub struct Endpoint {
    /// The HTTP method.
    pub method: &'static str,
    /// Path template; parameters in braces, e.g. `/api/secrets/{ns}/{name}`.
    pub path: &'static str,
    /// The audit event's `service`.
    pub service: &'static str,
    /// The audit event's `action`.
    pub action: &'static str,
    /// What the caller must be allowed to do.
    pub permission: Permission,
    /// A query flag that makes it another operation (`includeValue=true`).
    pub flag: Option<Flag>,
    /// Which path parameters say what its event is about.
    pub scope: Scope,
    /// Whether production serves it.
    pub origin: Origin,
}

macro_rules! routes {
    ($($route:ident => $ep:expr,)*) => {
        /// Every route of the API.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Route {
            $(
                #[doc = concat!(
                    "The `", stringify!($route), "` route: its method, path, audit action ",
                    "and permission are its row of the table ([`Route::endpoint`])."
                )]
                $route,
            )*
        }

        impl Route {
            /// Every route, in the table's order.
            pub const ALL: &'static [Route] = &[$(Route::$route,)*];

            /// The route's row of the table.
            pub const fn endpoint(self) -> Endpoint {
                match self { $(Route::$route => $ep,)* }
            }
        }
    };
}

const fn ep(
    method: &'static str,
    path: &'static str,
    service: &'static str,
    action: &'static str,
    permission: Permission,
    scope: Scope,
    origin: Origin,
) -> Endpoint {
    Endpoint {
        method,
        path,
        service,
        action,
        permission,
        flag: None,
        scope,
        origin,
    }
}

const fn with_flag(
    e: Endpoint,
    param: &'static str,
    action: &'static str,
    p: Permission,
) -> Endpoint {
    Endpoint {
        flag: Some(Flag {
            param,
            action,
            permission: p,
        }),
        ..e
    }
}

use Origin::{Extension, Production};
use Permission::{Caller, OrgAdmin, Project as P, ProjectMember};
use Scope::{Namespace, Org, OrgProject};

const S: &str = "secrets";
const SECRET: &str = "/api/secrets/{ns}/{name}";

routes! {
    ListSecrets => ep("GET", "/api/secrets/{ns}", S, "secrets.secret.list", P(Op::List), Namespace, Production),
    CreateSecret => ep("POST", SECRET, S, "secrets.secret.create", P(Op::Write), Namespace, Production),
    GetSecret => with_flag(
        ep("GET", SECRET, S, "secrets.metadata.read", P(Op::ReadMetadata), Namespace, Production),
        "includeValue", "secrets.value.read", P(Op::RevealValues)),
    UpdateSecret => ep("PATCH", SECRET, S, "secrets.secret.update", P(Op::Write), Namespace, Extension),
    DeleteSecret => with_flag(
        ep("DELETE", SECRET, S, "secrets.secret.delete", P(Op::Delete), Namespace, Production),
        "destroy", "secrets.secret.destroy", P(Op::Destroy)),
    PutValues => ep("PUT", "/api/secrets/{ns}/{name}/values", S, "secrets.value.write", P(Op::Write), Namespace, Production),
    SyncSecret => ep("POST", "/api/secrets/{ns}/{name}/sync", S, "secrets.sync.update", P(Op::Write), Namespace, Production),
    ImportSecret => ep("POST", "/api/secrets/{ns}/{name}/import", S, "secrets.secret.import", P(Op::Write), Namespace, Production),
    ListVersions => ep("GET", "/api/secrets/{ns}/{name}/versions", S, "secrets.version.list", P(Op::ReadMetadata), Namespace, Extension),
    DestroyVersion => ep("POST", "/api/secrets/{ns}/{name}/versions/{version}/destroy", S, "secrets.version.destroy", P(Op::Destroy), Namespace, Production),
    Consumers => ep("GET", "/api/secrets/{ns}/{name}/consumers", S, "secrets.consumer.list", P(Op::ReadMetadata), Namespace, Production),
    RestoreSecret => ep("POST", "/api/secrets/{ns}/{name}/restore", S, "secrets.secret.restore", P(Op::Restore), Namespace, Extension),
    WatchSecrets => ep("GET", "/api/watch/secrets/{ns}", S, "secrets.change.watch", P(Op::List), Namespace, Extension),
    KubernetesSecrets => ep("GET", "/api/local/namespaces/{ns}/kubernetes-secrets", S, "secrets.projection.list", P(Op::ReadMetadata), Namespace, Extension),
    AuditOrg => ep("GET", "/api/audit/orgs/{org}", "audit", "audit.event.list", OrgAdmin, Org, Production),
    AuditProject => ep("GET", "/api/audit/orgs/{org}/projects/{project}", "audit", "audit.event.list", ProjectMember, OrgProject, Production),
    AuditCsv => ep("GET", "/api/audit/orgs/{org}/csv", "audit", "audit.event.export", OrgAdmin, Org, Production),
    AuditVerify => ep("GET", "/api/audit/orgs/{org}/verify", "audit", "audit.chain.verify", OrgAdmin, Org, Extension),
    AuditKey => ep("GET", "/api/audit/orgs/{org}/key", "audit", "audit.key.read", Caller, Org, Extension),
    ListCheckpoints => ep("GET", "/api/audit/orgs/{org}/checkpoints", "audit", "audit.checkpoint.list", OrgAdmin, Org, Extension),
    SignCheckpoint => ep("POST", "/api/audit/orgs/{org}/checkpoints", "audit", "audit.checkpoint.create", OrgAdmin, Org, Extension),
    FollowAuditOrg => ep("GET", "/api/watch/audit/orgs/{org}", "audit", "audit.event.follow", OrgAdmin, Org, Extension),
    FollowAuditProject => ep("GET", "/api/watch/audit/orgs/{org}/projects/{project}", "audit", "audit.event.follow", ProjectMember, OrgProject, Extension),
    Elevate => ep("POST", "/api/orgs/{org}/projects/{project}/elevate", "org-admin", "org-admin.elevation.create", OrgAdmin, OrgProject, Production),
    ElevationStatus => ep("GET", "/api/orgs/{org}/projects/{project}/elevate", "org-admin", "org-admin.elevation.read", Caller, OrgProject, Production),
    Release => ep("DELETE", "/api/orgs/{org}/projects/{project}/elevate", "org-admin", "org-admin.elevation.release", Caller, OrgProject, Production),
    ListElevations => ep("GET", "/api/orgs/{org}/elevations", "org-admin", "org-admin.elevation.list", OrgAdmin, Org, Production),
}

/// The request header that makes a write safe to retry (**extension**,
/// after the IETF draft of the same name): a write that carries a key its
/// caller already used for the same secret and route is answered as the
/// first one was, not made again.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl Route {
    /// Whether the backend honours [`IDEMPOTENCY_KEY`] on this route: the
    /// writes of a secret's values, which are not otherwise safe to repeat.
    pub const fn honours_idempotency_key(self) -> bool {
        matches!(self, Route::CreateSecret | Route::PutValues)
    }
}

impl Route {
    /// Whether a request on this route changes anything (a secret, its
    /// values or projection, an elevation window): what a client's dry
    /// run plans instead of sending. Every other route only reads.
    pub const fn changes(self) -> bool {
        matches!(
            self,
            Route::CreateSecret
                | Route::UpdateSecret
                | Route::DeleteSecret
                | Route::PutValues
                | Route::SyncSecret
                | Route::ImportSecret
                | Route::DestroyVersion
                | Route::RestoreSecret
                | Route::Elevate
                | Route::Release
                | Route::SignCheckpoint
        )
    }
}

/// The audit action of a scheduled rotation (no request: the backend's own).
pub const ROTATE_ACTION: &str = "secrets.value.rotate";

/// The audit action of the start-up finding that the value engine and the
/// records disagree (no request: the backend's own; result `error`).
pub const RECONCILE_ACTION: &str = "secrets.reconcile";

/// The audit action of a request under `/api` that matched no route.
pub const UNMATCHED_ACTION: &str = "api.request.unmatched";

/// Characters a path segment keeps as they are: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Decodes a raw query string into its pairs, as a server would.
pub fn decode_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

impl Endpoint {
    /// Names of the path parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The path with `values` put in for the parameters, in order, each
    /// percent-encoded as one segment (a value can never add a segment).
    pub fn path_for(&self, values: &[&str]) -> String {
        let mut values = values.iter();
        let mut out = String::with_capacity(self.path.len() + 32);
        for seg in self.path.split('/').skip(1) {
            out.push('/');
            if seg.starts_with('{') {
                let v = values
                    .next()
                    .unwrap_or_else(|| panic!("{}: too few path values", self.path));
                out.extend(utf8_percent_encode(v, SEGMENT));
            } else {
                out.push_str(seg);
            }
        }
        assert!(
            values.next().is_none(),
            "{}: too many path values",
            self.path
        );
        out
    }

    /// The action and permission of a request, from its decoded query.
    pub fn resolve(&self, query: &[(String, String)]) -> (&'static str, Permission) {
        match self.flag {
            Some(f) if query.iter().any(|(k, v)| k == f.param && v == "true") => {
                (f.action, f.permission)
            }
            _ => (self.action, self.permission),
        }
    }

    /// Whether `path` (no query) fits this template; returns the decoded
    /// parameter values. For tests and clients that check a request.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<String>> {
        if method != self.method {
            return None;
        }
        let want: Vec<&str> = self.path.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            if w.starts_with('{') {
                if g.is_empty() {
                    return None;
                }
                params.push(
                    percent_encoding::percent_decode_str(g)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            } else if w != g {
                return None;
            }
        }
        Some(params)
    }
}

impl Route {
    /// The route a request is for, with its decoded path parameters.
    pub fn recognize(method: &str, path: &str) -> Option<(Route, Vec<String>)> {
        Route::ALL
            .iter()
            .find_map(|r| r.endpoint().matches(method, path).map(|p| (*r, p)))
    }
}

/// Every audit action with what it records, for documentation.
pub fn actions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in Route::ALL {
        let e = r.endpoint();
        let mut push = |a, d| {
            if !out.iter().any(|(x, _)| *x == a) {
                out.push((a, d));
            }
        };
        push(e.action, describe(e.action));
        if let Some(f) = e.flag {
            push(f.action, describe(f.action));
        }
    }
    out.push((ROTATE_ACTION, describe(ROTATE_ACTION)));
    out.push((UNMATCHED_ACTION, describe(UNMATCHED_ACTION)));
    out
}

fn describe(action: &str) -> &'static str {
    match action {
        "secrets.secret.list" => "list the secrets of a project",
        "secrets.secret.create" => "create a secret (with its first version, if given)",
        "secrets.metadata.read" => "read a secret's metadata",
        "secrets.value.read" => "reveal a secret's values",
        "secrets.secret.update" => "change a secret's description or rotation",
        "secrets.secret.delete" => "soft-delete a secret (history kept)",
        "secrets.secret.destroy" => "delete a secret and wipe every version",
        "secrets.value.write" => "write a new version of the values",
        "secrets.sync.update" => "change a secret's projection settings",
        "secrets.secret.import" => "adopt an existing Kubernetes Secret",
        "secrets.version.list" => "list the stored versions",
        "secrets.version.destroy" => "wipe one stored version",
        "secrets.consumer.list" => "list the workloads using the synced Secret",
        "secrets.secret.restore" => "restore a soft-deleted secret",
        "secrets.projection.list" => "list modelled Kubernetes Secrets (local backend)",
        "secrets.change.watch" => "open the stream of a project's changes",
        ROTATE_ACTION => "scheduled rotation wrote a new version",
        "audit.event.list" => "query audit events",
        "audit.event.export" => "export audit events as CSV",
        "audit.chain.verify" => "verify the audit hash chain",
        "audit.key.read" => "read the backend's audit signing key",
        "audit.checkpoint.list" => "list the signed checkpoints of the chain",
        "audit.checkpoint.create" => "sign a checkpoint of the chain's head",
        "audit.event.follow" => "open the live feed of audit events",
        "org-admin.elevation.create" => "open an elevation window",
        "org-admin.elevation.read" => "read one's elevation status",
        "org-admin.elevation.release" => "close an elevation window early",
        "org-admin.elevation.list" => "list the open elevation windows",
        UNMATCHED_ACTION => "a request for no known route",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_service_object_verb_and_described() {
        for (a, d) in actions() {
            assert_eq!(a.split('.').count(), 3, "{a}");
            assert!(!d.is_empty(), "{a} has no description");
        }
    }

    #[test]
    fn a_route_changes_exactly_when_its_method_is_not_get() {
        for r in Route::ALL {
            assert_eq!(r.changes(), r.endpoint().method != "GET", "{r:?}");
        }
    }

    #[test]
    fn routes_are_unique() {
        for (i, a) in Route::ALL.iter().enumerate() {
            for b in &Route::ALL[i + 1..] {
                let (a, b) = (a.endpoint(), b.endpoint());
                assert!(
                    (a.method, a.path) != (b.method, b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn paths_encode_each_value_as_one_segment() {
        let e = Route::GetSecret.endpoint();
        assert_eq!(
            e.path_for(&["acme-demo", "db"]),
            "/api/secrets/acme-demo/db"
        );
        assert_eq!(
            e.path_for(&["../x", "a b/c"]),
            "/api/secrets/..%2Fx/a%20b%2Fc"
        );
        assert_eq!(
            e.matches("GET", "/api/secrets/..%2Fx/a%20b%2Fc").unwrap(),
            ["../x", "a b/c"]
        );
        assert_eq!(
            Route::recognize("GET", "/api/secrets/shalb%2Ddemo/db"),
            Some((Route::GetSecret, vec!["shalb-demo".into(), "db".into()]))
        );
    }

    #[test]
    fn flags_read_the_decoded_query() {
        let e = Route::GetSecret.endpoint();
        for raw in [
            "includeValue=true",
            "includeValue=%74rue",
            "include%56alue=true",
        ] {
            let q = decode_query(Some(raw));
            assert_eq!(e.resolve(&q).0, "secrets.value.read", "{raw}");
        }
        assert_eq!(
            e.resolve(&decode_query(Some("includeValue=false"))).0,
            "secrets.metadata.read"
        );
        assert_eq!(e.resolve(&[]).1, Permission::Project(Op::ReadMetadata));
    }
}
