//! Managed secrets: the resource, its sync and rotation settings, delete
//! and restore.

use super::db::{Connection, OptionalExtension, Row};
use super::idempotency::{check_unused, remember};
use super::protocol::{Staged, record_deleted, record_version};
use super::{
    AuditRecord, Conflict, KvMeta, NewSecret, Result, SecretRecord, Store, StoreError, json,
};
use crate::clock::{add_ms, rfc3339};
use kube_dc_api::wire::{Data, Rotation, SyncSpec};
use rusqlite::params;
use std::time::Duration;

// The columns of a secret's row (`secret_from_row`), over `m` and `k`.
macro_rules! secret_columns {
    () => {
        "m.namespace, m.name, m.type, m.description, m.sync, m.rotation,
    m.imported_from, m.created_at, m.updated_at, m.last_synced, m.last_rotated, m.next_rotation,
    m.deleted_at, k.current_version, k.max_versions, k.created_at, k.updated_at,
    cv.destroyed = 0, cv.keys, cv.created_at"
    };
}

/// The columns of [`secret_columns`], which [`secret_from_row`] reads.
pub(super) const SECRET_COLUMNS: usize = 20;

// The current version's row (`cv`), for whether it is readable and its keys,
// read from the index that holds those columns (schema version 8): without
// statistics the planner prefers the primary key, whose row also holds the
// sealed value.
macro_rules! current_version_join {
    () => {
        " LEFT JOIN kv_versions cv INDEXED BY kv_versions_shown
        ON cv.namespace = m.namespace AND cv.name = m.name AND cv.version = k.current_version"
    };
}

// A secret's row joined with its KV metadata, for the namespace (`?1`)
// and name (`?2`) of the CTE `p` the caller defines. The parameters are
// bound in a CTE rather than compared in `WHERE`: SQLite propagates a
// `WHERE` constant into the join, which marks the statement as dependent on
// the bound values and has it re-parsed at every execution.
macro_rules! select_secret {
    ($p:literal, $rest:literal) => {
        concat!(
            "WITH p(ns, n) AS (SELECT ",
            $p,
            ")\n    SELECT ",
            secret_columns!(),
            "\n    FROM p JOIN managed_secrets m ON m.namespace = p.ns ",
            $rest,
            " LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name",
            current_version_join!()
        )
    };
}

/// A read's one statement (`versions::reveal_in`): a secret's row, as
/// [`get_any`] reads it, and then the row of the version read (`?3`, or
/// the current one when NULL).
pub(super) const REVEAL_SQL: &str = concat!(
    "WITH p(ns, n, v) AS (SELECT ?1, ?2, CAST(?3 AS BIGINT))\n    SELECT ",
    secret_columns!(),
    ", rv.created_at, rv.nonce, rv.ciphertext, rv.destroyed
    FROM p JOIN managed_secrets m ON m.namespace = p.ns AND m.name = p.n
    LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name",
    current_version_join!(),
    "\n    LEFT JOIN kv_versions rv ON rv.namespace = m.namespace AND rv.name = m.name
        AND rv.version = COALESCE(p.v, k.current_version)"
);

impl Store {
    /// The live secrets of namespace `?1` in name order. It walks the
    /// `(namespace, name)` key in order (no sort); the benchmark runs this
    /// exact text in `sqlite3` as its reference.
    pub const LIST_SQL: &str = concat!(
        "SELECT ",
        secret_columns!(),
        "\n    FROM managed_secrets m LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name",
        current_version_join!(),
        "\n    WHERE m.namespace = ?1 AND m.deleted_at IS NULL ORDER BY m.name"
    );

    /// [`Store::LIST_SQL`] for the soft-deleted secrets of `?1`.
    pub const LIST_DELETED_SQL: &str = concat!(
        "SELECT ",
        secret_columns!(),
        "\n    FROM managed_secrets m LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name",
        current_version_join!(),
        "\n    WHERE m.namespace = ?1 AND m.deleted_at IS NOT NULL ORDER BY m.name"
    );

