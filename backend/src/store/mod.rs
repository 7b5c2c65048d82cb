//! Durable state in one SQLite database (WAL mode) under the data directory.
//!
//! Several processes may open the same directory at once (parallel CLI
//! invocations on the local context): every write runs in a `BEGIN
//! IMMEDIATE` transaction, so version numbers are assigned under SQLite's
//! write lock and no concurrent writer can lose a version. Values kept in
//! this file (the in-process engine, [`SqliteValues`]) are only ever stored
//! sealed by [`Cipher`]; `secure_delete` overwrites freed pages so a
//! destroyed version's ciphertext does not linger in the file. How a change
//! reaches the values, wherever they are, is the write protocol
//! (`protocol`).
//!
//! Changes go through one writer thread that commits queued jobs together
//! (`writer`); reads use a pool of read-only connections (`conn`); async
//! callers use [`AsyncStore`] (`async_store`). One file per aggregate:
//! `secrets`, `versions`, `elevations`, `audit`; the schema and its
//! migrations in `schema`.

mod async_ops;
mod async_store;
mod audit;
mod audit_cache;
mod changes;
mod checkpoints;
mod conflict;
mod conn;
mod copy;
mod db;
mod elevations;
mod idempotency;
mod known;
mod leases;
mod linger;
mod list;
mod pg_schema;
mod protocol;
mod reconcile;
mod rotations;
mod schema;
mod secrets;
mod turns;
mod values;
mod versions;
mod writer;

pub use async_store::AsyncStore;
pub use audit::{AuditFacts, AuditRecord};
pub use changes::ChangeRow;
pub use checkpoints::Sign;
pub use conflict::Conflict;
pub use copy::{CopyReport, copy_to_postgres};
pub use db::{Dialect, PackedRows};
pub use idempotency::{IdempotencyKey, KeyedWrite};
pub use list::secret_records;
pub use reconcile::Discrepancy;
pub use values::{EngineHealth, EngineVersions, NoValues, Sealed, SqliteValues, Values};

use audit::append_in;
use conn::{Source, connect, pg_connect};
use db::Connection;
use schema::{SCHEMA, check_key, migrate, owner_only_files};
use secrets::{get_any, mark_synced, not_found, require_live};
use versions::readable_version;
use writer::{Effects, JobCtx, Shape, Writer, run_effects};

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::crypto::Cipher;
use kube_dc_api::wire::{Data, Rotation, SyncSpec};

/// How many versions a secret keeps unless told otherwise.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
pub use kube_dc_api::audit::{GENESIS_HASH, chain_hash};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The secret (or version, or window) does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Refused because of the secret's state (409).
    #[error("{0}")]
    Conflict(#[from] Conflict),
    /// The engine holds versions of the secret beyond the record: writes
    /// that reached it but were never recorded (cut off by a crash, or
    /// answered as unavailable after being applied). The write path lists
    /// them ([`Conflict::Adopted`]), or answers [`Conflict::Unlisted`].
    #[error("{}", Conflict::Unlisted { path: path.clone(), found: *found, recorded: *recorded })]
    Unrecorded {
        /// The engine's path of the secret.
        path: String,
        /// The engine's current version.
        found: u64,
        /// The version the backend recorded.
        recorded: u64,
    },
    /// The request cannot be done as asked (400).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("storage error: {0}")]
    Db(db::Error),
    /// Something that should not happen happened (500).
    #[error("{0}")]
    Internal(String),
    /// The value engine could not answer within its budget: try again
    /// after `retry_after` seconds.
    #[error("{message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A write whose `Idempotency-Key` was recorded already, with what it
    /// became: the caller answers as the first attempt was answered (never
    /// answered to a client as such).
    #[error("this write's Idempotency-Key was used already")]
    Replayed(KeyedWrite),
    /// What the engine answered no longer matches the record: the store
    /// reads again (never answered to a client as such).
    #[error("the secret changed while it was being read; read it again")]
    Stale,
}

