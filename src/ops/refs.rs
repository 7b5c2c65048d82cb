//! References to one value: `kube-dc://[ORG/]PROJECT/SECRET[@VERSION]/KEY`.
//! One syntax, parsed here only, and resolved here only: every secret
//! named by a set of references is read once (one audited read per secret
//! and version), however many of its keys they name.
//!
//! - `kube-dc://default/db/PASSWORD`: key `PASSWORD` of secret `db` in
//!   project `default` of the context's organization;
//! - `kube-dc://default/db@3/PASSWORD`: the same key as version 3 held it;
//! - `kube-dc://acme/default/db/PASSWORD`: in organization `acme`.
//!
//! A reference has no spaces and no escapes: project, organization and
//! secret names are DNS labels, and a key is letters, digits, `-`, `_`
//! and `.`, so none of them holds a `/`, `@` or `}`.

use std::collections::BTreeMap;

use futures_util::StreamExt;

use crate::api::{Client, Sensitive};
use crate::error::{CliError, ErrorKind, Result};

/// What every reference starts with.
pub const SCHEME: &str = "kube-dc://";

/// One parsed reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The organization, when the reference names one (else the context's).
    pub org: Option<String>,
    /// The project.
    pub project: String,
    /// The secret.
    pub secret: String,
    /// The version, when the reference pins one (else the current).
    pub version: Option<u64>,
    /// The key.
    pub key: String,
}

/// Which secret (and version) a reference reads: the unit of one read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    /// The project's backing namespace.
    pub namespace: String,
    /// The secret.
    pub secret: String,
    /// The version (None: the current one).
    pub version: Option<u64>,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SCHEME)?;
        if let Some(o) = &self.org {
            write!(f, "{o}/")?;
        }
        write!(f, "{}/{}", self.project, self.secret)?;
        if let Some(v) = self.version {
            write!(f, "@{v}")?;
        }
        write!(f, "/{}", self.key)
    }
}

/// Whether `text` is a reference as a whole (an env file's value that is
/// one is resolved; anything else passes through unchanged).
pub fn is_reference(text: &str) -> bool {
    text.starts_with(SCHEME)
}

impl Reference {
    /// Parses a whole reference. The error says what is wrong and where
    /// (a 0-based character offset into `text`), for the caller to turn
    /// into its line and column.
    pub fn parse(text: &str) -> std::result::Result<Self, (usize, String)> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            (
                0,
                format!("a reference starts with {SCHEME}, not {:?}", short(text)),
            )
        })?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (org, project, secret, key) = match parts.as_slice() {
            [p, s, k] => (None, *p, *s, *k),
            [o, p, s, k] => (Some(*o), *p, *s, *k),
            _ => {
                return Err((
                    0,
                    format!(
                        "{:?} has {} parts; a reference is {SCHEME}PROJECT/SECRET/KEY or {SCHEME}ORG/PROJECT/SECRET/KEY (a version as SECRET@N)",
                        short(text),
                        parts.len()
                    ),
                ));
            }
        };
        // Where each part starts, for the error's column.
        let mut at = SCHEME.len();
        let mut starts = Vec::new();
        for p in &parts {
            starts.push(at);
            at += p.chars().count() + 1;
        }
        let first = usize::from(org.is_some());
        if let Some(o) = org {
            kube_dc_api::validate::check_name("organization", o).map_err(|e| (starts[0], e))?;
        }
        kube_dc_api::validate::check_name("project", project).map_err(|e| (starts[first], e))?;
        let (secret, version) = match secret.split_once('@') {
            None => (secret, None),
            Some((s, v)) => {
                let n = v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    (
                        starts[first + 1] + s.chars().count() + 1,
                        format!("version {v:?} of secret {s}: a version is a number from 1"),
                    )
                })?;
                (s, Some(n))
            }
        };
        kube_dc_api::validate::check_name("secret name", secret)
            .map_err(|e| (starts[first + 1], e))?;
        kube_dc_api::validate::check_key(key).map_err(|e| (starts[first + 2], e))?;
        Ok(Reference {
            org: org.map(str::to_string),
            project: project.to_string(),
            secret: secret.to_string(),
            version,
            key: key.to_string(),
        })
    }

    /// The secret (and version) it reads, in the context's organization
    /// `org` unless it names its own.
    pub fn source(&self, org: &str) -> Source {
        Source {
            namespace: format!("{}-{}", self.org.as_deref().unwrap_or(org), self.project),
            secret: self.secret.clone(),
            version: self.version,
        }
    }
}

