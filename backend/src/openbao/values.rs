//! [`Values`] on OpenBao's KV v2: each operation of the store mapped onto
//! KV v2's own (check-and-set writes, versioned reads, destroy, metadata
//! delete, delete/undelete).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::OpenBaoValues;
use crate::store::{EngineVersions, Result, Sealed, StoreError, Values};
use kube_dc_api::wire::Data;

impl Values for OpenBaoValues {
    fn kind(&self) -> &'static str {
        "openbao"
    }

    fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)> {
        let mount = self.mount_of(ns);
        self.ensure_mount(&mount)?;
        let path = format!("{mount}/data/{name}");
        let mut cas = current;
        let started = Instant::now();
        let version = loop {
            let body = json!({"options": {"cas": cas}, "data": data});
            let a = self.request(reqwest::Method::POST, &path, Some(&body))?;
            match a.status {
                200 => {
                    let got = a.body["data"]["version"].as_u64().unwrap_or(0);
                    if got != cas + 1 {
                        return Err(StoreError::Internal(format!(
                            "OpenBao wrote {path} as version {got}, not {}; the backend \
                             reconciles at its next start",
                            cas + 1
                        )));
                    }
                    break got;
                }
                400 if a.errors().contains("check-and-set") => {
                    let meta = self.metadata(ns, name)?.unwrap_or(Value::Null);
                    let there = meta["current_version"].as_u64().unwrap_or(0);
                    // Applied already by an attempt whose answer was lost?
                    if a.uncertain
                        && there == cas + 1
                        && self.read_data(ns, name, there)?.as_ref() == Some(data)
                    {
                        break there;
                    }
                    // Versions that writes which never committed left
                    // behind, each destroyed by its undo: write after them.
                    let skippable = there > cas
                        && (cas + 1..=there).all(|v| {
                            meta["versions"][v.to_string()]["destroyed"].as_bool() == Some(true)
                        });
                    if skippable && cas == current {
                        cas = there;
                        continue;
                    }
                    // Behind the record: right after an election the new
                    // leader may not have applied every committed entry
                    // yet. Wait for it, within the failover window.
                    if there < cas && started.elapsed() < self.stale_wait() {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    return Err(StoreError::Conflict(format!(
                        "OpenBao's {path} is at version {there}, not {current} as the backend \
                         recorded: a change was made there that the backend did not record. \
                         Restart the backend: it reports and records the difference at start"
                    )));
                }
                403 => return Err(self.denied(&format!("writing {path}"), &a)),
                _ => {
                    return Err(StoreError::Internal(format!(
                        "writing {path}: {}",
                        a.errors()
                    )));
                }
            }
        };
        if current == 0 {
            // The history window, kept by OpenBao itself.
            self.post_ok(
                reqwest::Method::POST,
                &format!("{mount}/metadata/{name}"),
                Some(&json!({"max_versions": max_versions})),
                &format!("setting max_versions of {mount}/metadata/{name}"),
            )?;
        }
        Ok((version, None))
    }

    fn get(&self, ns: &str, name: &str, version: u64, _: Option<Sealed>) -> Result<Data> {
        // A version the backend recorded is there; a node that does not
        // show it yet (just elected) is waited for, within the window.
        let started = Instant::now();
        loop {
            match self.read_data(ns, name, version)? {
                Some(d) => return Ok(d),
                None if started.elapsed() < self.stale_wait() => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                None => break,
            }
        }
        Err(StoreError::Internal(format!(
            "OpenBao has no readable version {version} of {}/data/{name}, which the backend \
             lists as live",
            self.mount_of(ns)
        )))
    }

    fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()> {
        let mount = self.mount_of(ns);
        self.post_ok(
            reqwest::Method::PUT,
            &format!("{mount}/destroy/{name}"),
            Some(&json!({"versions": [version]})),
            &format!("destroying version {version} of {mount}/data/{name}"),
        )
    }

    fn destroy_all(&self, ns: &str, name: &str) -> Result<()> {
        let mount = self.mount_of(ns);
        let path = format!("{mount}/metadata/{name}");
        // None (404): nothing was ever written there, or the mount is gone.
        self.call(
            reqwest::Method::DELETE,
            &path,
            None,
            &format!("deleting {path}"),
        )?;
        Ok(())
    }

    fn set_deleted(&self, ns: &str, name: &str, current: u64, deleted: bool) -> Result<()> {
        let mount = self.mount_of(ns);
        let (op, what) = if deleted {
            ("delete", "soft-deleting")
        } else {
            ("undelete", "restoring")
        };
        self.post_ok(
            reqwest::Method::POST,
            &format!("{mount}/{op}/{name}"),
            Some(&json!({"versions": [current]})),
            &format!("{what} version {current} of {mount}/data/{name}"),
        )
    }

    fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        let Some(m) = self.metadata(ns, name)? else {
            return Ok(Some(EngineVersions::default()));
        };
        let mut versions = Vec::new();
        if let Some(vs) = m["versions"].as_object() {
            for (k, v) in vs {
                let Ok(n) = k.parse::<u64>() else { continue };
                let created = v["created_time"]
                    .as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .unwrap_or(0);
                versions.push((n, created, v["destroyed"].as_bool().unwrap_or(false)));
            }
        }
        versions.sort();
        Ok(Some(EngineVersions {
            current: m["current_version"].as_u64().unwrap_or(0),
            versions,
        }))
    }
}
