//! The one protocol by which a change reaches a secret's values.
//!
//! Values live in an engine ([`Values`]): in-process ([`super::SqliteValues`],
//! sealed into the version's own row) or external (OpenBao). The SQL store
//! records every version and, in the same transaction, the change's audit
//! event. Every change that touches the engine — create with values, put
//! (set, rollback, edit), scheduled rotation, soft delete and restore — goes
//! the same way:
//!
//! 1. **Turn.** On an external engine, one change at a time per secret
//!    ([`Store::engine_turn`]): its version is written before the writer
//!    records it, so two changes of one secret must not interleave.
//! 2. **Plan.** A read: what the change starts from (the live secret, its
//!    current version and history window), checked (`cas`).
//! 3. **Stage.** The engine call, giving a [`Staged`]. An external engine
//!    is called now, outside the writer, so that the writer never waits on
//!    the network; an in-process engine is not called yet
//!    ([`Staged::InJob`]).
//! 4. **Adopt.** Versions the engine holds beyond the record are writes
//!    that were cut off before they were recorded. On a recorded secret
//!    they are listed in one transaction with their `secrets.reconcile`
//!    event (`reconcile.rs`) and the change is refused as retryable
//!    ([`Conflict::Adopted`]) — unless it is a retry carrying an
//!    `Idempotency-Key` whose values they exactly are, which takes them as
//!    its own. On a new name they are a create of this backend's that was
//!    cut off (undone now, and the create goes on after them) or another
//!    tool's (refused, [`Conflict::Foreign`]).
//! 5. **Record.** The writer's job first registers the staged change's
//!    undo ([`Staged::undo_unless_committed`]: run if the job does not
//!    commit), checks that the plan still holds (`based_on`), records the
//!    change ([`record_version`], [`record_deleted`]; for `InJob` the engine
//!    call is made here, inside the transaction), the write's idempotency
//!    key and its audit event: one transaction, or nothing.
//!
//! Destroying (one version, or every version) runs the other way round: the
//! record commits first, then the engine erases (`JobCtx::after_commit`); a
//! value that then stays in the engine is unreadable through the backend,
//! and the failure is logged.

use super::db::{Connection, Dialect, OptionalExtension};
use rusqlite::params;

use super::{
    AsyncStore, AuditRecord, Conflict, DEFAULT_MAX_VERSIONS, JobCtx, Result, Sealed, Store,
    StoreError, json,
};
use kube_dc_api::wire::Data;

/// A change staged in the engine before the writer's job that records it
/// (step 3).
pub(super) enum Staged {
    /// An in-process engine: the change is made in the job, inside its
    /// transaction.
    InJob,
    /// Nothing was made in the engine (the job has nothing to change there,
    /// or will refuse).
    Nothing,
    /// A version the engine holds already, written on version `based_on`.
    Version {
        based_on: u64,
        version: u64,
        sealed: Option<Sealed>,
    },
    /// The current version `version` soft-deleted (`deleted`) or restored
    /// in the engine.
    Deleted { version: u64, deleted: bool },
}

impl Staged {
    /// Registers the engine's change to be reverted should the job not
    /// commit. First thing in the job: whatever then fails, it is undone.
    pub(super) fn undo_unless_committed(&self, ctx: &JobCtx, ns: &str, name: &str) {
        match *self {
            Staged::Version { version, .. } => undo_version(ctx, ns, name, version),
            Staged::Deleted { version, deleted } => undo_deleted(ctx, ns, name, version, deleted),
            Staged::InJob | Staged::Nothing => {}
        }
    }

