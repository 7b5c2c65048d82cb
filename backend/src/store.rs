//! Durable state in one SQLite database (WAL mode) under the data directory.
//!
//! Several processes may open the same directory at once (parallel CLI
//! invocations on the local context): every write runs in a `BEGIN
//! IMMEDIATE` transaction, so version numbers are assigned under SQLite's
//! write lock and no concurrent writer can lose a version. Values are only
//! ever stored sealed by [`Cipher`]; `secure_delete` overwrites freed pages so
//! a destroyed version's ciphertext does not linger in the file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::crypto::Cipher;
use crate::wire::{Data, Grant, Rotation, SyncSpec, VersionInfo};

pub const DEFAULT_MAX_VERSIONS: u32 = 10;
pub use kube_dc_api::audit::{GENESIS_HASH, chain_hash};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A ManagedSecret row joined with its KV metadata.
#[derive(Clone, Debug)]
pub struct SecretRecord {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub sync: SyncSpec,
    pub rotation: Option<Rotation>,
    pub imported_from: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_synced: Option<i64>,
    pub last_rotated: Option<i64>,
    pub next_rotation: Option<i64>,
    pub deleted_at: Option<i64>,
    pub kv: Option<KvMeta>,
    /// Whether the current version still holds values (not destroyed).
    pub current_readable: bool,
}

