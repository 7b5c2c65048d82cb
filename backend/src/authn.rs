//! Who is calling: bearer JWTs verified against an OIDC issuer, or a fixed
//! identity when the backend is embedded in the CLI's local context.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

#[derive(Clone, Debug, Default, PartialEq)]
/// A verified caller.
pub struct Identity {
    /// The token's subject (`sub`).
    pub subject: String,
    /// `preferred_username`, else the subject.
    pub username: String,
    /// The token's email, empty when it has none.
    pub email: String,
    /// The token's groups (Keycloak group paths without the leading `/`).
    pub groups: Vec<String>,
    /// The organization the token names, if any.
    pub org: Option<String>,
    /// The namespaces the token names, if any.
    pub namespaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
/// Why a request's caller could not be identified (401, or 503 when the
/// identity provider cannot be reached).
pub enum AuthError {
    #[error("authentication required: send a bearer token (Authorization: Bearer …)")]
    /// No bearer token.
    Missing,
    #[error("invalid token: {0}")]
    /// The token is malformed or its signature or claims do not verify.
    Invalid(String),
    #[error("token expired")]
    /// The token's `exp` has passed.
    Expired,
    #[error("cannot verify tokens right now: {0}")]
    /// The issuer's keys cannot be fetched just now.
    Unavailable(String),
    /// Signed by the issuer, but for another audience (the identity
    /// provider's client and this backend's `--audience` do not match).
    #[error(
        "invalid token: it is for audience {got}, but this backend accepts {want:?} (its --audience)"
    )]
    WrongAudience {
        /// The token's audience.
        got: String,
        /// The audience this backend accepts.
        want: String,
    },
}

impl AuthError {
    /// What to do about it, where the message alone does not say.
    pub fn hint(&self) -> Option<String> {
        match self {
            AuthError::WrongAudience { want, .. } => Some(format!(
                "logging in again gives a token with the same audience: the identity provider must \
                 put {want:?} in the token's aud (Keycloak: an audience mapper on the client; \
                 Keycloak's default audience is \"account\"), or the backend must run with \
                 --audience set to the token's"
            )),
            _ => None,
        }
    }
}

/// How a backend identifies its callers.
pub enum Authenticator {
    /// Every request is this identity (the CLI's embedded local backend:
    /// nothing crosses a process boundary, so there is nothing to verify).
    Fixed(Identity),
    /// Bearer tokens verified against an OpenID Connect issuer.
    Oidc(Arc<OidcVerifier>),
}

impl Authenticator {
    /// The caller of a request, from its `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        match self {
            Authenticator::Fixed(id) => Ok(id.clone()),
            Authenticator::Oidc(v) => {
                let header = authorization.ok_or(AuthError::Missing)?;
                let token = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .ok_or_else(|| {
                        AuthError::Invalid("the Authorization header is not a Bearer token".into())
                    })?
                    .trim();
                if token.is_empty() {
                    return Err(AuthError::Missing);
                }
                v.verify(token).await
            }
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    /// Read only to say which audience a refused token was for.
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

/// Tokens that verified, with their identity, until they expire: the
/// signature check costs more than the rest of a request. Keyed by the whole
/// token, so a token is trusted only as it was verified; emptied whenever the
/// key set is fetched again, so a key the provider drops stops being trusted
/// at the next fetch.
#[derive(Default)]
struct Verified {
    map: std::collections::HashMap<Box<str>, (Identity, u64, u64)>,
}

impl Verified {
    const MAX: usize = 4096;

    fn get(&self, token: &str, now: u64) -> Option<Identity> {
        let (id, nbf, exp) = self.map.get(token)?;
        (now + LEEWAY_SECS >= *nbf && now < exp + LEEWAY_SECS).then(|| id.clone())
    }

    fn insert(&mut self, token: &str, id: &Identity, nbf: u64, exp: u64, now: u64) {
        if self.map.len() >= Self::MAX {
            self.map.retain(|_, (_, _, exp)| now < *exp + LEEWAY_SECS);
            if self.map.len() >= Self::MAX {
                self.map.clear();
            }
        }
        self.map.insert(token.into(), (id.clone(), nbf, exp));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// Verifies RS256/ES256 JWTs: signature against the issuer's JWKS (found by
/// OIDC discovery), `iss`, `aud`, `exp` and `nbf`. Keys are fetched on
/// first use and re-fetched when a token names an unknown key (at most every
/// few seconds, so a flood of bad tokens cannot hammer the provider).
fn find_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let jwk = match kid {
        Some(k) => set.find(k),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }?;
    if let Some(ka) = jwk.common.key_algorithm
        && ka.to_string() != format!("{alg:?}")
    {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok()
}

/// Verifies OIDC access tokens: signature (the issuer's JWKS, fetched
/// and refreshed on an unknown key id), issuer, audience and expiry.
pub struct OidcVerifier {
    issuer: String,
    audience: String,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
    verified: std::sync::Mutex<Verified>,
}

const REFETCH_AFTER: Duration = Duration::from_secs(5);
const BAD_SIGNATURE: &str = "bad signature";
const LEEWAY_SECS: u64 = 5;

impl OidcVerifier {
    /// A verifier for `issuer`'s tokens meant for `audience`.
    pub fn new(issuer: &str, audience: &str, http: reqwest::Client) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            http,
            keys: RwLock::new(None),
            verified: Default::default(),
        }
    }

