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
mod writer;

pub use audit::{AuditFacts, AuditRecord};

/// The store for async code: reads run on a blocking thread (SQLite calls
/// block), so no caller stalls the runtime and none forgets to; changes go
/// to the store's writer and are awaited without holding a thread.
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

    /// Appends one event to its organization's chain. `durable`: the answer
    /// waits until the event is on disk (see [`Store::relax_read_events`]
    /// for when it need not be).
    pub async fn append_audit(&self, rec: AuditRecord, durable: bool) -> Result<()> {
        let durable = durable || !self.0.relaxed_reads;
        self.0
            .write_async(None, durable, move |_, c| append_in(c, &rec, &[]))
            .await
    }

    /// The live secret and one of its versions, read in the transaction that
    /// appends `audit` (which records the version read): the value is
    /// answered only once its read is on record.
    pub async fn reveal(
        &self,
        ns: String,
        name: String,
        version: Option<u64>,
        audit: AuditRecord,
    ) -> Result<(SecretRecord, Option<VersionData>)> {
        self.0
            .write_async(Some(audit), true, move |ctx, c| {
                let rec = get_any(c, &ns, &name)?
                    .filter(|r| r.deleted_at.is_none())
                    .ok_or_else(|| not_found(&ns, &name))?;
                let value = read_version_in(c, &ctx.cipher, &ns, &name, version)?;
                Ok(Revealed(rec, value))
            })
            .await
            .map(|Revealed(rec, value)| (rec, value))
    }
}

/// A secret and the version read from it, with the version for the audit
/// event.
struct Revealed(SecretRecord, Option<VersionData>);

impl AuditFacts for Revealed {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        self.1
            .as_ref()
            .map(|v| vec![("version", v.version.into())])
            .unwrap_or_default()
    }
}

use audit::append_in;
use schema::{SCHEMA, check_key, migrate, owner_only_files};
use versions::{read_version_in, write_version};
use writer::{Ctx, Writer};

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

/// One writer (see [`writer`]) and a pool of read connections: in WAL mode
/// readers never wait for the writer, and each sees only committed data.
pub struct Store {
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    cipher: std::sync::Arc<Cipher>,
    path: PathBuf,
    relaxed_reads: bool,
    /// Before this time (epoch ms) no rotation can be due: the earliest
    /// scheduled one, or a second after the last look, whichever is first.
    /// Zero when a change may have moved a schedule.
    rotation_hint: std::sync::atomic::AtomicI64,
}

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

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
        let mut conn = connect(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // Schema creation is idempotent; run it under the write lock so two
        // processes opening a fresh directory at once do not trip over it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        migrate(&tx)?;
        check_key(&tx, &cipher)?;
        tx.commit()?;
        let cipher = std::sync::Arc::new(cipher);
        let writer = Writer::start(
            conn,
            Ctx {
                cipher: cipher.clone(),
            },
        )?;
        Ok(Self {
            writer,
            readers: Mutex::new(Vec::new()),
            cipher,
            path,
            relaxed_reads: false,
            rotation_hint: Default::default(),
        })
    }

    /// Lets the events of requests that reveal no value (lists, metadata,
    /// audit queries) commit without waiting for the disk: they survive a
    /// crash of the process but not of the machine. Value reads and every
    /// change stay fully durable, and the next durable commit syncs the
    /// relaxed events before it too. For the CLI's own local store, where a
    /// `list` should not cost an fsync.
    pub fn relax_read_events(mut self) -> Self {
        self.relaxed_reads = true;
        self
    }

    pub fn db_path(&self) -> &Path {
        &self.path
    }

    /// Queues a change for the writer; `reply` gets the result once it
    /// committed. With `audit`, the request's audit event is appended in the
    /// same transaction: the change and its event commit together, or
    /// neither does.
    fn submit<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<AuditRecord>,
        durable: bool,
        f: impl FnOnce(&Ctx, &Connection) -> Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let job = move |ctx: &Ctx, c: &Connection| {
            let out = f(ctx, c)?;
            if let Some(a) = &audit {
                append_in(c, a, &out.audit_facts())?;
            }
            Ok(out)
        };
        self.writer.submit(durable, job, reply)
    }

    /// One change, awaited.
    async fn write_async<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<AuditRecord>,
        durable: bool,
        f: impl FnOnce(&Ctx, &Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(audit, durable, f, move |r| {
            let _ = tx.send(r);
        });
        rx.await.map_err(|_| writer::writer_gone())?
    }

    /// One change, waited for on this thread.
    fn write<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<&AuditRecord>,
        f: impl FnOnce(&Ctx, &Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(audit.cloned(), true, f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().map_err(|_| writer::writer_gone())?
    }

    /// A read on a pooled connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = connect(&self.path)?;
                c.pragma_update(None, "query_only", "ON")?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
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
        let sql = sql.to_owned();
        self.write(None, move |_, c| Ok(c.execute(&sql, [])? as u64))
            .map(|n| {
                // It may have changed anything, schedules included.
                self.schedules_changed();
                n as usize
            })
    }
}

/// A connection to the store's file with the settings every connection
/// shares. No connection checkpoints on close: closing must not write (a
/// read command leaves the files as it found them); the writer checkpoints
/// as it commits.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// `execute` and `query_row` through the connection's statement cache:
/// the statements of every request are parsed once per connection.
pub(super) trait Cached {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&Row) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }
    fn row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&Row) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn not_found(ns: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("secret {name:?} not found in namespace {ns:?}"))
}

pub(super) fn require_live(c: &Connection, ns: &str, name: &str) -> Result<SecretRecord> {
    match get_any(c, ns, name)? {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(_) => Err(StoreError::NotFound(format!(
            "secret {name:?} is soft-deleted; restore it first (kube-dc secrets restore {name})"
        ))),
        None => Err(not_found(ns, name)),
    }
}

pub(super) fn mark_synced(c: &Connection, ns: &str, name: &str, now: i64) -> Result<()> {
    c.exec(
        "UPDATE managed_secrets SET last_synced = ?3 WHERE namespace = ?1 AND name = ?2",
        params![ns, name, now],
    )?;
    Ok(())
}

/// A secret's row joined with its KV metadata, for the namespace (`?1`)
/// and name (`?2`) of the CTE `p` the caller defines. The parameters are
/// bound in a CTE rather than compared in `WHERE`: SQLite propagates a
/// `WHERE` constant into the join, which marks the statement as dependent on
/// the bound values and has it re-parsed at every execution.
macro_rules! select_secret {
    ($p:literal, $rest:literal) => {
        concat!(
            "WITH p(ns, n) AS (SELECT ", $p, ")
    SELECT m.namespace, m.name, m.type, m.description, m.sync, m.rotation,
    m.imported_from, m.created_at, m.updated_at, m.last_synced, m.last_rotated, m.next_rotation,
    m.deleted_at, k.current_version, k.max_versions, k.created_at, k.updated_at,
    (SELECT v.destroyed = 0 FROM kv_versions v WHERE v.namespace = m.namespace AND v.name = m.name
        AND v.version = k.current_version)
    FROM p JOIN managed_secrets m ON m.namespace = p.ns ",
            $rest,
            " LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name"
        )
    };
}
pub(super) use select_secret;

pub(super) fn get_any(c: &Connection, ns: &str, name: &str) -> Result<Option<SecretRecord>> {
    Ok(c.row(
        select_secret!("?1, ?2", "AND m.name = p.n"),
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