#[derive(Clone, Debug)]
pub struct KvMeta {
    pub current_version: u64,
    pub max_versions: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewSecret {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub sync: SyncSpec,
    pub rotation: Option<Rotation>,
    pub rotation_interval: Option<Duration>,
    pub imported_from: Option<String>,
}

/// created_at, nonce, ciphertext, destroyed
type StoredVersion = (i64, Option<Vec<u8>>, Option<Vec<u8>>, bool);

pub struct VersionData {
    pub version: u64,
    pub created_at: i64,
    pub data: Data,
}

/// One audit row as stored.
pub struct AuditRow {
    pub seq: i64,
    pub ts: i64,
    /// The event with `seq`, `prev_hash` and `hash` added.
    pub body: Map<String, Value>,
    /// The event exactly as it was hashed.
    pub text: String,
}

#[derive(Default, Clone, Debug)]
pub struct AuditFilter {
    pub org: String,
    pub project: Option<String>,
    pub service: Option<String>,
    pub actor: Option<String>,
    pub result: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<usize>,
}

pub struct Store {
    conn: Mutex<Connection>,
    cipher: Cipher,
    path: PathBuf,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS managed_secrets (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    description   TEXT,
    sync          TEXT NOT NULL,
    rotation      TEXT,
    imported_from TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_synced   INTEGER,
    last_rotated  INTEGER,
    next_rotation INTEGER,
    deleted_at    INTEGER,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS kv_meta (
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    max_versions    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS kv_versions (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    nonce      BLOB,
    ciphertext BLOB,
    destroyed  INTEGER NOT NULL DEFAULT 0,
    destroyed_at INTEGER,
    PRIMARY KEY (namespace, name, version)
);
CREATE TABLE IF NOT EXISTS elevations (
    id          TEXT PRIMARY KEY,
    user        TEXT NOT NULL,
    org         TEXT NOT NULL,
    project     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    released_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          INTEGER NOT NULL,
    org         TEXT NOT NULL,
    project     TEXT,
    service     TEXT NOT NULL,
    result      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    actor_email TEXT NOT NULL,
    actor_sub   TEXT NOT NULL,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_org_seq ON audit (org, seq);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"#;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `now` plus a duration, in epoch milliseconds, saturating instead of
/// wrapping (a wrapped sum would be in the past: due at once).
pub fn add_ms(now: i64, d: Duration) -> i64 {
    i64::try_from(d.as_millis())
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .unwrap_or(i64::MAX)
}

pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn aad(ns: &str, name: &str, version: u64) -> Vec<u8> {
    format!("{ns}\0{name}\0{version}").into_bytes()
}

impl Store {
    pub const DB_FILE: &'static str = "kube-dc.db";

    pub fn open(dir: &Path, cipher: Cipher) -> Result<Self> {
        crate::private_dir(dir)
            .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(Self::DB_FILE);
        owner_only_files(&path)?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Schema creation is idempotent; run it under the write lock so two
        // processes opening a fresh directory at once do not trip over it.
        {
            let mut conn = conn;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            migrate(&tx)?;
            check_key(&tx, &cipher)?;
            tx.commit()?;
            Ok(Self {
                conn: Mutex::new(conn),
                cipher,
                path,
            })
        }
    }

    pub fn db_path(&self) -> &Path {
        &self.path
    }

    /// One write transaction. With `audit`, the request's audit event is
    /// appended in the same transaction: the change and its event commit
    /// together, or neither does.
    fn write<T: AuditFacts>(
        &self,
        audit: Option<&AuditRecord>,
        f: impl FnOnce(&Transaction) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        if let Some(a) = audit {
            append_in(&tx, a, &out.audit_facts())?;
        }
        tx.commit()?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// Moves everything from the WAL into the main file and truncates the
    /// WAL, so erased pages are not kept in the log either.
    pub fn checkpoint(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
    }

    // ---- managed secrets ------------------------------------------------

    pub fn list(&self, ns: &str) -> Result<Vec<SecretRecord>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "{SELECT_SECRET} WHERE m.namespace = ?1 AND m.deleted_at IS NULL ORDER BY m.name"
            ))?;
            let rows = st.query_map(params![ns], secret_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
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
        fault: impl FnOnce() -> Result<()>,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        self.write(audit, |tx| {
            if let Some(existing) = get_any(tx, &new.namespace, &new.name)? {
                return Err(StoreError::Conflict(if existing.deleted_at.is_some() {
                    format!(
                        "secret {:?} was soft-deleted and its history is kept: restore it \
                         (kube-dc secrets restore {}) or destroy it first",
                        new.name, new.name
                    )
                } else {
                    format!("secret {:?} already exists", new.name)
                }));
            }
            let next_rotation = match (&new.rotation, new.rotation_interval) {
                (Some(r), Some(iv)) if r.enabled => Some(add_ms(now, iv)),
                _ => None,
            };
            tx.execute(
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
            tx.execute(
                "DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2",
                params![new.namespace, new.name],
            )?;
            tx.execute(
                "DELETE FROM kv_meta WHERE namespace = ?1 AND name = ?2",
                params![new.namespace, new.name],
            )?;
            if let Some(data) = data {
                self.write_version(tx, &new.namespace, &new.name, data, None, now)?;
                if new.rotation_interval.is_some() && new.rotation.as_ref().is_some_and(|r| r.enabled) {
                    tx.execute(
                        "UPDATE managed_secrets SET last_rotated = ?3 WHERE namespace = ?1 AND name = ?2",
                        params![new.namespace, new.name, now],
                    )?;
                }
            }
            projection_free(tx, &new.namespace, &new.name, &new.sync)?;
            mark_synced(tx, &new.namespace, &new.name, now)?;
            fault()?;
            get_any(tx, &new.namespace, &new.name)?
                .ok_or_else(|| StoreError::Internal("created row vanished".into()))
        })
    }

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
        self.write(audit, |tx| {
            require_live(tx, ns, name)?;
            let v = self.write_version(tx, ns, name, data, cas, now)?;
            tx.execute(
                "UPDATE managed_secrets SET updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            mark_synced(tx, ns, name, now)?;
            Ok(v)
        })
    }

    fn write_version(
        &self,
        tx: &Transaction,
        ns: &str,
        name: &str,
        data: &Data,
        cas: Option<u64>,
        now: i64,
    ) -> Result<u64> {
        let meta: Option<(u64, u32)> = tx
            .query_row(
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
        let version = current + 1;
        let plain = Zeroizing::new(
            serde_json::to_vec(data).map_err(|e| StoreError::Internal(e.to_string()))?,
        );
        let (nonce, ct) = self.cipher.seal(&plain, &aad(ns, name, version));
        tx.execute(
            "INSERT INTO kv_versions (namespace, name, version, created_at, nonce, ciphertext)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![ns, name, version, now, nonce, ct],
        )?;
        tx.execute(
            "INSERT INTO kv_meta (namespace, name, current_version, max_versions, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET current_version = ?3, updated_at = ?5",
            params![ns, name, version, max_versions, now],
        )?;
        // History window: keep the newest `max_versions`.
        tx.execute(
            "DELETE FROM kv_versions WHERE namespace = ?1 AND name = ?2 AND version <= ?3",
            params![ns, name, version as i64 - max_versions as i64],
        )?;
        Ok(version)
    }

    /// Reads one version (the current one when `version` is None).
    /// `Ok(None)`: the secret has no readable value at that version.
    pub fn read_version(
        &self,
        ns: &str,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<VersionData>> {
        self.read(|c| {
            let current: Option<u64> = c
                .query_row(
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
                .query_row(
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
                Some((created_at, Some(nonce), Some(ct), false)) => {
                    let plain = Zeroizing::new(
                        self.cipher
                            .open(&nonce, &ct, &aad(ns, name, want))
                            .map_err(StoreError::Internal)?,
                    );
                    let data: Data = serde_json::from_slice(&plain).map_err(|e| {
                        StoreError::Internal(format!("stored value is corrupt: {e}"))
                    })?;
                    Ok(Some(VersionData {
                        version: want,
                        created_at,
                        data,
                    }))
                }
                Some(_) => Err(StoreError::Internal(
                    "stored version has no ciphertext".into(),
                )),
            }
        })
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
        self.write(audit, |tx| {
            require_live(tx, ns, name)?;
            let n = tx.execute(
                "UPDATE kv_versions SET nonce = NULL, ciphertext = NULL, destroyed = 1, destroyed_at = ?4
                 WHERE namespace = ?1 AND name = ?2 AND version = ?3 AND destroyed = 0",
                params![ns, name, version, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "secret {name:?} has no version {version} that is not already destroyed"
                )));
            }
            Ok(())
        })?;
        self.checkpoint()
    }

    pub fn soft_delete(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        self.write(audit, |tx| {
            require_live(tx, ns, name)?;
            tx.execute(
                "UPDATE managed_secrets SET deleted_at = ?3, updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            Ok(())
        })
    }

    /// Erases the resource and every stored version. Works on a soft-deleted
    /// secret too (that is how its kept history is finally removed).
    pub fn destroy(&self, ns: &str, name: &str, audit: Option<&AuditRecord>) -> Result<()> {
        self.write(audit, |tx| {
            if get_any(tx, ns, name)?.is_none() {
                return Err(not_found(name));
            }
            for table in ["kv_versions", "kv_meta", "managed_secrets"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE namespace = ?1 AND name = ?2"),
                    params![ns, name],
                )?;
            }
            Ok(())
        })?;
        self.checkpoint()
    }

    pub fn restore(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        self.write(audit, |tx| {
            match get_any(tx, ns, name)? {
                None => return Err(not_found(name)),
                Some(s) if s.deleted_at.is_none() => {
                    return Err(StoreError::Conflict(format!(
                        "secret {name:?} is not deleted; there is nothing to restore"
                    )));
                }
                Some(s) => projection_free(tx, ns, name, &s.sync)?,
            }
            tx.execute(
                "UPDATE managed_secrets SET deleted_at = NULL, updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            mark_synced(tx, ns, name, now)?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(name))
        })
    }

    pub fn update_sync(
        &self,
        ns: &str,
        name: &str,
        sync: &SyncSpec,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        self.write(audit, |tx| {
            require_live(tx, ns, name)?;
            projection_free(tx, ns, name, sync)?;
            tx.execute(
                "UPDATE managed_secrets SET sync = ?3, updated_at = ?4 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, json(sync), now],
            )?;
            mark_synced(tx, ns, name, now)?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(name))
        })
    }

    pub fn update_spec(
        &self,
        ns: &str,
        name: &str,
        description: Option<&str>,
        rotation: Option<(&Rotation, Duration)>,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<SecretRecord> {
        self.write(audit, |tx| {
            require_live(tx, ns, name)?;
            if let Some(d) = description {
                tx.execute(
                    "UPDATE managed_secrets SET description = ?3 WHERE namespace = ?1 AND name = ?2",
                    params![ns, name, d],
                )?;
            }
            if let Some((r, iv)) = rotation {
                let next = r.enabled.then(|| add_ms(now, iv));
                tx.execute(
                    "UPDATE managed_secrets SET rotation = ?3, next_rotation = ?4 WHERE namespace = ?1 AND name = ?2",
                    params![ns, name, json(r), next],
                )?;
            }
            tx.execute(
                "UPDATE managed_secrets SET updated_at = ?3 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now],
            )?;
            get_any(tx, ns, name)?.ok_or_else(|| not_found(name))
        })
    }

    /// Secrets whose rotation is due, across all namespaces.
    pub fn due_rotations(&self, now: i64) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT namespace, name FROM managed_secrets
                 WHERE deleted_at IS NULL AND next_rotation IS NOT NULL AND next_rotation <= ?1",
            )?;
            let rows = st.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Writes a generated version if the rotation is still due (another
    /// process may have done it already). Returns the new version.
    pub fn rotate_if_due(
        &self,
        ns: &str,
        name: &str,
        now: i64,
        generate: impl FnOnce(&Rotation) -> Data,
        audit: Option<&AuditRecord>,
    ) -> Result<Option<u64>> {
        self.write(audit, |tx| {
            let Some(rec) = get_any(tx, ns, name)? else {
                return Ok(None);
            };
            let (Some(rotation), Some(next)) = (rec.rotation.as_ref(), rec.next_rotation) else {
                return Ok(None);
            };
            if rec.deleted_at.is_some() || !rotation.enabled || next > now {
                return Ok(None);
            }
            let interval =
                crate::validate::parse_interval(&rotation.interval).map_err(StoreError::Invalid)?;
            let data = generate(rotation);
            let v = self.write_version(tx, ns, name, &data, None, now)?;
            tx.execute(
                "UPDATE managed_secrets SET last_rotated = ?3, next_rotation = ?4, updated_at = ?3
                 WHERE namespace = ?1 AND name = ?2",
                params![ns, name, now, add_ms(now, interval)],
            )?;
            mark_synced(tx, ns, name, now)?;
            Ok(Some(v))
        })
    }

    // ---- elevations -----------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn elevate(
        &self,
        user: &str,
        org: &str,
        project: &str,
        reason: &str,
        ttl: Duration,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<Grant> {
        self.write(audit, |tx| {
            // A new elevation replaces the caller's active one.
            tx.execute(
                "UPDATE elevations SET released_at = ?4
                 WHERE user = ?1 AND org = ?2 AND project = ?3 AND released_at IS NULL AND expires_at > ?4",
                params![user, org, project, now],
            )?;
            let id = format!("elv-{}", uuid::Uuid::new_v4().simple());
            let expires = add_ms(now, ttl);
            tx.execute(
                "INSERT INTO elevations (id, user, org, project, reason, granted_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, user, org, project, reason, now, expires],
            )?;
            Ok(grant(&id, user, org, project, reason, now, expires, None))
        })
    }

    pub fn active_elevation(
        &self,
        user: &str,
        org: &str,
        project: &str,
        now: i64,
    ) -> Result<Option<Grant>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "{SELECT_GRANT} WHERE user = ?1 AND org = ?2 AND project = ?3
                  AND released_at IS NULL AND expires_at > ?4 ORDER BY granted_at DESC LIMIT 1"
                ),
                params![user, org, project, now],
                grant_from_row,
            )
            .optional()?)
        })
    }

