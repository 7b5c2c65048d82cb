//! The schema, its migrations, and the checks made when a store opens:
//! owner-only files and the master key check value.

use super::db::{Connection, OptionalExtension};
use super::{GENESIS_HASH, Result, StoreError, aad, chain_hash};
use crate::crypto::Cipher;
use rusqlite::{Connection as Lite, params};
use std::path::{Path, PathBuf};

pub(super) const SCHEMA: &str = r#"
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
    keys       TEXT,
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
CREATE TABLE IF NOT EXISTS idempotent_writes (
    subject    TEXT NOT NULL,
    key        TEXT NOT NULL,
    route      TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (subject, key)
);
CREATE INDEX IF NOT EXISTS idempotent_writes_age ON idempotent_writes (created_at);
"#;

/// The schema version [`migrate`] leaves: a store at it has every table
/// and index of [`SCHEMA`], so opening it runs neither.
pub(super) const CURRENT: i64 = 9;

/// The schema's migrations, in order, each once.
pub(super) fn migrate(tx: &Lite) -> Result<()> {
    let version: i64 = tx.query_row("PRAGMA user_version", (), |r| r.get(0))?;
    if version < 2 {
        per_org_chains(tx)?;
    }
    if version < 4 {
        actors(tx)?;
    }
    if version < 5 {
        version_keys(tx)?;
    }
    if version < 6 {
        audit_filter_indexes(tx)?;
    }
    if version < 7 {
        // Version 7: `idempotent_writes` (created by SCHEMA above, which
        // every open ran until the version said it was there).
        tx.execute_batch("PRAGMA user_version = 7")?;
    }
    if version < 8 {
        read_path_indexes(tx)?;
    }
    if version < 9 {
        checkpoints(tx)?;
    }
    Ok(())
}

/// Schema version 9: `audit_checkpoints`, the signed statements of each
/// organization's chain head (`kube_dc_api::checkpoint`), one per signed
/// event at most.
fn checkpoints(tx: &Lite) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_checkpoints (
             org       TEXT NOT NULL,
             seq       INTEGER NOT NULL,
             events    INTEGER NOT NULL,
             hash      TEXT NOT NULL,
             ts        INTEGER NOT NULL,
             time      TEXT NOT NULL,
             key_id    TEXT NOT NULL,
             signature TEXT NOT NULL,
             PRIMARY KEY (org, seq)
         );
         PRAGMA user_version = 9;",
    )?;
    Ok(())
}

/// Schema version 8, two indexes for what every local command reads:
/// - the live secrets that have a rotation scheduled, by when it is due.
///   Every process that embeds the backend (each local `kube-dc` command)
///   asks which rotations are due when it starts; without it that look
///   read every secret's row (a quarter of a local `secrets get` at
///   10,000 secrets);
/// - what a listed secret shows of its current version (whether it is
///   readable, its key names, its time), so the list reads it from the
///   index instead of seeking each version's row with its sealed value.
///
/// Measured with B4 (docs/benchmarks.md).
fn read_path_indexes(tx: &Lite) -> Result<()> {
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS managed_secrets_due ON managed_secrets (next_rotation)
             WHERE deleted_at IS NULL AND next_rotation IS NOT NULL;
         CREATE INDEX IF NOT EXISTS kv_versions_shown
             ON kv_versions (namespace, name, version, destroyed, keys, created_at);
         PRAGMA user_version = 8;",
    )?;
    Ok(())
}

/// Schema version 6: an index per equality filter of the audit queries
/// (project, result, service), each ordered by `seq` within its value so a
/// filtered page is read newest first without a sort, and one on time for
/// `since`/`until`. `audit_query` picks the one that visits the fewest
/// events. Measured on a log made by real requests (B3').
fn audit_filter_indexes(tx: &Lite) -> Result<()> {
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS audit_org_project ON audit (org, project, seq);
         CREATE INDEX IF NOT EXISTS audit_org_result ON audit (org, result, seq);
         CREATE INDEX IF NOT EXISTS audit_org_service ON audit (org, service, seq);
         CREATE INDEX IF NOT EXISTS audit_org_ts ON audit (org, ts);
         PRAGMA user_version = 6;",
    )?;
    Ok(())
}