    async fn fetch_keys(&self) -> Result<JwkSet, AuthError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("{url}: {e}"));
        let disc: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        if disc.issuer.trim_end_matches('/') != self.issuer {
            return Err(AuthError::Unavailable(format!(
                "discovery at {url} names issuer {:?}, expected {:?}",
                disc.issuer, self.issuer
            )));
        }
        self.http
            .get(&disc.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Unavailable(format!("{}: {e}", disc.jwks_uri)))?
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("{}: {e}", disc.jwks_uri)))
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        {
            let guard = self.keys.read().await;
            if let Some(k) = guard.as_ref() {
                if let Some(key) = find_key(&k.set, kid, alg) {
                    return Ok(key);
                }
                if k.fetched.elapsed() < REFETCH_AFTER {
                    return Err(AuthError::Invalid("signed with an unknown key".into()));
                }
            }
        }
        self.refetch(kid, alg)
            .await?
            .ok_or_else(|| AuthError::Invalid("signed with an unknown key".into()))
    }

    /// Fetches the key set again — at most once every `REFETCH_AFTER`, so
    /// forged tokens cannot make the backend hammer the provider — and
    /// returns the key for `kid`. `Ok(None)`: not there, or fetched too
    /// recently to ask again.
    async fn refetch(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Option<DecodingKey>, AuthError> {
        let mut guard = self.keys.write().await;
        if let Some(k) = guard.as_ref()
            && k.fetched.elapsed() < REFETCH_AFTER
        {
            // Another request may have just fetched the new set.
            return Ok(find_key(&k.set, kid, alg));
        }
        let set = self.fetch_keys().await?;
        self.verified().map.clear();
        let key = find_key(&set, kid, alg);
        *guard = Some(Keys {
            set,
            fetched: Instant::now(),
        });
        Ok(key)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The identity a token carries, once verified.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if let Some(id) = self.verified().get(token, unix_now()) {
            return Ok(id);
        }
        // `alg: none` and anything but RS256/ES256 is refused here, before a
        // key is looked up.
        let header =
            decode_header(token).map_err(|_| AuthError::Invalid("malformed JWT".into()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted (RS256 or ES256 only)",
                header.alg
            )));
        }
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let data = match self.decode(token, &key, header.alg) {
            // The provider may have rotated its key under the same key id:
            // a signature that fails under the cached key is checked once
            // more against a fresh key set.
            Err(AuthError::Invalid(why)) if why == BAD_SIGNATURE => {
                match self.refetch(header.kid.as_deref(), header.alg).await? {
                    Some(fresh) => self.decode(token, &fresh, header.alg)?,
                    None => return Err(AuthError::Invalid(why)),
                }
            }
            other => other?,
        };
        let c = data.claims;
        let (nbf, exp) = (c.nbf.unwrap_or(0), c.exp);
        let id = Identity {
            username: c
                .preferred_username
                .clone()
                .unwrap_or_else(|| c.sub.clone()),
            email: c.email.unwrap_or_default(),
            groups: c
                .groups
                .into_iter()
                .map(|g| g.trim_start_matches('/').to_string())
                .collect(),
            org: c.org,
            namespaces: c.namespaces,
            subject: c.sub,
        };
        self.verified().insert(token, &id, nbf, exp, unix_now());
        Ok(id)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
    ) -> Result<jsonwebtoken::TokenData<Claims>, AuthError> {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::Invalid("token is not valid yet (nbf)".into()),
                K::InvalidAudience => self.wrong_audience(token, key, &v),
                K::InvalidIssuer => AuthError::Invalid("token is from another issuer".into()),
                K::InvalidSignature => AuthError::Invalid(BAD_SIGNATURE.into()),
                K::MissingRequiredClaim(c) => AuthError::Invalid(format!("token has no {c} claim")),
                _ => AuthError::Invalid("token does not verify".into()),
            }
        })
    }

    /// A token whose signature and issuer verified but whose audience is
    /// another: which one it is (the `aud` claim is no secret), so both
    /// sides of the mismatch can be named, and a warning in the log for
    /// whoever runs the backend.
    fn wrong_audience(&self, token: &str, key: &DecodingKey, v: &Validation) -> AuthError {
        let mut v = v.clone();
        v.validate_aud = false;
        let got = match decode::<Claims>(token, key, &v)
            .ok()
            .and_then(|d| d.claims.aud)
        {
            Some(serde_json::Value::String(a)) => format!("{a:?}"),
            Some(serde_json::Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map_or_else(|| x.to_string(), |s| format!("{s:?}"))
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => "(none)".to_string(),
        };
        tracing::warn!(
            token_audience = %got,
            accepted = %self.audience,
            "refused a token of the right issuer for another audience: the identity provider's \
             client and --audience do not match"
        );
        AuthError::WrongAudience {
            got,
            want: self.audience.clone(),
        }
    }
}