    pub fn release(
        &self,
        user: &str,
        org: &str,
        project: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<Option<Grant>> {
        self.write(audit, |tx| {
            let g = tx
                .query_row(
                    &format!(
                        "{SELECT_GRANT} WHERE user = ?1 AND org = ?2 AND project = ?3
                      AND released_at IS NULL AND expires_at > ?4 ORDER BY granted_at DESC LIMIT 1"
                    ),
                    params![user, org, project, now],
                    grant_from_row,
                )
                .optional()?;
            let Some(mut g) = g else { return Ok(None) };
            tx.execute(
                "UPDATE elevations SET released_at = ?2 WHERE id = ?1",
                params![g.elevation_id, now],
            )?;
            g.released_at = Some(rfc3339(now));
            Ok(Some(g))
        })
    }

    pub fn active_elevations(&self, org: &str, now: i64) -> Result<Vec<Grant>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "{SELECT_GRANT} WHERE org = ?1 AND released_at IS NULL AND expires_at > ?2 ORDER BY granted_at"
            ))?;
            let rows = st.query_map(params![org, now], grant_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    // ---- audit ----------------------------------------------------------

    /// Appends one event to its organization's hash chain, durably (the
    /// transaction commits with `synchronous=FULL` before this returns).
    pub fn append_audit(&self, rec: &AuditRecord) -> Result<()> {
        self.write(None, |tx| append_in(tx, rec, &[]))
    }

    /// Events matching the filter, newest first.
    pub fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut out = Vec::new();
        self.scan_audit(f, true, |row| {
            out.push(row);
            true
        })?;
        Ok(out)
    }

