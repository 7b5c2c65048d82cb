//! Credentials for remote contexts: `KUBE_DC_TOKEN`; a service account
//! that signs itself in (`KUBE_DC_CLIENT_ID` and `KUBE_DC_CLIENT_SECRET`,
//! see `service`); or the tokens a `kube-dc login` left in the token store,
//! refreshed when they are about to expire.

mod credential;
pub mod oidc;
pub mod service;
pub mod store;

pub use credential::Credential;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::config::{self, Target};
use crate::error::{CliError, ErrorKind, Result};
use crate::redact::Sensitive;
use store::{StoreKind, TokenSet, TokenStore};

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN: i64 = 30;

/// Now, in epoch seconds (the CLI's clock: tests move it).
pub fn now() -> i64 {
    crate::clock::unix()
}

/// One login session: tokens are shared by every context it created.
pub fn session_key(issuer: &str, client_id: &str) -> String {
    format!("{}|{client_id}", issuer.trim_end_matches('/'))
}

/// The exact command that logs in to this target again.
pub fn login_command(t: &Target) -> String {
    match (&t.domain, &t.org) {
        (Some(d), Some(o)) => format!("kube-dc login --domain {d} --org {o}"),
        _ => match (&t.issuer, &t.org) {
            (Some(i), _) => format!("kube-dc login --issuer {i}"),
            _ => "kube-dc login --domain DOMAIN --org ORG".into(),
        },
    }
}

/// Runs token-store work off the async executor: the Secret Service client
/// blocks on D-Bus.
pub async fn with_store<T: Send + 'static>(
    kind: StoreKind,
    f: impl FnOnce(&TokenStore) -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        let store = TokenStore::open(kind)?;
        f(&store)
    })
    .await
    .map_err(|e| CliError::other(format!("token store: {e}")))?
}

fn lock_path(session: &str) -> std::path::PathBuf {
    let name: String = session
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    config::config_dir()
        .join("locks")
        .join(format!("{name}.lock"))
}

/// What a remote target's requests authenticate with, in this order:
/// `KUBE_DC_TOKEN`, a service account from the environment, the login's
/// tokens. None when there is none of them.
pub async fn credential(target: &Target, timeout: Duration) -> Result<Option<Credential>> {
    if let Some(t) = crate::config::token_from_env() {
        return Ok(Some(Credential::Token(t)));
    }
    if let Some(sa) = service::ServiceAccount::from_env(target, timeout)? {
        let sa = std::sync::Arc::new(sa);
        // Signed in once up front: a wrong secret stops the command before
        // it sends anything.
        sa.token().await?;
        return Ok(Some(Credential::Service(sa)));
    }
    Ok(bearer(target, timeout).await?.map(Credential::Token))
}

/// The bearer token for a remote target, or None when it has no login.
pub async fn bearer(target: &Target, timeout: Duration) -> Result<Option<Sensitive>> {
    if let Some(t) = crate::config::token_from_env() {
        return Ok(Some(t));
    }
    let (Some(issuer), Some(client_id)) = (target.issuer.clone(), target.client_id.clone()) else {
        return Ok(None);
    };
    let key = session_key(&issuer, &client_id);
    let kind = target.token_store;
    let k = key.clone();
    let tokens = with_store(kind, move |s| s.load(&k)).await?;
    let Some(tokens) = tokens else {
        return Err(CliError::new(
            ErrorKind::AuthRequired,
            format!("not logged in to {issuer}"),
        )
        .hint(format!("run `{}`", login_command(target))));
    };
    if tokens.expires_at - now() > REFRESH_MARGIN {
        return Ok(Some(tokens.access_token));
    }
    refresh(target, &key, timeout).await.map(Some)
}

/// Refreshes under a file lock, so concurrent kube-dc processes do not
/// replay one rotated refresh token (which makes the provider revoke the
/// whole grant): the first refreshes, the others find fresh tokens.
async fn refresh(target: &Target, key: &str, timeout: Duration) -> Result<Sensitive> {
    let path = lock_path(key);
    let lock = tokio::task::spawn_blocking(move || -> Result<File> {
        if let Some(dir) = path.parent() {
            crate::atomic::private_dir(dir)?;
        }
        let f = File::options()
            .mode(0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::other(format!("cannot open {}: {e}", path.display())))?;
        f.lock()
            .map_err(|e| CliError::other(format!("cannot lock {}: {e}", path.display())))?;
        Ok(f)
    })
    .await
    .map_err(|e| CliError::other(e.to_string()))??;
    let kind = target.token_store;
    let k = key.to_string();
    let current = with_store(kind, move |s| s.load(&k)).await?;
    let result = match current {
        None => Err(
            CliError::new(ErrorKind::AuthRequired, "you were logged out")
                .hint(format!("run `{}`", login_command(target))),
        ),
        Some(t) if t.expires_at - now() > REFRESH_MARGIN => Ok(t.access_token),
        Some(t) => do_refresh(target, key, t, timeout).await,
    };
    drop(lock);
    result
}

async fn do_refresh(
    target: &Target,
    key: &str,
    old: TokenSet,
    timeout: Duration,
) -> Result<Sensitive> {
    let login = login_command(target);
    let Some(rt) = old.refresh_token.clone() else {
        return Err(CliError::new(
            ErrorKind::AuthRequired,
            "your access token expired and there is no refresh token",
        )
        .hint(format!("run `{login}`")));
    };
    let http = oidc::http_client(target.ca_cert.as_deref(), target.insecure, timeout)?;
    let provider = oidc::Provider::discover(&old.issuer, &old.client_id, http).await?;
    match provider.refresh(&rt).await {
        Ok(resp) => {
            use oauth2::TokenResponse;
            let access = resp.access_token().secret().clone();
            let claims = oidc::peek_claims(&access);
            let tokens = TokenSet {
                expires_at: oidc::expires_at(&resp, claims.as_ref()),
                access_token: Sensitive::new(access),
                // A rotated refresh token replaces the old one; a provider
                // that does not rotate keeps it valid.
                refresh_token: resp
                    .refresh_token()
                    .map(|r| Sensitive::new(r.secret().clone()))
                    .or(Some(rt)),
                issuer: old.issuer.clone(),
                client_id: old.client_id.clone(),
            };
            let (k, t) = (key.to_string(), tokens.clone());
            with_store(target.token_store, move |s| s.save(&k, &t)).await?;
            Ok(tokens.access_token)
        }
        Err(msg) if msg.starts_with("invalid_grant") => {
            let k = key.to_string();
            let _ = with_store(target.token_store, move |s| s.delete(&k)).await;
            Err(CliError::new(
                ErrorKind::AuthRequired,
                format!("your session has ended ({msg})"),
            )
            .hint(format!("run `{login}`")))
        }
        Err(msg) => Err(CliError::new(
            ErrorKind::AuthRequired,
            format!("refreshing the access token failed: {msg}"),
        )
        .hint(format!("if this persists, run `{login}`"))),
    }
}
