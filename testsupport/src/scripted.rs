//! A value engine driven by a script, for the write protocol's failure
//! windows, deterministically and in milliseconds. It behaves as an
//! external engine (the store calls it before the writer records a change,
//! as OpenBao) and keeps its versions in memory with OpenBao's KV v2 rules
//! (check-and-set, versions left destroyed by undone writes are skipped);
//! its next calls can be told to fail the ways a real one does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kube_dc_api::wire::Data;
use kube_dc_backend::store::{EngineVersions, Result, Sealed, StoreError, Values};

/// What the next calls do wrong, each once.
#[derive(Default, Debug)]
pub struct Script {
    /// The next put is applied, and its answer lost (a 503 to the caller):
    /// the engine holds a version the store never records.
    pub lose_put_answer: bool,
    /// The next destroy of a version fails (the undo of a write that did not
    /// commit leaves the version live).
    pub fail_destroy: bool,
}

#[derive(Default)]
struct Secret {
    /// version → its values (None: destroyed).
    versions: BTreeMap<u64, Option<Data>>,
}

impl Secret {
    fn current(&self) -> u64 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }
}

/// The engine. [`Scripted::script`] arms faults; [`Scripted::live`] and
/// [`Scripted::current`] show what it holds.
#[derive(Default)]
pub struct Scripted {
    secrets: Mutex<HashMap<(String, String), Secret>>,
    pub script: Mutex<Script>,
}

impl Scripted {
    /// The versions of a secret that hold values.
    pub fn live(&self, ns: &str, name: &str) -> Vec<u64> {
        let s = self.secrets.lock().unwrap();
        s.get(&(ns.into(), name.into()))
            .map(|s| {
                s.versions
                    .iter()
                    .filter(|(_, d)| d.is_some())
                    .map(|(v, _)| *v)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The engine's current version of a secret (0: none).
    pub fn current(&self, ns: &str, name: &str) -> u64 {
        let s = self.secrets.lock().unwrap();
        s.get(&(ns.into(), name.into())).map_or(0, Secret::current)
    }
}

impl Values for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn external(&self) -> bool {
        true
    }

    fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        _max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)> {
        let mut all = self.secrets.lock().unwrap();
        let s = all.entry((ns.into(), name.into())).or_default();
        let there = s.current();
        // Check-and-set on `current`; versions after it that undone writes
        // left destroyed are written after, as OpenBao's KV v2 does.
        let skippable = there > current
            && (current + 1..=there).all(|v| s.versions.get(&v).is_some_and(Option::is_none));
        if there != current && !skippable {
            return Err(StoreError::Unrecorded {
                path: format!("scripted/{ns}/{name}"),
                found: there,
                recorded: current,
            });
        }
        let version = there + 1;
        s.versions.insert(version, Some(data.clone()));
        let mut script = self.script.lock().unwrap();
        if std::mem::take(&mut script.lose_put_answer) {
            return Err(StoreError::Unavailable {
                message: format!("the answer to writing version {version} was lost"),
                retry_after: 1,
            });
        }
        Ok((version, None))
    }

    fn get(&self, ns: &str, name: &str, version: u64, _: Option<Sealed>) -> Result<Data> {
        let all = self.secrets.lock().unwrap();
        all.get(&(ns.into(), name.into()))
            .and_then(|s| s.versions.get(&version).cloned().flatten())
            .ok_or_else(|| StoreError::Internal(format!("no version {version} of {name}")))
    }

    fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()> {
        if std::mem::take(&mut self.script.lock().unwrap().fail_destroy) {
            return Err(StoreError::Internal("destroy failed (scripted)".into()));
        }
        let mut all = self.secrets.lock().unwrap();
        if let Some(v) = all
            .get_mut(&(ns.into(), name.into()))
            .and_then(|s| s.versions.get_mut(&version))
        {
            *v = None;
        }
        Ok(())
    }

    fn destroy_all(&self, ns: &str, name: &str) -> Result<()> {
        self.secrets
            .lock()
            .unwrap()
            .remove(&(ns.into(), name.into()));
        Ok(())
    }

    fn set_deleted(&self, _: &str, _: &str, _: u64, _: bool) -> Result<()> {
        Ok(())
    }

    fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        let all = self.secrets.lock().unwrap();
        let Some(s) = all.get(&(ns.into(), name.into())) else {
            return Ok(Some(EngineVersions::default()));
        };
        Ok(Some(EngineVersions {
            current: s.current(),
            versions: s
                .versions
                .iter()
                .map(|(v, d)| (*v, 0, d.is_none()))
                .collect(),
        }))
    }
}
