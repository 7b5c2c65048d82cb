//! The network edge: the one HTTPS client setup, and the rules for URLs
//! that credentials are sent to.

use std::time::Duration;

use crate::error::{CliError, Result};

/// Whether a parsed URL's host is a loopback address (`localhost`,
/// 127.0.0.0/8, `::1`).
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `url` parses and names a loopback host.
pub fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| is_loopback(&u))
}

/// Checks a URL that credentials will be sent to (`--server`, `--issuer`):
/// a real URL, https — or http to a loopback address only — with no user
/// name or password in it (`http://localhost:x@evil.test` is a URL for
/// evil.test), no query and no fragment.
pub fn check_credential_url(flag: &str, text: &str) -> Result<reqwest::Url> {
    let bad = |why: &str| CliError::usage(format!("invalid {flag} {text:?}: {why}"));
    let url = reqwest::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it must not contain a user name or password (user@host)",
        ));
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(CliError::usage(format!(
            "refusing to send credentials over plain http to {}",
            url.host_str().unwrap_or_default()
        ))
        .hint(format!(
            "use https:// for {flag}; plain http is only allowed to a loopback address"
        ))),
        other => Err(bad(&format!("the scheme {other}:// is not http(s)"))),
    }
}

/// The one HTTPS client setup (API and identity provider alike): rustls
/// with the system roots plus `--ca-cert`, `--insecure` if asked, a
/// timeout, and no redirects (a token request must never be redirected).
pub fn http_client(
    ca_cert: Option<&std::path::Path>,
    insecure: bool,
    timeout: Duration,
) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No total timeout here: requests that read a whole answer set one
    // each; a stream may run for as long as data keeps arriving.
    let mut b = reqwest::Client::builder()
        .read_timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kube-dc/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_cert {
        let pem = std::fs::read(ca).map_err(|e| {
            CliError::usage(format!("cannot read CA certificate {}: {e}", ca.display()))
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            CliError::usage(format!("CA certificate {} is not PEM: {e}", ca.display()))
        })?;
        b = b.add_root_certificate(cert);
    }
    if insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| CliError::other(format!("cannot set up HTTPS: {e}")))
}

/// A client for a plain `http://` server (loopback only, see
/// [`check_credential_url`]): no TLS, so no trust roots are loaded — reading
/// the system's CA files was a third of a short command's time.
pub fn plain_http_client(timeout: Duration) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .read_timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kube-dc/", env!("CARGO_PKG_VERSION")))
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .map_err(|e| CliError::other(format!("cannot set up HTTP: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_urls_are_parsed_not_pattern_matched() {
        for ok in [
            "https://backend.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:9/x",
            "http://[::1]:8080",
        ] {
            assert!(check_credential_url("--server", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost:x@evil.test",
            "http://localhost@evil.test",
            "https://user:pw@backend.example.com",
            "http://127.0.0.1.evil.test",
            "http://localhost.evil.test",
            "http://10.0.0.1",
            "ftp://localhost",
            "https://backend.example.com/?x=1",
            "backend.example.com",
        ] {
            assert!(check_credential_url("--server", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_detection() {
        for u in [
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9/",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "http://example.com",
            "http://10.0.0.1:80",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }
}
