//! What `secrets migrate` reads, and the plan it makes: secrets from a
//! Vault or OpenBao KV (v1, v2), Kubernetes Secret manifests, kube-dc's
//! own export, or env files — each one named, typed and checked against
//! the contract's rules before anything is written.
//!
//! Names: a KV path becomes one secret named by its path under the prefix
//! given (`/` → `-`; a single path: its last segment); a manifest by its
//! `metadata.name`; an env file by its file name without `.env`. A name
//! our rules refuse is listed as refused (with `--rename FROM=TO` the way
//! to bring it), never changed silently.

mod files;
mod vault;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{CliError, Result};
use kube_dc_api::wire::Data;

pub use files::{DESCRIPTION_ANNOTATION, EXPORT_KIND, TYPE_ANNOTATION};
pub use vault::Vault;

/// Requests in flight at once, to a KV or to the backend.
pub const CONCURRENCY: usize = 8;

/// One secret to bring in.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it came from (a KV path, a file and document), for messages.
    pub origin: String,
    /// The name it would have here (before the rules are checked).
    pub name: String,
    /// Its type here.
    pub kind: String,
    /// What it is for, when the source says.
    pub description: Option<String>,
    /// Its versions, oldest first; the last is the current one.
    pub versions: Vec<Data>,
    /// What was changed on the way in, said in the plan (never a value).
    pub notes: Vec<String>,
    /// Why it cannot come in, if it cannot.
    pub refused: Option<String>,
}

impl Item {
    pub(crate) fn new(origin: String, name: String, kind: &str, versions: Vec<Data>) -> Self {
        Item {
            origin,
            name,
            kind: kind.into(),
            description: None,
            versions,
            notes: Vec::new(),
            refused: None,
        }
    }

    /// The current version.
    pub fn current(&self) -> Option<&Data> {
        self.versions.last()
    }
}

/// A source as typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `vault://MOUNT/PATH`.
    Vault(String),
    /// A file (manifests, an export, an env file) or a directory of them.
    Path(PathBuf),
}

impl Source {
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(rest) = text
            .strip_prefix("vault://")
            .or_else(|| text.strip_prefix("bao://"))
            .or_else(|| text.strip_prefix("openbao://"))
        {
            let rest = rest.trim_matches('/');
            if rest.is_empty() {
                return Err(CliError::usage(format!(
                    "{text}: name the KV mount and path, e.g. vault://secret/app"
                )));
            }
            return Ok(Source::Vault(rest.to_string()));
        }
        let p = PathBuf::from(text);
        if !p.exists() {
            return Err(CliError::usage(format!(
                "{text}: no such file or directory, and not vault://MOUNT/PATH"
            )));
        }
        Ok(Source::Path(p))
    }
}

/// How KV sources are read.
#[derive(Debug, Clone, Default)]
pub struct KvOptions {
    pub recursive: bool,
    pub all_versions: bool,
    /// `--kv-version`: the engine version when the token may not ask.
    pub kv_version: Option<u8>,
}

/// Every item of `sources`, in the order given.
pub async fn read_sources(sources: &[Source], kv: &KvOptions) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for s in sources {
        match s {
            Source::Vault(path) => out.extend(Vault::from_env()?.read(path, kv).await?),
            Source::Path(p) => out.extend(files::read_path(p)?),
        }
    }
    Ok(out)
}

/// Applies `--rename` and `--map`, then the contract's rules: a refused
/// name or key marks the item refused, with why.
pub fn settle(
    items: &mut [Item],
    rename: &BTreeMap<String, String>,
    map: &BTreeMap<String, String>,
) {
    for it in items.iter_mut() {
        if let Some(to) = rename.get(&it.name) {
            it.notes.push(format!("renamed from {}", it.name));
            it.name = to.clone();
        }
        if !map.is_empty() {
            for v in &mut it.versions {
                let renamed: Data = std::mem::take(v)
                    .into_iter()
                    .map(|(k, val)| (map.get(&k).cloned().unwrap_or(k), val))
                    .collect();
                *v = renamed;
            }
        }
        if it.refused.is_some() {
            continue;
        }
        if let Err(e) = kube_dc_api::validate::check_name("secret name", &it.name) {
            it.refused = Some(format!("{e} (bring it with --rename {}=NEW-NAME)", it.name));
            continue;
        }
        let bad_key = it.versions.iter().flat_map(|v| v.keys()).find_map(|k| {
            kube_dc_api::validate::check_key(k)
                .err()
                .map(|e| (k.clone(), e))
        });
        if let Some((k, e)) = bad_key {
            it.refused = Some(format!("key {k:?}: {e} (rename it with --map {k}=NEW_KEY)"));
        } else if it.versions.is_empty() {
            it.refused = Some("it has no readable version".into());
        }
    }
    // Two sources bringing the same name: the later one is refused.
    let mut seen = std::collections::BTreeSet::new();
    for it in items.iter_mut().filter(|i| i.refused.is_none()) {
        if !seen.insert(it.name.clone()) {
            it.refused = Some(format!(
                "another source already brings a secret named {}",
                it.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Sensitive;

    #[test]
    fn a_refused_name_is_listed_not_changed_and_rename_brings_it() {
        let mut items = vec![
            Item::new("a".into(), "Bad_Name".into(), "opaque", vec![Data::new()]),
            Item::new("b".into(), "good".into(), "opaque", vec![Data::new()]),
        ];
        items[0].versions[0].insert("K".into(), Sensitive::new("v"));
        items[1].versions[0].insert("K".into(), Sensitive::new("v"));
        settle(&mut items, &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(items[0].name, "Bad_Name");
        assert!(
            items[0]
                .refused
                .as_deref()
                .unwrap()
                .contains("--rename Bad_Name=")
        );
        assert!(items[1].refused.is_none());
        let rename = BTreeMap::from([("Bad_Name".to_string(), "bad-name".to_string())]);
        items[0].refused = None;
        settle(&mut items, &rename, &BTreeMap::new());
        assert_eq!(
            (items[0].name.as_str(), items[0].refused.as_deref()),
            ("bad-name", None)
        );
    }
}