    /// Calls `each` for every matching event, one row at a time, without
    /// collecting them; `each` returns false to stop early.
    pub fn scan_audit(
        &self,
        f: &AuditFilter,
        newest_first: bool,
        mut each: impl FnMut(AuditRow) -> bool,
    ) -> Result<()> {
        let mut sql =
            String::from("SELECT seq, ts, body, prev_hash, hash FROM audit WHERE org = ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![f.org.clone().into()];
        let mut push = |cond: &str, v: rusqlite::types::Value, sql: &mut String| {
            args.push(v);
            sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
        };
        if let Some(p) = &f.project {
            push(" AND project = ?", p.clone().into(), &mut sql);
        }
        if let Some(s) = &f.service {
            push(" AND service = ?", s.clone().into(), &mut sql);
        }
        if let Some(r) = &f.result {
            push(" AND result = ?", r.clone().into(), &mut sql);
        }
        if let Some(a) = &f.actor {
            push(
                " AND (instr(lower(actor), ?) > 0 OR instr(lower(actor_email), ?) > 0 OR instr(lower(actor_sub), ?) > 0)",
                a.to_lowercase().into(),
                &mut sql,
            );
        }
        if let Some(s) = f.since_ms {
            push(" AND ts >= ?", s.into(), &mut sql);
        }
        if let Some(u) = f.until_ms {
            push(" AND ts <= ?", u.into(), &mut sql);
        }
        sql.push_str(if newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq ASC"
        });
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        self.read(|c| {
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let text: String = r.get(2)?;
                let mut body: Map<String, Value> = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Internal(format!("audit row is corrupt: {e}")))?;
                let seq: i64 = r.get(0)?;
                body.insert("seq".into(), seq.into());
                body.insert("prev_hash".into(), Value::String(r.get(3)?));
                body.insert("hash".into(), Value::String(r.get(4)?));
                if !each(AuditRow {
                    seq,
                    ts: r.get(1)?,
                    body,
                    text,
                }) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Recomputes an organization's chain. `Ok(n)`: n events, all intact;
    /// `Err(seq)`: the first event whose hash or link does not match.
    pub fn verify_audit(&self, org: &str) -> Result<std::result::Result<u64, (i64, String)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT seq, ts, body, prev_hash, hash FROM audit WHERE org = ?1 ORDER BY seq",
            )?;
            let mut rows = st.query([org])?;
            let mut prev = GENESIS_HASH.to_string();
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let ts: i64 = r.get(1)?;
                let body: String = r.get(2)?;
                let prev_hash: String = r.get(3)?;
                let hash: String = r.get(4)?;
                if prev_hash != prev {
                    return Ok(Err((
                        seq,
                        "its prev_hash does not match the previous event".into(),
                    )));
                }
                if chain_hash(&prev_hash, ts, &body) != hash {
                    return Ok(Err((seq, "its content does not match its hash".into())));
                }
                prev = hash;
                n += 1;
            }
            Ok(Ok(n))
        })
    }

    /// Every organization that has events.
    pub fn audit_orgs(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT org FROM audit ORDER BY org")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Raw access for tests that tamper with the log.
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str) -> Result<usize> {
        self.read(|c| Ok(c.execute(sql, [])?))
    }
}

