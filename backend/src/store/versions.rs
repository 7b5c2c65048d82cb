//! Stored versions: write (through the write protocol, `protocol`, with
//! check-and-set), read, list, and destroy one.

use super::db::{Connection, Dialect, OptionalExtension};
use super::idempotency::{IdempotencyKey, check_unused, remember};
use super::protocol::{Staged, check_cas, current_version, kv_meta, record_version_on};
use super::secrets::{
    GET_ANY_SQL, REVEAL_SQL, SECRET_COLUMNS, get_any, not_found, secret_from_row,
};
use super::writer::{Isolation, Shape};
use super::{
    AsyncStore, AuditRecord, DEFAULT_MAX_VERSIONS, JobCtx, Result, Sealed, SecretRecord, Store,
    StoreError, StoredVersion, Values, VersionData, require_live,
};
use crate::clock::rfc3339;
use kube_dc_api::event::Version;
use kube_dc_api::wire::{Data, VersionInfo};
use rusqlite::params;

impl Store {
    /// Writes a new version, through the write protocol (`protocol`).
    /// `cas`: the version the caller expects to be current (0 = the secret
    /// must have no version yet); `key`: its `Idempotency-Key` (see
    /// `idempotency`).
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
    ) -> Result<Version> {
        let _turn = self.engine_turn_blocking(ns, name)?;
        let plan = |c: &Connection| put_plan(c, ns, name, cas);
        let staged = self.stage_version((ns, name), data, plan, audit, key.is_some())?;
        self.write(
            audit,
            put_values_job(ns, name, data.clone(), cas, now, staged, key),
        )
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
    ) -> Result<Version> {
        let store = &self.0;
        let _turn = store.engine_turn_async(ns, name).await?;
        let (n, m) = (ns.to_owned(), name.to_owned());
        let plan = move |c: &Connection| put_plan(c, &n, &m, cas);
        let staged = self
            .stage_version((ns, name), &data, plan, &audit, key.is_some())
            .await?;
        let job = put_values_job(ns, name, data, cas, now, staged, key);
        // Its first query (the secret's record) read ahead with the
        // batch's others; and it keeps `JobCtx::known`, so a burst of
        // writes to one secret reads the record once per batch.
        // No savepoint: everything that can refuse it comes before its
        // first change (`Isolation::ChecksFirst`).
        let shape = Shape {
            isolation: Isolation::ChecksFirst,
            prefetch: Some((
                GET_ANY_SQL,
                vec![ns.to_owned().into(), name.to_owned().into()],
            )),
            keeps_known: true,
        };
        store.job_async(Some(audit), true, shape, job).await
    }
}

/// What a write needs to know before it goes to an external engine (the
/// protocol's step 2): the live secret's current version (checked against
/// `cas`) and its history window.
fn put_plan(c: &Connection, ns: &str, name: &str, cas: Option<u64>) -> Result<(u64, u32)> {
    require_live(c, ns, name)?;
    let (current, max_versions) = kv_meta(c, ns, name)?;
    check_cas(cas, current)?;
    Ok((current, max_versions))
}

/// A write's job (the protocol's step 5).
fn put_values_job(
    ns: &str,
    name: &str,
    data: Data,
    cas: Option<u64>,
    now: i64,
    staged: Staged,
    key: Option<IdempotencyKey>,
) -> impl FnOnce(&JobCtx, &Connection) -> Result<Version> + Send + 'static {
    let (ns, name) = (ns.to_owned(), name.to_owned());
    // Everything that can refuse the write (a replayed key, a secret gone,
    // check-and-set) comes before its first change: the async path runs
    // it without a savepoint (`Isolation::ChecksFirst`).
    move |ctx, tx| {
        let (ns, name) = (ns.as_str(), name.as_str());
        staged.undo_unless_committed(ctx, ns, name);
        check_unused(tx, key.as_ref())?;
        // Known live from this batch's last write of it, or else read:
        // the record holds `kv_meta`'s row too.
        let known = ctx.known.borrow().get(ns, name);
        let meta = match known {
            Some(meta) => meta,
            None => require_live(tx, ns, name)?
                .kv
                .map_or((0, DEFAULT_MAX_VERSIONS), |k| {
                    (k.current_version, k.max_versions)
                }),
        };
        // The secret's row says it changed, and (as every write) synced,
        // now: with the version, in one statement on PostgreSQL.
        let v = record_version_on(ctx, tx, (ns, name), &data, cas, now, staged, meta, true)?;
        remember(tx, key.as_ref(), (ns, name), v, now)?;
        ctx.known.borrow_mut().set(ns, name, (v, meta.1));
        Ok(Version(v))
    }
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
    let current = current_version(c, ns, name)?;
    read_version_of(c, values, (ns, name), version, current)
}

