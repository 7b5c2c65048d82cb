//! What a batch's value writes learned of the secrets they wrote: live,
//! at this current version, with this history window. The next write of
//! the same secret in the batch takes it from here instead of reading the
//! secret's record again (a round trip on PostgreSQL, where a burst of
//! writes to one secret otherwise waits for one per write).
//!
//! Only jobs that keep it up to date themselves may use it (a value
//! write, `Shape::keeps_known`): the writer forgets all of it before any
//! other job, and at the end of every batch, so it never outlives the
//! write lock it was learned under. A job's own entries join the batch's
//! only if the job's savepoint was released.

use std::collections::HashMap;

type Key = (String, String);

#[derive(Default)]
pub(super) struct KnownLive {
    batch: HashMap<Key, (u64, u32)>,
    job: HashMap<Key, (u64, u32)>,
}

impl KnownLive {
    /// The secret's `(current version, max versions)`, if a write of this
    /// batch left it live at that.
    pub fn get(&self, ns: &str, name: &str) -> Option<(u64, u32)> {
        let key = (ns.to_owned(), name.to_owned());
        self.job.get(&key).or_else(|| self.batch.get(&key)).copied()
    }

    /// The running job left the secret live at `meta`.
    pub fn set(&mut self, ns: &str, name: &str, meta: (u64, u32)) {
        self.job.insert((ns.to_owned(), name.to_owned()), meta);
    }

    /// The job's savepoint was released (`true`) or rolled back.
    pub fn end_job(&mut self, kept: bool) {
        let job = std::mem::take(&mut self.job);
        if kept {
            self.batch.extend(job);
        }
    }

    /// Forgets everything: a job that does not keep it up to date is about
    /// to run, or the batch ended.
    pub fn forget(&mut self) {
        self.batch.clear();
        self.job.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::KnownLive;

    #[test]
    fn a_rolled_back_job_leaves_nothing_and_forget_forgets() {
        let mut k = KnownLive::default();
        k.set("ns", "a", (1, 10));
        k.end_job(true);
        k.set("ns", "a", (2, 10));
        assert_eq!(k.get("ns", "a"), Some((2, 10)));
        k.end_job(false);
        assert_eq!(k.get("ns", "a"), Some((1, 10)), "job rolled back");
        assert_eq!(k.get("ns", "b"), None);
        k.forget();
        assert_eq!(k.get("ns", "a"), None);
    }
}
