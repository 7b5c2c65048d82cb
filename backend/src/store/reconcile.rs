//! Keeping the SQL store's record in step with an external engine: the
//! start-up comparison of every secret ([`Store::reconcile_values`]), and
//! the same for one secret when a write finds versions it never recorded
//! ([`Store::adopt_unrecorded`]).

use super::db::{MetaText, OptionalExtension};
use super::protocol::set_current;
use super::values::EngineVersions;
use super::{Conflict, DEFAULT_MAX_VERSIONS, Result, Store, StoreError};
use kube_dc_api::endpoints::RECONCILE_ACTION;
use kube_dc_api::event::{AuditEvent, Fact, Outcome, Subject, SystemActor, Version};
use rusqlite::params;

/// A secret whose engine disagrees with the SQL store's record of it.
#[derive(Debug, Clone)]
pub struct Discrepancy {
    /// The secret's namespace.
    pub namespace: String,
    /// The secret's name.
    pub name: String,
    /// The current version the SQL store recorded (0: none).
    pub recorded: u64,
    /// The engine's current version.
    pub engine: u64,
    /// Versions the engine holds that the SQL store had no record of, now
    /// listed (they were written, but never acknowledged or audited).
    pub adopted: Vec<u64>,
}

impl Discrepancy {
    /// What it means, for the log and the audit event.
    pub fn message(&self) -> String {
        if self.engine > self.recorded {
            format!(
                "OpenBao holds version(s) {:?} of secret {} in namespace {} that were never \
                 recorded or audited (a write cut off before it was recorded: a crash, or an \
                 answer lost in an election); they are now listed",
                self.adopted, self.name, self.namespace
            )
        } else {
            format!(
                "OpenBao is at version {} of secret {} in namespace {} but the backend \
                 recorded {}: versions are missing there",
                self.engine, self.name, self.namespace, self.recorded
            )
        }
    }

    /// Its audit event (`secrets.reconcile`, by the backend, result error)
    /// about the secret, filed under `org` and `project`.
    pub fn event(&self, org: String, project: String, ts: i64) -> super::AuditRecord {
        let about = Subject {
            service: "secrets".into(),
            action: RECONCILE_ACTION.into(),
            resource: self.name.clone(),
            org,
            project: Some(project),
            namespace: Some(self.namespace.clone()),
        };
        super::AuditRecord {
            ts,
            event: AuditEvent::system(about, SystemActor::Backend, Outcome::Error)
                .with(Fact::RecordedVersion(Version(self.recorded)))
                .with(Fact::EngineVersion(Version(self.engine)))
                .with(Fact::Message(self.message())),
        }
    }
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
    /// Each discrepancy is recorded together with its audit event
    /// (`secrets.reconcile`, filed under the organization and project
    /// `owner` gives the namespace): the versions listed and the event
    /// commit in one transaction, so a crash at any point leaves either
    /// both or neither, and the next pass finds what is left.
    ///
    /// The engine is asked about many secrets at once, in name order, and
    /// the progress is saved after each step: a pass cut short (the engine
    /// unreachable, a crash) resumes after the last secret it checked at
    /// the next start. Nothing changes between the two, since the backend
    /// serves only once a pass has finished.
    pub fn reconcile_values(
        &self,
        owner: impl Fn(&str) -> (String, String),
        now: impl Fn() -> i64,
    ) -> Result<Vec<Discrepancy>> {
        if !self.values.external() {
            return Ok(Vec::new());
        }
        let (secrets, after): (Vec<(String, String, u64)>, Option<String>) = self.read(|c| {
            let secrets = c.query_map(
                "SELECT m.namespace, m.name, COALESCE(k.current_version, 0) FROM managed_secrets m
                 LEFT JOIN kv_meta k ON k.namespace = m.namespace AND k.name = m.name
                 ORDER BY m.namespace, m.name",
                (),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let after = c
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [RECONCILE_CURSOR],
                    |r| Ok(r.get::<MetaText>(0)?.0),
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
                let (org, project) = owner(ns);
                if let Some(d) =
                    self.reconcile_one(ns, name, *recorded, engine?, (org, project, now()))?
                {
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

    /// What a write does on finding versions in the engine beyond the
    /// record ([`StoreError::Unrecorded`]), holding the secret's engine
    /// turn: lists them now, as the start-up reconciliation would, with its
    /// audit event (filed under the organization and project of `audit`,
    /// the write's own event), so the secret is writable again without a
    /// restart. Returns the conflict to answer the write with, or
    /// `unrecorded`, the engine's error, if listing them fails.
    pub(super) fn adopt_unrecorded(
        &self,
        ns: &str,
        name: &str,
        audit: Option<&super::AuditRecord>,
        unrecorded: StoreError,
    ) -> StoreError {
        let adopted = (|| {
            let (recorded, _) = self.read(|c| super::protocol::kv_meta(c, ns, name))?;
            let engine = self.values.engine_version(ns, name)?;
            let now = crate::clock::now_ms();
            let filed = audit.map_or((String::new(), String::new(), now), |a| {
                let about = &a.event.about;
                (
                    about.org.clone(),
                    about.project.clone().unwrap_or_default(),
                    a.ts,
                )
            });
            self.reconcile_one(ns, name, recorded, engine, filed)
        })();
        match adopted {
            Ok(Some(d)) if d.engine > d.recorded => StoreError::Conflict(Conflict::Adopted {
                name: name.to_owned(),
                engine: d.engine,
                recorded: d.recorded,
                adopted: d.adopted,
            }),
            Ok(_) => unrecorded,
            Err(e) => {
                tracing::warn!("listing the versions OpenBao holds of {ns}/{name}: {e}");
                unrecorded
            }
        }
    }

    /// Compares one secret; lists the versions the engine holds beyond the
    /// record, in the transaction that appends the discrepancy's audit
    /// event (filed under `(org, project)`, at `ts`), and logs it.
    fn reconcile_one(
        &self,
        ns: &str,
        name: &str,
        recorded: u64,
        engine: Option<EngineVersions>,
        (org, project, ts): (String, String, i64),
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
        let extra: Vec<(u64, i64, bool)> = engine
            .versions
            .iter()
            .copied()
            .filter(|(v, ..)| *v > recorded)
            .collect();
        if engine.current > recorded {
            d.adopted = extra.iter().map(|(v, ..)| *v).collect();
        }
        let event = d.event(org, project, ts);
        let (current, ahead) = (engine.current, engine.current > recorded);
        let (ns, name) = (ns.to_owned(), name.to_owned());
        // The versions and their event together: one transaction.
        self.write(Some(&event), move |_, tx| {
            if !ahead {
                return Ok(());
            }
            for (v, created, destroyed) in &extra {
                tx.exec(
                    "INSERT INTO kv_versions (namespace, name, version, created_at, destroyed)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![ns, name, v, created, destroyed],
                )?;
            }
            let at = extra.iter().map(|(_, c, _)| *c).max().unwrap_or(0);
            set_current(tx, (&ns, &name), current, DEFAULT_MAX_VERSIONS, at)
        })?;
        tracing::error!("{}", d.message());
        Ok(Some(d))
    }
}
