//! Test support (feature `test-support`): a minimal OIDC issuer that serves
//! discovery and a JWKS over real HTTP on 127.0.0.1, and mints tokens with
//! the repository's fixed test keys. Used by this crate's and the CLI's
//! tests; never compiled into a release binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

pub const RSA_PEM: &str = include_str!("../fixtures/rsa.pem");
pub const EC_PEM: &str = include_str!("../fixtures/ec.pem");
pub const ROGUE_RSA_PEM: &str = include_str!("../fixtures/rogue-rsa.pem");
pub const JWKS: &str = include_str!("../fixtures/jwks.json");
pub const AUDIENCE: &str = "kube-dc";

pub struct TestIssuer {
    pub url: String,
    pub addr: SocketAddr,
    /// When false, discovery answers 503 (provider outage).
    pub up: Arc<AtomicBool>,
}

impl TestIssuer {
    /// Serves `/.well-known/openid-configuration` and `/jwks` under
    /// `http://127.0.0.1:PORT/realms/test` on the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let addr = listener.local_addr().expect("issuer addr");
        let url = format!("http://{addr}/realms/test");
        let up = Arc::new(AtomicBool::new(true));
        let (u1, up1) = (url.clone(), up.clone());
        let app = Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(move || {
                    let (u, up) = (u1.clone(), up1.clone());
                    async move {
                        if !up.load(Ordering::SeqCst) {
                            return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        Ok(axum::Json(json!({
                            "issuer": u,
                            "jwks_uri": format!("{u}/jwks"),
                            "authorization_endpoint": format!("{u}/auth"),
                            "token_endpoint": format!("{u}/token"),
                        })))
                    }
                }),
            )
            .route(
                "/realms/test/jwks",
                get(|| async { ([("content-type", "application/json")], JWKS) }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, addr, up }
    }

    /// Starts the issuer on its own thread with its own runtime, for tests
    /// that are not async (e.g. ones driving the CLI binary).
    pub fn start_in_background() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let issuer = TestIssuer::start().await;
                tx.send(issuer).expect("send issuer");
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("issuer started")
    }

    pub fn claims(&self, user: &str, groups: &[&str], org: Option<&str>) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": format!("sub-{user}"),
            "preferred_username": user,
            "email": format!("{user}@example.com"),
            "groups": groups,
            "org": org,
            "iat": now,
            "nbf": now - 1,
            "exp": now + 600,
        })
    }

    /// An RS256 token for `user` with the given groups, valid for 10 minutes.
    pub fn token(&self, user: &str, groups: &[&str], org: Option<&str>) -> String {
        self.sign_rs256(&self.claims(user, groups, org))
    }

    pub fn sign_rs256(&self, claims: &Value) -> String {
        sign(claims, Algorithm::RS256, "test-rsa", RSA_PEM)
    }

    pub fn sign_es256(&self, claims: &Value) -> String {
        sign(claims, Algorithm::ES256, "test-ec", EC_PEM)
    }

    /// Signed with a key the issuer does not publish, under a known kid.
    pub fn sign_rogue(&self, claims: &Value) -> String {
        sign(claims, Algorithm::RS256, "test-rsa", ROGUE_RSA_PEM)
    }
}

/// The first line a child writes to its piped stdout (taken from it).
pub fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("a piped stdout")),
        &mut line,
    )
    .expect("read the child's first line");
    line
}

/// The `url` of `kube-dc-backend serve`'s ready line.
pub fn ready_url(child: &mut std::process::Child) -> String {
    let line = first_line(child);
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    assert_eq!(ready["ready"], true, "{line}");
    ready["url"]
        .as_str()
        .expect("url in the ready line")
        .to_string()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn sign(claims: &Value, alg: Algorithm, kid: &str, pem: &str) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("test key");
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    encode(&header, claims, &key).expect("sign test token")
}

/// A token with `alg: none` and no signature.
pub fn unsigned_token(claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let h = B64.encode(br#"{"alg":"none","typ":"JWT","kid":"test-rsa"}"#);
    let c = B64.encode(serde_json::to_vec(claims).expect("claims"));
    format!("{h}.{c}.")
}