impl From<db::Error> for StoreError {
    /// A database that cannot be reached is a 503 with `Retry-After`,
    /// never an acknowledgement: nothing was committed.
    fn from(e: db::Error) -> Self {
        if e.is_unreachable() {
            StoreError::Unavailable {
                message: format!("the database cannot be reached: {e}"),
                retry_after: 1,
            }
        } else {
            StoreError::Db(e)
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.into())
    }
}

/// A store operation's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A ManagedSecret row joined with its KV metadata.
#[derive(Clone, Debug)]
pub struct SecretRecord {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its type (`opaque`, `database`, …).
    pub kind: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its projection into a Kubernetes Secret.
    pub sync: SyncSpec,
    /// Its scheduled rotation, if any.
    pub rotation: Option<Rotation>,
    /// The Kubernetes Secret it was imported from (`namespace/name`).
    pub imported_from: Option<String>,
    /// When it was created (epoch ms).
    pub created_at: i64,
    /// When it last changed (epoch ms).
    pub updated_at: i64,
    /// When its projection was last written (epoch ms).
    pub last_synced: Option<i64>,
    /// When it was last rotated (epoch ms).
    pub last_rotated: Option<i64>,
    /// When its next rotation is due (epoch ms).
    pub next_rotation: Option<i64>,
    /// When it was soft-deleted (epoch ms), if it was.
    pub deleted_at: Option<i64>,
    /// Its KV metadata, once it has a version.
    pub kv: Option<KvMeta>,
    /// Whether the current version still holds values (not destroyed).
    pub current_readable: bool,
    /// When the current version was written (None: no version).
    pub current_created_at: Option<i64>,
    /// The current version's key names (None: no version, or written
    /// before versions recorded them).
    pub current_keys: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
/// A secret's KV metadata (OpenBao's `metadata` of the path).
pub struct KvMeta {
    /// The current version.
    pub current_version: u64,
    /// How many versions are kept.
    pub max_versions: u32,
    /// When the first version was written (epoch ms).
    pub created_at: i64,
    /// When the last version was written (epoch ms).
    pub updated_at: i64,
}

/// A secret to create.
pub struct NewSecret {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The create's `Idempotency-Key`, if it carried one.
    pub key: Option<IdempotencyKey>,
    /// Its type.
    pub kind: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its projection.
    pub sync: SyncSpec,
    /// Its rotation, if scheduled.
    pub rotation: Option<Rotation>,
    /// The rotation's interval.
    pub rotation_interval: Option<Duration>,
    /// The Kubernetes Secret it is imported from, if it is.
    pub imported_from: Option<String>,
}

/// created_at, nonce, ciphertext, destroyed
type StoredVersion = (i64, Option<Vec<u8>>, Option<Vec<u8>>, bool);

/// One version's values.
pub struct VersionData {
    /// The version.
    pub version: u64,
    /// When it was written (epoch ms).
    pub created_at: i64,
    /// Its values.
    pub data: Data,
}

/// One audit row as stored.
pub struct AuditRow {
    /// Its place in the log (all organizations).
    pub seq: i64,
    /// When it happened (epoch ms).
    pub ts: i64,
    /// The event exactly as it was hashed (a JSON object).
    pub text: String,
    /// The hash of the organization's previous event.
    pub prev_hash: String,
    /// Its hash (over the previous hash, the time and the text).
    pub hash: String,
}

impl AuditRow {
    /// The row of a query selecting `seq, ts, body, prev_hash, hash`, in
    /// that order (the audit queries and the `--audit-file` mirror).
    pub(crate) fn of(r: &db::Row<'_>) -> db::Result<Self> {
        Ok(AuditRow {
            seq: r.get(0)?,
            ts: r.get(1)?,
            text: r.get(2)?,
            prev_hash: r.get(3)?,
            hash: r.get(4)?,
        })
    }