/// At most this many secrets are read at once.
const READS_AT_ONCE: usize = 8;

/// What [`read_sources`] read: each secret's (and version's) values.
pub type Read = BTreeMap<Source, BTreeMap<String, Sensitive>>;

/// The values of each secret the references read, one read per secret and
/// version, several at once. An error names the secret, and comes with
/// the source that failed, for the caller to say where it was referenced.
pub async fn read_sources(
    client: &Client,
    sources: impl IntoIterator<Item = Source>,
) -> std::result::Result<Read, (Source, CliError)> {
    let mut unique: Vec<Source> = sources.into_iter().collect();
    unique.sort();
    unique.dedup();
    let reads = futures_util::stream::iter(unique.into_iter().map(|src| async move {
        let read = client
            .get_secret(&src.namespace, &src.secret, true, src.version)
            .await;
        (src, read)
    }))
    .buffered(READS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    let mut out = BTreeMap::new();
    for (src, read) in reads {
        let value = match read {
            Ok((secret, _)) => secret.value.ok_or_else(|| {
                CliError::new(
                    ErrorKind::NotFound,
                    format!("{} has no readable value", describe(&src)),
                )
            }),
            Err(e) => Err(e.context(&format!("reading {}", describe(&src)))),
        };
        match value {
            Ok(v) => out.insert(src, v.data),
            Err(e) => return Err((src, e)),
        };
    }
    Ok(out)
}

/// `secret db in acme-default (version 3)`.
pub fn describe(src: &Source) -> String {
    match src.version {
        Some(v) => format!("secret {} version {v} in {}", src.secret, src.namespace),
        None => format!("secret {} in {}", src.secret, src.namespace),
    }
}

/// The value `r` names among what was read, or an error naming it.
pub fn lookup<'a>(read: &'a Read, r: &Reference, org: &str) -> Result<&'a Sensitive> {
    let src = r.source(org);
    let values = read
        .get(&src)
        .ok_or_else(|| CliError::other(format!("{} was not read", describe(&src))))?;
    values.get(&r.key).ok_or_else(|| {
        let keys: Vec<&str> = values.keys().map(String::as_str).collect();
        CliError::new(
            ErrorKind::NotFound,
            format!("{r}: {} has no key {:?}", describe(&src), r.key),
        )
        .hint(format!("its keys: {}", keys.join(", ")))
    })
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_and_without_organization_and_version() {
        let r = Reference::parse("kube-dc://default/db/PASSWORD").unwrap();
        assert_eq!(
            (
                r.org.as_deref(),
                r.project.as_str(),
                r.secret.as_str(),
                r.version,
                r.key.as_str()
            ),
            (None, "default", "db", None, "PASSWORD")
        );
        assert_eq!(r.to_string(), "kube-dc://default/db/PASSWORD");
        let r = Reference::parse("kube-dc://acme/shop/tls@3/tls.crt").unwrap();
        assert_eq!(r.org.as_deref(), Some("acme"));
        assert_eq!(r.version, Some(3));
        assert_eq!(r.key, "tls.crt");
        assert_eq!(r.to_string(), "kube-dc://acme/shop/tls@3/tls.crt");
        assert_eq!(
            r.source("other"),
            Source {
                namespace: "acme-shop".into(),
                secret: "tls".into(),
                version: Some(3)
            }
        );
        assert_eq!(
            Reference::parse("kube-dc://default/db/K")
                .unwrap()
                .source("local")
                .namespace,
            "local-default"
        );
    }

    #[test]
    fn a_malformed_reference_says_where() {
        for (text, at, says) in [
            ("kube-dc://default/db", 0, "2 parts"),
            ("kube-dc://a/b/c/d/e", 0, "5 parts"),
            ("kube-dc://Default/db/K", 10, "project"),
            ("kube-dc://default/DB/K", 18, "secret name"),
            ("kube-dc://default/db@0/K", 21, "version"),
            ("kube-dc://default/db@x/K", 21, "version"),
            ("kube-dc://default/db/", 21, "key"),
            ("kube-dc://default/db/a b", 21, "key"),
            ("op://vault/item/field", 0, "starts with"),
        ] {
            let (col, msg) = Reference::parse(text).unwrap_err();
            assert_eq!(col, at, "{text}: {msg}");
            assert!(msg.contains(says), "{text}: {msg}");
        }
    }
}
