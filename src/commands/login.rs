//! `kube-dc login` and `kube-dc logout`.

use std::time::Duration;

use clap::Args;
use oauth2::TokenResponse;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::auth::oidc::{self, Provider, TokenResp};
use crate::auth::store::{StoreKind, TokenSet};
use crate::auth::{session_key, with_store};
use crate::commands::Ctx;
use crate::config::{ConfigFile, Context, normalize_domain};
use crate::error::{CliError, ErrorKind, Result};
use crate::output::{note, sanitize, warn};
use crate::redact::Sensitive;

/// Log in to a Kube-DC installation and create a context per project.
///
/// Opens your browser for the organization's sign-in page (Authorization
/// Code + PKCE; the answer comes back to a listener on localhost). Over SSH
/// or on a headless machine use --device-code: you get a code to enter on
/// any device. Tokens are kept in the OS keyring, never in the config file.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc login --domain example.com --org acme               # browser
  kube-dc login --domain example.com --org acme --no-browser  # print the URL only
  kube-dc login --domain example.com --org acme --device-code # SSH / headless
  kube-dc login --issuer https://sso.example.com/realms/acme --server https://backend.example.com --org acme

The identity provider is https://login.DOMAIN/realms/ORG and the backend
https://backend.DOMAIN; --issuer and --server override them. One context is
created per project you can access, named DOMAIN/ORG/PROJECT.
Without a keyring (headless Linux without a Secret Service) login fails
rather than writing tokens to disk; --token-store file opts in to a 0600 file.")]
pub struct LoginArgs {
    /// Organization (the Keycloak realm).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// OIDC issuer URL, instead of https://login.DOMAIN/realms/ORG.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// OIDC client id.
    #[arg(long, default_value = "kube-dc", value_name = "ID")]
    pub client_id: String,
    /// Use the device flow: enter a code on another device (SSH, headless).
    #[arg(long, conflicts_with = "no_browser")]
    pub device_code: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Where to keep tokens: keyring (default) or a 0600 file (explicit opt-in).
    #[arg(long, value_enum, value_name = "STORE")]
    pub token_store: Option<StoreKind>,
    /// How long to wait for the sign-in to finish.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub login_timeout: String,
}

const PAGE_OK: &str = "<!doctype html><meta charset=utf-8><title>kube-dc: signed in</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>You are signed in.</h1>\
<p>You can close this tab and return to your terminal.</p></body>";

fn page_failed(why: &str) -> String {
    let why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!doctype html><meta charset=utf-8><title>kube-dc: sign-in failed</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Sign-in failed.</h1><p>{why}</p>\
<p>Return to your terminal and run kube-dc login again.</p></body>"
    )
}

pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "login")?;
    let g = &ctx.global;
    let domain = g.domain.as_deref().map(normalize_domain).transpose()?;
    let issuer = match (&a.issuer, &domain, &a.org) {
        (Some(i), _, _) => i.trim_end_matches('/').to_string(),
        (None, Some(d), Some(o)) => format!("https://login.{d}/realms/{o}"),
        _ => {
            return Err(CliError::usage(
                "say where to log in: --domain DOMAIN --org ORG (or --issuer URL)",
            ));
        }
    };
    let server = match (&g.server, &domain) {
        (Some(s), _) => s.trim_end_matches('/').to_string(),
        (None, Some(d)) => format!("https://backend.{d}"),
        (None, None) => {
            return Err(CliError::usage(
                "with --issuer, also give --server URL (or --domain)",
            ));
        }
    };
    // Both will see credentials: check them before anything else.
    crate::net::check_credential_url("--issuer", &issuer)?;
    crate::net::check_credential_url("--server", &server)?;
    let timeout = kube_dc_api::validate::parse_interval(&a.login_timeout)
        .map_err(|e| CliError::usage(format!("--login-timeout: {e}")))?;
    let mut file = ConfigFile::load()?;
    let store_kind = a.token_store.unwrap_or_else(|| file.store_kind());
    // Fail before the browser opens if tokens could not be kept.
    with_store(store_kind, |_| Ok(())).await?;
    if store_kind == StoreKind::File {
        warn(&format!(
            "tokens will be stored unencrypted in {} (mode 0600), as you asked with --token-store file",
            crate::config::config_dir().join("tokens.json").display()
        ));
    }

    let http = oidc::http_client(g.ca_cert.as_deref(), g.insecure, ctx.timeout()?)?;
    let provider = Provider::discover(&issuer, &a.client_id, http).await?;
    let (resp, nonce) = if a.device_code {
        (device_flow(&provider).await?, None)
    } else {
        let (r, n) = browser_flow(&provider, a.no_browser, timeout).await?;
        (r, Some(n))
    };

    let access = resp.access_token().secret().clone();
    let access_claims = oidc::peek_claims(&access).unwrap_or(Value::Null);
    let id_claims = match &resp.extra_fields().id_token {
        Some(t) => provider.verify_id_token(t, nonce.as_deref()).await?,
        None => Value::Null,
    };
    let claim = |k: &str| {
        id_claims
            .get(k)
            .or_else(|| access_claims.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let user = claim("preferred_username")
        .as_str()
        .or(claim("sub").as_str())
        .unwrap_or("?")
        .to_string();
    let org = a
        .org
        .clone()
        .or_else(|| claim("org").as_str().map(String::from))
        .ok_or_else(|| {
            CliError::usage("the token names no organization (no `org` claim)")
                .hint("pass --org ORG")
        })?;
    let namespaces: Vec<String> = claim("namespaces")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();

    let tokens = TokenSet {
        expires_at: oidc::expires_at(&resp, Some(&access_claims)),
        access_token: Sensitive::new(access),
        refresh_token: resp
            .refresh_token()
            .map(|r| Sensitive::new(r.secret().clone())),
        issuer: provider.discovery.issuer.trim_end_matches('/').to_string(),
        client_id: a.client_id.clone(),
    };
    if tokens.refresh_token.is_none() {
        warn(
            "the provider issued no refresh token: you will need to log in again when the access token expires",
        );
    }
    let key = session_key(&tokens.issuer, &tokens.client_id);
    let t = tokens.clone();
    with_store(store_kind, move |s| s.save(&key, &t)).await?;

    let label = domain.clone().unwrap_or_else(|| {
        server
            .split("://")
            .nth(1)
            .unwrap_or(&server)
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    });
    let mut created = Vec::new();
    for ns in &namespaces {
        let project = ns
            .strip_prefix(&format!("{org}-"))
            .unwrap_or(ns)
            .to_string();
        let c = Context {
            name: format!("{label}/{org}/{project}"),
            server: server.clone(),
            org: org.clone(),
            project: Some(project),
            domain: domain.clone(),
            issuer: Some(tokens.issuer.clone()),
            client_id: Some(a.client_id.clone()),
            ca_cert: g.ca_cert.clone(),
            insecure: g.insecure,
        };
        file.contexts.retain(|x| x.name != c.name);
        created.push(c.name.clone());
        file.contexts.push(c);
    }
    if a.token_store.is_some() {
        file.token_store = a.token_store;
    }
    if let Some(first) = created.first() {
        file.current_context = Some(first.clone());
    }
    file.save()?;

    let email = claim("email")
        .as_str()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    note(&format!(
        "Logged in as {}{} to organization {}.",
        sanitize(&user),
        sanitize(&email),
        sanitize(&org)
    ));
    if created.is_empty() {
        note(&format!(
            "Your token lists no projects (its `namespaces` claim is empty), so no context was created. \
             Ask an admin of {org} for access to a project, then run kube-dc login again."
        ));
    } else {
        for (i, c) in created.iter().enumerate() {
            note(&format!(
                "  context {}{}",
                sanitize(c),
                if i == 0 { "  (current)" } else { "" }
            ));
        }
        note("Switch with `kube-dc use CONTEXT`.");
    }
    Ok(())
}

/// Reads one HTTP request head from a loopback connection.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
            break;
        }
    }
    String::from_utf8(buf).ok()
}

