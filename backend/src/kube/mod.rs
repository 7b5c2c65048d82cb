//! The Kubernetes side of a project, modelled: Secrets and workloads read
//! from manifest files (multi-document YAML) with the upstream API types,
//! and the consumer scanner over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use kube_dc_api::wire::Consumer;

mod references;
pub use references::references;

/// What the workload scan that finds a secret's consumers reports as
/// its version (`consumers` answers carry it).
pub const SCANNER_VERSION: &str = "kube-dc-backend/1";

/// A workload found in the manifests (Deployment, StatefulSet, …).
pub struct Workload {
    /// Its kind.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its pod template's spec (where Secrets are referenced).
    pub spec: PodSpec,
}

/// A Kubernetes Secret found in the manifests. Values are bytes, as in
/// Kubernetes (`stringData` merged over `data`).
pub struct ManifestSecret {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its values by key.
    pub data: BTreeMap<String, Vec<u8>>,
}

/// A document that could not be read. Its parser message is kept out on
/// purpose: it can quote the document, and a Secret's document holds values.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestError {
    /// The namespace the document belongs to (declared, else its folder's).
    pub namespace: String,
    /// The file, relative to the manifests folder.
    pub file: String,
    /// 1-based position of the document in its file; 0: the file itself.
    pub document: usize,
    /// Why it could not be read (never the parser's message).
    pub reason: &'static str,
}

impl ManifestError {
    /// The error as an answer's JSON (`error`, `file`, `document`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": format!("{} document {}: {}", self.file, self.document, self.reason),
            "file": self.file,
            "document": self.document,
        })
    }
}

/// A Namespace manifest: who owns it (see `projects`).
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestNamespace {
    /// The namespace.
    pub name: String,
    /// Its organization's label, if any.
    pub org: Option<String>,
    /// Its project's label, if any.
    pub project: Option<String>,
}

/// The label naming a namespace's organization.
pub const ORG_KEY: &str = "kube-dc.com/organization";
/// The label naming a namespace's project.
pub const PROJECT_KEY: &str = "kube-dc.com/project";

#[derive(Default)]
/// What the manifests folder models of a cluster.
pub struct Manifests {
    /// Namespaces and their owners.
    pub namespaces: Vec<ManifestNamespace>,
    /// Kubernetes Secrets.
    pub secrets: Vec<ManifestSecret>,
    /// Workloads (consumers of Secrets).
    pub workloads: Vec<Workload>,
    /// Documents that could not be read.
    pub errors: Vec<ManifestError>,
}

