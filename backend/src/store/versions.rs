//! Stored versions: write (with check-and-set and the history window),
//! read, list, destroy one, and scheduled rotation.

use super::idempotency::{IdempotencyKey, check_unused, remember};
use super::{
    AsyncStore, AuditRecord, Cached, Conflict, Ctx, DEFAULT_MAX_VERSIONS, Result, Sealed, Store,
    StoreError, StoredVersion, Values, VersionData, json, mark_synced, require_live,
};
use crate::clock::rfc3339;
use kube_dc_api::wire::{Data, VersionInfo};
use rusqlite::{Connection, OptionalExtension, params};

impl Store {
    /// Writes a new version. `cas`: the version the caller expects to be
    /// current (0 = the secret must have no version yet); `key`: its
    /// `Idempotency-Key` (see `idempotency`).
    #[allow(clippy::too_many_arguments)]
    pub fn put_values(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        cas: Option<u64>,
        now: i64,
        audit: Option<&AuditRecord>,
        key: Option<IdempotencyKey>,
    ) -> Result<u64> {
        if !self.values.external() {
            return self.write(
                audit,
                put_values_job(ns, name, data.clone(), cas, now, None, key),
            );
        }
        let _turn = self.engine_turn_blocking(ns, name);
        let (current, max_versions) = self.read(|c| put_plan(c, ns, name, cas))?;
        let (version, sealed) = self.engine_put(ns, name, data, (current, max_versions), audit)?;
        let pre = Prewritten {
            based_on: current,
            version,
            sealed,
        };
        self.write(
            audit,
            put_values_job(ns, name, data.clone(), cas, now, Some(pre), key),
        )
    }

    /// Writes the next version to an external engine, on `current` of
    /// `(current, max_versions)`; versions found there that the record
    /// lacks are listed and audited (`audit`: the write's own event, for
    /// where to file that), and the write refused.
    pub(super) fn engine_put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        (current, max_versions): (u64, u32),
        audit: Option<&AuditRecord>,
    ) -> Result<(u64, Option<Sealed>)> {
        match self.values.put(ns, name, data, current, max_versions) {
            Err(e @ StoreError::Unrecorded { .. }) => {
                Err(self.adopt_unrecorded(ns, name, audit, e))
            }
            put => put,
        }
    }
}

impl AsyncStore {
    /// [`Store::put_values`], awaited, with its audit event. On an external
    /// engine the value is written there first, concurrently with other
    /// secrets' writes (one at a time per secret), and only the record of
    /// it goes through the writer.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_values(
        &self,
        ns: &str,
        name: &str,
        data: Data,
        cas: Option<u64>,
        now: i64,
        audit: AuditRecord,
        key: Option<IdempotencyKey>,
    ) -> Result<u64> {
        let store = &self.0;
        if !store.values.external() {
            let job = put_values_job(ns, name, data, cas, now, None, key);
            return store.write_async(Some(audit), true, job).await;
        }
        let _turn = store.engine_turn(ns, name).lock().await;
        let (n, m) = (ns.to_owned(), name.to_owned());
        let (current, max_versions) = self
            .call(move |s| s.read(|c| put_plan(c, &n, &m, cas)))
            .await?;
        let put = store
            .engine_call(store.values.clone().put_async(
                ns.into(),
                name.into(),
                data.clone(),
                current,
                max_versions,
            ))
            .await;
        let (version, sealed) = match put {
            // A retry (it carries a key) of a write that OpenBao applied
            // but whose answer was lost or came too late: the one version
            // beyond the record holds exactly its values, so it is this
            // write's, recorded now with this request's event.
            Err(StoreError::Unrecorded {
                found, recorded, ..
            }) if key.is_some()
                && found == recorded + 1
                && self.engine_holds(ns, name, found, &data).await? =>
            {
                (found, None)
            }
            Err(e @ StoreError::Unrecorded { .. }) => {
                let (n, m, a) = (ns.to_owned(), name.to_owned(), audit.clone());
                let answer = self
                    .call(move |s| Ok(s.adopt_unrecorded(&n, &m, Some(&a), e)))
                    .await;
                return Err(answer.unwrap_or_else(|e| e));
            }
            put => put?,
        };
        let pre = Prewritten {
            based_on: current,
            version,
            sealed,
        };
        let job = put_values_job(ns, name, data, cas, now, Some(pre), key);
        store.write_async(Some(audit), true, job).await
    }

    /// Whether the engine's `version` of the secret holds exactly `data`.
    async fn engine_holds(&self, ns: &str, name: &str, version: u64, data: &Data) -> Result<bool> {
        let store = &self.0;
        let got = store
            .values
            .clone()
            .get_async(ns.into(), name.into(), version, None)
            .await;
        Ok(matches!(got, Ok(d) if d == *data))
    }
}