    /// The version staged, if one was.
    pub(super) fn version(&self) -> Option<u64> {
        match self {
            Staged::Version { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// A change's turn at its secret on an external engine: this process's,
/// and on PostgreSQL every replica's. Held until dropped.
pub(super) struct Turn<'a>(
    #[allow(dead_code)] tokio::sync::MutexGuard<'a, ()>,
    #[allow(dead_code)] Option<super::turns::SharedTurn>,
);

impl Store {
    /// The turn a change of secret `name` in `ns` takes on an external
    /// engine (step 1; see `Store::engine_turns`).
    fn engine_turn(&self, ns: &str, name: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ns, name).hash(&mut h);
        &self.engine_turns[h.finish() as usize % self.engine_turns.len()]
    }

    /// [`Self::engine_turn`], waited for on this (blocking) thread, and on
    /// PostgreSQL the secret's turn among the replicas (`turns`); none on
    /// an in-process engine, whose changes run whole in the writer.
    pub(super) fn engine_turn_blocking(&self, ns: &str, name: &str) -> Result<Option<Turn<'_>>> {
        if !self.values.external() {
            return Ok(None);
        }
        let local = self.engine_turn(ns, name).blocking_lock();
        let shared = match &self.turns {
            Some(pool) => Some(pool.take(ns, name)?),
            None => None,
        };
        Ok(Some(Turn(local, shared)))
    }

    /// [`Self::engine_turn_blocking`], awaited.
    pub(super) async fn engine_turn_async(&self, ns: &str, name: &str) -> Result<Option<Turn<'_>>> {
        if !self.values.external() {
            return Ok(None);
        }
        let local = self.engine_turn(ns, name).lock().await;
        let shared = match &self.turns {
            Some(pool) => {
                let (pool, ns, name) = (pool.clone(), ns.to_owned(), name.to_owned());
                let taken = tokio::task::spawn_blocking(move || pool.take(&ns, &name))
                    .await
                    .map_err(|e| StoreError::Internal(format!("taking a turn failed: {e}")))?;
                Some(taken?)
            }
            None => None,
        };
        Ok(Some(Turn(local, shared)))
    }

    /// Stages the next version of a recorded secret (step 3) on the
    /// `(current, max_versions)` that `plan` reads (step 2; an in-process
    /// engine needs no plan: its job reads and checks all of it). Versions
    /// the engine holds beyond the record are listed and audited (`audit`:
    /// the change's own event, for where to file that) and the change
    /// refused (step 4) — unless the change is a retry carrying an
    /// idempotency key (`keyed`) whose values are exactly the one version
    /// beyond the record: its first attempt reached the engine, and only
    /// the answer was lost, so that version is its own.
    pub(super) fn stage_version(
        &self,
        (ns, name): (&str, &str),
        data: &Data,
        plan: impl FnOnce(&Connection) -> Result<(u64, u32)>,
        audit: Option<&AuditRecord>,
        keyed: bool,
    ) -> Result<Staged> {
        if !self.values.external() {
            return Ok(Staged::InJob);
        }
        let (current, max_versions) = self.read(plan)?;
        let (version, sealed) = match self.values.put(ns, name, data, current, max_versions) {
            Err(StoreError::Unrecorded {
                found, recorded, ..
            }) if keyed
                && found == recorded + 1
                && self
                    .values
                    .get(ns, name, found, None)
                    .is_ok_and(|d| d == *data) =>
            {
                (found, None)
            }
            Err(e @ StoreError::Unrecorded { .. }) => {
                return Err(self.adopt_unrecorded(ns, name, audit, e));
            }
            put => put?,
        };
        Ok(Staged::Version {
            based_on: current,
            version,
            sealed,
        })
    }

    /// Stages the first version of a secret being created (step 3), once
    /// `plan` found the name free (step 2). A path the engine holds
    /// versions at, which no secret owns, is a create of this backend's
    /// that was cut off (undone now, and this one goes on after it) or
    /// another tool's (refused).
    pub(super) fn stage_first_version(
        &self,
        (ns, name): (&str, &str),
        data: &Data,
        plan: impl FnOnce(&Connection) -> Result<()>,
    ) -> Result<Staged> {
        if !self.values.external() {
            return Ok(Staged::InJob);
        }
        self.read(plan)?;
        let put = || self.values.put(ns, name, data, 0, DEFAULT_MAX_VERSIONS);
        let (version, sealed) = match put() {
            Err(StoreError::Unrecorded { path, found, .. }) => {
                if !self.values.claim_leftover(ns, name)? {
                    return Err(Conflict::Foreign { path, found }.into());
                }
                put()?
            }
            put => put?,
        };
        Ok(Staged::Version {
            based_on: 0,
            version,
            sealed,
        })
    }

    /// Stages the soft delete (`deleted`) or restore of a secret's current
    /// version (step 3): only a change the job will make — a delete of a
    /// live secret, a restore of a deleted one; otherwise the job refuses,
    /// and nothing is staged.
    pub(super) fn stage_deleted(&self, ns: &str, name: &str, deleted: bool) -> Result<Staged> {
        if !self.values.external() {
            return Ok(Staged::InJob);
        }
        let plan = match self.deleted_state(ns, name)? {
            Some(is_deleted) if is_deleted != deleted => {
                self.read(|c| current_version(c, ns, name))?
            }
            _ => None,
        };
        let Some(version) = plan else {
            return Ok(Staged::Nothing);
        };
        self.values.set_deleted(ns, name, version, deleted)?;
        Ok(Staged::Deleted { version, deleted })
    }
}

