//! The audit log: one hash chain per organization, appended in the same
//! transaction as the change it records.

use super::db::{Connection, Dialect, OptionalExtension};
use super::writer::JobCtx;
use super::{
    AuditFilter, AuditRow, GENESIS_HASH, Result, SecretRecord, Store, StoreError, VersionData,
    chain_hash,
};
use kube_dc_api::event::{Actor, AuditEvent, Fact, Version};
use kube_dc_api::wire::Grant;
use rusqlite::params;

impl Store {
    /// Appends one event to its organization's hash chain, durably (the
    /// transaction commits with `synchronous=FULL` before this returns).
    pub fn append_audit(&self, rec: &AuditRecord) -> Result<()> {
        let rec = rec.clone();
        self.write(None, move |x, tx| append_in(x, tx, &rec, &[]))
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

    /// The SQL [`Self::scan_audit`] runs for `f` (newest first), with its
    /// parameters written in as literals: for running the same query in the
    /// `sqlite3` shell.
    pub fn audit_query_sql(&self, f: &AuditFilter) -> Result<String> {
        let (sql, args) = self.read(|c| audit_query(c, f, true))?;
        let mut out = sql;
        // Highest number first, so ?1 does not match the start of ?12.
        for (i, v) in args.iter().enumerate().rev() {
            let lit = match v {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
                rusqlite::types::Value::Null => "NULL".into(),
                other => return Err(StoreError::Internal(format!("unexpected {other:?}"))),
            };
            out = out.replace(&format!("?{}", i + 1), &lit);
        }
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
        self.read(|c| {
            let (sql, args) = audit_query(c, f, newest_first)?;
            c.each(&sql, args, |r| Ok(each(AuditRow::of(r)?)))?;
            Ok(())
        })
    }

    /// Recomputes an organization's chain. `Ok(n)`: n events, all intact;
    /// `Err(seq)`: the first event whose hash or link does not match.
    pub fn verify_audit(&self, org: &str) -> Result<std::result::Result<u64, (i64, String)>> {
        self.read(|c| {
            let mut prev = GENESIS_HASH.to_string();
            let mut n = 0u64;
            let mut broken = None;
            c.each(
                "SELECT seq, ts, body, prev_hash, hash FROM audit WHERE org = ?1 ORDER BY seq",
                [org],
                |r| {
                    let row = AuditRow::of(r)?;
                    if row.prev_hash != prev {
                        broken = Some((
                            row.seq,
                            "its prev_hash does not match the previous event".into(),
                        ));
                    } else if chain_hash(&row.prev_hash, row.ts, &row.text) != row.hash {
                        broken = Some((row.seq, "its content does not match its hash".into()));
                    }
                    prev = row.hash;
                    n += 1;
                    Ok(broken.is_none())
                },
            )?;
            Ok(broken.map_or(Ok(n), Err))
        })
    }

    /// The sequence number of `org`'s event whose hash is `hash`. Looked
    /// for newest first: an incremental export's cursor is near the end.
    pub fn audit_seq_of(&self, org: &str, hash: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.row(
                "SELECT seq FROM audit INDEXED BY audit_org_seq WHERE org = ?1 AND hash = ?2
                 ORDER BY seq DESC LIMIT 1",
                params![org, hash],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Every organization that has events.
    pub fn audit_orgs(&self) -> Result<Vec<String>> {
        self.read(|c| {
            Ok(
                c.query_map("SELECT DISTINCT org FROM audit ORDER BY org", (), |r| {
                    r.get(0)
                })?,
            )
        })
    }
}

/// One audit event and its time (epoch ms), as the store appends it.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// When it happened (epoch ms).
    pub ts: i64,
    /// The event.
    pub event: AuditEvent,
}

/// What a write transaction knows that its audit event should record
/// (the version it wrote, the elevation it opened).
pub trait AuditFacts {
    /// The facts to add to the event.
    fn audit_facts(&self) -> Vec<Fact> {
        Vec::new()
    }
}

impl AuditFacts for () {}
impl AuditFacts for Version {
    fn audit_facts(&self) -> Vec<Fact> {
        vec![Fact::Version(*self)]
    }
}
impl<T: AuditFacts> AuditFacts for Option<T> {
    fn audit_facts(&self) -> Vec<Fact> {
        self.as_ref().map(T::audit_facts).unwrap_or_default()
    }
}
impl AuditFacts for VersionData {
    fn audit_facts(&self) -> Vec<Fact> {
        Version(self.version).audit_facts()
    }
}
impl AuditFacts for SecretRecord {
    fn audit_facts(&self) -> Vec<Fact> {
        self.kv
            .as_ref()
            .map(|k| vec![Fact::Version(Version(k.current_version))])
            .unwrap_or_default()
    }
}
impl AuditFacts for Grant {
    fn audit_facts(&self) -> Vec<Fact> {
        vec![
            Fact::ElevationId(self.elevation_id.clone()),
            Fact::ExpiresAt(self.expires_at.clone()),
        ]
    }
}

/// Below this many events, an actor filter reads its events through the
/// actor index and sorts them; from here on they are common enough that
/// walking the log newest first finds a page sooner.
const ACTOR_INDEX_MAX_EVENTS: i64 = 20_000;

/// How many events a probe of one filter's index counts at most.
const PROBE_CAP: i64 = 2_000;

/// The index that serves `f` visiting the fewest events (without an actor
/// filter, which has its own). Each equality filter (project, result,
/// service) has an index ordered by `seq` within its value: walking it
/// newest first visits only events that match that filter, never more
/// than the whole log's index would, so one of them is always used when
/// there is one — the one whose value is rarest, counted up to
/// `PROBE_CAP` events. The time index serves `since`/`until` when few
/// events fall in the range (its events are then sorted); a range with
/// many is served as well by walking the log newest first.
fn filter_index(c: &Connection, f: &AuditFilter) -> Result<&'static str> {
    let probe = |sql: &str, arg: &dyn rusqlite::ToSql| -> Result<i64> {
        Ok(c.query_row(sql, params![f.org, arg], |r| r.get(0))?)
    };
    let mut best: Option<(i64, &'static str)> = None;
    let mut consider = |count: i64, index: &'static str| {
        if best.is_none_or(|(n, _)| count < n) {
            best = Some((count, index));
        }
    };
    let equality = [
        (&f.project, "audit_org_project", "project"),
        (&f.result, "audit_org_result", "result"),
        (&f.service, "audit_org_service", "service"),
    ];
    let given: Vec<_> = equality.iter().filter(|(v, ..)| v.is_some()).collect();
    for (value, index, column) in &given {
        let Some(v) = value else { continue };
        if given.len() == 1 && f.since_ms.is_none() && f.until_ms.is_none() {
            return Ok(index);
        }
        let n = probe(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY {index}
                 WHERE org = ?1 AND {column} = ?2 LIMIT {PROBE_CAP}) probe"
            ),
            v,
        )?;
        consider(n, index);
    }
    if f.since_ms.is_some() || f.until_ms.is_some() {
        let (since, until) = (
            f.since_ms.unwrap_or(i64::MIN),
            f.until_ms.unwrap_or(i64::MAX),
        );
        let n: i64 = c.query_row(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY audit_org_ts
                 WHERE org = ?1 AND ts >= ?2 AND ts <= ?3 LIMIT {PROBE_CAP}) probe"
            ),
            params![f.org, since, until],
            |r| r.get(0),
        )?;
        if n < PROBE_CAP {
            consider(n, "audit_org_ts");
        }
    }
    Ok(best.map_or("audit_org_seq", |(_, index)| index))
}

