//! What a remote request authenticates with.

use crate::error::Result;
use crate::redact::Sensitive;

/// What a remote request authenticates with.
pub enum Credential {
    /// A bearer token, as it is (`KUBE_DC_TOKEN`, or a login's).
    Token(Sensitive),
    /// A service account's: a new one before the current one expires.
    Service(std::sync::Arc<super::service::ServiceAccount>),
}

impl Credential {
    /// Where it comes from, for `whoami`: never the token itself.
    pub fn source(&self) -> String {
        match self {
            Credential::Token(_) if crate::config::token_from_env().is_some() => {
                "KUBE_DC_TOKEN".to_string()
            }
            Credential::Token(_) => "login".to_string(),
            Credential::Service(sa) => format!(
                "service account {} ({})",
                sa.client_id(),
                super::service::CLIENT_ID_ENV
            ),
        }
    }

    pub async fn bearer(&self) -> Result<Sensitive> {
        match self {
            Credential::Token(t) => Ok(t.clone()),
            Credential::Service(sa) => sa.token().await,
        }
    }
}