async fn respond(sock: &mut tokio::net::TcpStream, status: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

enum Callback {
    Code(String),
    Failed(String),
}

async fn browser_flow(
    provider: &Provider,
    no_browser: bool,
    timeout: Duration,
) -> Result<(TokenResp, String)> {
    // Listen on both loopback addresses: "localhost" may resolve to either.
    let v4 = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        CliError::other(format!(
            "cannot listen on 127.0.0.1 for the sign-in callback: {e}"
        ))
    })?;
    let port = v4
        .local_addr()
        .map_err(|e| CliError::other(e.to_string()))?
        .port();
    let v6 = TcpListener::bind(("::1", port)).await.ok();
    let redirect = format!("http://localhost:{port}/callback");
    let (url, state, nonce, verifier) = provider.authorize_url(&redirect)?;

    note("To sign in, open this URL in a browser:");
    note(&format!("\n  {url}\n"));
    if !no_browser && let Err(e) = webbrowser::open(&url) {
        note(&format!(
            "(could not open a browser: {e}; open the URL yourself)"
        ));
    }
    note(&format!(
        "Waiting for the sign-in (up to {}s)…",
        timeout.as_secs()
    ));

    let wait = async {
        loop {
            let accepted = match &v6 {
                Some(v6) => tokio::select! { r = v4.accept() => r, r = v6.accept() => r },
                None => v4.accept().await,
            };
            let Ok((mut sock, _)) = accepted else {
                continue;
            };
            let Some(head) = read_head(&mut sock).await else {
                continue;
            };
            let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if path != "/callback" {
                respond(&mut sock, "404 Not Found", "not found").await;
                continue;
            }
            let params: std::collections::HashMap<String, String> =
                serde_urlencoded::from_str(query).unwrap_or_default();
            let outcome = if params.get("state") != Some(&state) {
                Callback::Failed(
                    "the answer does not belong to this sign-in (state mismatch)".into(),
                )
            } else if let Some(err) = params.get("error") {
                Callback::Failed(match params.get("error_description") {
                    Some(d) => format!("{err}: {d}"),
                    None => err.clone(),
                })
            } else if let Some(code) = params.get("code") {
                Callback::Code(code.clone())
            } else {
                Callback::Failed("the answer carries no authorization code".into())
            };
            match &outcome {
                Callback::Code(_) => respond(&mut sock, "200 OK", PAGE_OK).await,
                Callback::Failed(why) => {
                    respond(&mut sock, "400 Bad Request", &page_failed(why)).await
                }
            }
            return outcome;
        }
    };
    let code = match tokio::time::timeout(timeout, wait).await {
        Err(_) => {
            return Err(CliError::new(
                ErrorKind::AuthRequired,
                format!("no sign-in arrived within {}s", timeout.as_secs()),
            )
            .hint("run kube-dc login again; over SSH or without a browser, add --device-code"));
        }
        Ok(Callback::Failed(why)) => {
            return Err(CliError::new(
                ErrorKind::AuthRequired,
                format!("sign-in failed: {}", sanitize(&why)),
            ));
        }
        Ok(Callback::Code(c)) => c,
    };
    let resp = provider.exchange_code(&code, &redirect, verifier).await?;
    Ok((resp, nonce))
}

async fn device_flow(provider: &Provider) -> Result<TokenResp> {
    let details = provider.device_authorization().await?;
    note("To sign in, open this page on any device:");
    note(&format!("\n  {}\n", details.verification_uri().as_str()));
    note(&format!(
        "and enter the code:  {}\n",
        details.user_code().secret()
    ));
    if let Some(c) = details.verification_uri_complete() {
        note(&format!("(or open {} directly)", c.secret()));
    }
    note(&format!(
        "Waiting for the sign-in (the code expires in {}s)…",
        details.expires_in().as_secs()
    ));
    provider.poll_device(&details).await
}
