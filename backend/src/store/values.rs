//! Where a secret's values live: one interface, two engines.
//!
//! The SQL store keeps every secret's metadata, its version list
//! (`kv_versions`, `kv_meta`), the elevation grants and the audit log. The
//! values themselves go to a [`Values`] engine:
//! - [`SqliteValues`] (the default, and the `local` context's): sealed with
//!   the data directory's master key into the version's own row, in the
//!   same transaction as its metadata and audit event;
//! - `OpenBaoValues` ([`crate::openbao`]): a KV v2 mount per project,
//!   `kv-<namespace>`, one path per secret, OpenBao's version numbers kept
//!   in step with `kv_versions`.
//!
//! How a change reaches the engine — before the writer's transaction for an
//! external engine, inside it for the in-process one, undone if the
//! transaction does not commit — is the write protocol (`store::protocol`).
//! What an external engine kept of a change that was never recorded is
//! found by the next write to that secret, or at the next start
//! (`store::reconcile`).

use super::db::{Connection, MetaText, OptionalExtension};
use super::{Result, StoreError, aad};
use crate::crypto::Cipher;
use futures_util::future::BoxFuture;
use kube_dc_api::wire::Data;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A value sealed for the version's own row (`nonce`, `ciphertext`).
pub type Sealed = (Vec<u8>, Vec<u8>);

/// Where values live: sealed in SQLite, or an external engine (OpenBao).
/// The store records versions; an engine holds their values.
pub trait Values: Send + Sync + 'static {
    /// `sqlite` or `openbao`: recorded in the data directory at first open,
    /// which then refuses the other.
    fn kind(&self) -> &'static str;

    /// Stores `data` as the version after `current` (check-and-set on
    /// `current`, 0 = no version yet). Returns the version it became —
    /// `current + 1`, or later when the engine skipped versions that writes
    /// which never committed left behind, destroyed — and what the
    /// version's row keeps.
    fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)>;

    /// Reads one live version; `sealed` is what its row kept.
    fn get(&self, ns: &str, name: &str, version: u64, sealed: Option<Sealed>) -> Result<Data>;

    /// Makes one version unreadable for good.
    fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()>;

    /// Erases every version and the secret's own record in the engine.
    fn destroy_all(&self, ns: &str, name: &str) -> Result<()>;

    /// The managed secret was soft-deleted (`true`) or restored (`false`):
    /// its current version follows, its history stays.
    fn set_deleted(&self, ns: &str, name: &str, current: u64, deleted: bool) -> Result<()>;

    /// The engine's own current version of a secret, when it keeps one
    /// apart from `kv_meta` (to find writes the SQL store did not record).
    fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        let _ = (ns, name);
        Ok(None)
    }

    /// A path that no secret owns holds live versions (what a create met):
    /// if this backend made them (a create cut off before it was
    /// recorded), they are destroyed, as its undo would have, and `true` is
    /// returned, so the create can go on after them; another tool's are
    /// left alone (`false`). An in-process engine has no such leftovers.
    fn claim_leftover(&self, ns: &str, name: &str) -> Result<bool> {
        let _ = (ns, name);
        Ok(false)
    }

    /// [`Values::engine_version`] of each secret, in order, up to
    /// `concurrency` at a time.
    fn engine_versions(
        &self,
        secrets: &[(String, String)],
        concurrency: usize,
    ) -> Vec<Result<Option<EngineVersions>>> {
        let _ = concurrency;
        secrets
            .iter()
            .map(|(ns, name)| self.engine_version(ns, name))
            .collect()
    }

    /// Whether the engine is outside the process (its calls wait on the
    /// network). The store then makes its calls before the writer's
    /// transaction and records their outcome in it, instead of making them
    /// inside it: the writer never waits for the engine.
    fn external(&self) -> bool {
        false
    }

    /// [`Values::get`] for async callers.
    fn get_async(
        self: Arc<Self>,
        ns: String,
        name: String,
        version: u64,
        sealed: Option<Sealed>,
    ) -> BoxFuture<'static, Result<Data>> {
        Box::pin(std::future::ready(self.get(&ns, &name, version, sealed)))
    }

    /// The engine's current version of a secret and its values, in one
    /// call, for an engine that keeps versions itself (`Ok(None)`: ask
    /// for a recorded version instead). The caller checks the version
    /// against the record before it uses the values.
    fn get_current_async(
        self: Arc<Self>,
        ns: String,
        name: String,
    ) -> BoxFuture<'static, Result<Option<(u64, Data)>>> {
        let _ = (ns, name);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// [`Values::put`] for async callers.
    fn put_async(
        self: Arc<Self>,
        ns: String,
        name: String,
        data: Data,
        current: u64,
        max_versions: u32,
    ) -> BoxFuture<'static, Result<(u64, Option<Sealed>)>> {
        Box::pin(std::future::ready(self.put(
            &ns,
            &name,
            &data,
            current,
            max_versions,
        )))
    }

    /// The engine's state, for `/readyz` (`None`: in-process, always ready).
    fn health(&self) -> Option<BoxFuture<'static, EngineHealth>> {
        None
    }
}

