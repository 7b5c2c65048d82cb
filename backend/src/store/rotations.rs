//! Scheduled rotation: which secrets are due, and writing a generated
//! version if one still is.

use super::db::Connection;
use super::protocol::{kv_meta, record_version};
use super::{AuditRecord, Result, Store, StoreError, get_any, mark_synced, not_found};
use crate::clock::add_ms;
use kube_dc_api::event::Version;
use kube_dc_api::wire::{Data, Rotation};
use rusqlite::params;

impl Store {
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
            let due = c.query_map(
                "SELECT namespace, name FROM managed_secrets
                 WHERE deleted_at IS NULL AND next_rotation IS NOT NULL AND next_rotation <= ?1",
                params![now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let next: Option<i64> = c.row(
                "SELECT MIN(next_rotation) FROM managed_secrets
                 WHERE deleted_at IS NULL AND next_rotation IS NOT NULL AND next_rotation > ?1",
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
    ) -> Result<Option<Version>> {
        // Through the write protocol (`protocol`): what is due and the
        // value generated, the version staged (written to an external
        // engine first), then recorded if the rotation is still due.
        let _turn = self.engine_turn_blocking(ns, name)?;
        let plan = self.read(|c| {
            let Some(_) = rotation_due(c, ns, name, now)? else {
                return Ok(None);
            };
            let rec = get_any(c, ns, name)?.ok_or_else(|| not_found(ns, name))?;
            Ok(Some((rec.rotation, kv_meta(c, ns, name)?)))
        })?;
        let Some((Some(rotation), meta)) = plan else {
            return Ok(None);
        };
        let data = generate(&rotation);
        let staged = self.stage_version((ns, name), &data, |_| Ok(meta), audit, false)?;
        let (ns, name) = (ns.to_owned(), name.to_owned());
        self.write(audit, move |ctx, tx| {
            let (ns, name) = (ns.as_str(), name.as_str());
            staged.undo_unless_committed(ctx, ns, name);
            let Some(interval) = rotation_due(tx, ns, name, now)? else {
                // Rotated meanwhile (another process): a version staged in
                // the engine goes (`not due` is a success, so say it here).
                if let Some(v) = staged.version() {
                    let (values, n, m) = (ctx.values.clone(), ns.to_owned(), name.to_owned());
                    ctx.after_commit(move || {
                        if let Err(e) = values.destroy_version(&n, &m, v) {
                            tracing::error!("an unused rotation of {m} in {n} stays in the engine as version {v}: {e}");
                        }
                    });
                }
                return Ok(None);
            };
            let v = record_version(ctx, tx, ns, name, &data, None, now, staged)?;
            record_rotation(tx, ns, name, now, interval)?;
            Ok(Some(Version(v)))
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