/// A version an external engine already holds, written before the
/// writer's transaction that records it: on the version `based_on`.
pub(super) struct Prewritten {
    pub based_on: u64,
    pub version: u64,
    pub sealed: Option<Sealed>,
}

impl Prewritten {
    /// Registers the engine's version to be destroyed should the job not
    /// commit. First thing in the job: whatever then fails, it is undone.
    pub fn undo_unless_committed(&self, ctx: &Ctx, ns: &str, name: &str) {
        undo_version(ctx, ns, name, self.version);
    }
}

/// Destroys `version` in the engine if the running job does not commit.
fn undo_version(ctx: &Ctx, ns: &str, name: &str, version: u64) {
    let (values, ns, name) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
    ctx.on_undo(move || {
        if let Err(e) = values.destroy_version(&ns, &name, version) {
            tracing::error!(
                "version {version} of {name} in {ns} was written to the value engine but not \
                 recorded, and could not be destroyed there: {e}"
            );
        }
    });
}

/// What a write needs to know before it goes to an external engine: the
/// live secret's current version (checked against `cas`) and its history
/// window.
fn put_plan(c: &Connection, ns: &str, name: &str, cas: Option<u64>) -> Result<(u64, u32)> {
    require_live(c, ns, name)?;
    let (current, max_versions) = kv_meta(c, ns, name)?;
    check_cas(cas, current)?;
    Ok((current, max_versions))
}

/// The current version (0: none yet) and the history window.
pub(super) fn kv_meta(c: &Connection, ns: &str, name: &str) -> Result<(u64, u32)> {
    let meta: Option<(u64, u32)> = c
        .row(
            "SELECT current_version, max_versions FROM kv_meta WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(meta.unwrap_or((0, DEFAULT_MAX_VERSIONS)))
}

fn check_cas(cas: Option<u64>, current: u64) -> Result<()> {
    match cas {
        Some(expected) if expected != current => {
            Err(Conflict::CasMismatch { expected, current }.into())
        }
        _ => Ok(()),
    }
}

fn put_values_job(
    ns: &str,
    name: &str,
    data: Data,
    cas: Option<u64>,
    now: i64,
    pre: Option<Prewritten>,
    key: Option<IdempotencyKey>,
) -> impl FnOnce(&Ctx, &Connection) -> Result<u64> + Send + 'static {
    let (ns, name) = (ns.to_owned(), name.to_owned());
    move |ctx, tx| {
        let (ns, name) = (ns.as_str(), name.as_str());
        if let Some(p) = &pre {
            p.undo_unless_committed(ctx, ns, name);
        }
        check_unused(tx, key.as_ref())?;
        require_live(tx, ns, name)?;
        let v = write_version(ctx, tx, ns, name, &data, cas, now, pre)?;
        remember(tx, key.as_ref(), (ns, name), v, now)?;
        tx.exec(
            "UPDATE managed_secrets SET updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
            params![ns, name, now],
        )?;
        mark_synced(tx, ns, name, now)?;
        Ok(v)
    }
}

/// Records a new version of `data`: the one `pre` holds already (whose
/// undo the job registered), or else one the engine writes now.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_version(
    ctx: &Ctx,
    tx: &Connection,
    ns: &str,
    name: &str,
    data: &Data,
    cas: Option<u64>,
    now: i64,
    pre: Option<Prewritten>,
) -> Result<u64> {
    let (current, max_versions) = kv_meta(tx, ns, name)?;
    check_cas(cas, current)?;
    let (version, sealed) = match pre {
        Some(p) if p.based_on != current => {
            return Err(Conflict::ChangedMeanwhile {
                name: name.to_owned(),
                doing: "written",
            }
            .into());
        }
        Some(p) => (p.version, p.sealed),
        None => {
            let (version, sealed) = ctx.values.put(ns, name, data, current, max_versions)?;
            // Should this transaction not commit, the engine's version goes.
            undo_version(ctx, ns, name, version);
            (version, sealed)
        }
    };
    // Versions the engine skipped (left destroyed by writes that never
    // committed) are listed as destroyed.
    for skipped in current + 1..version {
        tx.exec(
            "INSERT OR IGNORE INTO kv_versions (namespace, name, version, created_at, destroyed, destroyed_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?4)",
            params![ns, name, skipped, now],
        )?;
    }
    let (nonce, ct) = sealed.unzip();
    let keys = json(&data.keys().collect::<Vec<_>>());
    tx.exec(
        "INSERT INTO kv_versions (namespace, name, version, created_at, nonce, ciphertext, keys)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![ns, name, version, now, nonce, ct, keys],
    )?;
    set_current(tx, (ns, name), version, max_versions, now)?;
    // History window: keep the newest `max_versions`.
    tx.exec(
        "DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2 AND version <= ?3",
        params![ns, name, version as i64 - max_versions as i64],
    )?;
    Ok(version)
}