/// The SQL and parameters of an audit query.
fn audit_query(
    c: &Connection,
    f: &AuditFilter,
    newest_first: bool,
) -> Result<(String, Vec<rusqlite::types::Value>)> {
    let mut index = "audit_org_seq";
    let mut sql = String::new();
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
        // Three characters or more: the trigram index over the distinct
        // actors finds who matches (case-insensitively, anywhere in name,
        // email or subject), then their events.
        Some(a) if a.chars().count() >= 3 => {
            let ids: Vec<i64> = match c.dialect() {
                Dialect::Sqlite => {
                    let pattern = format!("\"{}\"", a.replace('"', "\"\""));
                    c.query_map(
                        "SELECT rowid FROM audit_actors_fts WHERE who MATCH ?1",
                        [&pattern],
                        |r| r.get(0),
                    )?
                }
                // The distinct actors are few: a scan of them finds who
                // matches, as the trigram index does on SQLite.
                Dialect::Postgres => c.query_map(
                    "SELECT id FROM audit_actors WHERE strpos(lower(who), ?1) > 0",
                    [a.to_lowercase()],
                    |r| r.get(0),
                )?,
            };
            // No actor matches: `IN (NULL)` matches no event on either
            // database (PostgreSQL refuses an empty list).
            let list = match ids.is_empty() {
                true => "NULL".to_owned(),
                false => ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
            };
            let events: i64 = c.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY audit_org_actor
                     WHERE org = ?1 AND actor_id IN ({list}) LIMIT {ACTOR_INDEX_MAX_EVENTS}) probe"
                ),
                [&f.org],
                |r| r.get(0),
            )?;
            if events < ACTOR_INDEX_MAX_EVENTS {
                index = "audit_org_actor";
            }
            sql.push_str(&format!(" AND actor_id IN ({list})"));
        }
        Some(a) => push(
            match c.dialect() {
                Dialect::Sqlite => {
                    " AND (instr(lower(actor), ?) > 0 OR instr(lower(actor_email), ?) > 0 OR instr(lower(actor_sub), ?) > 0)"
                }
                Dialect::Postgres => {
                    " AND (strpos(lower(actor), ?) > 0 OR strpos(lower(actor_email), ?) > 0 OR strpos(lower(actor_sub), ?) > 0)"
                }
            },
            a.to_lowercase().into(),
            &mut sql,
        ),
        None => {}
    }
    if index == "audit_org_seq" {
        index = filter_index(c, f)?;
    }
    if let Some(s) = f.since_ms {
        push(" AND ts >= ?", s.into(), &mut sql);
    }
    if let Some(u) = f.until_ms {
        push(" AND ts <= ?", u.into(), &mut sql);
    }
    if let Some(a) = f.after_seq {
        push(" AND seq > ?", a.into(), &mut sql);
    }
    sql.push_str(if newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq ASC"
    });
    if let Some(l) = f.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    let sql = format!(
        "SELECT seq, ts, body, prev_hash, hash FROM audit INDEXED BY {index} WHERE org = ?1{sql}"
    );
    Ok((sql, args))
}