impl Manifests {
    /// Reads every `*.yaml`, `*.yml` and `*.json` file under `dir`
    /// (recursively). A document's namespace is its `metadata.namespace`,
    /// else the name of the first folder under `dir` it sits in, else
    /// `default_ns`.
    pub fn load(dir: Option<&Path>, default_ns: &str) -> Self {
        let mut out = Manifests::default();
        let Some(dir) = dir else { return out };
        let mut files = Vec::new();
        collect_files(dir, &mut files);
        files.sort();
        for file in files {
            let folder_ns = file.strip_prefix(dir).ok().and_then(|rel| {
                let mut comps = rel.components();
                let first = comps.next()?;
                comps.next()?; // only a folder counts, not the file itself
                first.as_os_str().to_str().map(str::to_string)
            });
            let ns = folder_ns.as_deref().unwrap_or(default_ns);
            let rel = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .display()
                .to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => out.add_documents(&text, &rel, ns),
                Err(_) => out.errors.push(ManifestError {
                    namespace: ns.to_string(),
                    file: rel,
                    document: 0,
                    reason: "the file cannot be read as UTF-8 text",
                }),
            }
        }
        out
    }

    /// Adds the documents of one file's text (`source` names it in errors;
    /// `default_ns` is the namespace of a document that names none).
    pub fn add_documents(&mut self, text: &str, source: &str, default_ns: &str) {
        for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
            let value = match serde_norway::Value::deserialize(doc) {
                Ok(serde_norway::Value::Null) => continue,
                Ok(v) => v,
                Err(_) => {
                    self.errors.push(ManifestError {
                        namespace: default_ns.to_string(),
                        file: source.to_string(),
                        document: i + 1,
                        reason: "not valid YAML (the rest of the file is skipped)",
                    });
                    // The YAML stream cannot be resynchronised after a syntax error.
                    break;
                }
            };
            let namespace = value
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(|n| n.as_str())
                .unwrap_or(default_ns)
                .to_string();
            if self.add_value(value, default_ns).is_err() {
                self.errors.push(ManifestError {
                    namespace,
                    file: source.to_string(),
                    document: i + 1,
                    reason: "not a valid Kubernetes object of its kind",
                });
            }
        }
    }

    fn add_value(
        &mut self,
        mut value: serde_norway::Value,
        default_ns: &str,
    ) -> Result<(), String> {
        yaml11_file_modes(&mut value);
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        let w = match kind.as_str() {
            "Namespace" => {
                self.namespaces.push(namespace_of(value)?);
                return Ok(());
            }
            "Secret" => {
                self.secrets.push(secret_of(value, default_ns)?);
                return Ok(());
            }
            "Deployment" => workload::<Deployment>(value, "Deployment", default_ns, |o| {
                o.spec.as_ref()?.template.spec.clone()
            }),
            "StatefulSet" => workload::<StatefulSet>(value, "StatefulSet", default_ns, |o| {
                o.spec.as_ref()?.template.spec.clone()
            }),
            "DaemonSet" => workload::<DaemonSet>(value, "DaemonSet", default_ns, |o| {
                o.spec.as_ref()?.template.spec.clone()
            }),
            "Job" => workload::<Job>(value, "Job", default_ns, |o| {
                o.spec.as_ref()?.template.spec.clone()
            }),
            "CronJob" => workload::<CronJob>(value, "CronJob", default_ns, |o| {
                o.spec
                    .as_ref()?
                    .job_template
                    .spec
                    .as_ref()?
                    .template
                    .spec
                    .clone()
            }),
            "Pod" => workload::<Pod>(value, "Pod", default_ns, |o| o.spec.clone()),
            _ => return Ok(()), // other kinds are not part of the model
        };
        self.workloads.extend(w?);
        Ok(())
    }

    /// The Secret `name` in `ns`, if the manifests hold one.
    pub fn secret(&self, ns: &str, name: &str) -> Option<&ManifestSecret> {
        self.secrets
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }

    /// Every workload in `ns` that references Secret `secret`, and how.
    pub fn consumers(&self, ns: &str, secret: &str) -> Vec<Consumer> {
        self.workloads
            .iter()
            .filter(|w| w.namespace == ns)
            .filter_map(|w| {
                let refs = references(&w.spec, secret);
                (!refs.is_empty()).then(|| Consumer {
                    kind: w.kind.to_string(),
                    name: w.name.clone(),
                    namespace: w.namespace.clone(),
                    references: refs,
                })
            })
            .collect()
    }
}

/// Kubernetes reads manifests as YAML 1.1, where `defaultMode: 0400` is an
/// octal number; serde_norway follows YAML 1.2 and reads a string. File-mode
/// fields are the only octal ones in the API, so convert just those.
fn yaml11_file_modes(v: &mut serde_norway::Value) {
    match v {
        serde_norway::Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let is_mode = matches!(k.as_str(), Some("defaultMode" | "mode"));
                if is_mode
                    && let Some(octal) = val
                        .as_str()
                        .and_then(|s| s.strip_prefix('0'))
                        .filter(|d| !d.is_empty() && d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                        .and_then(|d| i64::from_str_radix(d, 8).ok())
                {
                    *val = serde_norway::Value::Number(octal.into());
                } else {
                    yaml11_file_modes(val);
                }
            }
        }
        serde_norway::Value::Sequence(s) => s.iter_mut().for_each(yaml11_file_modes),
        serde_norway::Value::Tagged(t) => yaml11_file_modes(&mut t.value),
        _ => {}
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
}

