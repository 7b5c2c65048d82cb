//! The two ways to sign in: the browser (Authorization Code + PKCE, the
//! answer on a loopback redirect) and the device flow (a code entered on
//! any device).

use std::time::Duration;

use super::redirect::{Callback, Loopback};
use crate::auth::oidc::{Provider, TokenResp};
use crate::error::{CliError, ErrorKind, Result};
use crate::output::{note, sanitize};

/// The browser flow: the tokens, and the nonce the ID token must carry.
pub async fn browser(
    provider: &Provider,
    no_browser: bool,
    timeout: Duration,
) -> Result<(TokenResp, String)> {
    let loopback = Loopback::bind().await?;
    let redirect = loopback.redirect_uri();
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
    let code = match tokio::time::timeout(timeout, loopback.callback(&state)).await {
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

/// The device flow: a code to enter on any device, then polling.
pub async fn device(provider: &Provider) -> Result<TokenResp> {
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
