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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use crate::api::Sensitive;
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::wire::Data;

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
    fn new(origin: String, name: String, kind: &str, versions: Vec<Data>) -> Self {
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
            Source::Path(p) => out.extend(read_path(p)?),
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

// ---- Files: Kubernetes manifests, kube-dc exports, env files ----

/// The items of a file, or of every file of a directory (sorted by name).
fn read_path(p: &Path) -> Result<Vec<Item>> {
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.is_file()
                    && !f
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(read_file(&f)?);
        }
        return Ok(out);
    }
    read_file(p)
}

fn read_file(p: &Path) -> Result<Vec<Item>> {
    let shown = p.display().to_string();
    let text = std::fs::read_to_string(p)
        .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}")))?;
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let looks_structured = matches!(ext, "yaml" | "yml" | "json")
        || text.trim_start().starts_with('{')
        || text
            .lines()
            .any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"));
    if looks_structured {
        return read_documents(&text, &shown);
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".env").to_string())
        .unwrap_or_default();
    let pairs =
        crate::envfile::parse_env(&text).map_err(|e| CliError::usage(format!("{shown}: {e}")))?;
    let data: Data = pairs
        .into_iter()
        .map(|(k, v, _)| (k, Sensitive::new(v)))
        .collect();
    Ok(vec![Item::new(shown, name, "opaque", vec![data])])
}

/// Kubernetes Secrets (documents, `List`s), or kube-dc's export.
fn read_documents(text: &str, shown: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(|e| CliError::usage(format!("{shown}: document {}: {e}", i + 1)))?;
        if v.is_null() {
            continue;
        }
        collect_document(&v, &format!("{shown}#{}", i + 1), &mut out)?;
    }
    Ok(out)
}

fn collect_document(v: &Value, origin: &str, out: &mut Vec<Item>) -> Result<()> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "List" | "SecretList" => {
            for (j, item) in v["items"].as_array().into_iter().flatten().enumerate() {
                collect_document(item, &format!("{origin}/items/{j}"), out)?;
            }
            Ok(())
        }
        "Secret" => {
            out.push(kube_secret(v, origin));
            Ok(())
        }
        EXPORT_KIND => {
            for (j, item) in v["items"].as_array().into_iter().flatten().enumerate() {
                out.push(exported(item, &format!("{origin}/items/{j}"))?);
            }
            Ok(())
        }
        other => Err(CliError::usage(format!(
            "{origin}: a document of kind {other:?}: migrate reads Kubernetes Secrets (a Secret, a List of them) and \
             kube-dc's export ({EXPORT_KIND})"
        ))),
    }
}

/// The kind of `secrets export -o json|yaml`.
pub const EXPORT_KIND: &str = "ManagedSecretExport";
/// The annotation that carries a secret's kube-dc type in `export -o k8s`.
pub const TYPE_ANNOTATION: &str = "security.kube-dc.com/type";
/// The annotation that carries its description.
pub const DESCRIPTION_ANNOTATION: &str = "security.kube-dc.com/description";

/// A Kubernetes Secret: `data` (base64) and `stringData` (the latter wins,
/// as the API server merges them); a value that is not UTF-8 text is
/// refused (our values are text).
fn kube_secret(v: &Value, origin: &str) -> Item {
    let name = v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let annotations = &v["metadata"]["annotations"];
    let k8s_type = v["type"].as_str().unwrap_or("Opaque");
    let (kind, note) = match annotations[TYPE_ANNOTATION].as_str() {
        Some(t) if kube_dc_api::wire::SECRET_TYPES.contains(&t) => (t.to_string(), None),
        _ => type_of_kube(k8s_type),
    };
    let mut item = Item::new(origin.into(), name, &kind, Vec::new());
    item.description = annotations[DESCRIPTION_ANNOTATION]
        .as_str()
        .map(str::to_string);
    item.notes.extend(note);
    let mut data = Data::new();
    for (k, b64) in v["data"].as_object().into_iter().flatten() {
        let raw = b64.as_str().unwrap_or_default();
        match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => {
                    data.insert(k.clone(), Sensitive::new(s));
                }
                Err(_) => {
                    item.refused = Some(format!(
                        "key {k:?} holds binary data (not UTF-8 text), which kube-dc does not store"
                    ));
                }
            },
            Err(_) => item.refused = Some(format!("key {k:?}: data is not base64")),
        }
    }
    for (k, s) in v["stringData"].as_object().into_iter().flatten() {
        data.insert(k.clone(), Sensitive::new(text_of(s)));
    }
    item.versions.push(data);
    item
}

/// Our type for a Kubernetes Secret type, and a note when it is not kept.
fn type_of_kube(t: &str) -> (String, Option<String>) {
    match t {
        "Opaque" | "" => ("opaque".into(), None),
        "kubernetes.io/tls" => ("tls".into(), None),
        other => (
            "opaque".into(),
            Some(format!("Kubernetes type {other} brought as opaque")),
        ),
    }
}