/// The database and its WAL and shared-memory files are owner-only (the
/// audit log in them is plaintext). SQLite gives the WAL and SHM files the
/// database file's mode, so the database is created 0600 before SQLite
/// opens it; files left more open by an older version are tightened.
fn owner_only_files(db: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", db.display())))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                StoreError::Internal(format!("cannot restrict {}: {e}", p.display()))
            })?;
        }
    }
    Ok(())
}

/// A stored version: namespace, name, version, nonce, ciphertext.
type SealedRow = (String, String, u64, Vec<u8>, Vec<u8>);

const KEY_CHECK_AAD: &[u8] = b"kube-dc key check";
const KEY_CHECK_PLAIN: &[u8] = b"kube-dc-backend master key check v1";

/// Detects a master key other than the one this store was written with,
/// before anything is read or written: a known text sealed under the key
/// is kept in `meta`. A store from before the check value proves its key
/// with any readable version instead.
fn check_key(tx: &Transaction, cipher: &Cipher) -> Result<()> {
    let wrong = || {
        StoreError::Internal(
            "the master key does not match this data directory: its values were sealed with \
             another key. Start with the original key (the data directory's master.key, or \
             KUBE_DC_BACKEND_MASTER_KEY); nothing was read or written"
                .into(),
        )
    };
    let stored: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(v) = stored {
        if v.len() < 12 {
            return Err(wrong());
        }
        let (nonce, ct) = v.split_at(12);
        return match cipher.open(nonce, ct, KEY_CHECK_AAD) {
            Ok(p) if p == KEY_CHECK_PLAIN => Ok(()),
            _ => Err(wrong()),
        };
    }
    let sample: Option<SealedRow> = tx
        .query_row(
            "SELECT namespace, name, version, nonce, ciphertext FROM kv_versions
             WHERE ciphertext IS NOT NULL LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    if let Some((ns, name, version, nonce, ct)) = sample
        && cipher.open(&nonce, &ct, &aad(&ns, &name, version)).is_err()
    {
        return Err(wrong());
    }
    let (nonce, ct) = cipher.seal(KEY_CHECK_PLAIN, KEY_CHECK_AAD);
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('key_check', ?1)",
        [[nonce, ct].concat()],
    )?;
    Ok(())
}

