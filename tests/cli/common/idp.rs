//! The test OIDC provider: oidc-provider (OpenID Certified), run by Node
//! from tests/oidc, serving Keycloak's paths; and a browser-free way to get a
//! user's real access token from it (authorization code + PKCE, with its
//! login form filled in).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// The Node provider, with its token events collected from stderr.
pub struct Idp {
    child: Child,
    pub issuer: String,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    pub fn start(access_ttl: u32, refresh_ttl: u32) -> Self {
        Self::start_env(&[
            ("ACCESS_TTL", access_ttl.to_string()),
            ("REFRESH_TTL", refresh_ttl.to_string()),
        ])
    }

    /// The provider with extra environment (USERS_FILE, ACCESS_TTL, …).
    pub fn start_env(env: &[(&str, String)]) -> Self {
        let dir = oidc_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "tests/oidc/node_modules is missing: run `npm ci` in tests/oidc (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .env("PORT", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node must be installed to run the OIDC provider");
        // Read the ready line on a thread of its own, and keep draining stdout
        // there afterwards (the provider prints notices, and a closed pipe
        // would kill it). A provider that never gets ready fails the test
        // within a minute instead of hanging the suite.
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            for line in lines.by_ref() {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["ready"] == true
                {
                    let _ = ready_tx.send(v["issuer"].as_str().map(String::from));
                    break;
                }
            }
            lines.for_each(drop);
        });
        let issuer = match ready_rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(issuer) => issuer,
            Err(e) => {
                let _ = child.kill();
                panic!("the OIDC provider did not print its ready line ({e})");
            }
        };
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let ev = events.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        Idp {
            child,
            issuer: issuer.expect("provider ready line"),
            events,
        }
    }

    pub fn count(&self, event: &str, grant_type: Option<&str>) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event && grant_type.is_none_or(|g| e["grant_type"] == g))
            .count()
    }
}

impl Idp {
    /// Stops the provider (its address becomes free).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A fresh access token for `user` (password `<user>-pw`), by the
    /// authorization-code flow with PKCE, as a browser login would get it.
    pub async fn access_token(&self, user: &str) -> String {
        code_flow(&self.issuer, user).await
    }
}

const REDIRECT: &str = "http://127.0.0.1/callback";

async fn code_flow(issuer: &str, user: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = b64.encode(rand_bytes());
    let challenge = b64.encode(Sha256::digest(verifier.as_bytes()));
    let http = reqwest::Client::builder()
        .cookie_store(true)
        // Follow the provider's own redirects, stop at ours.
        .redirect(reqwest::redirect::Policy::custom(|a| {
            if a.url().as_str().starts_with(REDIRECT) {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap();
    let kc = format!("{issuer}/protocol/openid-connect");
    let url = reqwest::Url::parse_with_params(
        &format!("{kc}/auth"),
        &[
            ("client_id", "kube-dc"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st"),
            ("nonce", "nn"),
        ],
    )
    .unwrap();
    let auth = http.get(url).send().await.unwrap();
    let at = auth.url().clone();
    let page = auth.text().await.unwrap();
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no login form at {at}: {page}"));
    let done = http
        .post(at.join(action).unwrap())
        .form(&[("username", user), ("password", &format!("{user}-pw"))])
        .send()
        .await
        .unwrap();
    let location = done
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("sign-in of {user} did not redirect back: {}", done.status()))
        .to_string();
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let tokens: Value = http
        .post(format!("{kc}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "kube-dc"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token for {user}: {tokens}"))
        .to_string()
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let u = uuid::Uuid::new_v4();
    let v = uuid::Uuid::new_v4();
    b[..16].copy_from_slice(u.as_bytes());
    b[16..].copy_from_slice(v.as_bytes());
    b
}
