//! Vault and OpenBao KV (v1 and v2) over their HTTP API: one path, or
//! every path under a prefix, and (v2) every live version.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;

use super::files::text_of;
use super::{CONCURRENCY, Item, KvOptions};
use crate::api::Sensitive;
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::wire::Data;

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
