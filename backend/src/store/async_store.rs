//! The store for async code.

use super::{
    AuditFacts, AuditRecord, Result, SecretRecord, Store, StoreError, VersionData, append_in,
    get_any, not_found, read_version_in,
};
use serde_json::Value;

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
                let value = read_version_in(c, &*ctx.values, &ns, &name, version)?;
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
        self.1.audit_facts()
    }
}