/// A Namespace: its name and the organization and project it belongs to
/// (labels, else annotations).
fn namespace_of(value: serde_norway::Value) -> Result<ManifestNamespace, String> {
    let n: Namespace = serde_norway::from_value(value).map_err(|e| format!("Namespace: {e}"))?;
    let meta = n.metadata;
    let key = |k: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(k))
            .or_else(|| meta.annotations.as_ref().and_then(|a| a.get(k)))
            .cloned()
    };
    Ok(ManifestNamespace {
        org: key(ORG_KEY),
        project: key(PROJECT_KEY),
        name: meta.name.clone().unwrap_or_default(),
    })
}

/// A Secret: `data` (base64) and `stringData`, the latter winning.
fn secret_of(value: serde_norway::Value, default_ns: &str) -> Result<ManifestSecret, String> {
    let s: Secret = serde_norway::from_value(value).map_err(|e| format!("Secret: {e}"))?;
    let mut data: BTreeMap<String, Vec<u8>> = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in s.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(ManifestSecret {
        name: s.metadata.name.unwrap_or_default(),
        namespace: s
            .metadata
            .namespace
            .unwrap_or_else(|| default_ns.to_string()),
        data,
    })
}

/// A workload of `kind` with its pod template (`spec_of`); none when it
/// has no template.
fn workload<T>(
    value: serde_norway::Value,
    kind: &'static str,
    default_ns: &str,
    spec_of: fn(&T) -> Option<PodSpec>,
) -> Result<Option<Workload>, String>
where
    T: serde::de::DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    let obj: T = serde_norway::from_value(value).map_err(|e| format!("{kind}: {e}"))?;
    let meta = obj.metadata();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta
        .namespace
        .clone()
        .unwrap_or_else(|| default_ns.to_string());
    Ok(spec_of(&obj).map(|spec| Workload {
        kind,
        name,
        namespace,
        spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: acme-demo }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      initContainers:
        - name: migrate
          image: m
          env:
            - name: DB_PASSWORD
              valueFrom: { secretKeyRef: { name: db-creds, key: password } }
      containers:
        - name: app
          image: a
          envFrom: [ { secretRef: { name: db-creds } } ]
      volumes:
        - name: creds
          secret: { secretName: db-creds, defaultMode: 0400 }
        - name: bundle
          projected:
            sources: [ { secret: { name: db-creds } }, { configMap: { name: x } } ]
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: acme-demo }
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: c
              image: c
              env:
                - name: TOKEN
                  valueFrom: { secretKeyRef: { name: db-creds, key: token } }
---
apiVersion: v1
kind: Pod
metadata: { name: other, namespace: acme-demo }
spec:
  containers: [ { name: c, image: c, envFrom: [ { secretRef: { name: unrelated } } ] } ]
---
apiVersion: v1
kind: Secret
metadata: { name: legacy }
data: { user: YWRtaW4= }
stringData: { pass: "pa$word" }
"#;

    #[test]
    fn finds_every_kind_of_reference() {
        let mut m = Manifests::default();
        m.add_documents(MANIFESTS, "test.yaml", "acme-demo");
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let c = m.consumers("acme-demo", "db-creds");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].kind, "Deployment");
        assert_eq!(
            c[0].references,
            [
                "envFrom",
                "env:DB_PASSWORD",
                "volume:creds",
                "projected:bundle"
            ]
        );
        assert_eq!(c[1].kind, "CronJob");
        assert_eq!(c[1].references, ["env:TOKEN"]);
        let s = m.secret("acme-demo", "legacy").unwrap();
        assert_eq!(s.data["user"], b"admin");
        assert_eq!(s.data["pass"], b"pa$word");
    }

    #[test]
    fn bad_documents_are_reported_not_fatal() {
        let mut m = Manifests::default();
        m.add_documents("kind: Deployment\nspec: 5\n---\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n", "x.yaml", "ns");
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!(m.workloads.len(), 1);
    }
}
