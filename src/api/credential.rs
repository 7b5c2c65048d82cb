//! What a remote request authenticates with.

use crate::error::Result;
use crate::redact::Sensitive;

/// What a remote request authenticates with.
pub enum Credential {
    /// A bearer token, as it is (`KUBE_DC_TOKEN`, or a login's).
    Token(Sensitive),
    /// A service account's: a new one before the current one expires.
    Service(std::sync::Arc<crate::auth::service::ServiceAccount>),
}

impl Credential {
    pub(super) async fn bearer(&self) -> Result<Sensitive> {
        match self {
            Credential::Token(t) => Ok(t.clone()),
            Credential::Service(sa) => sa.token().await,
        }
    }
}
