//! A service account signing itself in (CI): with `KUBE_DC_CLIENT_ID` and
//! `KUBE_DC_CLIENT_SECRET` in the environment, every command gets its own
//! access token from the identity provider with the client-credentials
//! grant, and a new one shortly before that one expires — so a command that
//! outlives its token (a long export, many pages) keeps going. Nothing is
//! stored: no keyring, no file, no `login`. The secret is read from the
//! environment only; it is never a flag, never written anywhere, and never
//! in a trace or an error.

use std::time::Duration;

use tokio::sync::Mutex;

use super::oidc::{self, Provider, TokenResp};
use crate::config::Target;
use crate::error::{CliError, ErrorKind, Result};
use crate::redact::Sensitive;

pub const CLIENT_ID_ENV: &str = "KUBE_DC_CLIENT_ID";
pub const CLIENT_SECRET_ENV: &str = "KUBE_DC_CLIENT_SECRET";
pub const ISSUER_ENV: &str = "KUBE_DC_ISSUER";

/// The service account's credentials and its current access token.
pub struct ServiceAccount {
    issuer: String,
    client_id: String,
    secret: Sensitive,
    ca_cert: Option<std::path::PathBuf>,
    insecure: bool,
    timeout: Duration,
    current: Mutex<Option<Current>>,
}

struct Current {
    token: Sensitive,
    /// When to ask for the next one (epoch seconds).
    renew_at: i64,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// An access token for a confidential client (a service account) with
    /// the client-credentials grant (RFC 6749 §4.4). The client authenticates
    /// with HTTP Basic (Keycloak's default), or in the request body when the
    /// discovery document offers only `client_secret_post`.
    pub async fn client_credentials(
        &self,
        secret: &Sensitive,
    ) -> std::result::Result<TokenResp, String> {
        let methods = &self.discovery.token_endpoint_auth_methods_supported;
        let post_only = methods.iter().any(|m| m == "client_secret_post")
            && !methods.iter().any(|m| m == "client_secret_basic");
        let mut client = self
            .client()
            .map_err(|e| e.message)?
            .set_client_secret(oauth2::ClientSecret::new(secret.expose().to_string()));
        if post_only {
            client = client.set_auth_type(oauth2::AuthType::RequestBody);
        }
        client
            .exchange_client_credentials()
            .request_async(&self.http)
            .await
            .map_err(oidc::token_error)
    }
}

impl ServiceAccount {
    /// The service account the environment names, if any. Its issuer: the
    /// context's, else `KUBE_DC_ISSUER`, else the one `--domain`/`--org`
    /// (or the context's domain and organization) derive, as `login` does.
    pub fn from_env(target: &Target, timeout: Duration) -> Result<Option<Self>> {
        let id = std::env::var(CLIENT_ID_ENV).ok().filter(|s| !s.is_empty());
        let secret = std::env::var(CLIENT_SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty());
        let (client_id, secret) = match (id, secret) {
            (None, None) => return Ok(None),
            (Some(id), Some(s)) => (id, Sensitive::new(s)),
            (Some(_), None) => {
                return Err(CliError::usage(format!(
                    "{CLIENT_ID_ENV} is set but {CLIENT_SECRET_ENV} is not"
                ))
                .hint("set both (the secret from your CI's secret store), or neither"));
            }
            (None, Some(_)) => {
                return Err(CliError::usage(format!(
                    "{CLIENT_SECRET_ENV} is set but {CLIENT_ID_ENV} is not"
                ))
                .hint("set both, or neither"));
            }
        };
        let issuer = target
            .issuer
            .clone()
            .or_else(|| std::env::var(ISSUER_ENV).ok().filter(|s| !s.is_empty()))
            .or_else(|| match (&target.domain, &target.org) {
                (Some(d), Some(o)) => Some(format!("https://login.{d}/realms/{o}")),
                _ => None,
            })
            .ok_or_else(|| {
                CliError::usage(format!(
                    "{CLIENT_ID_ENV} is set, but which identity provider issues its tokens?"
                ))
                .hint(format!(
                    "set {ISSUER_ENV}=https://login.DOMAIN/realms/ORG, or give --domain DOMAIN \
                     with KUBE_DC_ORG=ORG"
                ))
            })?;
        Ok(Some(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id,
            secret,
            ca_cert: target.ca_cert.clone(),
            insecure: target.insecure,
            timeout,
            current: Mutex::new(None),
        }))
    }

    /// The client id it signs in as.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A valid access token: the current one, or a new one when it expires
    /// soon (within a third of its lifetime, at most 30 s).
    pub async fn token(&self) -> Result<Sensitive> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && super::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self) -> Result<Current> {
        let http = oidc::http_client(self.ca_cert.as_deref(), self.insecure, self.timeout)?;
        let provider = Provider::discover(&self.issuer, &self.client_id, http).await?;
        let resp = provider
            .client_credentials(&self.secret)
            .await
            .map_err(|msg| {
                let code = msg.split(':').next().unwrap_or_default().trim().to_string();
                let hint = match code.as_str() {
                    "invalid_client" | "unauthorized_client" => format!(
                        "check {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}, and that the client is \
                         confidential with service accounts (client credentials) enabled at {}",
                        self.issuer
                    ),
                    _ => format!("the identity provider is {}", self.issuer),
                };
                CliError::new(
                    ErrorKind::AuthRequired,
                    format!(
                        "service account {:?} could not sign in: {msg}",
                        self.client_id
                    ),
                )
                .hint(hint)
            })?;
        use oauth2::TokenResponse;
        let access = resp.access_token().secret().clone();
        let claims = oidc::peek_claims(&access);
        let now = super::now();
        let expires_at = oidc::expires_at(&resp, claims.as_ref());
        let lifetime = (expires_at - now).max(0);
        Ok(Current {
            token: Sensitive::new(access),
            renew_at: expires_at - (lifetime / 3).min(super::REFRESH_MARGIN),
        })
    }
}