/// Appends `rec` (plus `facts`) to its organization's chain, inside `tx`.
pub(super) fn append_in(
    ctx: &JobCtx,
    tx: &Connection,
    rec: &AuditRecord,
    facts: &[Fact],
) -> Result<()> {
    let event = &rec.event;
    let body_text = event.text_with(facts);
    let org = &event.about.org;
    // The writer keeps the chain's head and the actors' ids (audit_cache).
    let cached = ctx.audit.borrow().head(org);
    let prev: String = match cached {
        Some(h) => h,
        None => tx
            .row(
                "SELECT hash FROM audit WHERE org = ?1 ORDER BY seq DESC LIMIT 1",
                [org],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| GENESIS_HASH.to_string()),
    };
    let hash = chain_hash(&prev, rec.ts, &body_text);
    let actor = actor_id(ctx, tx, &event.actor)?;
    // Nothing is read back: on PostgreSQL it goes out with the next
    // statement (`Connection::append_later`).
    tx.append_later(
        "INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash, actor_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            rec.ts,
            org,
            event.about.project,
            event.about.service,
            event.result.as_str(),
            event.actor.name(),
            event.actor.email(),
            event.actor.subject(),
            body_text,
            prev,
            hash,
            actor
        ],
    )?;
    ctx.audit.borrow_mut().set_head(org, &hash);
    Ok(())
}

/// The actor's id in `audit_actors`, added (and indexed) on first sight.
fn actor_id(ctx: &JobCtx, tx: &Connection, a: &Actor) -> Result<i64> {
    let who = format!("{}\n{}\n{}", a.name(), a.email(), a.subject());
    if let Some(id) = ctx.audit.borrow().actor(&who) {
        return Ok(id);
    }
    let known: Option<i64> = tx
        .row("SELECT id FROM audit_actors WHERE who = ?1", [&who], |r| {
            r.get(0)
        })
        .optional()?;
    let id = match known {
        Some(id) => id,
        None => {
            let id: i64 = tx.row(
                "INSERT INTO audit_actors (who) VALUES (?1) RETURNING id",
                [&who],
                |r| r.get(0),
            )?;
            if tx.dialect() == Dialect::Sqlite {
                tx.exec(
                    "INSERT INTO audit_actors_fts (rowid, who) VALUES (?1, ?2)",
                    params![id, who],
                )?;
            }
            id
        }
    };
    ctx.audit.borrow_mut().set_actor(&who, id);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// The spliced body is the parsed one: same object, whatever the event
    /// holds (nothing, escapes, nesting).
    #[test]
    fn spliced_body_is_the_parsed_body() {
        for text in [
            "{}",
            r#"{"action":"secrets.get","actor":"a \"quoted\" name\n","n":[1,{"x":null}]}"#,
            r#"{"z":"}","a":"{"}"#,
        ] {
            let row = AuditRow {
                seq: 42,
                ts: 0,
                text: text.into(),
                prev_hash: "ab".repeat(32),
                hash: "cd".repeat(32),
            };
            let mut out = Vec::new();
            row.write_body_json(&mut out).unwrap();
            let spliced: Map<String, Value> = serde_json::from_slice(&out).unwrap();
            assert_eq!(spliced, row.body().unwrap(), "{text}");
        }
        let bad = AuditRow {
            seq: 7,
            ts: 0,
            text: "[1]".into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        assert!(bad.write_body_json(&mut Vec::new()).is_err());
    }
}
