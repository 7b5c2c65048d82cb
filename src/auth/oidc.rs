//! OIDC against Keycloak (or any OpenID provider): discovery, the
//! browser flow (Authorization Code + PKCE on a loopback listener), the
//! device flow (RFC 8628), refresh and revocation.
//!
//! `oauth2` runs over the project's one reqwest through a small adapter
//! (both speak the `http` 1.x types), so there is one HTTP stack and one
//! TLS stack in the binary. Token requests never follow redirects.

use std::future::Future;
use std::pin::Pin;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse,
    PkceCodeChallenge, RedirectUrl, RefreshToken, RevocationUrl, Scope,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CliError, ErrorKind, Result};
use crate::redact::Sensitive;

pub const SCOPES: &[&str] = &["openid", "offline_access"];

#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    pub jwks_uri: String,
    /// How a confidential client may authenticate at the token endpoint
    /// (empty: not said, which means `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The ID token rides along in the token response.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

pub type TokenResp = StandardTokenResponse<IdTokenField, BasicTokenType>;

pub(super) type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenResp,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

/// `oauth2`'s HTTP client trait over reqwest.
pub struct Http(pub reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let req = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
            let resp = self
                .0
                .execute(req)
                .await
                .map_err(|e| HttpError(describe(&e)))?;
            let mut out = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let body = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
            out.body(body.to_vec())
                .map_err(|e| HttpError(e.to_string()))
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

pub use crate::net::http_client;

pub struct Provider {
    pub discovery: Discovery,
    pub client_id: String,
    pub http: Http,
}

fn oidc_error(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::new(ErrorKind::AuthRequired, format!("{what}: {e}"))
}

impl Provider {
    pub async fn discover(issuer: &str, client_id: &str, http: reqwest::Client) -> Result<Self> {
        // Tokens will be exchanged with this provider: never over plain
        // http to anything but a loopback address.
        crate::net::check_credential_url("issuer", issuer)?;
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let resp = http.get(&url).send().await.map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!(
                    "cannot reach the identity provider at {url}: {}",
                    describe(&e)
                ),
            )
        })?;
        if !resp.status().is_success() {
            return Err(CliError::new(
                ErrorKind::Network,
                format!("the identity provider answered {} for {url}", resp.status()),
            )
            .hint("check --domain and --org (or --issuer)"));
        }
        let discovery: Discovery = resp.json().await.map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!("{url} is not an OpenID discovery document: {e}"),
            )
        })?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(CliError::other(format!(
                "{url} names issuer {:?}, not {issuer:?}; refusing to continue",
                discovery.issuer
            )));
        }
        Ok(Self {
            discovery,
            client_id: client_id.to_string(),
            http: Http(http),
        })
    }

    pub(super) fn client(&self) -> Result<OAuthClient> {
        let d = &self.discovery;
        let bad = |what: &str, e: oauth2::url::ParseError| {
            CliError::other(format!("the provider's {what} is not a URL: {e}"))
        };
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(d.authorization_endpoint.clone())
                    .map_err(|e| bad("authorization endpoint", e))?,
            )
            .set_token_uri(
                TokenUrl::new(d.token_endpoint.clone()).map_err(|e| bad("token endpoint", e))?,
            )
            .set_device_authorization_url_option(
                d.device_authorization_endpoint
                    .clone()
                    .map(DeviceAuthorizationUrl::new)
                    .transpose()
                    .map_err(|e| bad("device endpoint", e))?,
            )
            .set_revocation_url_option(
                d.revocation_endpoint
                    .clone()
                    .map(RevocationUrl::new)
                    .transpose()
                    .map_err(|e| bad("revocation endpoint", e))?,
            ))
    }

    /// The authorization URL for the browser flow, with PKCE (S256), state
    /// and nonce. Returns (url, state, nonce, verifier).
    pub fn authorize_url(
        &self,
        redirect: &str,
    ) -> Result<(String, String, String, oauth2::PkceCodeVerifier)> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let client = self.client()?.set_redirect_uri(
            RedirectUrl::new(redirect.to_string())
                .map_err(|e| CliError::other(format!("redirect URL: {e}")))?,
        );
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
            .add_extra_param("nonce", &nonce)
            // offline_access (a refresh token that outlives the browser
            // session) is granted on consent.
            .add_extra_param("prompt", "consent")
            .set_pkce_challenge(challenge)
            .url();
        Ok((url.to_string(), state.secret().clone(), nonce, verifier))
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect: &str,
        verifier: oauth2::PkceCodeVerifier,
    ) -> Result<TokenResp> {
        let client = self.client()?.set_redirect_uri(
            RedirectUrl::new(redirect.to_string())
                .map_err(|e| CliError::other(format!("redirect URL: {e}")))?,
        );
        client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| oidc_error("the provider refused the sign-in", token_error(e)))
    }

    pub async fn device_authorization(&self) -> Result<StandardDeviceAuthorizationResponse> {
        let client = self.client()?;
        client
            .exchange_device_code()
            .map_err(|_| {
                CliError::new(
                    ErrorKind::NotSupported,
                    "this identity provider does not offer the device flow",
                )
                .hint("log in with the browser flow: kube-dc login … (without --device-code)")
            })?
            .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                oidc_error(
                    "the provider refused the device authorization",
                    token_error(e),
                )
            })
    }

    pub async fn poll_device(
        &self,
        details: &StandardDeviceAuthorizationResponse,
    ) -> Result<TokenResp> {
        let client = self.client()?;
        client
            .exchange_device_access_token(details)
            .request_async(&self.http, tokio::time::sleep, None)
            .await
            .map_err(|e| {
                let msg = token_error(e);
                if msg.contains("expired") {
                    CliError::new(
                        ErrorKind::AuthRequired,
                        "the code expired before the sign-in was completed",
                    )
                    .hint("run the same kube-dc login command again for a new code")
                } else if msg.contains("access_denied") {
                    CliError::new(
                        ErrorKind::AuthRequired,
                        "the sign-in was denied in the browser",
                    )
                } else {
                    oidc_error("the device sign-in failed", msg)
                }
            })
    }

    pub async fn refresh(
        &self,
        refresh_token: &Sensitive,
    ) -> std::result::Result<TokenResp, String> {
        self.client()
            .map_err(|e| e.message)?
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)
    }

    /// Revokes a refresh token (RFC 7009), when the provider has a
    /// revocation endpoint. `Ok(false)`: it has none. Sent over HTTPS, or
    /// plain HTTP only to a loopback address (oauth2's own revocation
    /// request insists on HTTPS, which would skip a loopback test provider).
    pub async fn revoke(&self, refresh_token: &Sensitive) -> Result<bool> {
        let Some(url) = &self.discovery.revocation_endpoint else {
            return Ok(false);
        };
        if !url.starts_with("https://") && !crate::net::is_loopback_url(url) {
            return Err(oidc_error(
                "refusing to send a refresh token over plain http",
                url,
            ));
        }
        let form = [
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.client_id.as_str()),
        ];
        let body = serde_urlencoded::to_string(form).map_err(|e| CliError::other(e.to_string()))?;
        let resp = self
            .http
            .0
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                CliError::new(
                    ErrorKind::Network,
                    format!("revoking the refresh token failed: {}", describe(&e)),
                )
            })?;
        if !resp.status().is_success() {
            return Err(oidc_error(
                "the provider refused to revoke the refresh token",
                resp.status(),
            ));
        }
        Ok(true)
    }

    /// Verifies an ID token's signature (issuer's JWKS), issuer, audience,
    /// expiry and — for the browser flow — nonce, and returns its claims.
    pub async fn verify_id_token(&self, id_token: &str, nonce: Option<&str>) -> Result<Value> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| oidc_error("the ID token is malformed", e))?;
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .0
            .get(&self.discovery.jwks_uri)
            .send()
            .await
            .map_err(|e| {
                CliError::new(
                    ErrorKind::Network,
                    format!("cannot fetch the provider's keys: {}", describe(&e)),
                )
            })?
            .json()
            .await
            .map_err(|e| oidc_error("the provider's JWKS is not valid", e))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None => jwks.keys.first(),
        }
        .ok_or_else(|| {
            oidc_error(
                "the ID token is signed with an unknown key",
                header.kid.clone().unwrap_or_default(),
            )
        })?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
            .map_err(|e| oidc_error("unusable provider key", e))?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_issuer(&[self.discovery.issuer.trim_end_matches('/')]);
        v.set_audience(&[&self.client_id]);
        v.leeway = 60;
        let data = jsonwebtoken::decode::<Value>(id_token, &key, &v)
            .map_err(|e| oidc_error("the ID token does not verify", e))?;
        if let Some(n) = nonce
            && data.claims.get("nonce").and_then(Value::as_str) != Some(n)
        {
            return Err(oidc_error(
                "the ID token's nonce does not match this sign-in",
                "possible replay",
            ));
        }
        Ok(data.claims)
    }
}

pub(super) fn token_error<E: std::error::Error + 'static>(
    e: oauth2::RequestTokenError<E, impl oauth2::ErrorResponse + 'static>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            let v = serde_json::to_value(&r).unwrap_or_default();
            let code = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string();
            match v.get("error_description").and_then(Value::as_str) {
                Some(d) => format!("{code}: {d}"),
                None => code,
            }
        }
        oauth2::RequestTokenError::Request(e) => format!("request failed: {e}"),
        oauth2::RequestTokenError::Parse(e, _) => format!("unexpected answer: {e}"),
        oauth2::RequestTokenError::Other(s) => s,
    }
}

/// Claims of a JWT, read without verification (the access token is the
/// backend's to verify; the CLI only reads who it says it is and when it
/// expires).
pub fn peek_claims(jwt: &str) -> Option<Value> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn expires_at(resp: &TokenResp, access_claims: Option<&Value>) -> i64 {
    let now = crate::auth::now();
    access_claims
        .and_then(|c| c.get("exp"))
        .and_then(Value::as_i64)
        .or_else(|| resp.expires_in().map(|d| now + d.as_secs() as i64))
        .unwrap_or(now + 300)
}