    /// The live secret; not found (saying so when it is soft-deleted, with
    /// the restore command) otherwise.
    pub fn get_live(&self, ns: &str, name: &str) -> Result<SecretRecord> {
        self.read(|c| require_live(c, ns, name))
    }

    /// Whether the secret is soft-deleted (`Some(true)`), live
    /// (`Some(false)`), or not there at all (`None`).
    pub(super) fn deleted_state(&self, ns: &str, name: &str) -> Result<Option<bool>> {
        self.read(|c| get_any(c, ns, name))
            .map(|r| r.map(|s| s.deleted_at.is_some()))
    }

    /// The secret, if it exists and is not soft-deleted.
    pub fn get(&self, ns: &str, name: &str) -> Result<Option<SecretRecord>> {
        self.read(|c| get_any(c, ns, name))
            .map(|r| r.filter(|s| s.deleted_at.is_none()))
    }

    /// Creates the ManagedSecret and, if given, its first version, in one
    /// transaction. `fault` is called between the two steps (tests inject a
    /// failure there to prove the rollback).
    pub fn create(
        &self,
        new: NewSecret,
        data: Option<&Data>,
        now: i64,
        fault: impl FnOnce() -> Result<()> + Send + 'static,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        let data = data.cloned();
        // Through the write protocol (`protocol`): on an external engine
        // the first version is written there first, once the name is found
        // free.
        let (ns, name) = (new.namespace.as_str(), new.name.as_str());
        let _turn = self.engine_turn_blocking(ns, name)?;
        let staged = match &data {
            Some(d) => self.stage_first_version((ns, name), d, |c| name_free(c, ns, name))?,
            None => Staged::Nothing,
        };
        let out = self.write(audit, move |ctx, tx| {
            staged.undo_unless_committed(ctx, &new.namespace, &new.name);
            check_unused(tx, new.key.as_ref())?;
            name_free(tx, &new.namespace, &new.name)?;
            let next_rotation = match (&new.rotation, new.rotation_interval) {
                (Some(r), Some(iv)) if r.enabled => Some(add_ms(now, iv)),
                _ => None,
            };
            tx.exec(
                "INSERT INTO managed_secrets (namespace, name, type, description, sync, rotation,
                    imported_from, created_at, updated_at, next_rotation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
                params![
                    new.namespace,
                    new.name,
                    new.kind,
                    new.description,
                    json(&new.sync),
                    new.rotation.as_ref().map(json),
                    new.imported_from,
                    now,
                    next_rotation,
                ],
            )?;
            // A brand-new secret has no KV history; a leftover from a destroyed
            // one was already removed by destroy.
            tx.exec(
                "DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2",
                params![new.namespace, new.name],
            )?;
            tx.exec(
                "DELETE FROM kv_meta WHERE namespace = ?1 AND name = ?2",
                params![new.namespace, new.name],
            )?;
            let mut version = 0;
            if let Some(data) = &data {
                version =
                    record_version(ctx, tx, &new.namespace, &new.name, data, None, now, staged)?;
                if new.rotation_interval.is_some() && new.rotation.as_ref().is_some_and(|r| r.enabled) {
                    tx.exec(
                        "UPDATE managed_secrets SET last_rotated = ?3 WHERE namespace = ?1 AND name = ?2",
                        params![new.namespace, new.name, now],
                    )?;
                }
            }
            projection_free(tx, &new.namespace, &new.name, &new.sync)?;
            mark_synced(tx, &new.namespace, &new.name, now)?;
            remember(tx, new.key.as_ref(), (&new.namespace, &new.name), version, now)?;
            fault()?;
            get_any(tx, &new.namespace, &new.name)?
                .ok_or_else(|| StoreError::Internal("created row vanished".into()))
        });
        self.schedules_changed();
        out
    }