/// Two managed secrets must never project into one Kubernetes Secret: the
/// projection `name` would have with `sync` must be free in `ns`.
fn projection_free(tx: &Transaction, ns: &str, name: &str, sync: &SyncSpec) -> Result<()> {
    if !sync.enabled {
        return Ok(());
    }
    let target = sync.target_secret_name.as_deref().unwrap_or(name);
    let mut st = tx.prepare(
        "SELECT name, sync FROM managed_secrets WHERE namespace = ?1 AND name != ?2 AND deleted_at IS NULL",
    )?;
    let mut rows = st.query(params![ns, name])?;
    while let Some(r) = rows.next()? {
        let other: String = r.get(0)?;
        let text: String = r.get(1)?;
        let theirs: SyncSpec = serde_json::from_str(&text).unwrap_or_default();
        if theirs.enabled && theirs.target_secret_name.as_deref().unwrap_or(&other) == target {
            return Err(StoreError::Conflict(format!(
                "Kubernetes Secret {target:?} is already the projection of managed secret {other:?}; choose another target (--sync-target / sync --target)"
            )));
        }
    }
    Ok(())
}

/// One audit event as the store keeps it.
#[derive(Clone, Debug, Default)]
pub struct AuditRecord {
    pub ts: i64,
    pub org: String,
    pub project: Option<String>,
    pub service: String,
    pub result: String,
    pub actor: String,
    pub actor_email: String,
    pub actor_sub: String,
    pub body: Map<String, Value>,
}

/// What a write transaction knows that its audit event should record
/// (the version it wrote, the elevation it opened).
pub trait AuditFacts {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
}

impl AuditFacts for () {}
impl AuditFacts for u64 {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        vec![("version", (*self).into())]
    }
}
impl<T: AuditFacts> AuditFacts for Option<T> {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        self.as_ref().map(T::audit_facts).unwrap_or_default()
    }
}
impl AuditFacts for SecretRecord {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        self.kv
            .as_ref()
            .map(|k| vec![("version", k.current_version.into())])
            .unwrap_or_default()
    }
}
impl AuditFacts for Grant {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("elevation_id", self.elevation_id.clone().into()),
            ("expires_at", self.expires_at.clone().into()),
        ]
    }
}