/// [`read_version_in`] of a secret whose current version (none before its
/// first) the caller has read already (its record's `kv`), in the same
/// transaction.
pub(super) fn read_version_of(
    c: &Connection,
    values: &dyn Values,
    (ns, name): (&str, &str),
    version: Option<u64>,
    current: Option<u64>,
) -> Result<Option<VersionData>> {
    let Some(row) = readable_version_of(c, (ns, name), version, current)? else {
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
    let current = current_version(c, ns, name)?;
    readable_version_of(c, (ns, name), version, current)
}

/// [`readable_version`] given the current version, read already in the
/// same transaction.
fn readable_version_of(
    c: &Connection,
    (ns, name): (&str, &str),
    version: Option<u64>,
    current: Option<u64>,
) -> Result<Option<ReadableVersion>> {
    let Some(current) = current else {
        return no_versions_yet(name, version);
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
    readable_from(name, version, current, row)
}

/// A read of a secret that has no version yet: nothing to read, or no
/// such version.
fn no_versions_yet(name: &str, version: Option<u64>) -> Result<Option<ReadableVersion>> {
    match version {
        Some(v) => Err(StoreError::NotFound(format!(
            "secret {name:?} has no version {v} (it has no versions yet)"
        ))),
        None => Ok(None),
    }
}

/// The live secret and its values at `version` (the current one when
/// None), in one statement ([`REVEAL_SQL`]): a read's job, whose
/// PostgreSQL writer fetches it for all of a batch's reads at once
/// (`Connection::prefetch`); on SQLite, two statements. Answers as
/// [`require_live`] and [`read_version_in`] would, one after the other.
pub(super) fn reveal_in(
    c: &Connection,
    values: &dyn Values,
    (ns, name): (&str, &str),
    version: Option<u64>,
) -> Result<(SecretRecord, Option<VersionData>)> {
    if c.dialect() == Dialect::Sqlite {
        // In-process, two plain statements are cheaper than the join
        // (measured: B1 0.97× with it).
        let rec = get_any(c, ns, name)?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(|| not_found(ns, name))?;
        let current = rec.kv.as_ref().map(|k| k.current_version);
        let value = read_version_of(c, values, (ns, name), version, current)?;
        return Ok((rec, value));
    }
    let (rec, row) = c
        .row(REVEAL_SQL, reveal_params(ns, name, version), |r| {
            let rec = secret_from_row(r)?;
            let n = SECRET_COLUMNS;
            let created: Option<i64> = r.get(n)?;
            let row: Option<StoredVersion> = match created {
                Some(at) => Some((at, r.get(n + 1)?, r.get(n + 2)?, r.get(n + 3)?)),
                None => None,
            };
            Ok((rec, row))
        })
        .optional()?
        .filter(|(rec, _)| rec.deleted_at.is_none())
        .ok_or_else(|| not_found(ns, name))?;
    let readable = match rec.kv.as_ref().map(|k| k.current_version) {
        None => no_versions_yet(name, version)?,
        Some(current) => readable_from(name, version, current, row)?,
    };
    let value = match readable {
        Some(r) => Some(VersionData {
            version: r.version,
            created_at: r.created_at,
            data: values.get(ns, name, r.version, r.sealed)?,
        }),
        None => None,
    };
    Ok((rec, value))
}

/// [`REVEAL_SQL`]'s parameters.
pub(super) fn reveal_params(
    ns: &str,
    name: &str,
    version: Option<u64>,
) -> Vec<rusqlite::types::Value> {
    vec![
        ns.to_owned().into(),
        name.to_owned().into(),
        version.map_or(rusqlite::types::Value::Null, |v| (v as i64).into()),
    ]
}

/// Which version a read of `version` (the current one, `current`, when
/// None) reads, given that version's row (`None`: there is none).
fn readable_from(
    name: &str,
    version: Option<u64>,
    current: u64,
    row: Option<StoredVersion>,
) -> Result<Option<ReadableVersion>> {
    let want = version.unwrap_or(current);
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

    /// Every version the secret keeps, oldest first.
    pub fn versions(&self, ns: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.read(|c| {
            Ok(c.query_map(
                "SELECT version, created_at, destroyed, destroyed_at FROM kv_versions
                 WHERE namespace = ?1 AND name = ?2 ORDER BY version",
                params![ns, name],
                |r| {
                    let destroyed_at: Option<i64> = r.get(3)?;
                    Ok(VersionInfo {
                        version: r.get(0)?,
                        created_time: rfc3339(r.get(1)?),
                        destroyed: r.get(2)?,
                        deletion_time: destroyed_at.map(rfc3339),
                    })
                },
            )?)
        })
    }

    /// Erases one version's values (its record stays, marked destroyed),
    /// with its audit event.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Cipher;
    use crate::store::{NewSecret, SqliteValues};
    use kube_dc_api::wire::Sensitive;
    use std::sync::{Arc, mpsc};

    fn data(v: &str) -> Data {
        [("K".to_owned(), Sensitive::new(v))].into()
    }

    /// The store on SQLite, and on PostgreSQL when the suite has a server
    /// (`KUBE_DC_TEST_DATABASE`; `scripts/test.sh` runs this module there).
    fn stores() -> Vec<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir().unwrap();
        let cipher = Arc::new(Cipher::new(&[7; 32]));
        let values = Arc::new(SqliteValues::new(cipher.clone()));
        let lite = Store::open_with(dir.path(), cipher.clone(), values.clone()).unwrap();
        let mut out = vec![(dir, lite)];
        if let Some(url) = kube_dc_testsupport::pg::test_database() {
            let dir = tempfile::tempdir().unwrap();
            out.push((dir, Store::open_postgres(&url, cipher, values).unwrap()));
        }
        out
    }

    /// The secret `db`, at version 1.
    fn create_db(store: &Store) {
        let new = NewSecret {
            namespace: "acme-demo".into(),
            name: "db".into(),
            key: None,
            kind: "Opaque".into(),
            description: None,
            sync: Default::default(),
            rotation: None,
            rotation_interval: None,
            imported_from: None,
        };
        store
            .create(new, Some(&data("v1")), 1, || Ok(()), None)
            .unwrap();
    }

    /// Queues a value write to `db` as the async path runs it; its answer.
    fn queue_put(
        store: &Store,
        cas: Option<u64>,
        v: &str,
        now: i64,
    ) -> mpsc::Receiver<std::result::Result<u64, String>> {
        let (tx, rx) = mpsc::channel();
        let job = put_values_job("acme-demo", "db", data(v), cas, now, Staged::InJob, None);
        let shape = Shape {
            isolation: Isolation::ChecksFirst,
            prefetch: None,
            keeps_known: true,
        };
        store.submit(None, true, shape, job, move |r, _| {
            tx.send(r.map(|v| v.0).map_err(|e| e.to_string())).unwrap()
        });
        rx
    }

    /// Jobs queued behind one that holds the writer run as one batch:
    /// value writes to one secret take its state from the batch's last
    /// write of it, check-and-set included, until a job that does not keep
    /// that up to date (here, a delete) makes them read it again.
    #[test]
    fn a_batch_of_writes_to_one_secret_sees_each_others_versions() {
        for (_dir, store) in stores() {
            create_db(&store);
            let go = crate::store::writer::hold(&store.writer);
            let answers = [(None, "v2"), (Some(1), "stale"), (Some(2), "v3")]
                .map(|(cas, v)| queue_put(&store, cas, v, 2));
            let (tx, deleted) = mpsc::channel();
            store.submit(
                None,
                true,
                Shape::CHANGE,
                |_, c| {
                    c.exec(
                        "UPDATE managed_secrets SET deleted_at = 3 WHERE name = 'db'",
                        (),
                    )?;
                    Ok(())
                },
                move |r, _| tx.send(r.is_ok()).unwrap(),
            );
            let after_delete = queue_put(&store, None, "gone", 4);
            go.send(()).unwrap();
            let got: Vec<_> = answers.iter().map(|rx| rx.recv().unwrap()).collect();
            assert_eq!(got[0], Ok(2), "{:?}", store.dialect());
            assert_eq!(
                got[1],
                Err("check-and-set failed: the current version is 2, not 1".into()),
                "the batch's write before it counts"
            );
            assert_eq!(got[2], Ok(3));
            assert!(deleted.recv().unwrap());
            let e = after_delete.recv().unwrap().unwrap_err();
            assert!(e.contains("deleted"), "a write after the delete: {e}");
            let current: i64 = store
                .count_raw("SELECT current_version FROM kv_meta WHERE name = 'db'")
                .unwrap();
            assert_eq!(current, 3);
            let v3 = store
                .read_version("acme-demo", "db", None)
                .unwrap()
                .unwrap();
            assert_eq!((v3.version, v3.data), (3, data("v3")));
        }
    }

    /// Twelve writes, one batch: the history window keeps the newest ten
    /// versions, and the secret's row says when it was last changed and
    /// synced (one statement on PostgreSQL, three on SQLite).
    #[test]
    fn writes_keep_the_history_window_and_touch_the_secret() {
        for (_dir, store) in stores() {
            create_db(&store);
            let go = crate::store::writer::hold(&store.writer);
            let answers: Vec<_> = (2..=13)
                .map(|now| queue_put(&store, None, &format!("v{now}"), now))
                .collect();
            drop(go);
            for (i, a) in answers.iter().enumerate() {
                assert_eq!(a.recv().unwrap(), Ok(i as u64 + 2));
            }
            let count = |sql: &str| store.count_raw(sql).unwrap();
            assert_eq!(count("SELECT count(*) FROM kv_versions"), 10);
            assert_eq!(count("SELECT min(version) FROM kv_versions"), 4);
            assert_eq!(count("SELECT updated_at FROM managed_secrets"), 13);
            assert_eq!(count("SELECT last_synced FROM managed_secrets"), 13);
            assert_eq!(count("SELECT current_version FROM kv_meta"), 13);
            let v = store
                .read_version("acme-demo", "db", Some(4))
                .unwrap()
                .unwrap();
            assert_eq!(v.data, data("v4"));
        }
    }
}
