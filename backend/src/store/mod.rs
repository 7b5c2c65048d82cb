//! Durable state in one SQLite database (WAL mode) under the data directory.
//!
//! Several processes may open the same directory at once (parallel CLI
//! invocations on the local context): every write runs in a `BEGIN
//! IMMEDIATE` transaction, so version numbers are assigned under SQLite's
//! write lock and no concurrent writer can lose a version. Values are only
//! ever stored sealed by [`Cipher`]; `secure_delete` overwrites freed pages so
//! a destroyed version's ciphertext does not linger in the file.
//!
//! One file per aggregate: `secrets`, `versions`, `elevations`, `audit`;
//! the schema and its migrations in `schema`.

mod audit;
mod elevations;
mod schema;
mod secrets;
mod versions;

pub use audit::{AuditFacts, AuditRecord};

/// The store for async code: each call runs on a blocking thread (SQLite
/// calls block), so no caller stalls the runtime and none forgets to.
#[derive(Clone)]
pub struct AsyncStore(pub std::sync::Arc<Store>);

impl AsyncStore {
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Internal(format!("store worker failed: {e}")))?
    }
}
use audit::append_in;
use schema::{SCHEMA, check_key, migrate, owner_only_files};

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

pub(super) fn aad(ns: &str, name: &str, version: u64) -> Vec<u8> {
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

    /// Raw access for tests that tamper with the log.
    #[cfg(feature = "test-support")]
    pub fn execute_raw(&self, sql: &str) -> Result<usize> {
        self.read(|c| Ok(c.execute(sql, [])?))
    }
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("secret {name:?} not found"))
}

pub(super) fn require_live(c: &Connection, ns: &str, name: &str) -> Result<SecretRecord> {
    match get_any(c, ns, name)? {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(_) => Err(StoreError::NotFound(format!(
            "secret {name:?} is soft-deleted; restore it first (kube-dc secrets restore {name})"
        ))),
        None => Err(not_found(name)),
    }
}

pub(super) fn mark_synced(c: &Connection, ns: &str, name: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE managed_secrets SET last_synced = ?3 WHERE namespace = ?1 AND name = ?2",
        params![ns, name, now],
    )?;
    Ok(())
}

pub(super) const SELECT_SECRET: &str =
    "SELECT m.namespace, m.name, m.type, m.description, m.sync, m.rotation,
    m.imported_from, m.created_at, m.updated_at, m.last_synced, m.last_rotated, m.next_rotation,
    m.deleted_at, k.current_version, k.max_versions, k.created_at, k.updated_at,
    (SELECT v.destroyed = 0 FROM kv_versions v WHERE v.namespace = m.namespace AND v.name = m.name
        AND v.version = k.current_version)
    FROM managed_secrets m LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name";

pub(super) fn get_any(c: &Connection, ns: &str, name: &str) -> Result<Option<SecretRecord>> {
    Ok(c.query_row(
        &format!("{SELECT_SECRET} WHERE m.namespace = ?1 AND m.name = ?2"),
        params![ns, name],
        secret_from_row,
    )
    .optional()?)
}

pub(super) fn secret_from_row(r: &Row) -> rusqlite::Result<SecretRecord> {
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
