//! `kube-dc login`: where to sign in, the sign-in (`flows`, with the
//! loopback redirect in `redirect`), and the contexts it leaves.

mod flows;
mod redirect;

use clap::Args;
use oauth2::TokenResponse;
use serde_json::Value;

use crate::auth::oidc::{self, Provider, TokenResp};
use crate::auth::store::{StoreKind, TokenSet};
use crate::auth::{session_key, with_store};
use crate::commands::Session;
use crate::config::{ConfigFile, Context, normalize_domain};
use crate::error::{CliError, Result};
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

pub async fn login(ctx: &Session, a: LoginArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "login")?;
    let g = &ctx.global;
    let at = Where::of(g, &a)?;
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
    let provider = Provider::discover(&at.issuer, &a.client_id, http).await?;
    let (resp, nonce) = if a.device_code {
        (flows::device(&provider).await?, None)
    } else {
        let (r, n) = flows::browser(&provider, a.no_browser, timeout).await?;
        (r, Some(n))
    };
    let who = Who::of(&provider, &resp, nonce.as_deref(), a.org.as_deref()).await?;

    let tokens = TokenSet {
        expires_at: oidc::expires_at(&resp, Some(&who.access_claims)),
        access_token: Sensitive::new(resp.access_token().secret().clone()),
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

    let created = add_contexts(&mut file, &at, &who, &tokens, ctx);
    if a.token_store.is_some() {
        file.token_store = a.token_store;
    }
    if let Some(first) = created.first() {
        file.current_context = Some(first.clone());
    }
    file.save()?;
    report(&who, &created);
    Ok(())
}

/// Where to sign in and where the backend is.
struct Where {
    domain: Option<String>,
    issuer: String,
    server: String,
}

impl Where {
    /// From `--domain` and `--org`, or `--issuer` and `--server`; both URLs
    /// will see credentials, so they are checked before anything else.
    fn of(g: &crate::config::GlobalArgs, a: &LoginArgs) -> Result<Self> {
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
        crate::net::check_credential_url("--issuer", &issuer)?;
        crate::net::check_credential_url("--server", &server)?;
        Ok(Self {
            domain,
            issuer,
            server,
        })
    }

    /// What contexts are named after: the domain, or the server's host.
    fn label(&self) -> String {
        self.domain.clone().unwrap_or_else(|| {
            let s = &self.server;
            let host = s.split("://").nth(1).unwrap_or(s);
            host.split('/').next().unwrap_or("").to_string()
        })
    }
}

/// Who signed in, from the ID token (verified) or else the access token.
struct Who {
    user: String,
    email: Option<String>,
    org: String,
    namespaces: Vec<String>,
    access_claims: Value,
}

impl Who {
    async fn of(
        provider: &Provider,
        resp: &TokenResp,
        nonce: Option<&str>,
        org_flag: Option<&str>,
    ) -> Result<Self> {
        let access_claims = oidc::peek_claims(resp.access_token().secret()).unwrap_or(Value::Null);
        let id_claims = match &resp.extra_fields().id_token {
            Some(t) => provider.verify_id_token(t, nonce).await?,
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
        let org = org_flag
            .map(String::from)
            .or_else(|| claim("org").as_str().map(String::from))
            .ok_or_else(|| {
                CliError::usage("the token names no organization (no `org` claim)")
                    .hint("pass --org ORG")
            })?;
        let namespaces = claim("namespaces")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let email = claim("email").as_str().map(String::from);
        Ok(Self {
            user,
            email,
            org,
            namespaces,
            access_claims,
        })
    }
}

/// One context per project the token lists (`DOMAIN/ORG/PROJECT`), each
/// replacing one of the same name; their names, in order.
fn add_contexts(
    file: &mut ConfigFile,
    at: &Where,
    who: &Who,
    tokens: &TokenSet,
    ctx: &Session,
) -> Vec<String> {
    let label = at.label();
    let org = &who.org;
    let mut created = Vec::new();
    for ns in &who.namespaces {
        let project = ns.strip_prefix(&format!("{org}-")).unwrap_or(ns);
        let c = Context {
            name: format!("{label}/{org}/{project}"),
            server: at.server.clone(),
            org: org.clone(),
            project: Some(project.to_string()),
            domain: at.domain.clone(),
            issuer: Some(tokens.issuer.clone()),
            client_id: Some(tokens.client_id.clone()),
            ca_cert: ctx.global.ca_cert.clone(),
            insecure: ctx.global.insecure,
        };
        file.contexts.retain(|x| x.name != c.name);
        created.push(c.name.clone());
        file.contexts.push(c);
    }
    created
}

/// Who is signed in, and the contexts made (the first is current).
fn report(who: &Who, created: &[String]) {
    let email = who
        .email
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    note(&format!(
        "Logged in as {}{} to organization {}.",
        sanitize(&who.user),
        sanitize(&email),
        sanitize(&who.org)
    ));
    if created.is_empty() {
        note(&format!(
            "Your token lists no projects (its `namespaces` claim is empty), so no context was created. \
             Ask an admin of {} for access to a project, then run kube-dc login again.",
            who.org
        ));
        return;
    }
    for (i, c) in created.iter().enumerate() {
        note(&format!(
            "  context {}{}",
            sanitize(c),
            if i == 0 { "  (current)" } else { "" }
        ));
    }
    note("Switch with `kube-dc use CONTEXT`.");
}
