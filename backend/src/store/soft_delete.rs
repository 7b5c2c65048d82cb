//! How a soft delete or a restore reaches the value engine: inside the
//! writer's job for an in-process engine, before it for an external one
//! (then checked and, should the job not commit, undone).

use super::{Cached, Conflict, Ctx, Result, Store};
use rusqlite::{Connection, OptionalExtension, params};

impl Store {
    /// On an external engine, soft-deletes (or restores) the current
    /// version there before the writer records it: what the job must
    /// then find, and undo if it does not commit.
    pub(super) fn engine_first_delete(
        &self,
        ns: &str,
        name: &str,
        deleted: bool,
    ) -> Result<EngineDelete> {
        if !self.values.external() {
            return Ok(EngineDelete::InJob);
        }
        // Only a change the job will make: a delete of a live secret, a
        // restore of a deleted one (else the job refuses, and nothing is
        // to be undone in the engine).
        let plan = match self.deleted_state(ns, name)? {
            Some(is_deleted) if is_deleted != deleted => {
                self.read(|c| current_version(c, ns, name))?
            }
            _ => None,
        };
        let Some(v) = plan else {
            return Ok(EngineDelete::Done(None));
        };
        self.values.set_deleted(ns, name, v, deleted)?;
        Ok(EngineDelete::Done(Some((v, deleted))))
    }
}

/// How a soft delete (or restore) reaches the engine.
pub(super) enum EngineDelete {
    /// In the job, inside the transaction (an in-process engine).
    InJob,
    /// Before the job (an external engine): the version it marked, and
    /// how, if the secret had one.
    Done(Option<(u64, bool)>),
}

impl EngineDelete {
    /// Registers the engine's change to be reverted should the job not
    /// commit. First thing in the job.
    pub(super) fn undo_unless_committed(&self, ctx: &Ctx, ns: &str, name: &str) {
        if let EngineDelete::Done(Some((version, deleted))) = *self {
            undo_deleted(ctx, ns, name, version, deleted);
        }
    }
}

/// Soft-deletes (or restores) the current version in the engine, undone if
/// the change does not commit; with `pre`, checks that the version the
/// engine marked beforehand is still the current one.
pub(super) fn set_deleted(
    ctx: &Ctx,
    tx: &Connection,
    ns: &str,
    name: &str,
    deleted: bool,
    pre: EngineDelete,
) -> Result<()> {
    let current = current_version(tx, ns, name)?;
    match pre {
        EngineDelete::InJob => {
            if let Some(v) = current {
                ctx.values.set_deleted(ns, name, v, deleted)?;
                undo_deleted(ctx, ns, name, v, deleted);
            }
            Ok(())
        }
        EngineDelete::Done(marked) if marked.map(|(v, _)| v) == current => Ok(()),
        EngineDelete::Done(_) => Err(Conflict::ChangedMeanwhile {
            name: name.to_owned(),
            doing: if deleted { "deleted" } else { "restored" },
        }
        .into()),
    }
}

fn undo_deleted(ctx: &Ctx, ns: &str, name: &str, version: u64, deleted: bool) {
    let (values, ns, name) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
    ctx.on_undo(move || {
        if let Err(e) = values.set_deleted(&ns, &name, version, !deleted) {
            tracing::error!("could not undo the value engine's change to {name} in {ns}: {e}");
        }
    });
}

/// The secret's current version in `kv_meta` (none before its first).
fn current_version(c: &Connection, ns: &str, name: &str) -> Result<Option<u64>> {
    Ok(c.row(
        "SELECT current_version FROM kv_meta WHERE namespace = ?1 AND name = ?2",
        params![ns, name],
        |r| r.get(0),
    )
    .optional()?)
}
