//! Secrets: list, create, read (metadata or values), update, write values,
//! change sync, delete, restore.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use kube_dc_api::Permission;
use kube_dc_api::event::Fact;
use kube_dc_api::validate;
use serde::Deserialize;

use super::audit_layer::Draft;
use super::support::{
    ApiResult, Authorized, Keyed, SecretPath, Shared, check_data, check_description, check_sync,
    committed, load_live, replay, with_note,
};
use super::view::{is_project, list_json, view};
use crate::authz::Op;
use crate::clock::rfc3339;
use crate::error::{ApiError, parse_json, parse_query};
use crate::rotation;
use crate::store::{NewSecret, StoreError};
use kube_dc_api::wire::{
    CreateRequest, DeleteResponse, PutValuesRequest, PutValuesResponse, SecretValue, SyncPatch,
    SyncSpec, UpdateRequest, ValueMetadata,
};

pub(crate) async fn list_secrets(
    State(b): State<Shared>,
    a: Authorized,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    /// `deleted=true` (**extension**): the soft-deleted secrets instead.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        #[serde(default)]
        deleted: bool,
    }
    let q = parse_query::<Q>(q.as_deref())?;
    let is_project = is_project(&b, &ns);
    let body = list_json(&b.db(), ns, is_project, q.deleted).await?;
    let json = [(header::CONTENT_TYPE, "application/json")];
    Ok(with_note((json, body), a.note()))
}

pub(crate) async fn create_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    Keyed(key): Keyed,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    let answer = |b: &Shared, version: u64| {
        let (b, ns, name) = (b.clone(), ns.clone(), name.clone());
        async move {
            let rec = b.db().get_live(ns, name).await?;
            let mut secret = view(&b, &rec);
            secret.kv_version = Some(version);
            Ok::<_, ApiError>(Json(secret).into_response())
        }
    };
    // A retry of a create that was recorded: answered as it was.
    if let Some(k) = &key
        && let Some(w) = b.db().keyed_write(k.clone()).await?
    {
        let resp = answer(&b, w.version).await;
        return replay(k, &w, (&ns, &name), a.note(), || resp);
    }
    // Every field is optional: no body at all is a create with defaults.
    let req: CreateRequest = parse_json(if body.is_empty() { b"{}" } else { &body })?;
    validate::check_type(&req.kind).map_err(ApiError::bad_request)?;
    check_description(req.description.as_deref())?;
    check_sync(&req.sync)?;
    if let Some(d) = &req.initial_values {
        check_data(d)?;
        check_allowlist(&req.sync, Some(&d.keys().cloned().collect::<Vec<_>>()))?;
    }
    // Rotation is scheduled only for passwords; on another type the create
    // succeeds and the status says `RotationConfigInvalid`, as in production.
    let mut interval = None;
    if let Some(rot) = &req.rotation {
        let every = validate::check_rotation(rot).map_err(ApiError::bad_request)?;
        if rot.enabled && req.kind == "password" {
            if req.initial_values.is_some() {
                return Err(ApiError::bad_request(
                    "rotation generates the value of this secret; omit initialValues",
                ));
            }
            interval = Some(every);
        }
    }
    let data = match (&req.rotation, interval) {
        (Some(rot), Some(_)) => Some(rotation::generate(rot)),
        _ => req.initial_values.clone(),
    };
    let new = NewSecret {
        namespace: ns.clone(),
        name: name.clone(),
        kind: req.kind.clone(),
        description: req.description.clone(),
        sync: req.sync.clone(),
        rotation: req.rotation.clone(),
        rotation_interval: interval,
        imported_from: None,
        key: key.clone(),
    };
    let fault = b.fault_hook();
    let event = d.allowed(&a.note());
    let created = b
        .db()
        .create(
            new,
            data,
            now,
            move || crate::store::fault_point(fault.as_deref(), "create"),
            event,
        )
        .await;
    let rec = match (created, &key) {
        // Its first attempt was recorded while this one was on its way.
        (Err(StoreError::Replayed(w)), Some(k)) => {
            let resp = answer(&b, w.version).await;
            return replay(k, &w, (&ns, &name), a.note(), || resp);
        }
        (created, _) => created?,
    };
    let version = rec.kv.as_ref().map(|k| k.current_version).unwrap_or(0);
    let mut secret = view(&b, &rec);
    secret.kv_version = Some(version);
    Ok(committed(Json(secret)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GetQuery {
    /// Checked here; the route layer resolved its meaning.
    #[serde(default)]
    #[allow(dead_code)]
    include_value: bool,
    #[serde(default)]
    version: Option<u64>,
}

pub(crate) async fn get_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: GetQuery = parse_query(q.as_deref())?;
    // The route layer resolved the flag from the same decoded query.
    let reveal = a.resolved.permission == Permission::Project(Op::RevealValues);
    if let Some(v) = q.version {
        validate::check_version("version", v).map_err(ApiError::bad_request)?;
    }
    if q.version.is_some() && !reveal {
        return Err(ApiError::bad_request("version=N needs includeValue=true"));
    }
    if !reveal {
        let rec = load_live(&b, &ns, &name).await?;
        return Ok(with_note(Json(view(&b, &rec)), a.note()));
    }
    // The value is read in the transaction that records its read, and
    // answered once that has committed.
    let event = d.allowed(&a.note());
    let (rec, read) = b.db().reveal(ns, name, q.version, event).await?;
    let mut secret = view(&b, &rec);
    match read {
        Some(v) => {
            secret.value = Some(SecretValue {
                data: v.data,
                metadata: ValueMetadata {
                    version: v.version,
                    created_time: Some(rfc3339(v.created_at)),
                    custom_metadata: None,
                },
            });
        }
        None => secret.value_missing = Some(true),
    }
    Ok(committed(Json(secret)))
}

pub(crate) async fn update_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    let req: UpdateRequest = parse_json(&body)?;
    let rec = load_live(&b, &ns, &name).await?;
    check_description(req.description.as_deref())?;
    let mut rot = None;
    if let Some(r) = &req.rotation {
        if r.enabled && rec.kind != "password" {
            return Err(ApiError::bad_request(format!(
                "rotation applies only to type password, not {:?}",
                rec.kind
            )));
        }
        rot = Some((
            r.clone(),
            validate::check_rotation(r).map_err(ApiError::bad_request)?,
        ));
    }
    let event = d.allowed(&a.note());
    let rec = b
        .db()
        .update_spec(ns, name, req.description, rot, now, event)
        .await?;
    Ok(committed(Json(view(&b, &rec))))
}

