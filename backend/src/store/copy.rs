//! Moving an installation from its data directory's SQLite file to
//! PostgreSQL (`kube-dc-backend migrate-store`): every table, row for row
//! (sealed values stay sealed under the same master key), in one
//! PostgreSQL transaction, into a database that holds nothing yet; then
//! each organization's chain is recomputed from the destination and its
//! head compared with the source's.

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Value;

use super::conn::{connect, pg_connect};
use super::db::Connection;
use super::{NoValues, Result, Store, StoreError, pg_schema};
use crate::crypto::Cipher;

/// Each table and its columns, in an order that inserts what others point
/// at first.
const TABLES: &[(&str, &str)] = &[
    (
        "managed_secrets",
        "namespace, name, type, description, sync, rotation, imported_from, created_at, \
         updated_at, last_synced, last_rotated, next_rotation, deleted_at",
    ),
    (
        "kv_meta",
        "namespace, name, current_version, max_versions, created_at, updated_at",
    ),
    (
        "kv_versions",
        "namespace, name, version, created_at, nonce, ciphertext, destroyed, destroyed_at, keys",
    ),
    (
        "elevations",
        "id, \"user\", org, project, reason, granted_at, expires_at, released_at",
    ),
    ("audit_actors", "id, who"),
    (
        "audit",
        "seq, ts, org, project, service, result, actor, actor_email, actor_sub, body, \
         prev_hash, hash, actor_id",
    ),
    ("meta", "key, value"),
    (
        "idempotent_writes",
        "subject, key, route, namespace, name, version, created_at",
    ),
    (
        "audit_checkpoints",
        "org, seq, events, hash, ts, time, key_id, signature",
    ),
];

/// What a move copied and checked.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Rows copied, per table.
    pub tables: Vec<(String, u64)>,
    /// Each organization's events, its chain recomputed at the destination.
    pub chains: Vec<(String, u64)>,
}

/// Copies the data directory `dir` (its SQLite file, brought up to the
/// current schema first) into the empty PostgreSQL database at `url`.
pub fn copy_to_postgres(dir: &Path, url: &str, cipher: Cipher) -> Result<CopyReport> {
    let cipher = Arc::new(cipher);
    let db = dir.join(Store::DB_FILE);
    if !db.exists() {
        return Err(StoreError::Invalid(format!(
            "{} holds no store ({} is missing)",
            dir.display(),
            Store::DB_FILE
        )));
    }
    // Opening runs the source's migrations and checks its master key.
    drop(Store::open_with(dir, cipher.clone(), Arc::new(NoValues))?);
    let src = Connection::Sqlite(connect(&db)?);
    let dst = pg_connect(url)?;
    pg_schema::migrate(&dst)?;
    dst.execute_batch("BEGIN")?;
    let copied = copy_tables(&src, &dst);
    match copied {
        Ok(tables) => {
            dst.execute_batch("COMMIT")?;
            let store = Store::open_postgres(url, cipher, Arc::new(NoValues))?;
            let chains = check_chains(&src, &store)?;
            Ok(CopyReport { tables, chains })
        }
        Err(e) => {
            let _ = dst.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn copy_tables(src: &Connection, dst: &Connection) -> Result<Vec<(String, u64)>> {
    for table in ["managed_secrets", "audit", "elevations"] {
        let n: i64 = dst.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?;
        if n > 0 {
            return Err(StoreError::Invalid(format!(
                "the destination database is not empty ({table} has {n} row(s)); \
                 migrate-store moves into an empty database only"
            )));
        }
    }
    // The destination's own key check and engine record make way for the
    // source's.
    dst.execute("DELETE FROM meta", ())?;
    let mut out = Vec::new();
    for (table, columns) in TABLES {
        let n = columns.split(',').count();
        let marks = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>();
        let insert = format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            marks.join(", ")
        );
        let mut rows = 0u64;
        let mut failed = None;
        src.each(&format!("SELECT {columns} FROM {table}"), (), |r| {
            let values = (0..n)
                .map(|i| r.get::<Value>(i))
                .collect::<Result<Vec<_>, _>>()?;
            if let Err(e) = dst.execute(&insert, values) {
                failed = Some(e);
                return Ok(false);
            }
            rows += 1;
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(StoreError::Internal(format!("copying {table}: {e}")));
        }
        out.push(((*table).to_owned(), rows));
    }
    // New rows continue after the copied ones.
    for (table, column) in [("audit", "seq"), ("audit_actors", "id")] {
        dst.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                               coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            ),
            (),
            |_| Ok(()),
        )?;
    }
    Ok(out)
}

/// Each organization's chain recomputed from the destination, and its
/// head compared with the source's.
fn check_chains(src: &Connection, store: &Store) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for org in store.audit_orgs()? {
        let events = match store.verify_audit(&org)? {
            Ok(n) => n,
            Err((seq, why)) => {
                return Err(StoreError::Internal(format!(
                    "after the move, {org:?}'s audit chain is broken at event {seq}: {why}"
                )));
            }
        };
        let source_head = super::changes::head_in(src, &org)?;
        let moved_head = store.audit_head_of(&org)?;
        if source_head != moved_head {
            return Err(StoreError::Internal(format!(
                "after the move, {org:?}'s newest event differs from the source's"
            )));
        }
        out.push((org, events));
    }
    Ok(out)
}