impl AsyncStore {
    /// [`Store::stage_version`] for async callers: the engine call runs
    /// beside other secrets' (one at a time per secret).
    pub(super) async fn stage_version(
        &self,
        (ns, name): (&str, &str),
        data: &Data,
        plan: impl FnOnce(&Connection) -> Result<(u64, u32)> + Send + 'static,
        audit: &AuditRecord,
        keyed: bool,
    ) -> Result<Staged> {
        let store = &self.0;
        if !store.values.external() {
            return Ok(Staged::InJob);
        }
        let (current, max_versions) = self.call(move |s| s.read(plan)).await?;
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
            Err(StoreError::Unrecorded {
                found, recorded, ..
            }) if keyed
                && found == recorded + 1
                && self.engine_holds(ns, name, found, data).await =>
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
        Ok(Staged::Version {
            based_on: current,
            version,
            sealed,
        })
    }

    /// Whether the engine's `version` of the secret holds exactly `data`.
    async fn engine_holds(&self, ns: &str, name: &str, version: u64, data: &Data) -> bool {
        let got = self
            .0
            .values
            .clone()
            .get_async(ns.into(), name.into(), version, None)
            .await;
        matches!(got, Ok(d) if d == *data)
    }
}

/// Step 5 for a new version of `data`: records the one `staged` holds
/// already (whose undo the job registered), or else has the in-process
/// engine write it now. Versions the engine skipped (left destroyed by
/// writes that never committed) are listed as destroyed.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_version(
    ctx: &JobCtx,
    tx: &Connection,
    ns: &str,
    name: &str,
    data: &Data,
    cas: Option<u64>,
    now: i64,
    staged: Staged,
) -> Result<u64> {
    let meta = kv_meta(tx, ns, name)?;
    record_version_on(ctx, tx, (ns, name), data, cas, now, staged, meta, false)
}

/// [`record_version`] on the `(current, max_versions)` of the secret's
/// record, read already in the same transaction (`KvMeta`). `touched`:
/// the secret's row also says it was changed and synced `now` (a value
/// write's `updated_at` and `last_synced`).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_version_on(
    ctx: &JobCtx,
    tx: &Connection,
    (ns, name): (&str, &str),
    data: &Data,
    cas: Option<u64>,
    now: i64,
    staged: Staged,
    (current, max_versions): (u64, u32),
    touched: bool,
) -> Result<u64> {
    check_cas(cas, current)?;
    let (version, sealed) = match staged {
        Staged::Version { based_on, .. } if based_on != current => {
            return Err(Conflict::ChangedMeanwhile {
                name: name.to_owned(),
                doing: "written",
            }
            .into());
        }
        Staged::Version {
            version, sealed, ..
        } => (version, sealed),
        Staged::InJob | Staged::Nothing | Staged::Deleted { .. } => {
            let (version, sealed) = ctx.values.put(ns, name, data, current, max_versions)?;
            // Should this transaction not commit, the engine's version goes.
            undo_version(ctx, ns, name, version);
            (version, sealed)
        }
    };
    // Nothing below is read back: on PostgreSQL these go out together with
    // the next statement waited for (`Connection::exec_later`).
    for skipped in current + 1..version {
        tx.exec_later(
            "INSERT INTO kv_versions (namespace, name, version, created_at, destroyed, destroyed_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?4) ON CONFLICT DO NOTHING",
            params![ns, name, skipped, now],
        )?;
    }
    let (nonce, ct) = sealed.unzip();
    let keys = json(&data.keys().collect::<Vec<_>>());
    let window = version as i64 - max_versions as i64;
    if tx.dialect() == Dialect::Postgres && current > 0 {
        // The three changes below in one statement (PostgreSQL runs a
        // statement's changes on one snapshot: the window's delete does
        // not see the new version, which it would keep anyway), and a
        // plain update of `kv_meta`, whose row a current version implies.
        let sql = match touched {
            true => RECORD_NEXT_VERSION_TOUCHED_PG,
            false => RECORD_NEXT_VERSION_PG,
        };
        tx.exec_later(
            sql,
            params![ns, name, version, now, nonce, ct, keys, window],
        )?;
        return Ok(version);
    }
    if touched {
        tx.exec_later(TOUCH_SQL, params![ns, name, now])?;
    }
    tx.exec_later(
        "INSERT INTO kv_versions (namespace, name, version, created_at, nonce, ciphertext, keys)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![ns, name, version, now, nonce, ct, keys],
    )?;
    set_current(tx, (ns, name), version, max_versions, now)?;
    // History window: keep the newest `max_versions`.
    tx.exec_later(
        "DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2 AND version <= ?3",
        params![ns, name, window],
    )?;
    Ok(version)
}