    /// The event with `seq`, `prev_hash` and `hash` added, as a map.
    pub fn body(&self) -> Result<Map<String, Value>> {
        let mut body: Map<String, Value> = serde_json::from_str(&self.text)
            .map_err(|e| StoreError::Internal(format!("audit row is corrupt: {e}")))?;
        body.insert("seq".into(), self.seq.into());
        body.insert("prev_hash".into(), self.prev_hash.clone().into());
        body.insert("hash".into(), self.hash.clone().into());
        Ok(body)
    }

    /// [`AuditRow::body`] as JSON text, written without parsing the event:
    /// the three fields are spliced in before its closing brace.
    pub fn write_body_json(&self, out: &mut Vec<u8>) -> Result<()> {
        let text = self.text.trim_end();
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| StoreError::Internal(format!("audit row {} is corrupt", self.seq)))?;
        out.push(b'{');
        out.extend_from_slice(inner.as_bytes());
        if !inner.trim().is_empty() {
            out.push(b',');
        }
        use std::io::Write as _;
        let io = |e: std::io::Error| StoreError::Internal(e.to_string());
        write!(out, "\"seq\":{},\"prev_hash\":", self.seq).map_err(io)?;
        serde_json::to_writer(&mut *out, &self.prev_hash)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        out.extend_from_slice(b",\"hash\":");
        serde_json::to_writer(&mut *out, &self.hash)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        out.push(b'}');
        Ok(())
    }
}

#[derive(Default, Clone, Debug)]
/// What an audit query asks for: one organization, narrowed by each
/// filter given.
pub struct AuditFilter {
    /// The organization.
    pub org: String,
    /// Only this project's events.
    pub project: Option<String>,
    /// Only this service's events.
    pub service: Option<String>,
    /// Only events whose actor (name, email or subject) contains this.
    pub actor: Option<String>,
    /// Only events with this result.
    pub result: Option<String>,
    /// Only events at or after (epoch ms).
    pub since_ms: Option<i64>,
    /// Only events before (epoch ms).
    pub until_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: Option<usize>,
    /// Only events with a greater `seq` (an incremental export's cursor).
    pub after_seq: Option<i64>,
}

/// One writer (see [`writer`]) and a pool of read connections: in WAL mode
/// readers never wait for the writer, and each sees only committed data.
pub struct Store {
    writer: Writer,
    /// Counts the writer's commits (see [`Store::commit_signal`]).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    readers: Mutex<Vec<Connection>>,
    values: Arc<dyn Values>,
    /// Where the database is.
    source: Source,
    /// Open read sessions on PostgreSQL (bounded, see `conn`).
    reader_slots: conn::Slots,
    relaxed_reads: bool,
    /// Before this time (epoch ms) no rotation can be due: the earliest
    /// scheduled one, or a second after the last look, whichever is first.
    /// Zero when a change may have moved a schedule.
    rotation_hint: std::sync::atomic::AtomicI64,
    /// On an external engine, one change at a time per secret (a secret
    /// hashes to one of these): its version is written to the engine
    /// before the writer records it, so two changes of one secret must not
    /// interleave. Changes of different secrets run at once.
    engine_turns: Box<[tokio::sync::Mutex<()>]>,
    /// On PostgreSQL, the same turns among all replicas (`turns`).
    turns: Option<Arc<turns::TurnPool>>,
}

/// How many secrets' changes can wait on the engine at once, at most.
const ENGINE_TURNS: usize = 1024;

pub(super) fn aad(ns: &str, name: &str, version: u64) -> Vec<u8> {
    format!("{ns}\0{name}\0{version}").into_bytes()
}

impl Store {
    /// The store's file in the data directory.
    pub const DB_FILE: &'static str = "kube-dc.db";

    /// Opens the store with its values sealed in SQLite ([`SqliteValues`]).
    pub fn open(dir: &Path, cipher: Cipher) -> Result<Self> {
        let cipher = Arc::new(cipher);
        Self::open_with(dir, cipher.clone(), Arc::new(SqliteValues::new(cipher)))
    }