/// One item of kube-dc's export.
fn exported(v: &Value, origin: &str) -> Result<Item> {
    let name = v["name"].as_str().unwrap_or_default().to_string();
    let kind = v["type"].as_str().unwrap_or("opaque");
    let data: Data = v["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, s)| (k.clone(), Sensitive::new(text_of(s))))
        .collect();
    let mut item = Item::new(origin.into(), name, kind, vec![data]);
    item.description = v["description"].as_str().map(str::to_string);
    Ok(item)
}

/// A value as text: a string as it is; anything else as its JSON text.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---- Vault and OpenBao KV ----

/// A KV server: `BAO_ADDR`/`BAO_TOKEN`, else `VAULT_ADDR`/`VAULT_TOKEN`.
pub struct Vault {
    addr: String,
    token: Sensitive,
    namespace: Option<String>,
    http: reqwest::Client,
}

/// A path's place: its mount and the path within it.
struct Mount {
    mount: String,
    version: u8,
}

impl Vault {
    pub fn from_env() -> Result<Self> {
        let var = |a: &str, b: &str| {
            std::env::var(a)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| std::env::var(b).ok().filter(|v| !v.is_empty()))
        };
        let addr = var("BAO_ADDR", "VAULT_ADDR").ok_or_else(|| {
            CliError::usage("vault:// needs the server's address: set VAULT_ADDR (or BAO_ADDR)")
        })?;
        let token = var("BAO_TOKEN", "VAULT_TOKEN").ok_or_else(|| {
            CliError::usage("vault:// needs a token: set VAULT_TOKEN (or BAO_TOKEN)")
        })?;
        let url = crate::net::check_credential_url("VAULT_ADDR", &addr)?;
        let timeout = Duration::from_secs(30);
        let http = if url.scheme() == "http" {
            crate::net::plain_http_client(timeout)?
        } else {
            let ca = std::env::var_os("VAULT_CACERT").or_else(|| std::env::var_os("BAO_CACERT"));
            crate::net::http_client(ca.as_deref().map(Path::new), false, timeout)?
        };
        Ok(Vault {
            addr: addr.trim_end_matches('/').to_string(),
            token: Sensitive::new(token),
            namespace: var("BAO_NAMESPACE", "VAULT_NAMESPACE"),
            http,
        })
    }

    /// GET `/v1/{path}`: the JSON answer; None for 404.
    async fn get(&self, path: &str) -> Result<Option<Value>> {
        let mut req = self
            .http
            .get(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", self.token.expose());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CliError::new(ErrorKind::Network, format!("{}: {e}", self.addr)))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let errors = body["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let path_only = path.split('?').next().unwrap_or(path);
            return Err(CliError::new(
                if status == 403 {
                    ErrorKind::PermissionDenied
                } else {
                    ErrorKind::Server
                },
                format!(
                    "{} answered {status} to GET /v1/{path_only}: {errors}",
                    self.addr
                ),
            ));
        }
        Ok(Some(body))
    }

    /// The mount of `path` and its KV version.
    async fn mount_of(&self, path: &str, forced: Option<u8>) -> Result<(Mount, String)> {
        let info = self.get(&format!("sys/internal/ui/mounts/{path}")).await;
        let (mount, version) = match info {
            Ok(Some(v)) if v["data"]["path"].is_string() => {
                let mount = v["data"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string();
                let version = match v["data"]["options"]["version"].as_str() {
                    Some("2") => 2,
                    _ => 1,
                };
                (mount, version)
            }
            // A token that may not ask: the first segment, the version
            // given (else 2, the default of `vault secrets enable kv-v2`
            // and of dev servers).
            _ => (
                path.split('/').next().unwrap_or_default().to_string(),
                forced.unwrap_or(2),
            ),
        };
        let rest = path
            .strip_prefix(&mount)
            .unwrap_or(path)
            .trim_matches('/')
            .to_string();
        Ok((
            Mount {
                mount,
                version: forced.unwrap_or(version),
            },
            rest,
        ))
    }

    /// The items under `path` (`MOUNT/PATH`).
    pub async fn read(&self, path: &str, o: &KvOptions) -> Result<Vec<Item>> {
        let (m, rest) = self.mount_of(path, o.kv_version).await?;
        let paths: Vec<String> = if o.recursive {
            self.list_all(&m, &rest).await?
        } else {
            if rest.is_empty() {
                return Err(CliError::usage(format!(
                    "vault://{path} is a mount: add --recursive to bring every path under it"
                )));
            }
            vec![rest.clone()]
        };
        let base = if o.recursive {
            rest.clone()
        } else {
            parent_of(&rest)
        };
        let reads = futures_util::stream::iter(paths.into_iter().map(|p| {
            let base = base.clone();
            let m = &m;
            async move {
                // Under the prefix given; the path given itself (a secret,
                // not a folder): its last segment.
                let under = p.strip_prefix(&base).unwrap_or(&p).trim_matches('/');
                let name = if under.is_empty() {
                    p.rsplit('/').next().unwrap_or(&p).to_string()
                } else {
                    under.replace('/', "-")
                };
                let origin = format!("vault://{}/{p}", m.mount);
                self.read_one(m, &p, o.all_versions)
                    .await
                    .map(|(versions, notes)| {
                        let mut it = Item::new(origin, name, "opaque", versions);
                        it.notes = notes;
                        it
                    })
            }
        }))
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
        let mut out = Vec::new();
        for r in reads {
            match r? {
                it if it.versions.is_empty() => {
                    let mut it = it;
                    it.refused = Some("no readable version (deleted or destroyed)".into());
                    out.push(it);
                }
                it => out.push(it),
            }
        }
        Ok(out)
    }

    /// Every secret path under `prefix`, depth first, sorted.
    async fn list_all(&self, m: &Mount, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut folders = vec![prefix.to_string()];
        while let Some(folder) = folders.pop() {
            let list = match m.version {
                2 => format!("{}/metadata/{folder}?list=true", m.mount),
                _ => format!("{}/{folder}?list=true", m.mount),
            };
            let keys = self.get(&list).await?;
            let Some(keys) = keys else {
                // Not a folder: the prefix is a secret itself.
                if folder == prefix && !prefix.is_empty() {
                    out.push(prefix.to_string());
                }
                continue;
            };
            for k in keys["data"]["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let full = if folder.is_empty() {
                    k.to_string()
                } else {
                    format!("{}/{k}", folder.trim_end_matches('/'))
                };
                if k.ends_with('/') {
                    folders.push(full.trim_end_matches('/').to_string());
                } else {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// One path's versions (oldest first: all live ones, or the current)
    /// and what was changed on the way.
    async fn read_one(&self, m: &Mount, path: &str, all: bool) -> Result<(Vec<Data>, Vec<String>)> {
        let mut notes = Vec::new();
        if m.version == 1 {
            let v = self.get(&format!("{}/{path}", m.mount)).await?;
            let data = v.map(|v| data_of(&v["data"], &mut notes));
            return Ok((data.into_iter().collect(), notes));
        }
        let mut numbers = Vec::new();
        if all {
            let meta = self.get(&format!("{}/metadata/{path}", m.mount)).await?;
            let versions = meta.as_ref().map(|m| &m["data"]["versions"]);
            let mut skipped = 0;
            for (n, v) in versions.and_then(Value::as_object).into_iter().flatten() {
                let gone = v["destroyed"].as_bool() == Some(true)
                    || v["deletion_time"].as_str().is_some_and(|t| !t.is_empty());
                match n.parse::<u64>() {
                    Ok(n) if !gone => numbers.push(n),
                    _ => skipped += 1,
                }
            }
            numbers.sort_unstable();
            if skipped > 0 {
                notes.push(format!(
                    "{skipped} deleted or destroyed version(s) left out"
                ));
            }
        }
        let mut out = Vec::new();
        if numbers.is_empty() {
            if let Some(v) = self.get(&format!("{}/data/{path}", m.mount)).await?
                && !v["data"]["data"].is_null()
            {
                out.push(data_of(&v["data"]["data"], &mut notes));
            }
        } else {
            for n in numbers {
                if let Some(v) = self
                    .get(&format!("{}/data/{path}?version={n}", m.mount))
                    .await?
                    && !v["data"]["data"].is_null()
                {
                    out.push(data_of(&v["data"]["data"], &mut notes));
                }
            }
        }
        notes.dedup();
        Ok((out, notes))
    }
}

/// A KV map as values: strings as they are, anything else as JSON text
/// (said once per key in the notes).
fn data_of(v: &Value, notes: &mut Vec<String>) -> Data {
    let mut out = Data::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        if !val.is_string() {
            notes.push(format!(
                "key {k}: a JSON {} kept as its JSON text",
                json_kind(val)
            ));
        }
        out.insert(k.clone(), Sensitive::new(text_of(val)));
    }
    out
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        _ => "null",
    }
}

fn parent_of(p: &str) -> String {
    p.rsplit_once('/')
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubectl_list_reads_data_and_string_data_and_refuses_binary() {
        let yaml = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: web-tls}
  type: kubernetes.io/tls
  data: {tls.crt: LS0tLS1CRUdJTgo=, tls.key: a2V5}
- apiVersion: v1
  kind: Secret
  metadata: {name: app}
  type: Opaque
  data: {A: YQ==}
  stringData: {A: "overrides", B: "b: c"}
- apiVersion: v1
  kind: Secret
  metadata: {name: blob}
  data: {bin: /w==}
"#;
        let items = read_documents(yaml, "f.yaml").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(
            (items[0].name.as_str(), items[0].kind.as_str()),
            ("web-tls", "tls")
        );
        assert_eq!(items[0].versions[0]["tls.crt"].expose(), "-----BEGIN\n");
        assert_eq!(items[1].versions[0]["A"].expose(), "overrides");
        assert_eq!(items[1].versions[0]["B"].expose(), "b: c");
        assert!(items[2].refused.as_deref().unwrap().contains("binary"));
    }

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