pub(crate) async fn put_values(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    Keyed(key): Keyed,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    // The engine's mount is per namespace (`kv-acme-demo`, or OpenBao's
    // configured prefix before the namespace).
    let prefix = b
        .config
        .openbao
        .as_ref()
        .map_or("kv-", |o| o.mount_prefix.as_str());
    let answer = |version: u64, at: i64| PutValuesResponse {
        name: name.clone(),
        namespace: ns.clone(),
        mount: format!("{prefix}{ns}"),
        version,
        created_time: rfc3339(at),
    };
    // A retry of a write that was recorded: answered as it was.
    if let Some(k) = &key
        && let Some(w) = b.db().keyed_write(k.clone()).await?
    {
        let resp = Json(answer(w.version, w.created_at)).into_response();
        return replay(k, &w, (&ns, &name), a.note(), || Ok(resp));
    }
    let req: PutValuesRequest = parse_json(&body)?;
    check_data(&req.data)?;
    if let Some(cas) = req.cas.filter(|c| *c > validate::MAX_VERSION) {
        return Err(ApiError::bad_request(format!(
            "invalid cas {cas}: use the current version, from 0 to {}",
            validate::MAX_VERSION
        )));
    }
    let event = d.allowed(&a.note());
    let put = b
        .db()
        .put_values(&ns, &name, req.data, req.cas, now, event, key.clone())
        .await;
    match (put, &key) {
        // Its first attempt was recorded while this one was on its way.
        (Err(StoreError::Replayed(w)), Some(k)) => {
            let resp = Json(answer(w.version, w.created_at)).into_response();
            replay(k, &w, (&ns, &name), a.note(), || Ok(resp))
        }
        (put, _) => Ok(committed(Json(answer(put?.get(), now)))),
    }
}

pub(crate) async fn sync_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    body: Bytes,
) -> ApiResult {
    let now = b.now();
    let patch: SyncPatch = parse_json(&body)?;
    let rec = load_live(&b, &ns, &name).await?;
    let mut sync = rec.sync.clone();
    if let Some(e) = patch.enabled {
        sync.enabled = e;
    }
    if let Some(t) = patch.target_secret_name {
        sync.target_secret_name = Some(t);
    }
    if let Some(r) = patch.refresh_interval {
        sync.refresh_interval = Some(r);
    }
    if let Some(k) = patch.keys {
        // An empty list means all keys.
        sync.keys = (!k.is_empty()).then_some(k);
        if rec.current_readable {
            check_allowlist(&sync, rec.current_keys.as_deref())?;
        }
    }
    check_sync(&sync)?;
    let event = d.allowed(&a.note().with(Fact::SyncEnabled(sync.enabled)));
    let rec = b.db().update_sync(ns, name, sync, now, event).await?;
    Ok(committed(Json(view(&b, &rec))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Checked here; the route layer resolved its meaning.
    #[serde(default)]
    #[allow(dead_code)]
    destroy: bool,
}

pub(crate) async fn delete_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let now = b.now();
    parse_query::<DeleteQuery>(q.as_deref())?;
    let destroy = a.resolved.permission == Permission::Project(Op::Destroy);
    let event = d.allowed(&a.note());
    b.db()
        .delete(ns.clone(), name.clone(), destroy, now, event)
        .await?;
    let resp = DeleteResponse {
        name,
        namespace: ns,
        deleted: true,
        destroyed: destroy,
    };
    Ok(committed(Json(resp)))
}

pub(crate) async fn restore_secret(
    State(b): State<Shared>,
    Extension(d): Extension<Draft>,
    a: Authorized,
    SecretPath { ns, name }: SecretPath,
) -> ApiResult {
    let now = b.now();
    let event = d.allowed(&a.note());
    let rec = b.db().restore(ns, name, now, event).await?;
    Ok(committed(Json(view(&b, &rec))))
}

/// An allowlist may name only keys the values have (`have`; None: not
/// known, for versions written before key names were recorded).
fn check_allowlist(sync: &SyncSpec, have: Option<&[String]>) -> Result<(), ApiError> {
    let (Some(want), Some(have)) = (&sync.keys, have) else {
        return Ok(());
    };
    let missing: Vec<&str> = want
        .iter()
        .filter(|k| !have.contains(k))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "the key allowlist names {}, which the secret does not have; its keys: {}",
        missing.join(", "),
        if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        }
    )))
}