/// Schema version 4: each distinct actor (name, email and subject) once in
/// `audit_actors`, with an FTS5 trigram index over them for the substring
/// filter, and `audit.actor_id` pointing there, indexed with the
/// organization. An event then costs one lookup instead of one index row
/// per trigram; the filter matches the few actors, then their events.
/// Replaces version 3's per-event trigram table.
fn actors(tx: &Lite) -> Result<()> {
    let has_column: bool = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'actor_id'",
        [],
        |r| r.get(0),
    )?;
    if !has_column {
        tx.execute_batch("ALTER TABLE audit ADD COLUMN actor_id INTEGER")?;
    }
    tx.execute_batch(
        "DROP TABLE IF EXISTS audit_actor;
         CREATE TABLE IF NOT EXISTS audit_actors (
             id  INTEGER PRIMARY KEY,
             who TEXT NOT NULL UNIQUE
         );
         CREATE VIRTUAL TABLE IF NOT EXISTS audit_actors_fts USING fts5(
             who, content = 'audit_actors', content_rowid = 'id', tokenize = 'trigram'
         );
         INSERT OR IGNORE INTO audit_actors (who)
             SELECT DISTINCT actor || char(10) || actor_email || char(10) || actor_sub
             FROM audit WHERE actor_id IS NULL;
         INSERT INTO audit_actors_fts (audit_actors_fts) VALUES ('rebuild');
         UPDATE audit SET actor_id = (SELECT id FROM audit_actors
             WHERE who = audit.actor || char(10) || audit.actor_email || char(10) || audit.actor_sub)
         WHERE actor_id IS NULL;
         CREATE INDEX IF NOT EXISTS audit_org_actor ON audit (org, actor_id, seq);
         PRAGMA user_version = 4;",
    )?;
    Ok(())
}

/// Schema version 5: `kv_versions.keys`, the JSON array of a version's key
/// names (names are not values: a Kubernetes Secret shows them too), so the
/// status can say whether the projection holds the keys it is asked for.
/// Versions written before it have none (NULL: not known).
fn version_keys(tx: &Lite) -> Result<()> {
    let has_column: bool = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('kv_versions') WHERE name = 'keys'",
        [],
        |r| r.get(0),
    )?;
    if !has_column {
        tx.execute_batch("ALTER TABLE kv_versions ADD COLUMN keys TEXT")?;
    }
    tx.execute_batch("PRAGMA user_version = 5")?;
    Ok(())
}

/// Schema version 2: one hash chain per organization (version 1 had one
/// chain for the whole installation). An intact version-1 log is re-linked
/// per organization; a broken one is refused, never silently re-hashed.
fn per_org_chains(tx: &Lite) -> Result<()> {
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

/// The database and its WAL and shared-memory files are owner-only (the
/// audit log in them is plaintext). SQLite gives the WAL and SHM files the
/// database file's mode, so the database is created 0600 before SQLite
/// opens it; files left more open by an older version are tightened.
pub(super) fn owner_only_files(db: &Path) -> Result<()> {
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
pub(super) fn check_key(tx: &Connection, cipher: &Cipher) -> Result<()> {
    let wrong = || {
        StoreError::Internal(
            "the master key does not match this data directory: its values were sealed with \
             another key. Start with the original key (the data directory's master.key, \
             --master-key-file — the same file for every replica on one database — or \
             KUBE_DC_BACKEND_MASTER_KEY); nothing was read or written"
                .into(),
        )
    };
    let stored: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE key = 'key_check'", (), |r| {
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
            (),
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
