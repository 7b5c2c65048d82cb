//! The store for async code.

use super::secrets::REVEAL_SQL;
use super::versions::{reveal_in, reveal_params};
use super::writer::Shape;

use super::{
    AuditFacts, AuditRecord, Result, SecretRecord, Store, StoreError, VersionData, append_in,
    get_any, not_found, readable_version,
};

/// The store for async code: reads run on a blocking thread (SQLite calls
/// block), so no caller stalls the runtime and none forgets to; changes go
/// to the store's writer and are awaited without holding a thread.
#[derive(Clone)]
pub struct AsyncStore(pub std::sync::Arc<Store>);

impl AsyncStore {
    /// Runs `f` on the store on a blocking thread and awaits its result.
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
            .record_async(None, durable, move |x, c| append_in(x, c, &rec, &[]))
            .await
    }

    /// The live secret and one of its versions, read in the transaction that
    /// appends `audit` (which records the version read): the value is
    /// answered only once its read is on record. On an external engine the
    /// value is read first, concurrently with other reads, and the writer
    /// then checks that the version is still live as it records the read.
    pub async fn reveal(
        &self,
        ns: String,
        name: String,
        version: Option<u64>,
        audit: AuditRecord,
    ) -> Result<(SecretRecord, Option<VersionData>)> {
        let store = &self.0;
        if !store.values.external() {
            let hint = (REVEAL_SQL, reveal_params(&ns, &name, version));
            return store
                // A read's job (`Isolation::ChecksFirst`, as `record_async`),
                // its query read ahead with the batch's others.
                .job_async(
                    Some(audit),
                    true,
                    Shape {
                        prefetch: Some(hint),
                        ..Shape::READ
                    },
                    move |ctx, c| {
                        reveal_in(c, &*ctx.values, (&ns, &name), version)
                            .map(|(rec, value)| Revealed(rec, value))
                    },
                )
                .await
                .map(|Revealed(rec, value)| (rec, value));
        }
        if version.is_none()
            && let Some(read) = self.reveal_current(&ns, &name, audit.clone()).await?
        {
            return Ok(read);
        }
        let (n, m) = (ns.clone(), name.clone());
        let row = self
            .call(move |s| {
                s.read(|c| {
                    require_live_record(c, &n, &m)?;
                    readable_version(c, &n, &m, version)
                })
            })
            .await?;
        let read = match row {
            Some(row) => Some(VersionData {
                version: row.version,
                created_at: row.created_at,
                data: store
                    .engine_call(store.values.clone().get_async(
                        ns.clone(),
                        name.clone(),
                        row.version,
                        row.sealed,
                    ))
                    .await?,
            }),
            None => None,
        };
        store
            .record_async(Some(audit), true, move |_, c| {
                let rec = require_live_record(c, &ns, &name)?;
                // The version read must still be live: one destroyed (or
                // gone from the history window) meanwhile is answered as
                // a read of it now would be. A newer version written
                // meanwhile does not matter: the read came first.
                if let Some(r) = &read
                    && readable_version(c, &ns, &name, Some(r.version))?.is_none()
                {
                    return Err(not_found(&ns, &name));
                }
                Ok(Revealed(rec, read))
            })
            .await
            .map(|Revealed(rec, value)| (rec, value))
    }
}

impl AsyncStore {
    /// The current version read straight from an engine that keeps
    /// versions itself, without asking the record first: used only if the
    /// writer, recording the read, finds that it is the recorded current
    /// version. `None`: it was not (a write racing with the read, or one
    /// never recorded), and nothing was recorded — read the recorded
    /// version instead.
    async fn reveal_current(
        &self,
        ns: &str,
        name: &str,
        audit: AuditRecord,
    ) -> Result<Option<(SecretRecord, Option<VersionData>)>> {
        let store = &self.0;
        let Some((version, data)) = store
            .engine_call(
                store
                    .values
                    .clone()
                    .get_current_async(ns.to_owned(), name.to_owned()),
            )
            .await?
        else {
            return Ok(None);
        };
        let (ns, name) = (ns.to_owned(), name.to_owned());
        let got = store
            .record_async(Some(audit), true, move |_, c| {
                // The record's current version must be the one read, and
                // live (the secret's row says both).
                let rec = require_live_record(c, &ns, &name)?;
                match (&rec.kv, rec.current_readable, rec.current_created_at) {
                    (Some(kv), true, Some(created_at)) if kv.current_version == version => {
                        let read = VersionData {
                            version,
                            created_at,
                            data,
                        };
                        Ok(Revealed(rec, Some(read)))
                    }
                    _ => Err(StoreError::Stale),
                }
            })
            .await;
        match got {
            Ok(Revealed(rec, value)) => Ok(Some((rec, value))),
            Err(StoreError::Stale) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The live secret, or not found.
fn require_live_record(c: &super::db::Connection, ns: &str, name: &str) -> Result<SecretRecord> {
    get_any(c, ns, name)?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(|| not_found(ns, name))
}

/// A secret and the version read from it, with the version for the audit
/// event.
struct Revealed(SecretRecord, Option<VersionData>);

impl AuditFacts for Revealed {
    fn audit_facts(&self) -> Vec<kube_dc_api::event::Fact> {
        self.1.audit_facts()
    }
}
