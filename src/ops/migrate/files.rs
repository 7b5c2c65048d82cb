//! Files `secrets migrate` reads: Kubernetes Secret manifests (documents,
//! `List`s), kube-dc's own export, and env files (or a directory of them).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::Item;
use crate::api::Sensitive;
use crate::error::{CliError, Result};
use kube_dc_api::wire::Data;

/// The items of a file, or of every file of a directory (sorted by name).
pub(super) fn read_path(p: &Path) -> Result<Vec<Item>> {
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
pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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
}
