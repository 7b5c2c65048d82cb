//! Stored versions: write (with check-and-set and the history window),
//! read, list, destroy one, and scheduled rotation.

use super::{
    AsyncStore, AuditRecord, Cached, Ctx, DEFAULT_MAX_VERSIONS, Result, Sealed, Store, StoreError,
    StoredVersion, Values, VersionData, get_any, json, mark_synced, not_found, require_live,
};
use crate::clock::{add_ms, rfc3339};
use kube_dc_api::wire::{Data, Rotation, VersionInfo};
use rusqlite::{Connection, OptionalExtension, params};

impl Store {
    /// Writes a new version. `cas`: the version the caller expects to be
    /// current (0 = the secret must have no version yet).
    pub fn put_values(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        cas: Option<u64>,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<u64> {
        if !self.values.external() {
            return self.write(
                audit,
                put_values_job(ns, name, data.clone(), cas, now, None),
            );
        }
        let _turn = self.engine_turn_blocking(ns, name);
        let (current, max_versions) = self.read(|c| put_plan(c, ns, name, cas))?;
        let (version, sealed) = self.values.put(ns, name, data, current, max_versions)?;
        let pre = Prewritten {
            based_on: current,
            version,
            sealed,
        };
        self.write(
            audit,
            put_values_job(ns, name, data.clone(), cas, now, Some(pre)),
        )
    }
}

impl AsyncStore {
    /// [`Store::put_values`], awaited, with its audit event. On an external
    /// engine the value is written there first, concurrently with other
    /// secrets' writes (one at a time per secret), and only the record of
    /// it goes through the writer.
    pub async fn put_values(
        &self,
        ns: &str,
        name: &str,
        data: Data,
        cas: Option<u64>,
        now: i64,
        audit: AuditRecord,
    ) -> Result<u64> {
        let store = &self.0;
        if !store.values.external() {
            let job = put_values_job(ns, name, data, cas, now, None);
            return store.write_async(Some(audit), true, job).await;
        }
        let _turn = store.engine_turn(ns, name).lock().await;
        let (n, m) = (ns.to_owned(), name.to_owned());
        let (current, max_versions) = self
            .call(move |s| s.read(|c| put_plan(c, &n, &m, cas)))
            .await?;
        let (version, sealed) = store
            .values
            .clone()
            .put_async(ns.into(), name.into(), data.clone(), current, max_versions)
            .await?;
        let pre = Prewritten {
            based_on: current,
            version,
            sealed,
        };
        let job = put_values_job(ns, name, data, cas, now, Some(pre));
        store.write_async(Some(audit), true, job).await
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
fn kv_meta(c: &Connection, ns: &str, name: &str) -> Result<(u64, u32)> {
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
        Some(expected) if expected != current => Err(StoreError::Conflict(format!(
            "check-and-set failed: the current version is {current}, not {expected}"
        ))),
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
) -> impl FnOnce(&Ctx, &Connection) -> Result<u64> + Send + 'static {
    let (ns, name) = (ns.to_owned(), name.to_owned());
    move |ctx, tx| {
        let (ns, name) = (ns.as_str(), name.as_str());
        if let Some(p) = &pre {
            p.undo_unless_committed(ctx, ns, name);
        }
        require_live(tx, ns, name)?;
        let v = write_version(ctx, tx, ns, name, &data, cas, now, pre)?;
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
            return Err(StoreError::Conflict(format!(
                "secret {name:?} changed while its new version was being written (it is now at \
                 version {current}, not {}); try again",
                p.based_on
            )));
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
    tx.exec(
            "INSERT INTO kv_meta (namespace, name, current_version, max_versions, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET current_version = ?3, updated_at = ?5",
            params![ns, name, version, max_versions, now],
        )?;
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
    /// Whether a rotation may be due at `now` (false: certainly not, known
    /// without touching the database).
    pub fn may_have_due_rotations(&self, now: i64) -> bool {
        now >= self
            .rotation_hint
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Forgets what [`Self::may_have_due_rotations`] knows: a schedule changed.
    pub(super) fn schedules_changed(&self) {
        self.rotation_hint
            .store(0, std::sync::atomic::Ordering::Release);
    }

    /// Secrets whose rotation is due, across all namespaces.
    pub fn due_rotations(&self, now: i64) -> Result<Vec<(String, String)>> {
        let (due, next) = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT namespace, name FROM managed_secrets
                 WHERE deleted_at IS NULL AND next_rotation IS NOT NULL AND next_rotation <= ?1",
            )?;
            let rows = st.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let due = rows.collect::<Result<Vec<_>, _>>()?;
            let next: Option<i64> = c.row(
                "SELECT MIN(next_rotation) FROM managed_secrets
                 WHERE deleted_at IS NULL AND next_rotation > ?1",
                params![now],
                |r| r.get(0),
            )?;
            Ok((due, next))
        })?;
        // Another process sharing the directory (or a change racing this
        // look) may schedule one too: look again within a second whatever
        // the schedule says.
        if due.is_empty() {
            let hint = next.unwrap_or(i64::MAX).min(now.saturating_add(1000));
            self.rotation_hint
                .store(hint, std::sync::atomic::Ordering::Release);
        }
        Ok(due)
    }