/// What `/readyz` reports of an external engine.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineHealth {
    /// Whether it answers and is unsealed.
    pub ready: bool,
    /// The node that answered (or the last one tried).
    pub node: String,
    /// What it said, or why it said nothing.
    pub detail: String,
    /// How long its answer took.
    pub latency_ms: u64,
    /// Operations that moved on to another node since the start.
    pub failovers: u64,
}

/// What an external engine holds of one secret.
#[derive(Debug, Default, Clone)]
pub struct EngineVersions {
    /// The current version it holds.
    pub current: u64,
    /// (version, created at, destroyed) for every version it still lists.
    pub versions: Vec<(u64, i64, bool)>,
}

/// Values sealed with AES-256-GCM under the data directory's master key.
pub struct SqliteValues {
    cipher: Arc<Cipher>,
}

impl SqliteValues {
    /// Values sealed with `cipher`.
    pub fn new(cipher: Arc<Cipher>) -> Self {
        Self { cipher }
    }
}

impl Values for SqliteValues {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        _max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)> {
        let plain = Zeroizing::new(
            serde_json::to_vec(data).map_err(|e| StoreError::Internal(e.to_string()))?,
        );
        let version = current + 1;
        Ok((
            version,
            Some(self.cipher.seal(&plain, &aad(ns, name, version))),
        ))
    }

    fn get(&self, ns: &str, name: &str, version: u64, sealed: Option<Sealed>) -> Result<Data> {
        let (nonce, ct) = sealed
            .ok_or_else(|| StoreError::Internal("stored version has no ciphertext".into()))?;
        let plain = Zeroizing::new(
            self.cipher
                .open(&nonce, &ct, &aad(ns, name, version))
                .map_err(StoreError::Internal)?,
        );
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Internal(format!("stored value is corrupt: {e}")))
    }

    // The row's ciphertext is cleared by the caller's UPDATE.
    fn destroy_version(&self, _: &str, _: &str, _: u64) -> Result<()> {
        Ok(())
    }

    // The rows are deleted by the caller.
    fn destroy_all(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }

    // Soft delete is the resource's `deleted_at`; the sealed rows stay.
    fn set_deleted(&self, _: &str, _: &str, _: u64, _: bool) -> Result<()> {
        Ok(())
    }
}

/// Records the engine in the data directory on first open; refuses
/// another one later (its values would not be where it looks).
pub(super) fn check_engine(tx: &Connection, values: &dyn Values) -> Result<()> {
    let recorded: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'value_store'",
            (),
            |r| Ok(r.get::<MetaText>(0)?.0),
        )
        .optional()?;
    match recorded {
        _ if values.kind() == "none" => Ok(()),
        Some(k) if k == values.kind() => Ok(()),
        Some(k) => Err(StoreError::Invalid(format!(
            "this data directory keeps its values in {k}; start the backend with --store {k} \
             (or use another --data-dir for {})",
            values.kind()
        ))),
        None => {
            // A directory from before the choice existed holds SQLite values.
            let has_versions: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM kv_versions)", (), |r| {
                    r.get(0)
                })?;
            if has_versions && values.kind() != "sqlite" {
                return Err(StoreError::Invalid(format!(
                    "this data directory keeps its values in sqlite; start the backend with \
                     --store sqlite (or use another --data-dir for {})",
                    values.kind()
                )));
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('value_store', ?1)",
                [values.kind()],
            )?;
            Ok(())
        }
    }
}

/// For opening a data directory without its values (checking the audit
/// log): any engine is accepted, and no value can be read or written.
pub struct NoValues;

fn unavailable<T>() -> Result<T> {
    Err(StoreError::Internal("values are not available here".into()))
}

impl Values for NoValues {
    fn kind(&self) -> &'static str {
        "none"
    }
    fn put(&self, _: &str, _: &str, _: &Data, _: u64, _: u32) -> Result<(u64, Option<Sealed>)> {
        unavailable()
    }
    fn get(&self, _: &str, _: &str, _: u64, _: Option<Sealed>) -> Result<Data> {
        unavailable()
    }
    fn destroy_version(&self, _: &str, _: &str, _: u64) -> Result<()> {
        unavailable()
    }
    fn destroy_all(&self, _: &str, _: &str) -> Result<()> {
        unavailable()
    }
    fn set_deleted(&self, _: &str, _: &str, _: u64, _: bool) -> Result<()> {
        unavailable()
    }
}