/// Reads one version (the current one when `version` is None).
/// `Ok(None)`: the secret has no readable value at that version.
pub(super) fn read_version_in(
    c: &Connection,
    values: &dyn Values,
    ns: &str,
    name: &str,
    version: Option<u64>,
) -> Result<Option<VersionData>> {
    let Some(row) = readable_version(c, ns, name, version)? else {
        return Ok(None);
    };
    Ok(Some(VersionData {
        version: row.version,
        created_at: row.created_at,
        data: values.get(ns, name, row.version, row.sealed)?,
    }))
}

/// A live version's row: what reading its values needs.
pub(super) struct ReadableVersion {
    pub version: u64,
    pub created_at: i64,
    pub sealed: Option<Sealed>,
}

/// The row of the version a read of `version` (the current one when None)
/// reads. `Ok(None)`: the secret has no readable value at that version.
pub(super) fn readable_version(
    c: &Connection,
    ns: &str,
    name: &str,
    version: Option<u64>,
) -> Result<Option<ReadableVersion>> {
    let current: Option<u64> = c
        .row(
            "SELECT current_version FROM kv_meta WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        if let Some(v) = version {
            return Err(StoreError::NotFound(format!(
                "secret {name:?} has no version {v} (it has no versions yet)"
            )));
        }
        return Ok(None);
    };
    let want = version.unwrap_or(current);
    let row: Option<StoredVersion> = c
        .row(
            "SELECT created_at, nonce, ciphertext, destroyed FROM kv_versions
                     WHERE namespace = ?1 AND name = ?2 AND version = ?3",
            params![ns, name, want],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match row {
        None if version.is_some() => Err(StoreError::NotFound(format!(
            "secret {name:?} has no version {want} (current is {current}; older versions \
                     may have left the history window)"
        ))),
        None => Ok(None),
        Some((_, _, _, true)) if version.is_some() => Err(StoreError::NotFound(format!(
            "version {want} of secret {name:?} was destroyed"
        ))),
        Some((_, _, _, true)) => Ok(None),
        Some((created_at, nonce, ct, false)) => Ok(Some(ReadableVersion {
            version: want,
            created_at,
            sealed: nonce.zip(ct),
        })),
    }
}

impl Store {
    /// See [`read_version_in`].
    pub fn read_version(
        &self,
        ns: &str,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<VersionData>> {
        self.read(|c| read_version_in(c, &*self.values, ns, name, version))
    }

    pub fn versions(&self, ns: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT version, created_at, destroyed, destroyed_at FROM kv_versions
                 WHERE namespace = ?1 AND name = ?2 ORDER BY version",
            )?;
            let rows = st.query_map(params![ns, name], |r| {
                let destroyed_at: Option<i64> = r.get(3)?;
                Ok(VersionInfo {
                    version: r.get(0)?,
                    created_time: rfc3339(r.get(1)?),
                    destroyed: r.get(2)?,
                    deletion_time: destroyed_at.map(rfc3339),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub fn destroy_version(
        &self,
        ns: &str,
        name: &str,
        version: u64,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let (ns, name) = (ns.to_owned(), name.to_owned());
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            require_live(tx, ns, name)?;
            let n = tx.exec(
                "UPDATE kv_versions SET nonce = NULL, ciphertext = NULL, destroyed = 1, destroyed_at = ?4
                 WHERE namespace = ?1 AND name = ?2 AND version = ?3 AND destroyed = 0",
                params![ns, name, version, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "secret {name:?} has no version {version} that is not already destroyed"
                )));
            }
            let (values, ns, name) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
            ctx.after_commit(move || {
                if let Err(e) = values.destroy_version(&ns, &name, version) {
                    tracing::error!(
                        "version {version} of {name} in {ns} is destroyed on record but the value \
                         engine could not destroy it: {e}; the next start retries"
                    );
                }
            });
            Ok(())
        })?;
        self.checkpoint()
    }
}

/// Makes `version` the secret's current one in `kv_meta` (created with
/// `max_versions` if the secret had none), changed at `at`.
pub(super) fn set_current(
    tx: &Connection,
    (ns, name): (&str, &str),
    version: u64,
    max_versions: u32,
    at: i64,
) -> Result<()> {
    tx.exec(
        "INSERT INTO kv_meta (namespace, name, current_version, max_versions, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (namespace, name) DO UPDATE SET current_version = ?3, updated_at = ?5",
        params![ns, name, version, max_versions, at],
    )?;
    Ok(())
}
