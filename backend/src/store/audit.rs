//! The audit log: one hash chain per organization, appended in the same
//! transaction as the change it records.

use super::*;

impl Store {
    /// Appends one event to its organization's hash chain, durably (the
    /// transaction commits with `synchronous=FULL` before this returns).
    pub fn append_audit(&self, rec: &AuditRecord) -> Result<()> {
        self.write(None, |tx| append_in(tx, rec, &[]))
    }

    /// Events matching the filter, newest first.
    pub fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut out = Vec::new();
        self.scan_audit(f, true, |row| {
            out.push(row);
            true
        })?;
        Ok(out)
    }

    /// Calls `each` for every matching event, one row at a time, without
    /// collecting them; `each` returns false to stop early.
    pub fn scan_audit(
        &self,
        f: &AuditFilter,
        newest_first: bool,
        mut each: impl FnMut(AuditRow) -> bool,
    ) -> Result<()> {
        let mut sql =
            String::from("SELECT seq, ts, body, prev_hash, hash FROM audit WHERE org = ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![f.org.clone().into()];
        let mut push = |cond: &str, v: rusqlite::types::Value, sql: &mut String| {
            args.push(v);
            sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
        };
        if let Some(p) = &f.project {
            push(" AND project = ?", p.clone().into(), &mut sql);
        }
        if let Some(s) = &f.service {
            push(" AND service = ?", s.clone().into(), &mut sql);
        }
        if let Some(r) = &f.result {
            push(" AND result = ?", r.clone().into(), &mut sql);
        }
        match &f.actor {
            // Three characters or more: the trigram index finds the events
            // (case-insensitively, anywhere in actor, email or subject).
            Some(a) if a.chars().count() >= 3 => push(
                " AND seq IN (SELECT rowid FROM audit_actor WHERE who MATCH ?)",
                format!("\"{}\"", a.replace('"', "\"\"")).into(),
                &mut sql,
            ),
            Some(a) => push(
                " AND (instr(lower(actor), ?) > 0 OR instr(lower(actor_email), ?) > 0 OR instr(lower(actor_sub), ?) > 0)",
                a.to_lowercase().into(),
                &mut sql,
            ),
            None => {}
        }
        if let Some(s) = f.since_ms {
            push(" AND ts >= ?", s.into(), &mut sql);
        }
        if let Some(u) = f.until_ms {
            push(" AND ts <= ?", u.into(), &mut sql);
        }
        sql.push_str(if newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq ASC"
        });
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        self.read(|c| {
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let text: String = r.get(2)?;
                let mut body: Map<String, Value> = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Internal(format!("audit row is corrupt: {e}")))?;
                let seq: i64 = r.get(0)?;
                body.insert("seq".into(), seq.into());
                body.insert("prev_hash".into(), Value::String(r.get(3)?));
                body.insert("hash".into(), Value::String(r.get(4)?));
                if !each(AuditRow {
                    seq,
                    ts: r.get(1)?,
                    body,
                    text,
                }) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Recomputes an organization's chain. `Ok(n)`: n events, all intact;
    /// `Err(seq)`: the first event whose hash or link does not match.
    pub fn verify_audit(&self, org: &str) -> Result<std::result::Result<u64, (i64, String)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT seq, ts, body, prev_hash, hash FROM audit WHERE org = ?1 ORDER BY seq",
            )?;
            let mut rows = st.query([org])?;
            let mut prev = GENESIS_HASH.to_string();
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let ts: i64 = r.get(1)?;
                let body: String = r.get(2)?;
                let prev_hash: String = r.get(3)?;
                let hash: String = r.get(4)?;
                if prev_hash != prev {
                    return Ok(Err((
                        seq,
                        "its prev_hash does not match the previous event".into(),
                    )));
                }
                if chain_hash(&prev_hash, ts, &body) != hash {
                    return Ok(Err((seq, "its content does not match its hash".into())));
                }
                prev = hash;
                n += 1;
            }
            Ok(Ok(n))
        })
    }

    /// Every organization that has events.
    pub fn audit_orgs(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT org FROM audit ORDER BY org")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

/// One audit event as the store keeps it.
#[derive(Clone, Debug, Default)]
pub struct AuditRecord {
    pub ts: i64,
    pub org: String,
    pub project: Option<String>,
    pub service: String,
    pub result: String,
    pub actor: String,
    pub actor_email: String,
    pub actor_sub: String,
    pub body: Map<String, Value>,
}

/// What a write transaction knows that its audit event should record
/// (the version it wrote, the elevation it opened).
pub trait AuditFacts {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
}

impl AuditFacts for () {}
impl AuditFacts for u64 {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        vec![("version", (*self).into())]
    }
}
impl<T: AuditFacts> AuditFacts for Option<T> {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        self.as_ref().map(T::audit_facts).unwrap_or_default()
    }
}
impl AuditFacts for SecretRecord {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        self.kv
            .as_ref()
            .map(|k| vec![("version", k.current_version.into())])
            .unwrap_or_default()
    }
}
impl AuditFacts for Grant {
    fn audit_facts(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("elevation_id", self.elevation_id.clone().into()),
            ("expires_at", self.expires_at.clone().into()),
        ]
    }
}

/// Appends `rec` (plus `facts`) to its organization's chain, inside `tx`.
pub(super) fn append_in(
    tx: &Transaction,
    rec: &AuditRecord,
    facts: &[(&'static str, Value)],
) -> Result<()> {
    let mut body = rec.body.clone();
    for (k, v) in facts {
        body.insert((*k).into(), v.clone());
    }
    let body_text =
        serde_json::to_string(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let prev: String = tx
        .query_row(
            "SELECT hash FROM audit WHERE org = ?1 ORDER BY seq DESC LIMIT 1",
            [&rec.org],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_else(|| GENESIS_HASH.to_string());
    let hash = chain_hash(&prev, rec.ts, &body_text);
    tx.execute(
        "INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            rec.ts, rec.org, rec.project, rec.service, rec.result, rec.actor, rec.actor_email,
            rec.actor_sub, body_text, prev, hash
        ],
    )?;
    // The actor index, in the same transaction.
    tx.execute(
        "INSERT INTO audit_actor (rowid, who) VALUES (last_insert_rowid(), ?1 || char(10) || ?2 || char(10) || ?3)",
        params![rec.actor, rec.actor_email, rec.actor_sub],
    )?;
    Ok(())
}
