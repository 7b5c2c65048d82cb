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
//! Every call happens inside the writer's transaction for the change (or
//! the read's), so a change whose SQL side fails is answered as failed;
//! what an external engine kept of it anyway is found at the next start
//! ([`crate::store::Store::reconcile_values`]).

use super::{Cached, DEFAULT_MAX_VERSIONS, Result, Store, StoreError, aad};
use crate::crypto::Cipher;
use futures_util::future::BoxFuture;
use kube_dc_api::wire::Data;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A value sealed for the version's own row (`nonce`, `ciphertext`).
pub type Sealed = (Vec<u8>, Vec<u8>);

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
    pub ready: bool,
    /// The node that answered (or the last one tried).
    pub node: String,
    /// What it said, or why it said nothing.
    pub detail: String,
    pub latency_ms: u64,
    /// Operations that moved on to another node since the start.
    pub failovers: u64,
}

/// What an external engine holds of one secret.
#[derive(Debug, Default, Clone)]
pub struct EngineVersions {
    pub current: u64,
    /// (version, created at, destroyed) for every version it still lists.
    pub versions: Vec<(u64, i64, bool)>,
}

/// Values sealed with AES-256-GCM under the data directory's master key.
pub struct SqliteValues {
    cipher: Arc<Cipher>,
}

impl SqliteValues {
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
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'value_store'",
            [],
            |r| r.get(0),
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
                tx.query_row("SELECT EXISTS (SELECT 1 FROM kv_versions)", [], |r| {
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

/// A secret whose engine disagrees with the SQL store's record of it.
#[derive(Debug, Clone)]
pub struct Discrepancy {
    pub namespace: String,
    pub name: String,
    /// The current version the SQL store recorded (0: none).
    pub recorded: u64,
    /// The engine's current version.
    pub engine: u64,
    /// Versions the engine holds that the SQL store had no record of, now
    /// listed (they were written, but never acknowledged or audited).
    pub adopted: Vec<u64>,
}

/// Secrets compared with the engine per step of a reconciliation (its
/// progress is saved after each), and engine requests in flight at once.
const RECONCILE_STEP: usize = 500;
const RECONCILE_CONCURRENCY: usize = 32;
/// The `meta` key of an unfinished reconciliation's progress.
const RECONCILE_CURSOR: &str = "reconcile_after";

impl Store {
    /// Compares every secret's recorded current version with its engine's
    /// (an external engine only). A version the engine holds beyond the
    /// record is a write whose transaction did not commit (a crash between
    /// the two, or a failed commit): it is listed in `kv_versions` so the
    /// history matches the engine, and reported. An engine behind the
    /// record (restored from an older snapshot) is only reported: the
    /// missing versions cannot be read.
    ///
    /// The engine is asked about many secrets at once, in name order, and
    /// the progress is saved after each step: a pass cut short (the engine
    /// unreachable, a crash) resumes after the last secret it checked at
    /// the next start. Nothing changes between the two, since the backend
    /// serves only once a pass has finished.
    pub fn reconcile_values(&self) -> Result<Vec<Discrepancy>> {
        if !self.values.external() {
            return Ok(Vec::new());
        }
        let (secrets, after): (Vec<(String, String, u64)>, Option<String>) = self.read(|c| {
            let mut st = c.prepare(
                "SELECT m.namespace, m.name, COALESCE(k.current_version, 0) FROM managed_secrets m
                 LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name
                 ORDER BY m.namespace, m.name",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let secrets = rows.collect::<Result<Vec<_>, _>>()?;
            let after = c
                .query_row(
                    "SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1",
                    [RECONCILE_CURSOR],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((secrets, after))
        })?;
        let key = |ns: &str, name: &str| format!("{ns}\0{name}");
        let start = match &after {
            Some(a) => {
                let i = secrets.partition_point(|(ns, name, _)| key(ns, name) <= *a);
                tracing::info!(
                    "resuming the reconciliation with OpenBao after {} secret(s) checked before",
                    i
                );
                i
            }
            None => 0,
        };
        let started = std::time::Instant::now();
        let mut found = Vec::new();
        for step in secrets[start..].chunks(RECONCILE_STEP) {
            let names: Vec<(String, String)> = step
                .iter()
                .map(|(ns, name, _)| (ns.clone(), name.clone()))
                .collect();
            let got = self.values.engine_versions(&names, RECONCILE_CONCURRENCY);
            for ((ns, name, recorded), engine) in step.iter().zip(got) {
                if let Some(d) = self.reconcile_one(ns, name, *recorded, engine?)? {
                    found.push(d);
                }
            }
            let (ns, name, _) = step.last().expect("chunks are not empty");
            let cursor = key(ns, name);
            self.write(None, move |_, tx| {
                tx.exec(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = ?2",
                    params![RECONCILE_CURSOR, cursor],
                )?;
                Ok(())
            })?;
        }
        self.write(None, |_, tx| {
            tx.exec("DELETE FROM meta WHERE key = ?1", [RECONCILE_CURSOR])?;
            Ok(())
        })?;
        tracing::info!(
            "compared {} secret(s) with OpenBao in {} ms: {} differ",
            secrets.len() - start,
            started.elapsed().as_millis(),
            found.len()
        );
        Ok(found)
    }

    /// Compares one secret; lists the versions the engine holds beyond the
    /// record.
    fn reconcile_one(
        &self,
        ns: &str,
        name: &str,
        recorded: u64,
        engine: Option<EngineVersions>,
    ) -> Result<Option<Discrepancy>> {
        let Some(engine) = engine else {
            return Ok(None);
        };
        if engine.current == recorded {
            return Ok(None);
        }
        let mut d = Discrepancy {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            recorded,
            engine: engine.current,
            adopted: Vec::new(),
        };
        if engine.current > recorded {
            let extra: Vec<(u64, i64, bool)> = engine
                .versions
                .iter()
                .copied()
                .filter(|(v, ..)| *v > recorded)
                .collect();
            d.adopted = extra.iter().map(|(v, ..)| *v).collect();
            let current = engine.current;
            let (ns, name) = (ns.to_owned(), name.to_owned());
            self.write(None, move |_, tx| {
                for (v, created, destroyed) in &extra {
                    tx.exec(
                        "INSERT OR IGNORE INTO kv_versions (namespace, name, version, created_at, destroyed)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![ns, name, v, created, destroyed],
                    )?;
                }
                let at = extra.iter().map(|(_, c, _)| *c).max().unwrap_or(0);
                tx.exec(
                    "INSERT INTO kv_meta (namespace, name, current_version, max_versions, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                     ON CONFLICT (namespace, name) DO UPDATE SET current_version = ?3, updated_at = ?5",
                    params![ns, name, current, DEFAULT_MAX_VERSIONS, at],
                )?;
                Ok(())
            })?;
        }
        Ok(Some(d))
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