/// Appends `rec` (plus `facts`) to its organization's chain, inside `tx`.
fn append_in(tx: &Transaction, rec: &AuditRecord, facts: &[(&'static str, Value)]) -> Result<()> {
    let mut body = rec.body.clone();
    for (k, v) in facts {
        body.insert((*k).into(), v.clone());
    }
    let body_text =
        serde_json::to_string(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let prev: String = tx
        .query_row(
            "SELECT hash FROM audit WHERE org = ?1 ORDER BY seq DESC LIMIT 1",
            [&rec.org],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_else(|| GENESIS_HASH.to_string());
    let hash = chain_hash(&prev, rec.ts, &body_text);
    tx.execute(
        "INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            rec.ts, rec.org, rec.project, rec.service, rec.result, rec.actor, rec.actor_email,
            rec.actor_sub, body_text, prev, hash
        ],
    )?;
    Ok(())
}

/// Schema version 2: one hash chain per organization (version 1 had one
/// chain for the whole installation). An intact version-1 log is re-linked
/// per organization; a broken one is refused, never silently re-hashed.
fn migrate(tx: &Transaction) -> Result<()> {
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= 2 {
        return Ok(());
    }
    let rows: Vec<(i64, i64, String, String, String, String)> = {
        let mut st =
            tx.prepare("SELECT seq, ts, org, body, prev_hash, hash FROM audit ORDER BY seq")?;
        let it = st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        it.collect::<Result<Vec<_>, _>>()?
    };
    let mut global = GENESIS_HASH.to_string();
    for (seq, ts, _, body, prev, hash) in &rows {
        if *prev != global || chain_hash(prev, *ts, body) != *hash {
            return Err(StoreError::Internal(format!(
                "the audit log is broken at event {seq}; it was not migrated to per-organization chains"
            )));
        }
        global = hash.clone();
    }
    let mut last: std::collections::HashMap<String, String> = Default::default();
    for (seq, ts, org, body, _, _) in rows {
        let prev = last
            .get(&org)
            .cloned()
            .unwrap_or_else(|| GENESIS_HASH.to_string());
        let hash = chain_hash(&prev, ts, &body);
        tx.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            params![seq, prev, hash],
        )?;
        last.insert(org, hash);
    }
    tx.execute_batch("PRAGMA user_version = 2")?;
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("secret {name:?} not found"))
}

fn require_live(c: &Connection, ns: &str, name: &str) -> Result<SecretRecord> {
    match get_any(c, ns, name)? {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(_) => Err(StoreError::NotFound(format!(
            "secret {name:?} is soft-deleted; restore it first (kube-dc secrets restore {name})"
        ))),
        None => Err(not_found(name)),
    }
}

fn mark_synced(c: &Connection, ns: &str, name: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE managed_secrets SET last_synced = ?3 WHERE namespace = ?1 AND name = ?2",
        params![ns, name, now],
    )?;
    Ok(())
}

const SELECT_SECRET: &str = "SELECT m.namespace, m.name, m.type, m.description, m.sync, m.rotation,
    m.imported_from, m.created_at, m.updated_at, m.last_synced, m.last_rotated, m.next_rotation,
    m.deleted_at, k.current_version, k.max_versions, k.created_at, k.updated_at,
    (SELECT v.destroyed = 0 FROM kv_versions v WHERE v.namespace = m.namespace AND v.name = m.name
        AND v.version = k.current_version)
    FROM managed_secrets m LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name";

fn get_any(c: &Connection, ns: &str, name: &str) -> Result<Option<SecretRecord>> {
    Ok(c.query_row(
        &format!("{SELECT_SECRET} WHERE m.namespace = ?1 AND m.name = ?2"),
        params![ns, name],
        secret_from_row,
    )
    .optional()?)
}

fn secret_from_row(r: &Row) -> rusqlite::Result<SecretRecord> {
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
        current_readable: r.get::<_, Option<bool>>(17)?.unwrap_or(false),
    })
}

const SELECT_GRANT: &str =
    "SELECT id, user, org, project, reason, granted_at, expires_at, released_at FROM elevations";

#[allow(clippy::too_many_arguments)]
fn grant(
    id: &str,
    user: &str,
    org: &str,
    project: &str,
    reason: &str,
    granted: i64,
    expires: i64,
    released: Option<i64>,
) -> Grant {
    Grant {
        elevation_id: id.into(),
        user: user.into(),
        org: org.into(),
        project: project.into(),
        reason: reason.into(),
        granted_at: rfc3339(granted),
        expires_at: rfc3339(expires),
        ttl_seconds: ((expires - granted) / 1000).max(0),
        released_at: released.map(rfc3339),
    }
}

fn grant_from_row(r: &Row) -> rusqlite::Result<Grant> {
    Ok(grant(
        &r.get::<_, String>(0)?,
        &r.get::<_, String>(1)?,
        &r.get::<_, String>(2)?,
        &r.get::<_, String>(3)?,
        &r.get::<_, String>(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}
