//! Where tokens live: the OS keyring (default), or — only when the user
//! explicitly opts in — a 0600 file. Never a silent plaintext fallback.
//!
//! A session's tokens are stored as one JSON document split over several
//! keyring entries: Windows' credential blob holds at most 2,560 bytes,
//! less than a typical Keycloak token, so every platform stores pieces of
//! at most [`CHUNK`] bytes under `SESSION#1`, `SESSION#2`, … with the count
//! in `SESSION#n`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, ErrorKind, Result};
use crate::redact::Sensitive;

pub const SERVICE: &str = "kube-dc";
/// Bytes per keyring entry: under Windows' 2,560-byte limit with room to spare.
pub const CHUNK: usize = 2000;

/// What a login leaves behind. The Debug of every token is redacted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    pub access_token: Sensitive,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Sensitive>,
    /// Unix seconds.
    pub expires_at: i64,
    pub issuer: String,
    pub client_id: String,
}

pub use crate::config::StoreKind;

pub enum TokenStore {
    Keyring(Arc<keyring_core::CredentialStore>),
    File(PathBuf),
}

fn keyring_unavailable(detail: &str) -> CliError {
    CliError::new(ErrorKind::AuthRequired, format!("no usable OS keyring to keep your tokens in: {detail}"))
        .hint("in CI, set KUBE_DC_TOKEN to an access token instead of logging in")
        .hint("on a machine without a keyring, opt in to a file store (mode 0600): kube-dc login --token-store file …")
}

impl TokenStore {
    /// The store chosen in the config (keyring unless the user opted in to
    /// a file). A keyring that cannot be reached is an error naming the
    /// ways out; it never falls back to a file by itself.
    pub fn open(kind: StoreKind) -> Result<Self> {
        match kind {
            StoreKind::File => Ok(TokenStore::File(
                crate::config::config_dir().join("tokens.json"),
            )),
            StoreKind::Keyring => {
                if let Some(s) = keyring_core::get_default_store() {
                    return Ok(TokenStore::Keyring(s));
                }
                let store = os_store().map_err(|e| keyring_unavailable(&e))?;
                keyring_core::set_default_store(store.clone());
                Ok(TokenStore::Keyring(store))
            }
        }
    }

    fn entry(
        store: &Arc<keyring_core::CredentialStore>,
        user: &str,
    ) -> Result<keyring_core::Entry> {
        keyring_core::Entry::new_in_store(store, SERVICE, user)
            .map_err(|e| keyring_unavailable(&e.to_string()))
    }

