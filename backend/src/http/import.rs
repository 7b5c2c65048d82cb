//! Import of an existing Kubernetes Secret.

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use kube_dc_api::event::Fact;
use kube_dc_api::validate;
use serde_json::json;

use super::audit_layer::Draft;
use super::support::{
    ApiResult, Authorized, SecretPath, Shared, authorize, blocking, check_data, check_description,
    committed,
};
use super::view::view;
use crate::authn::Identity;
use crate::authz::Op;
use crate::error::{ApiError, parse_json};
use crate::kube::Manifests;
use crate::store::NewSecret;
use kube_dc_api::wire::{Data, ImportRequest, Sensitive, SyncSpec};

pub(crate) async fn import_secret(
    State(b): State<Shared>,
    Extension(id): Extension<Identity>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    let req: ImportRequest = parse_json(&body)?;
    validate::check_name("source Secret name", &req.source_secret_name)
        .map_err(ApiError::bad_request)?;
    let kind = req
        .kind
        .clone()
        .unwrap_or_else(|| kube_dc_api::wire::DEFAULT_SECRET_TYPE.into());
    validate::check_type(&kind).map_err(ApiError::bad_request)?;
    check_description(req.description.as_deref())?;
    let src_ns = req
        .source_secret_namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    let cross = src_ns != ns;
    let note = a
        .note()
        .with(Fact::Source(format!("{src_ns}/{}", req.source_secret_name)))
        .with(Fact::CrossNamespace(cross));
    if cross {
        if req.allow_cross_namespace != Some(true) {
            return Err(ApiError::bad_request(format!(
                "the source Secret is in namespace {src_ns:?}, not {ns:?}: a cross-namespace import \
                 needs allowCrossNamespace: true"
            )));
        }
        // Importing copies values out of the source namespace: the caller
        // must be allowed to read them there.
        authorize(&b, &id, &src_ns, Op::RevealValues)
            .await
            .map_err(|e| {
                ApiError::forbidden(
                    format!("source namespace {src_ns:?}: {}", e.message),
                    e.hint,
                )
            })?;
    }
    let manifests_dir = b.config.manifests_dir.clone();
    let src_name = req.source_secret_name.clone();
    let src_ns2 = src_ns.clone();
    let ns_default = ns.clone();
    let target_name = name.clone();
    let data = blocking(move || {
        let m = Manifests::load(manifests_dir.as_deref(), &ns_default);
        let s = m.secret(&src_ns2, &src_name).ok_or_else(|| {
            ApiError::not_found(format!("Kubernetes Secret {src_name:?} not found in namespace {src_ns2:?}"))
        })?;
        let mut data = Data::new();
        for (k, v) in &s.data {
            let text = String::from_utf8(v.clone()).map_err(|_| ApiError {
                hint: Some(binary_hint(&src_ns2, &src_name, k, &target_name)),
                ..ApiError::bad_request(format!(
                    "key {k:?} of Secret {src_name:?} is not UTF-8 text; the Secrets Manager stores text values"
                ))
            })?;
            data.insert(k.clone(), Sensitive::new(text));
        }
        Ok(data)
    })
    .await?;
    check_data(&data)?;
    let new = NewSecret {
        namespace: ns.clone(),
        name: name.clone(),
        kind,
        description: req.description.clone(),
        sync: SyncSpec {
            enabled: true,
            target_secret_name: Some(req.source_secret_name.clone()),
            refresh_interval: None,
            keys: None,
        },
        rotation: None,
        rotation_interval: None,
        imported_from: Some(format!("{src_ns}/{}", req.source_secret_name)),
        key: None,
    };
    let fault = b.fault_hook();
    let event = d.allowed(&note);
    let rec = b
        .db()
        .create(
            new,
            Some(data),
            now,
            move || crate::store::fault_point(fault.as_deref(), "import"),
            event,
        )
        .await?;
    let mut s = view(&b, &rec);
    s.kv_version = rec.kv.as_ref().map(|k| k.current_version);
    s.imported_from = Some(json!({"namespace": src_ns, "name": req.source_secret_name}));
    Ok(committed(Json(s)))
}

/// How to bring a value that is not text across instead, as a command to
/// paste: kubectl prints the Secret's base64 as it is, and the secret is
/// created with it (nothing was imported, so it does not exist yet). A dot
/// in a key (`keystore.jks`) is escaped, or kubectl's JSONPath reads it as
/// a path step and prints nothing.
fn binary_hint(src_ns: &str, src_name: &str, key: &str, name: &str) -> String {
    let path_key = key.replace('.', "\\.");
    format!(
        "secret values are text: store this one base64-encoded, as the Secret holds it, through \
         a pipe: kubectl get secret {src_name} -n {src_ns} -o jsonpath='{{.data.{path_key}}}' | \
         kube-dc secrets create {name} --from-file={key}=- (then add the Secret's other keys with \
         `kube-dc secrets set {name}`)"
    )
}
