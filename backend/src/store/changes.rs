//! What the change stream reads: the audit log's committed changes of
//! secrets, in sequence order, and a signal when this process commits.

use rusqlite::params;

use super::{Result, Store};

/// One committed change of a secret, as its audit event recorded it.
#[derive(Clone, Debug)]
pub struct ChangeRow {
    /// The event's sequence number: the stream's cursor.
    pub seq: i64,
    /// When it committed (epoch ms).
    pub ts: i64,
    /// Its organization.
    pub org: String,
    /// Its project.
    pub project: String,
    /// The event's text.
    pub body: String,
}

/// The events a change can be: the secrets service's, allowed. (Which
/// actions are changes is decided on the body, by the contract's table.)
const CHANGE_ROWS: &str = "SELECT seq, ts, org, coalesce(project, ''), body FROM audit";

impl Store {
    /// A receiver that sees a new number after each commit of this
    /// process's writer (another process's commits are seen by polling
    /// [`Store::audit_head`]).
    pub fn commit_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// The audit log's newest sequence number (0 when it is empty).
    pub fn audit_head(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM audit", (), |r| r.get(0))?))
    }

    /// The sequence number and hash of `org`'s newest event, if it has
    /// one.
    pub fn audit_head_of(&self, org: &str) -> Result<Option<(i64, String)>> {
        self.read(|c| Ok(head_in(c, org)?))
    }

    /// Every organization's events after `after`, oldest first, at most
    /// `limit` (the `--audit-file` mirror).
    pub fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<super::AuditRow>> {
        self.read(|c| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            Ok(c.query_map(
                "SELECT seq, ts, body, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                params![after, limit],
                super::AuditRow::of,
            )?)
        })
    }

    /// The secrets service's allowed events after `after` up to `upto`,
    /// oldest first, at most `limit`; of one organization's project when
    /// `scope` is given, else of all.
    pub fn secret_changes(
        &self,
        scope: Option<(&str, &str)>,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>> {
        self.read(|c| {
            let row = |r: &super::db::Row<'_>| {
                Ok(ChangeRow {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                    org: r.get(2)?,
                    project: r.get(3)?,
                    body: r.get(4)?,
                })
            };
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match scope {
                Some((org, project)) => c.query_map(
                    &format!(
                        "{CHANGE_ROWS} INDEXED BY audit_org_project
                             WHERE org = ?1 AND project = ?2 AND seq > ?3 AND seq <= ?4
                               AND service = 'secrets' AND result = 'allowed'
                             ORDER BY seq LIMIT ?5"
                    ),
                    params![org, project, after, upto, limit],
                    row,
                )?,
                None => c.query_map(
                    &format!(
                        "{CHANGE_ROWS} WHERE seq > ?1 AND seq <= ?2
                               AND service = 'secrets' AND result = 'allowed'
                             ORDER BY seq LIMIT ?3"
                    ),
                    params![after, upto, limit],
                    row,
                )?,
            };
            Ok(rows)
        })
    }
}

/// The sequence number and hash of `org`'s newest event, read in `c`.
pub(super) fn head_in(
    c: &super::db::Connection,
    org: &str,
) -> super::db::Result<Option<(i64, String)>> {
    use super::db::OptionalExtension as _;
    c.query_row(
        "SELECT seq, hash FROM audit INDEXED BY audit_org_seq WHERE org = ?1
         ORDER BY seq DESC LIMIT 1",
        [org],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}