    /// Soft-deletes the secret (its history is kept until it is destroyed),
    /// with its audit event.
    pub fn soft_delete(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let _turn = self.engine_turn_blocking(ns, name)?;
        let staged = self.stage_deleted(ns, name, true)?;
        let (ns, name) = (ns.to_owned(), name.to_owned());
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            staged.undo_unless_committed(ctx, ns, name);
            require_live(tx, ns, name)?;
            tx.exec(
                "UPDATE managed_secrets SET deleted_at = ?3, updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            record_deleted(ctx, tx, ns, name, true, staged)
        })
    }

    /// Erases the resource and every stored version. Works on a soft-deleted
    /// secret too (that is how its kept history is finally removed).
    pub fn destroy(&self, ns: &str, name: &str, audit: Option<&AuditRecord>) -> Result<()> {
        let (ns, name) = (ns.to_owned(), name.to_owned());
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            if get_any(tx, ns, name)?.is_none() {
                return Err(not_found(ns, name));
            }
            let (values, ns2, name2) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
            ctx.after_commit(move || {
                if let Err(e) = values.destroy_all(&ns2, &name2) {
                    tracing::error!(
                        "secret {name2} in {ns2} is destroyed on record but the value engine \
                         could not erase it: {e}"
                    );
                }
            });
            for table in ["kv_versions", "kv_meta", "managed_secrets"] {
                tx.exec(
                    &format!("DELETE FROM {table} WHERE namespace = ?1 AND name = ?2"),
                    params![ns, name],
                )?;
            }
            Ok(())
        })?;
        self.checkpoint()
    }

    /// Restores a soft-deleted secret, with its audit event.
    pub fn restore(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        let turn = self.engine_turn_blocking(ns, name)?;
        let staged = self.stage_deleted(ns, name, false)?;
        let (ns, name) = (ns.to_owned(), name.to_owned());
        let out = self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            staged.undo_unless_committed(ctx, ns, name);
            match get_any(tx, ns, name)? {
                None => return Err(not_found(ns, name)),
                Some(s) if s.deleted_at.is_none() => {
                    return Err(Conflict::NotDeleted {
                        name: name.to_owned(),
                    }
                    .into());
                }
                Some(s) => projection_free(tx, ns, name, &s.sync)?,
            }
            tx.exec(
                "UPDATE managed_secrets SET deleted_at = NULL, updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            record_deleted(ctx, tx, ns, name, false, staged)?;
            mark_synced(tx, ns, name, now)?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(ns, name))
        });
        drop(turn);
        self.schedules_changed();
        out
    }

    /// Replaces the secret's projection settings, with its audit event.
    pub fn update_sync(
        &self,
        ns: &str,
        name: &str,
        sync: &SyncSpec,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        let (ns, name, sync) = (ns.to_owned(), name.to_owned(), sync.clone());
        self.write(audit, move |_, tx| {
            let (ns, name, sync) = (ns.as_str(), name.as_str(), &sync);
            require_live(tx, ns, name)?;
            projection_free(tx, ns, name, sync)?;
            tx.exec(
                "UPDATE managed_secrets SET sync = ?3, updated_at = ?4 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, json(sync), now],
            )?;
            mark_synced(tx, ns, name, now)?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(ns, name))
        })
    }

    /// Replaces the secret's description and rotation, with its audit event.
    pub fn update_spec(
        &self,
        ns: &str,
        name: &str,
        description: Option<&str>,
        rotation: Option<(&Rotation, Duration)>,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        let (ns, name) = (ns.to_owned(), name.to_owned());
        let description = description.map(str::to_owned);
        let rotation = rotation.map(|(r, iv)| (r.clone(), iv));
        let out = self.write(audit, move |_, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            require_live(tx, ns, name)?;
            if let Some(d) = &description {
                tx.exec(
                    "UPDATE managed_secrets SET description = ?3 WHERE namespace = ?1 AND name = ?2",
                    params![ns, name, d],
                )?;
            }
            if let Some((r, iv)) = &rotation {
                let next = r.enabled.then(|| add_ms(now, *iv));
                tx.exec(
                    "UPDATE managed_secrets SET rotation = ?3, next_rotation = ?4 WHERE namespace = ?1 AND name = ?2",
                    params![ns, name, json(r), next],
                )?;
            }
            tx.exec(
                "UPDATE managed_secrets SET updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(ns, name))
        });
        self.schedules_changed();
        out
    }
}

