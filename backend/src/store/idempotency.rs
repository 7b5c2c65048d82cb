//! Writes made safe to retry. A write of a secret's values that carries an
//! `Idempotency-Key` (create, put) records what it became, under its
//! caller and key, in the transaction that records the write itself: a
//! retry with the same key (after a timeout, a 503, a lost answer or a
//! crash) then finds it and is answered as the first attempt was, instead
//! of writing again or meeting a conflict. Keys are kept for a day.

use super::db::{Connection, OptionalExtension};
use rusqlite::params;

use super::{Result, Store, StoreError};

/// How long a key is remembered (ms).
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

/// A write's key: whose (the caller's subject; keys of different callers
/// never meet), the key, and the route it was sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The caller's subject.
    pub subject: String,
    /// The `Idempotency-Key` as sent.
    pub key: String,
    /// `create` or `put`.
    pub route: &'static str,
}

/// What a keyed write became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedWrite {
    /// The route it was sent to (`create` or `put`).
    pub route: String,
    /// The secret's namespace.
    pub namespace: String,
    /// The secret's name.
    pub name: String,
    /// The version it wrote (0: a create without values).
    pub version: u64,
    /// When (epoch ms).
    pub created_at: i64,
}

impl KeyedWrite {
    /// Whether it was made by `key`'s route on this secret (a key reused
    /// for another request is not a retry).
    pub fn is_for(&self, key: &IdempotencyKey, ns: &str, name: &str) -> bool {
        self.route == key.route && self.namespace == ns && self.name == name
    }
}

/// What `key` became, if a write with it was recorded.
pub(super) fn lookup(c: &Connection, key: &IdempotencyKey) -> Result<Option<KeyedWrite>> {
    Ok(c.row(
        "SELECT route, namespace, name, version, created_at FROM idempotent_writes
         WHERE subject = ?1 AND key = ?2",
        params![key.subject, key.key],
        |r| {
            Ok(KeyedWrite {
                route: r.get(0)?,
                namespace: r.get(1)?,
                name: r.get(2)?,
                version: r.get(3)?,
                created_at: r.get(4)?,
            })
        },
    )
    .optional()?)
}

/// First thing in a keyed write's job: a key already recorded (the write
/// and its retry racing) fails the job with [`StoreError::Replayed`], which
/// undoes anything the job staged; the caller answers with what it finds.
pub(super) fn check_unused(c: &Connection, key: Option<&IdempotencyKey>) -> Result<()> {
    match key.map(|k| lookup(c, k)).transpose()?.flatten() {
        Some(w) => Err(StoreError::Replayed(w)),
        None => Ok(()),
    }
}

/// Last thing in a keyed write's job: the key, with what the write became;
/// keys older than [`KEEP_MS`] go.
pub(super) fn remember(
    tx: &Connection,
    key: Option<&IdempotencyKey>,
    (ns, name): (&str, &str),
    version: u64,
    now: i64,
) -> Result<()> {
    let Some(k) = key else {
        return Ok(());
    };
    tx.exec(
        "DELETE FROM idempotent_writes WHERE created_at < ?1",
        params![now - KEEP_MS],
    )?;
    tx.exec(
        "INSERT INTO idempotent_writes (subject, key, route, namespace, name, version, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![k.subject, k.key, k.route, ns, name, version, now],
    )?;
    Ok(())
}

impl Store {
    /// What the write with `key` became, if it was recorded.
    pub fn keyed_write(&self, key: &IdempotencyKey) -> Result<Option<KeyedWrite>> {
        self.read(|c| lookup(c, key))
    }
}
