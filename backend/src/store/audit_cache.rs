//! What appending an audit event would otherwise look up in the database
//! every time: each organization's last chain hash and each actor's id.
//! Only the writer appends, so it can keep them: read once, then kept as
//! its own transactions change them. A change made inside a job is kept
//! apart until the job's savepoint is released, and a released one until
//! the batch commits; a rolled-back job or batch drops its changes, so the
//! cache never holds what the database does not. Another process may
//! share the database (several backends on one data directory): SQLite's
//! `data_version` tells when one committed, and then the cache starts
//! over.

use std::collections::HashMap;

/// One map in three layers: committed, this batch's, this job's.
#[derive(Default)]
struct Layered<V> {
    committed: HashMap<String, V>,
    batch: HashMap<String, V>,
    job: HashMap<String, V>,
}

impl<V: Clone> Layered<V> {
    fn get(&self, k: &str) -> Option<V> {
        self.job
            .get(k)
            .or_else(|| self.batch.get(k))
            .or_else(|| self.committed.get(k))
            .cloned()
    }
}

#[derive(Default)]
pub(super) struct AuditCache {
    heads: Layered<String>,
    actors: Layered<i64>,
    /// `PRAGMA data_version` when the committed layer was last right.
    seen: Option<i64>,
}

impl AuditCache {
    /// At the start of a batch, holding the write lock: forgets what was
    /// committed if another connection has committed since (`version`
    /// is `PRAGMA data_version`, which only others' commits change).
    pub fn start_batch(&mut self, version: i64) {
        if self.seen != Some(version) {
            self.heads.committed.clear();
            self.actors.committed.clear();
            self.seen = Some(version);
        }
    }

    /// This writer's own commit made the database's version `version`:
    /// what it keeps is still right at that version.
    pub fn committed_at(&mut self, version: i64) {
        self.seen = Some(version);
    }

    /// The last hash of `org`'s chain, if known.
    pub fn head(&self, org: &str) -> Option<String> {
        self.heads.get(org)
    }

    pub fn set_head(&mut self, org: &str, hash: &str) {
        self.heads.job.insert(org.into(), hash.into());
    }

    pub fn actor(&self, who: &str) -> Option<i64> {
        self.actors.get(who)
    }

    pub fn set_actor(&mut self, who: &str, id: i64) {
        self.actors.job.insert(who.into(), id);
    }

    /// The job's savepoint was released (`true`) or rolled back.
    pub fn end_job(&mut self, kept: bool) {
        self.heads.end_job(kept);
        self.actors.end_job(kept);
    }

    /// The batch committed (`true`) or was rolled back.
    pub fn end_batch(&mut self, committed: bool) {
        self.heads.end_batch(committed);
        self.actors.end_batch(committed);
    }
}

impl<V> Layered<V> {
    fn end_job(&mut self, kept: bool) {
        let job = std::mem::take(&mut self.job);
        if kept {
            self.batch.extend(job);
        }
    }

    fn end_batch(&mut self, committed: bool) {
        self.job.clear();
        let batch = std::mem::take(&mut self.batch);
        if committed {
            self.committed.extend(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_jobs_and_batches_leave_nothing_behind() {
        let mut c = AuditCache::default();
        c.start_batch(1);
        c.set_head("acme", "h1");
        c.end_job(true);
        c.set_head("acme", "h2");
        assert_eq!(c.head("acme").as_deref(), Some("h2"));
        c.end_job(false);
        assert_eq!(c.head("acme").as_deref(), Some("h1"), "job rolled back");
        c.end_batch(true);
        c.set_head("acme", "h3");
        c.set_actor("ada", 7);
        c.end_job(true);
        c.end_batch(false);
        assert_eq!(c.head("acme").as_deref(), Some("h1"), "batch rolled back");
        assert_eq!(c.actor("ada"), None);
        // Another process committed: start over.
        c.start_batch(1);
        assert_eq!(c.head("acme").as_deref(), Some("h1"));
        c.start_batch(2);
        assert_eq!(c.head("acme"), None);
    }
}
