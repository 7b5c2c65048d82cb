//! Stored versions: write (with check-and-set and the history window),
//! read, list, destroy one, and scheduled rotation.

use super::{
    AsyncStore, AuditRecord, Cached, Ctx, DEFAULT_MAX_VERSIONS, Result, Store, StoreError,
    StoredVersion, Values, VersionData, get_any, json, mark_synced, require_live,
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
        self.write(audit, put_values_job(ns, name, data.clone(), cas, now))
    }
}

impl AsyncStore {
    /// [`Store::put_values`], awaited, with its audit event.
    pub async fn put_values(
        &self,
        ns: &str,
        name: &str,
        data: Data,
        cas: Option<u64>,
        now: i64,
        audit: AuditRecord,
    ) -> Result<u64> {
        let job = put_values_job(ns, name, data, cas, now);
        self.0.write_async(Some(audit), true, job).await
    }
}

fn put_values_job(
    ns: &str,
    name: &str,
    data: Data,
    cas: Option<u64>,
    now: i64,
) -> impl FnOnce(&Ctx, &Connection) -> Result<u64> + Send + 'static {
    let (ns, name) = (ns.to_owned(), name.to_owned());
    move |ctx, tx| {
        let (ns, name) = (ns.as_str(), name.as_str());
        require_live(tx, ns, name)?;
        let v = write_version(ctx, tx, ns, name, &data, cas, now)?;
        tx.exec(
            "UPDATE managed_secrets SET updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
            params![ns, name, now],
        )?;
        mark_synced(tx, ns, name, now)?;
        Ok(v)
    }
}

pub(super) fn write_version(
    ctx: &Ctx,
    tx: &Connection,
    ns: &str,
    name: &str,
    data: &Data,
    cas: Option<u64>,
    now: i64,
) -> Result<u64> {
    let meta: Option<(u64, u32)> = tx
        .row(
            "SELECT current_version, max_versions FROM kv_meta WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (current, max_versions) = meta.unwrap_or((0, DEFAULT_MAX_VERSIONS));
    if let Some(expected) = cas
        && expected != current
    {
        return Err(StoreError::Conflict(format!(
            "check-and-set failed: the current version is {current}, not {expected}"
        )));
    }
    let (version, sealed) = ctx.values.put(ns, name, data, current, max_versions)?;
    {
        // Should this transaction not commit, the engine's version goes.
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
        Some((created_at, nonce, ct, false)) => Ok(Some(VersionData {
            version: want,
            created_at,
            data: values.get(ns, name, want, nonce.zip(ct))?,
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
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            let Some(rec) = get_any(tx, ns, name)? else {
                return Ok(None);
            };
            let (Some(rotation), Some(next)) = (rec.rotation.as_ref(), rec.next_rotation) else {
                return Ok(None);
            };
            if rec.deleted_at.is_some() || !rotation.enabled || next > now {
                return Ok(None);
            }
            let interval = kube_dc_api::validate::parse_interval(&rotation.interval)
                .map_err(StoreError::Invalid)?;
            let data = generate(rotation);
            let v = write_version(ctx, tx, ns, name, &data, None, now)?;
            tx.exec(
                "UPDATE managed_secrets SET last_rotated = ?3, next_rotation = ?4, updated_at = ?3
                 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now, add_ms(now, interval)],
            )?;
            mark_synced(tx, ns, name, now)?;
            Ok(Some(v))
        })
    }
}