/// Two managed secrets must never project into one Kubernetes Secret: the
/// projection `name` would have with `sync` must be free in `ns`.
pub(super) fn projection_free(
    tx: &Connection,
    ns: &str,
    name: &str,
    sync: &SyncSpec,
) -> Result<()> {
    if !sync.enabled {
        return Ok(());
    }
    let target = sync.target(name);
    let others: Vec<(String, String)> = tx.query_map(
        "SELECT name, sync FROM managed_secrets WHERE namespace = ?1 AND name != ?2 AND deleted_at IS NULL",
        params![ns, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (other, text) in others {
        let theirs: SyncSpec = serde_json::from_str(&text).unwrap_or_default();
        if theirs.enabled && theirs.target(&other) == target {
            return Err(Conflict::ProjectionTaken {
                target: target.to_owned(),
                other,
            }
            .into());
        }
    }
    Ok(())
}

pub(super) fn not_found(ns: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("secret {name:?} not found in namespace {ns:?}"))
}

pub(super) fn require_live(c: &Connection, ns: &str, name: &str) -> Result<SecretRecord> {
    match get_any(c, ns, name)? {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(s) => Err(StoreError::NotFound(format!(
            "secret {name:?} was deleted at {} (soft delete: its history is kept); restore it first: kube-dc secrets restore {name}",
            rfc3339(s.deleted_at.unwrap_or_default())
        ))),
        None => Err(not_found(ns, name)),
    }
}

/// Inside a writer's job (sent later on PostgreSQL: `exec_later`).
pub(super) fn mark_synced(c: &Connection, ns: &str, name: &str, now: i64) -> Result<()> {
    c.exec_later(
        "UPDATE managed_secrets SET last_synced = ?3 WHERE namespace = ?1 AND name = ?2",
        params![ns, name, now],
    )?;
    Ok(())
}

/// [`get_any`]'s statement: the secret `?2` of namespace `?1`.
pub(super) const GET_ANY_SQL: &str = select_secret!("?1, ?2", "AND m.name = p.n");

pub(super) fn get_any(c: &Connection, ns: &str, name: &str) -> Result<Option<SecretRecord>> {
    Ok(c.row(GET_ANY_SQL, params![ns, name], secret_from_row)
        .optional()?)
}

pub(super) fn secret_from_row(r: &Row) -> super::db::Result<SecretRecord> {
    let sync: String = r.get(4)?;
    let rotation: Option<String> = r.get(5)?;
    let current: Option<u64> = r.get(13)?;
    Ok(SecretRecord {
        namespace: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        description: r.get(3)?,
        sync: serde_json::from_str(&sync).unwrap_or_default(),
        rotation: rotation.and_then(|t| serde_json::from_str(&t).ok()),
        imported_from: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        last_synced: r.get(9)?,
        last_rotated: r.get(10)?,
        next_rotation: r.get(11)?,
        deleted_at: r.get(12)?,
        kv: match current {
            Some(cv) => Some(KvMeta {
                current_version: cv,
                max_versions: r.get(14)?,
                created_at: r.get(15)?,
                updated_at: r.get(16)?,
            }),
            None => None,
        },
        current_readable: r.get::<Option<bool>>(17)?.unwrap_or(false),
        current_created_at: r.get(19)?,
        current_keys: r
            .get::<Option<String>>(18)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

/// A new secret's name must be free: refused when it is live, or
/// soft-deleted with its history kept.
fn name_free(c: &Connection, ns: &str, name: &str) -> Result<()> {
    match get_any(c, ns, name)? {
        None => Ok(()),
        Some(existing) => {
            let name = name.to_owned();
            Err(if existing.deleted_at.is_some() {
                Conflict::SoftDeleted { name }
            } else {
                Conflict::Exists { name }
            }
            .into())
        }
    }
}
