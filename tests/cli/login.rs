//! Login against a real, OpenID Certified provider (oidc-provider, run by
//! Node from tests/oidc), tokens in the real Secret Service, and
//! `kube-dc-backend serve` trusting that provider.
//!
//! Needs: `npm ci` in tests/oidc, a Secret Service on the session bus, and
//! for one test Chromium. `scripts/test.sh` provides all three.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::idp::{Idp, oidc_dir};
use crate::common::*;
use serde_json::Value;

const BINDINGS: &str = "orgs:\n  acme: { projects: [demo, staging] }\nbindings:\n  - { group: acme-devs, namespace: acme-demo, role: developer }\n";

/// A CLI process whose stderr we read while it runs.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    done: bool,
}

impl Drop for Running {
    /// A test that fails half-way must not leave a login waiting for minutes.
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn spawn(h: &Home, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut c = h.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let buf = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        Running {
            child,
            stderr,
            done: false,
        }
    }

    /// Waits for a stderr line containing `needle` and returns the first
    /// URL on it.
    fn url_after(&self, needle: &str) -> String {
        let line = until(20, &format!("{needle:?} in stderr"), || {
            let text = self.stderr.lock().unwrap().clone();
            text.lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        });
        let at = line
            .find("http")
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        line[at..].split_whitespace().next().unwrap().to_string()
    }