    /// Opens the store with its values in `values`. `cipher`: the data
    /// directory's master key (it seals SQLite values; it is checked
    /// against the directory whichever engine holds them).
    pub fn open_with(dir: &Path, cipher: Arc<Cipher>, values: Arc<dyn Values>) -> Result<Self> {
        crate::dirs::private_dir(dir)
            .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(Self::DB_FILE);
        owner_only_files(&path)?;
        let conn = connect(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // A store at the current schema version opens with reads only (the
        // CLI opens its store at every command); an older or new one runs
        // the schema and its migrations under the write lock, so two
        // processes opening a fresh directory at once do not trip over it.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let conn = Connection::Sqlite(conn);
        let opened = in_transaction(&conn, version != schema::CURRENT, |conn| {
            if version != schema::CURRENT {
                let lite = conn.sqlite().expect("a SQLite connection");
                lite.execute_batch(SCHEMA)?;
                migrate(lite)?;
            }
            check_key(conn, &cipher)?;
            values::check_engine(conn, &*values)
        });
        opened?;
        Self::start(conn, Source::Sqlite(path), values)
    }

    /// Opens the store on a PostgreSQL server (`url`): the schema is
    /// created or brought up to date by one replica at a time (under an
    /// advisory lock), and the master key checked, as for a data
    /// directory. Several replicas may open the same database.
    pub fn open_postgres(url: &str, cipher: Arc<Cipher>, values: Arc<dyn Values>) -> Result<Self> {
        // The driver's blocking calls must not run on an async runtime's
        // thread (the caller may be on one): opening runs on a thread of
        // its own, as every later statement runs on the writer's thread or
        // a blocking one.
        std::thread::scope(|s| {
            s.spawn(|| Self::open_postgres_here(url, cipher, values))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Internal("opening the store panicked".into())))
        })
    }

    fn open_postgres_here(url: &str, cipher: Arc<Cipher>, values: Arc<dyn Values>) -> Result<Self> {
        let conn = pg_connect(url)?;
        pg_schema::migrate(&conn)?;
        in_transaction(&conn, true, |conn| {
            check_key(conn, &cipher)?;
            values::check_engine(conn, &*values)
        })?;
        Self::start(conn, Source::Postgres(url.to_owned()), values)
    }

    fn start(conn: Connection, source: Source, values: Arc<dyn Values>) -> Result<Self> {
        let ctx = JobCtx::new(values.clone());
        let commits = ctx.commits.clone();
        let writer = Writer::start(conn, ctx)?;
        let turns = match &source {
            Source::Postgres(_) if values.external() => Some(turns::TurnPool::new(source.clone())),
            _ => None,
        };
        Ok(Self {
            writer,
            commits,
            readers: Mutex::new(Vec::new()),
            values,
            source,
            reader_slots: Default::default(),
            relaxed_reads: false,
            rotation_hint: Default::default(),
            engine_turns: (0..ENGINE_TURNS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            turns,
        })
    }

    /// Which database the store is on.
    pub fn dialect(&self) -> db::Dialect {
        match self.source {
            Source::Sqlite(_) => db::Dialect::Sqlite,
            Source::Postgres(_) => db::Dialect::Postgres,
        }
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

    /// An engine call whose caller then queues a job, counted while it
    /// runs: the writer's durable batches wait a moment for such jobs so
    /// that they share one commit (see `linger`).
    async fn engine_call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let arriving = self.writer.arrivals().arriving();
        let out = call.await;
        if out.is_ok() {
            arriving.answered();
        }
        out
    }

    /// The store's file.
    pub fn db_path(&self) -> &Path {
        match &self.source {
            Source::Sqlite(path) => path,
            Source::Postgres(_) => Path::new(""),
        }
    }

    /// The value engine's state, for `/readyz` (`None`: in-process).
    pub fn engine_health(&self) -> Option<futures_util::future::BoxFuture<'static, EngineHealth>> {
        self.values.health()
    }

    /// Queues a change for the writer; `reply` gets the result once it
    /// committed, with the engine steps its outcome calls for. With
    /// `audit`, the request's audit event is appended in the same
    /// transaction: the change and its event commit together, or neither
    /// does.
    fn submit<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<AuditRecord>,
        durable: bool,
        shape: Shape,
        f: impl FnOnce(&JobCtx, &Connection) -> Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T>, Effects) + Send + 'static,
    ) {
        let job = move |ctx: &JobCtx, c: &Connection| {
            let out = f(ctx, c)?;
            if let Some(a) = &audit {
                append_in(ctx, c, a, &out.audit_facts())?;
            }
            Ok(out)
        };
        self.writer.submit(durable, shape, job, reply)
    }

    /// A read whose one change is its audit event (`audit`, or the one `f`
    /// appends last), awaited: it needs no savepoint of its own (see
    /// [`writer::Isolation::ChecksFirst`]).
    async fn record_async<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<AuditRecord>,
        durable: bool,
        f: impl FnOnce(&JobCtx, &Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.job_async(audit, durable, Shape::READ, f).await
    }

    async fn job_async<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<AuditRecord>,
        durable: bool,
        shape: Shape,
        f: impl FnOnce(&JobCtx, &Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(audit, durable, shape, f, move |r, steps| {
            let _ = tx.send((r, steps));
        });
        let (r, steps) = rx.await.map_err(|_| writer::writer_gone())?;
        if !steps.is_empty() {
            tokio::task::spawn_blocking(move || run_effects(steps))
                .await
                .map_err(|e| StoreError::Internal(format!("engine step failed: {e}")))?;
        }
        r
    }

    /// One change, waited for on this thread, which then runs its engine
    /// steps.
    fn write<T: AuditFacts + Send + 'static>(
        &self,
        audit: Option<&AuditRecord>,
        f: impl FnOnce(&JobCtx, &Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(audit.cloned(), true, Shape::CHANGE, f, move |r, steps| {
            let _ = tx.send((r, steps));
        });
        let (r, steps) = rx.recv().map_err(|_| writer::writer_gone())?;
        run_effects(steps);
        r
    }

    /// A count read with raw SQL, for tests that look at the tables.
    #[cfg(feature = "test-support")]
    pub fn count_raw(&self, sql: &str) -> Result<i64> {
        self.read(|c| Ok(c.query_row(sql, (), |r| r.get(0))?))
    }

    /// Raw access for tests that tamper with the log.
    #[cfg(feature = "test-support")]
    pub fn execute_raw(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_owned();
        /// The rows a statement changed: nothing to audit.
        struct Rows(usize);
        impl AuditFacts for Rows {}
        self.write(None, move |_, c| {
            Ok(Rows(match c.dialect() {
                // Several statements (a function and its trigger) at once.
                db::Dialect::Postgres => c.execute_batch(&sql).map(|()| 0)?,
                db::Dialect::Sqlite => c.execute(&sql, ())?,
            }))
        })
        .map(|Rows(n)| {
            // It may have changed anything, schedules included.
            self.schedules_changed();
            n
        })
    }
}

/// Runs `f` in one transaction (`write`: holding the write lock from the
/// start, on SQLite), committed if it succeeds and rolled back if not.
fn in_transaction<T>(
    conn: &Connection,
    write: bool,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch(match (conn.dialect(), write) {
        (db::Dialect::Sqlite, true) => "BEGIN IMMEDIATE",
        (db::Dialect::Sqlite, false) => "BEGIN DEFERRED",
        (db::Dialect::Postgres, _) => "BEGIN",
    })?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Fails on purpose at the step a test named (`Config::fault`, feature
/// `test-support`), to prove that nothing is left behind.
pub(crate) fn fault_point(configured: Option<&str>, step: &str) -> Result<(), StoreError> {
    if configured == Some(step) {
        return Err(StoreError::Internal(format!(
            "injected failure at step {step:?}"
        )));
    }
    Ok(())
}