    /// Writes a generated version if the rotation is still due (another
    /// process may have done it already). Returns the new version.
    pub fn rotate_if_due(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        generate: impl FnOnce(&Rotation) -> Data + Send + 'static,
        audit: Option<&AuditRecord>,
    ) -> Result<Option<u64>> {
        let (ns, name) = (ns.to_owned(), name.to_owned());
        if !self.values.external() {
            return self.write(audit, move |ctx, tx| {
                let (ns, name) = (ns.as_str(), name.as_str());
                let Some(interval) = rotation_due(tx, ns, name, now)? else {
                    return Ok(None);
                };
                let rec = get_any(tx, ns, name)?.ok_or_else(|| not_found(ns, name))?;
                let data = generate(rec.rotation.as_ref().expect("due, so it has a rotation"));
                let v = write_version(ctx, tx, ns, name, &data, None, now, None)?;
                record_rotation(tx, ns, name, now, interval)?;
                Ok(Some(v))
            });
        }
        // An external engine: the generated version is written there
        // first, and recorded if the rotation is still due then.
        let _turn = self.engine_turn_blocking(&ns, &name);
        let plan = self.read(|c| {
            let Some(_) = rotation_due(c, &ns, &name, now)? else {
                return Ok(None);
            };
            let rec = get_any(c, &ns, &name)?.ok_or_else(|| not_found(&ns, &name))?;
            Ok(Some((rec.rotation, kv_meta(c, &ns, &name)?)))
        })?;
        let Some((Some(rotation), (current, max_versions))) = plan else {
            return Ok(None);
        };
        let data = generate(&rotation);
        let (version, sealed) = self.values.put(&ns, &name, &data, current, max_versions)?;
        let pre = Prewritten {
            based_on: current,
            version,
            sealed,
        };
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            pre.undo_unless_committed(ctx, ns, name);
            let Some(interval) = rotation_due(tx, ns, name, now)? else {
                // Rotated meanwhile (another process): the prepared
                // version goes (`not due` is a success, so say it here).
                let (values, n, m, v) =
                    (ctx.values.clone(), ns.to_owned(), name.to_owned(), pre.version);
                ctx.after_commit(move || {
                    if let Err(e) = values.destroy_version(&n, &m, v) {
                        tracing::error!("an unused rotation of {m} in {n} stays in the engine as version {v}: {e}");
                    }
                });
                return Ok(None);
            };
            let v = write_version(ctx, tx, ns, name, &data, None, now, Some(pre))?;
            record_rotation(tx, ns, name, now, interval)?;
            Ok(Some(v))
        })
    }
}

/// The rotation interval of `name` if its rotation is due at `now`.
fn rotation_due(
    c: &Connection,
    ns: &str,
    name: &str,
    now: i64,
) -> Result<Option<std::time::Duration>> {
    let Some(rec) = get_any(c, ns, name)? else {
        return Ok(None);
    };
    let (Some(rotation), Some(next)) = (rec.rotation.as_ref(), rec.next_rotation) else {
        return Ok(None);
    };
    if rec.deleted_at.is_some() || !rotation.enabled || next > now {
        return Ok(None);
    }
    kube_dc_api::validate::parse_interval(&rotation.interval)
        .map(Some)
        .map_err(StoreError::Invalid)
}

fn record_rotation(
    tx: &Connection,
    ns: &str,
    name: &str,
    now: i64,
    interval: std::time::Duration,
) -> Result<()> {
    tx.exec(
        "UPDATE managed_secrets SET last_rotated = ?3, next_rotation = ?4, updated_at = ?3
         WHERE namespace = ?1 AND name = ?2",
        params![ns, name, now, add_ms(now, interval)],
    )?;
    mark_synced(tx, ns, name, now)
}