    fn finish(mut self) -> Run {
        let status = self.child.wait().unwrap();
        self.done = true;
        self.done = true;
        std::thread::sleep(Duration::from_millis(50));
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut stdout).unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

/// Form fields (name → value) of the inputs in an HTML page.
fn inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(tag[at..].split('"').next()?.to_string())
    };
    html.split("<input")
        .skip(1)
        .filter_map(|t| {
            let tag = t.split('>').next()?;
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect()
}

fn login_action(html: &str) -> String {
    let at = html.find("id=\"login\"").expect("login form");
    let rest = &html[at..];
    let a = rest.find("action=\"").unwrap() + 8;
    rest[a..].split('"').next().unwrap().to_string()
}

fn rt() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Fills in the provider's login form on the page `resp` landed on and
/// submits it, following the redirects that come back.
async fn sign_in(
    http: &reqwest::Client,
    resp: reqwest::Response,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let at = resp.url().clone();
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("id=\"login\""),
        "no login form at {at}: {page}"
    );
    let action = at.join(&login_action(&page)).unwrap();
    http.post(action)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// The human step of the device flow, by posting the provider's forms with
/// a cookie-keeping client.
fn approve_device(complete_uri: &str, user: &str, password: &str) {
    rt().block_on(async {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let base = complete_uri.split('?').next().unwrap().to_string();
        let page = http
            .get(complete_uri)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let page = http
            .post(&base)
            .form(&inputs(&page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = http.post(&base).form(&inputs(&page)).send().await.unwrap();
        let done = sign_in(&http, resp, user, password).await;
        let text = done.text().await.unwrap();
        assert!(
            text.contains("Sign-in Success"),
            "device approval did not finish: {text}"
        );
    });
}

/// The human step of the browser flow: open the URL kube-dc printed, sign
/// in, and follow the redirect to kube-dc's loopback listener.
fn browse_and_sign_in(url: &str, user: &str, password: &str) -> (u16, String) {
    rt().block_on(async {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let resp = http.get(url).send().await.unwrap();
        let done = sign_in(&http, resp, user, password).await;
        (done.status().as_u16(), done.text().await.unwrap())
    })
}

fn login_args<'a>(idp: &'a Idp, be: &'a Remote, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "login",
        "--issuer",
        &idp.issuer,
        "--server",
        &be.url,
        "--org",
        "acme",
    ];
    v.extend_from_slice(extra);
    v
}

fn device_login(h: &Home, idp: &Idp, be: &Remote, user: &str, password: &str) -> Run {
    let r = Running::spawn(h, &login_args(idp, be, &["--device-code"]), &[]);
    let complete = r.url_after("user_code=");
    approve_device(&complete, user, password);
    r.finish()
}

#[test]
fn device_login_refresh_concurrency_and_logout() {
    // Tokens live 33 s; kube-dc refreshes within 30 s of expiry.
    let idp = Idp::start(33, 3600);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    let r = device_login(&h, &idp, &be, "alice", "alice-pw").ok();
    assert!(r.stderr.contains("and enter the code:"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Logged in as alice (alice@example.com) to organization acme"),
        "{}",
        r.stderr
    );
    let label = be.url.trim_start_matches("http://");
    assert!(
        r.stderr
            .contains(&format!("context {label}/acme/demo  (current)")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("context {label}/acme/staging")),
        "{}",
        r.stderr
    );
    // No token in the config file.
    let config = std::fs::read_to_string(h.path().join("config/kube-dc/config.yaml")).unwrap();
    assert!(!config.contains("eyJ"), "{config}");

    // The token from the keyring works against the backend.
    h.run(&["secrets", "create", "from-login", "--from-literal=K=v"])
        .ok();
    let w = h.run(&["whoami", "-o", "json"]).ok().json();
    assert_eq!(w["user"], "alice");
    assert_eq!(w["projects"], serde_json::json!(["demo", "staging"]));
    assert!(
        !h.run(&["whoami"]).ok().stdout.contains("eyJ"),
        "whoami never prints the token"
    );
    let before = idp.count("grant.success", Some("refresh_token"));

    // Near expiry (kube-dc's clock moved 4 s on, into the refresh
    // margin): two processes at once; one refreshes, both succeed, and the
    // rotated refresh token is never replayed.
    let clock = TestClock::new();
    clock.advance(4.0);
    let a = Running::spawn(&h, &["secrets", "list"], &[clock.env()]);
    let b = Running::spawn(&h, &["secrets", "list"], &[clock.env()]);
    let (ra, rb) = (a.finish(), b.finish());
    assert_eq!((ra.code, rb.code), (0, 0), "{}\n{}", ra.stderr, rb.stderr);
    let refreshes = idp.count("grant.success", Some("refresh_token"));
    assert!(refreshes > before, "a refresh happened");
    assert_eq!(
        idp.count("grant.error", Some("refresh_token")),
        0,
        "no refresh token was replayed"
    );
    h.run(&["secrets", "get", "from-login", "--key", "K"]).ok();

    // Logout revokes at the provider; the next command asks for login.
    let r = h.run(&["logout"]).ok();
    assert!(r.stderr.contains("refresh token revoked"), "{}", r.stderr);
    assert_eq!(
        idp.count("grant.revoked", None),
        1,
        "the provider revoked the grant"
    );
    let r = h.run(&["secrets", "list"]).code(5);
    assert!(
        r.stderr
            .contains(&format!("kube-dc login --issuer {}", idp.issuer)),
        "{}",
        r.stderr
    );
    // --all also removes the contexts.
    h.run(&["logout", "--all"]).ok();
    let u = h.run(&["use", "-o", "json"]).ok().json();
    assert_eq!(
        u["items"].as_array().unwrap().len(),
        1,
        "only local is left: {u}"
    );
}

#[test]
fn browser_flow_with_printed_url_and_its_failures() {
    let idp = Idp::start(300, 3600);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    let r = Running::spawn(&h, &login_args(&idp, &be, &["--no-browser"]), &[]);
    let url = r.url_after("/protocol/openid-connect/auth?");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "redirect_uri=http%3A%2F%2Flocalhost%3A",
        "scope=openid+offline_access",
    ] {
        assert!(url.contains(part), "{part} missing from {url}");
    }
    let (status, page) = browse_and_sign_in(&url, "alice", "alice-pw");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are signed in"), "{page}");
    r.finish().ok();
    h.run(&["secrets", "list"]).ok();

    // A callback that does not carry this sign-in's state is refused.
    let r = Running::spawn(&h, &login_args(&idp, &be, &["--no-browser"]), &[]);
    let url = r.url_after("/protocol/openid-connect/auth?");
    let redirect = url
        .split("redirect_uri=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .replace("%3A", ":")
        .replace("%2F", "/");
    let (status, page) = rt().block_on(async {
        let resp = reqwest::get(format!("{redirect}?code=stolen&state=forged"))
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(status, 400);
    assert!(
        page.contains("Sign-in failed") && page.contains("state mismatch"),
        "{page}"
    );
    let out = r.finish().code(5);
    assert!(out.stderr.contains("state mismatch"), "{}", out.stderr);

    // Nobody signs in: a clear timeout.
    let out = h
        .run(&login_args(
            &idp,
            &be,
            &["--no-browser", "--login-timeout", "1s"],
        ))
        .code(5);
    assert!(
        out.stderr.contains("no sign-in arrived within 1s") && out.stderr.contains("--device-code"),
        "{}",
        out.stderr
    );
}

#[test]
fn browser_flow_in_headless_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is needed: apt-get install chromium (scripts/test.sh's CI does)"
    );
    let idp = Idp::start(300, 3600);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    let browser = oidc_dir().join("browser.sh");
    let log = h.path().join("browser.log");
    let r = h.run_env(
        &login_args(&idp, &be, &["--login-timeout", "60s"]),
        &[
            ("BROWSER", browser.to_str().unwrap()),
            ("BROWSER_LOG", log.to_str().unwrap()),
            ("LOGIN_USER", "alice"),
            ("LOGIN_PASSWORD", "alice-pw"),
        ],
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(r.code, 0, "{}\nbrowser: {}", r.stderr, read_log());
    // The browser runs in the background, as a desktop one would: its
    // report of the success page may land just after kube-dc exits.
    until(20, "the browser's report of the success page", || {
        read_log().contains("You are signed in").then_some(())
    });
    h.run(&["secrets", "list"]).ok();
}

#[test]
fn no_keyring_is_an_error_with_ways_out_never_a_silent_file() {
    let idp = Idp::start(300, 3600);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    let no_bus = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    let r = h
        .run_env(&login_args(&idp, &be, &["--device-code"]), &no_bus)
        .code(5);
    assert!(r.stderr.contains("no usable OS keyring"), "{}", r.stderr);
    assert!(
        r.stderr.contains("KUBE_DC_TOKEN") && r.stderr.contains("--token-store file"),
        "{}",
        r.stderr
    );
    assert!(!h.path().join("config/kube-dc/tokens.json").exists());

    // The explicit opt-in: a 0600 file, with a warning.
    let run = Running::spawn(
        &h,
        &login_args(&idp, &be, &["--device-code", "--token-store", "file"]),
        &no_bus,
    );
    let complete = run.url_after("user_code=");
    approve_device(&complete, "alice", "alice-pw");
    let r = run.finish().ok();
    assert!(r.stderr.contains("stored unencrypted"), "{}", r.stderr);
    let file = h.path().join("config/kube-dc/tokens.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    h.run_env(&["secrets", "list"], &no_bus).ok();
    // KUBE_DC_TOKEN needs no store at all.
    let fresh = Home::new();
    let tok = std::fs::read_to_string(&file).unwrap();
    let v: Value = serde_json::from_str(&tok).unwrap();
    let access = v.as_object().unwrap().values().next().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    fresh
        .run_env(
            &["--server", &be.url, "-n", "acme-demo", "secrets", "list"],
            &[("KUBE_DC_TOKEN", &access), no_bus[0]],
        )
        .ok();
}

#[test]
fn a_dead_refresh_token_asks_for_login_with_the_exact_command() {
    // Access tokens live 31 s (refresh due at once), refresh tokens 2 s.
    let idp = Idp::start(31, 2);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    device_login(&h, &idp, &be, "alice", "alice-pw").ok();
    std::thread::sleep(Duration::from_millis(2500));
    let r = h.run(&["secrets", "list"]).code(5);
    assert!(r.stderr.contains("your session has ended"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("run `kube-dc login --issuer {}`", idp.issuer)),
        "{}",
        r.stderr
    );
}

#[test]
fn a_user_without_projects_is_told_plainly() {
    let idp = Idp::start(300, 3600);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    let h = Home::new();
    let r = device_login(&h, &idp, &be, "nina", "nina-pw").ok();
    assert!(
        r.stderr.contains("no projects") && r.stderr.contains("no context was created"),
        "{}",
        r.stderr
    );
    assert_eq!(
        h.run(&["use", "-o", "json"]).ok().json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