/// A secret changed and synced at `?3` (`record_version_on`'s `touched`).
const TOUCH_SQL: &str = "UPDATE managed_secrets SET updated_at = ?3, last_synced = ?3
    WHERE namespace = ?1 AND name = ?2";

// On PostgreSQL, a secret's next version recorded in one statement: the
// version's row (`?3` at `?4`), `kv_meta` pointing at it, and the versions
// that leave the history window (`?8` and older) gone; `$touch`: more.
macro_rules! record_next_version_pg {
    ($touch:literal) => {
        concat!(
            "WITH v AS (
        INSERT INTO kv_versions (namespace, name, version, created_at, nonce, ciphertext, keys)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ), d AS (
        DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2 AND version <= ?8
    )",
            $touch,
            "
    UPDATE kv_meta SET current_version = ?3, updated_at = ?4 WHERE namespace = ?1 AND name = ?2"
        )
    };
}

/// The next version, in one statement (PostgreSQL).
const RECORD_NEXT_VERSION_PG: &str = record_next_version_pg!("");

/// The next version and the secret's row touched ([`TOUCH_SQL`] at `?4`),
/// in one statement (PostgreSQL).
const RECORD_NEXT_VERSION_TOUCHED_PG: &str = record_next_version_pg!(
    ", s AS (
        UPDATE managed_secrets SET updated_at = ?4, last_synced = ?4
        WHERE namespace = ?1 AND name = ?2
    )"
);

/// Step 5 for a soft delete (`deleted`) or restore: has the in-process
/// engine follow now (undone if the job does not commit), or checks that
/// the version the engine marked beforehand is still the current one.
pub(super) fn record_deleted(
    ctx: &JobCtx,
    tx: &Connection,
    ns: &str,
    name: &str,
    deleted: bool,
    staged: Staged,
) -> Result<()> {
    let current = current_version(tx, ns, name)?;
    let marked = match staged {
        Staged::InJob => {
            if let Some(v) = current {
                ctx.values.set_deleted(ns, name, v, deleted)?;
                undo_deleted(ctx, ns, name, v, deleted);
            }
            return Ok(());
        }
        Staged::Deleted { version, .. } => Some(version),
        Staged::Nothing | Staged::Version { .. } => None,
    };
    if marked == current {
        return Ok(());
    }
    Err(Conflict::ChangedMeanwhile {
        name: name.to_owned(),
        doing: if deleted { "deleted" } else { "restored" },
    }
    .into())
}

/// Destroys `version` in the engine if the running job does not commit.
fn undo_version(ctx: &JobCtx, ns: &str, name: &str, version: u64) {
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

/// Reverts a soft delete (or restore) in the engine if the running job
/// does not commit.
fn undo_deleted(ctx: &JobCtx, ns: &str, name: &str, version: u64, deleted: bool) {
    let (values, ns, name) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
    ctx.on_undo(move || {
        if let Err(e) = values.set_deleted(&ns, &name, version, !deleted) {
            tracing::error!("could not undo the value engine's change to {name} in {ns}: {e}");
        }
    });
}

/// The secret's current version in `kv_meta` (none before its first).
pub(super) fn current_version(c: &Connection, ns: &str, name: &str) -> Result<Option<u64>> {
    Ok(c.row(
        "SELECT current_version FROM kv_meta WHERE namespace = ?1 AND name = ?2",
        params![ns, name],
        |r| r.get(0),
    )
    .optional()?)
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

pub(super) fn check_cas(cas: Option<u64>, current: u64) -> Result<()> {
    match cas {
        Some(expected) if expected != current => {
            Err(Conflict::CasMismatch { expected, current }.into())
        }
        _ => Ok(()),
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
    tx.exec_later(
        "INSERT INTO kv_meta (namespace, name, current_version, max_versions, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (namespace, name) DO UPDATE SET current_version = ?3, updated_at = ?5",
        params![ns, name, version, max_versions, at],
    )?;
    Ok(())
}
