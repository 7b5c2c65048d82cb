//! Signed checkpoints of the organizations' audit chains: the statement
//! is made and kept in the same transaction that reads the chain's head
//! (and, when a request asked for it, that appends the request's event —
//! after the head it signs).

use super::db::{Connection, OptionalExtension};
use rusqlite::params;

use super::{AuditFacts, AuditRecord, Result, Store, StoreError};
use kube_dc_api::checkpoint::{Checkpoint, KIND};
use kube_dc_api::event::Fact;

/// Signs a checkpoint's statement (the backend's audit key).
pub trait Sign: Send + Sync {
    /// The signing key's id.
    fn key_id(&self) -> &str;
    /// The base64 signature of `message`.
    fn sign(&self, message: &[u8]) -> String;
}

impl AuditFacts for Checkpoint {
    fn audit_facts(&self) -> Vec<Fact> {
        vec![Fact::Message(format!(
            "signed a checkpoint of event {} ({} events, hash {})",
            self.seq, self.events, self.hash
        ))]
    }
}

impl Store {
    /// Signs the head of `org`'s chain at `now` (RFC 3339 `time`), keeps
    /// the checkpoint and, with `audit`, appends that event after the head.
    /// `Ok(None)`: the organization has no events yet.
    pub fn sign_checkpoint(
        &self,
        org: &str,
        now: i64,
        time: String,
        signer: std::sync::Arc<dyn Sign>,
        audit: Option<&AuditRecord>,
    ) -> Result<Option<Checkpoint>> {
        let org = org.to_owned();
        let made = self.write(audit, move |_, tx| {
            let Some(c) = checkpoint_of_head(tx, &org, &time, signer.as_ref())? else {
                return Ok(NoHead(None));
            };
            tx.exec(
                "INSERT INTO audit_checkpoints
                     (org, seq, events, hash, ts, time, key_id, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                params![
                    c.org,
                    c.seq,
                    c.events as i64,
                    c.hash,
                    now,
                    c.time,
                    c.key_id,
                    c.signature
                ],
            )?;
            Ok(NoHead(Some(c)))
        })?;
        Ok(made.0)
    }

    /// The organizations whose chain has grown since their newest
    /// checkpoint (or that have none), for the periodic signing.
    pub fn orgs_past_checkpoint(&self) -> Result<Vec<String>> {
        self.read(|c| {
            Ok(c.query_map(
                "SELECT a.org FROM (SELECT org, max(seq) AS head FROM audit GROUP BY org) a
                 WHERE a.head > coalesce((SELECT max(seq) FROM audit_checkpoints k WHERE k.org = a.org), 0)",
                (),
                |r| r.get(0),
            )?)
        })
    }

    /// `org`'s checkpoints, newest first, at most `limit`.
    pub fn checkpoints(&self, org: &str, limit: usize) -> Result<Vec<Checkpoint>> {
        self.read(|c| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = c.query_map(
                "SELECT org, seq, events, hash, time, key_id, signature FROM audit_checkpoints
                 WHERE org = ?1 ORDER BY seq DESC LIMIT ?2",
                params![org, limit],
                |r| {
                    Ok(Checkpoint {
                        kind: KIND.into(),
                        org: r.get(0)?,
                        seq: r.get(1)?,
                        events: r.get::<i64>(2)?.max(0) as u64,
                        hash: r.get(3)?,
                        time: r.get(4)?,
                        key_id: r.get(5)?,
                        signature: r.get(6)?,
                        server: None,
                    })
                },
            )?;
            Ok(rows)
        })
    }
}

/// What the write job answers: a checkpoint, or none for a chain without
/// events. Its event (a request's) says which event it signed.
struct NoHead(Option<Checkpoint>);

impl AuditFacts for NoHead {
    fn audit_facts(&self) -> Vec<Fact> {
        self.0
            .as_ref()
            .map(AuditFacts::audit_facts)
            .unwrap_or_default()
    }
}

/// The signed statement of `org`'s head, read in `c`'s transaction.
fn checkpoint_of_head(
    c: &Connection,
    org: &str,
    time: &str,
    signer: &dyn Sign,
) -> Result<Option<Checkpoint>> {
    let head = super::changes::head_in(c, org)?;
    let Some((seq, hash)) = head else {
        return Ok(None);
    };
    // Counted from the newest checkpoint on, not from the first event:
    // the writer is held only for what is new since.
    let (since_seq, before): (i64, i64) = c
        .row(
            "SELECT seq, events FROM audit_checkpoints WHERE org = ?1 AND seq <= ?2
             ORDER BY seq DESC LIMIT 1",
            params![org, seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0));
    let new: i64 = c.row(
        "SELECT count(*) FROM audit INDEXED BY audit_org_seq
         WHERE org = ?1 AND seq > ?2 AND seq <= ?3",
        params![org, since_seq, seq],
        |r| r.get(0),
    )?;
    let events = before + new;
    let events =
        u64::try_from(events).map_err(|_| StoreError::Internal("negative count".into()))?;
    let key_id = signer.key_id().to_string();
    let message = kube_dc_api::checkpoint::statement(org, seq, events, &hash, time, &key_id);
    Ok(Some(Checkpoint {
        kind: KIND.into(),
        org: org.to_string(),
        seq,
        events,
        hash,
        time: time.to_string(),
        key_id,
        signature: signer.sign(&message),
        server: None,
    }))
}