    pub fn load(&self, session: &str) -> Result<Option<TokenSet>> {
        let text = match self {
            TokenStore::Keyring(store) => {
                let count = match Self::entry(store, &format!("{session}#n"))?.get_password() {
                    Ok(n) => n.parse::<usize>().unwrap_or(0),
                    Err(keyring_core::Error::NoEntry) => return Ok(None),
                    Err(e) => return Err(keyring_unavailable(&e.to_string())),
                };
                let mut text = String::new();
                for i in 1..=count {
                    match Self::entry(store, &format!("{session}#{i}"))?.get_password() {
                        Ok(part) => text.push_str(&part),
                        Err(keyring_core::Error::NoEntry) => return Ok(None),
                        Err(e) => return Err(keyring_unavailable(&e.to_string())),
                    }
                }
                text
            }
            TokenStore::File(path) => match std::fs::read_to_string(path) {
                Ok(t) => {
                    let all: std::collections::BTreeMap<String, TokenSet> =
                        serde_json::from_str(&t).unwrap_or_default();
                    return Ok(all.get(session).cloned());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(CliError::other(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            },
        };
        Ok(serde_json::from_str(&text).ok())
    }

    pub fn save(&self, session: &str, tokens: &TokenSet) -> Result<()> {
        let text = serde_json::to_string(tokens).map_err(|e| CliError::other(e.to_string()))?;
        match self {
            TokenStore::Keyring(store) => {
                let old = Self::entry(store, &format!("{session}#n"))?
                    .get_password()
                    .ok()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                let parts = split(&text, CHUNK);
                for (i, part) in parts.iter().enumerate() {
                    Self::entry(store, &format!("{session}#{}", i + 1))?
                        .set_password(part)
                        .map_err(|e| keyring_unavailable(&e.to_string()))?;
                }
                // The count last: a reader sees either the old or the new set.
                Self::entry(store, &format!("{session}#n"))?
                    .set_password(&parts.len().to_string())
                    .map_err(|e| keyring_unavailable(&e.to_string()))?;
                for i in parts.len() + 1..=old {
                    let _ = Self::entry(store, &format!("{session}#{i}"))?.delete_credential();
                }
                Ok(())
            }
            TokenStore::File(path) => self.edit_file(path, |all| {
                all.insert(session.to_string(), tokens.clone());
            }),
        }
    }

    pub fn delete(&self, session: &str) -> Result<()> {
        match self {
            TokenStore::Keyring(store) => {
                let n = Self::entry(store, &format!("{session}#n"))?
                    .get_password()
                    .ok()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                for i in 1..=n {
                    let _ = Self::entry(store, &format!("{session}#{i}"))?.delete_credential();
                }
                match Self::entry(store, &format!("{session}#n"))?.delete_credential() {
                    Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                    Err(e) => Err(keyring_unavailable(&e.to_string())),
                }
            }
            TokenStore::File(path) => self.edit_file(path, |all| {
                all.remove(session);
            }),
        }
    }

    /// Rewrites the token file atomically, mode 0600.
    fn edit_file(
        &self,
        path: &PathBuf,
        f: impl FnOnce(&mut std::collections::BTreeMap<String, TokenSet>),
    ) -> Result<()> {
        let mut all: std::collections::BTreeMap<String, TokenSet> = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        f(&mut all);
        crate::atomic::write(
            path,
            serde_json::to_string_pretty(&all)
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

/// The platform's keyring: Secret Service (D-Bus) on Linux and the BSDs,
/// the Keychain on macOS. (kube-dc is Unix-only: see the README.)
fn os_store() -> std::result::Result<Arc<keyring_core::CredentialStore>, String> {
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    let store = zbus_secret_service_keyring_store::Store::new()
        .map(|s| s as Arc<keyring_core::CredentialStore>);
    #[cfg(target_os = "macos")]
    let store = apple_native_keyring_store::keychain::Store::new()
        .map(|s| s as Arc<keyring_core::CredentialStore>);
    #[cfg(not(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "macos"
    )))]
    let store: keyring_core::Result<Arc<keyring_core::CredentialStore>> = Err(
        keyring_core::Error::NotSupportedByStore("no OS keyring is known on this platform".into()),
    );
    store.map_err(|e| e.to_string())
}

/// Splits at character boundaries into pieces of at most `max` bytes.
fn split(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    if parts.is_empty() {
        parts.push("");
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(size: usize) -> TokenSet {
        TokenSet {
            access_token: Sensitive::new("a".repeat(size)),
            refresh_token: Some(Sensitive::new("r".repeat(size / 2))),
            expires_at: 1_800_000_000,
            issuer: "https://login.example.com/realms/acme".into(),
            client_id: "kube-dc".into(),
        }
    }

    /// The keyring path with keyring-core's mock store, including tokens
    /// far larger than one Windows credential blob.
    #[test]
    fn large_tokens_are_split_and_reassembled() {
        let store: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let ts = TokenStore::Keyring(store.clone());
        let session = "https://login.example.com/realms/acme|kube-dc";
        assert_eq!(ts.load(session).unwrap(), None);
        let big = tokens(9000);
        ts.save(session, &big).unwrap();
        let n: usize = keyring_core::Entry::new_in_store(&store, SERVICE, &format!("{session}#n"))
            .unwrap()
            .get_password()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n >= 7, "{n} entries");
        for i in 1..=n {
            let part =
                keyring_core::Entry::new_in_store(&store, SERVICE, &format!("{session}#{i}"))
                    .unwrap()
                    .get_password()
                    .unwrap();
            assert!(part.len() <= CHUNK && part.len() < 2560);
        }
        assert_eq!(ts.load(session).unwrap(), Some(big));
        // A smaller set replaces it and leaves no stale pieces.
        let small = tokens(100);
        ts.save(session, &small).unwrap();
        assert_eq!(ts.load(session).unwrap(), Some(small));
        assert!(
            keyring_core::Entry::new_in_store(&store, SERVICE, &format!("{session}#3"))
                .unwrap()
                .get_password()
                .is_err()
        );
        ts.delete(session).unwrap();
        assert_eq!(ts.load(session).unwrap(), None);
    }

    #[test]
    fn split_respects_char_boundaries() {
        let s = "é".repeat(10);
        let parts = split(&s, 3);
        assert!(parts.iter().all(|p| p.len() <= 3));
        assert_eq!(parts.concat(), s);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = tokens(10);
        assert!(!format!("{t:?}").contains("aaaa"));
    }
}
