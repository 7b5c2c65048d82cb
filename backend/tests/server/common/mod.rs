//! Test harness: a real backend on 127.0.0.1 over real HTTP, a test OIDC
//! issuer, and a client that checks every response against the OpenAPI
//! document and the request-id rule.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube_dc_backend::authn::{Authenticator, OidcVerifier};
use kube_dc_backend::authz::Bindings;
use kube_dc_backend::{Backend, Config};
use kube_dc_testsupport::testing::TestIssuer;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub mod openapi;

pub const BINDINGS: &str = r#"
orgs:
  acme: { adminGroups: [acme-admins], projects: [demo, other] }
bindings:
  - { group: acme-users, namespace: acme-demo, role: user }
  - { group: acme-devs, namespace: acme-demo, role: developer }
  - { group: acme-pms, namespace: acme-demo, role: project-manager }
  - { group: acme-project-admins, namespace: acme-demo, role: admin }
  - { group: acme-project-admins, namespace: acme-other, role: admin }
  - { user: olga, namespace: acme-demo, role: developer }
"#;

/// Test users: name, groups.
pub const USER: (&str, &[&str]) = ("uma", &["acme-users"]);
pub const DEV: (&str, &[&str]) = ("dev", &["acme-devs"]);
pub const PM: (&str, &[&str]) = ("pm", &["acme-pms"]);
pub const ADMIN: (&str, &[&str]) = ("ada", &["acme-project-admins"]);
/// Org admin with no project role.
pub const ORG_ADMIN: (&str, &[&str]) = ("oscar", &["acme-admins"]);
/// Org admin who is also a developer of acme-demo.
pub const ORG_ADMIN_DEV: (&str, &[&str]) = ("olga", &["acme-admins"]);
pub const STRANGER: (&str, &[&str]) = ("eve", &[]);

pub const NS: &str = "acme-demo";

pub struct Server {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub manifests: tempfile::TempDir,
    pub backend: Arc<Backend>,
    pub issuer: TestIssuer,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: StatusCode,
    pub request_id: Option<String>,
    pub body: Value,
    pub text: String,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, &[]).await
    }

    /// `manifests`: (relative path, YAML) files to put in the manifests folder.
    pub async fn start_with(tweak: impl FnOnce(&mut Config), manifests: &[(&str, &str)]) -> Self {
        Self::start_full(tweak, manifests, BINDINGS).await
    }

    /// With a bindings file of its own.
    pub async fn start_full(
        tweak: impl FnOnce(&mut Config),
        manifests: &[(&str, &str)],
        bindings: &str,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let issuer = TestIssuer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mdir = tempfile::tempdir().unwrap();
        for (rel, text) in manifests {
            let p = mdir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut config = Config::new(dir.path().join("data"));
        config.manifests_dir = Some(mdir.path().to_path_buf());
        // The same suite on either value engine (KUBE_DC_TEST_STORE).
        config.openbao = kube_dc_testsupport::bao_dev::test_store_config();
        // And on either database (KUBE_DC_TEST_DATABASE: a PostgreSQL
        // server, a fresh database on it per test).
        config.database = kube_dc_testsupport::pg::test_database();
        if config.database.is_some() {
            config.master_key_file = Some(kube_dc_testsupport::pg::master_key_file(dir.path()));
        }
        tweak(&mut config);
        let bindings: Bindings = serde_norway::from_str(bindings).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let auth = Authenticator::Oidc(Arc::new(OidcVerifier::new(
            &issuer.url,
            "kube-dc",
            http.clone(),
        )));
        let backend = Backend::open(config, auth, bindings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = kube_dc_backend::router(backend.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            url: format!("http://{addr}"),
            dir,
            manifests: mdir,
            backend,
            issuer,
            http,
        }
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn token(&self, who: (&str, &[&str])) -> String {
        self.issuer.token(who.0, who.1, Some("acme"))
    }

    /// Sends a request as `who` (None: no Authorization header) and checks
    /// the response against the OpenAPI document.
    pub async fn call(
        &self,
        who: Option<(&str, &[&str])>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let token = who.map(|w| self.token(w));
        self.call_raw(
            token.as_deref(),
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            None,
        )
        .await
    }

    pub async fn call_raw(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        request_id: Option<&str>,
    ) -> Resp {
        let headers: Vec<(&str, &str)> = request_id
            .map(|id| ("x-request-id", id))
            .into_iter()
            .collect();
        self.call_with(token, method, path, body, &headers).await
    }

    /// [`Server::call_raw`] with any request headers.
    pub async fn call_with(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let request_id = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap();
        let body = if ctype.starts_with("application/json") {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: bad JSON {e}: {text}"))
        } else {
            Value::Null
        };
        assert!(request_id.is_some(), "{method} {path}: no X-Request-Id");
        assert!(
            status.as_u16() < 500 || status == StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: server error {status}: {text}"
        );
        if status.is_client_error() || status.is_server_error() {
            assert!(
                body["error"].is_string(),
                "{method} {path}: error body is not JSON {{error}}: {text}"
            );
            assert_eq!(
                body["requestId"].as_str(),
                request_id.as_deref(),
                "{method} {path}"
            );
        }
        openapi::check(&method, path, status.as_u16(), &ctype, &body);
        Resp {
            status,
            request_id,
            body,
            text,
        }
    }

    pub async fn get(&self, who: (&str, &[&str]), path: &str) -> Resp {
        self.call(Some(who), Method::GET, path, None).await
    }
    pub async fn post(&self, who: (&str, &[&str]), path: &str, body: Value) -> Resp {
        self.call(Some(who), Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, who: (&str, &[&str]), path: &str, body: Value) -> Resp {
        self.call(Some(who), Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, who: (&str, &[&str]), path: &str) -> Resp {
        self.call(Some(who), Method::DELETE, path, None).await
    }

    /// A write as `who` with `Idempotency-Key: key`.
    pub async fn keyed(
        &self,
        who: (&str, &[&str]),
        method: Method,
        path: &str,
        body: Value,
        key: &str,
    ) -> Resp {
        let token = self.token(who);
        let body = Some(body.to_string().into_bytes());
        self.call_with(
            Some(&token),
            method,
            path,
            body,
            &[("idempotency-key", key)],
        )
        .await
    }

    /// Creates `name` in acme-demo as the project admin, with `data`.
    pub async fn create(&self, name: &str, data: Value) -> Resp {
        let r = self
            .post(
                ADMIN,
                &format!("/api/secrets/{NS}/{name}"),
                serde_json::json!({"type": "opaque", "initialValues": data}),
            )
            .await;
        assert_eq!(r.status, 200, "create {name}: {}", r.text);
        r
    }

    /// Audit events of acme, newest first, read as the org admin.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .get(ORG_ADMIN, &format!("/api/audit/orgs/acme?{query}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["events"].as_array().unwrap().clone()
    }
}

/// Every byte of every file under `dir`, searched for `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}
