//! [`Values`] on OpenBao's KV v2: each operation of the store mapped onto
//! KV v2's own (check-and-set writes, versioned reads, destroy, metadata
//! delete, delete/undelete), each bounded by the failover budget.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{BaoClient, OpenBaoValues};
use crate::store::{EngineHealth, EngineVersions, Result, Sealed, StoreError, Values};
use kube_dc_api::wire::Data;

/// The custom-metadata key, and its value, by which a KV path says that
/// this backend made it.
pub const OWNER_KEY: &str = "created-by";
pub const OWNER: &str = "kube-dc-backend";

/// The versions a KV v2 metadata document lists as neither deleted nor
/// destroyed.
fn live_versions(meta: &Value) -> Vec<u64> {
    let mut live: Vec<u64> = meta["versions"]
        .as_object()
        .map(|vs| {
            vs.iter()
                .filter(|(_, v)| {
                    v["destroyed"].as_bool() != Some(true)
                        && v["deletion_time"].as_str().is_none_or(str::is_empty)
                })
                .filter_map(|(k, _)| k.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    live.sort();
    live
}

/// A check-and-set write OpenBao refused, and what is known of it.
struct Refused<'a> {
    ns: &'a str,
    name: &'a str,
    path: &'a str,
    data: &'a Data,
    /// The version the backend's record holds as current.
    current: u64,
    /// An attempt so far may have been applied with its answer lost.
    maybe_applied: bool,
    started: Instant,
    deadline: Instant,
}

impl BaoClient {
    /// How long a node that is behind the backend's record (just elected,
    /// still applying the log) is waited for.
    fn stale_wait(&self) -> Duration {
        self.cfg.failover.min(Duration::from_secs(5))
    }

    /// Waits a moment before looking again, if the budget allows.
    async fn pause(deadline: Instant) {
        tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(200))).await;
    }

    async fn put(
        &self,
        ns: &str,
        name: &str,
        data: &Data,
        current: u64,
        max_versions: u32,
    ) -> Result<u64> {
        let deadline = self.deadline();
        let mount = self.mount_of(ns);
        self.ensure_mount(&mount, deadline).await?;
        let path = format!("{mount}/data/{name}");
        if current == 0 {
            self.claim_path(ns, name, max_versions, deadline).await?;
        }
        let mut cas = current;
        let started = Instant::now();
        // Whether an attempt so far may have been applied with its answer
        // lost: kept across the waits for a node that is behind, which
        // send the write again (and are then refused, certainly).
        let mut maybe_applied = false;
        let version = loop {
            let body = json!({"options": {"cas": cas}, "data": data});
            let a = self
                .request(reqwest::Method::POST, &path, Some(&body), deadline)
                .await?;
            maybe_applied |= a.uncertain;
            match a.status {
                200 => {
                    let got = a.body()["data"]["version"].as_u64().unwrap_or(0);
                    if got != cas + 1 {
                        return Err(StoreError::Internal(format!(
                            "OpenBao wrote {path} as version {got}, not {}; the next write \
                             to it (or the next start) lists what it holds",
                            cas + 1
                        )));
                    }
                    break got;
                }
                400 if a.errors().contains("check-and-set") => {
                    let refused = Refused {
                        ns,
                        name,
                        path: &path,
                        data,
                        current,
                        maybe_applied,
                        started,
                        deadline,
                    };
                    match self.after_refusal(refused, &mut cas).await? {
                        Some(v) => break v,
                        None => continue,
                    }
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
        Ok(version)
    }

    /// OpenBao refused a check-and-set on `cas`: the version written (an
    /// attempt whose answer was lost had written exactly these values), or
    /// `None` to try again (on a later `cas` past versions that undone
    /// writes left behind, or after a pause for a node that is behind);
    /// else why not.
    async fn after_refusal(&self, r: Refused<'_>, cas: &mut u64) -> Result<Option<u64>> {
        let at = *cas;
        let meta = self
            .metadata(r.ns, r.name, r.deadline)
            .await?
            .unwrap_or(Value::Null);
        let there = meta["current_version"].as_u64().unwrap_or(0);
        // Applied already by an attempt whose answer was lost?
        if r.maybe_applied && there == at + 1 {
            match self.read_data(r.ns, r.name, there, r.deadline).await? {
                Some(d) if d == *r.data => return Ok(Some(there)),
                // Listed, but not readable yet where it was asked: wait
                // for that node, as below.
                None if r.started.elapsed() < self.stale_wait() => {
                    Self::pause(r.deadline).await;
                    return Ok(None);
                }
                _ => {}
            }
        }
        // Versions that writes which never committed left behind, each
        // destroyed by its undo: write after them.
        let skippable = there > at
            && (at + 1..=there)
                .all(|v| meta["versions"][v.to_string()]["destroyed"].as_bool() == Some(true));
        if skippable && at == r.current {
            *cas = there;
            return Ok(None);
        }
        // Behind the record, or refusing the version it reports as
        // current: right after an election the node that answers may not
        // have applied every committed entry yet. Wait for it, within the
        // whole failover budget; a node still behind then is unavailable
        // (503, retry), never a change of someone else's (only a version
        // beyond the record is that).
        if there <= at {
            if Instant::now() < r.deadline {
                Self::pause(r.deadline).await;
                return Ok(None);
            }
            let path = r.path;
            return Err(StoreError::Unavailable {
                message: if there == at {
                    format!(
                        "OpenBao refused to write {path} on version {at}, which it reports as \
                         current: its nodes do not agree yet (an election?)"
                    )
                } else {
                    format!(
                        "OpenBao shows {path} at version {there}, behind the backend's record \
                         ({at}): the node that answers has not caught up yet (an election?)"
                    )
                },
                retry_after: self.cfg.failover.as_secs().clamp(1, 30),
            });
        }
        Err(StoreError::Unrecorded {
            path: r.path.to_string(),
            found: there,
            recorded: r.current,
        })
    }

    /// Before a secret's first version: marks its path as this backend's
    /// ([`OWNER_KEY`] in its custom metadata) and sets the history window,
    /// which OpenBao then keeps itself, unless the path holds live versions
    /// (the write then finds them, and the path is left as it is). The
    /// mark is what lets a create that was cut off before it was recorded
    /// be told from another tool's secret ([`BaoClient::claim_leftover`]).
    async fn claim_path(
        &self,
        ns: &str,
        name: &str,
        max_versions: u32,
        deadline: Instant,
    ) -> Result<()> {
        if let Some(meta) = self.metadata(ns, name, deadline).await?
            && !live_versions(&meta).is_empty()
        {
            return Ok(());
        }
        let path = format!("{}/metadata/{name}", self.mount_of(ns));
        self.post_ok(
            reqwest::Method::POST,
            &path,
            Some(&json!({
                "max_versions": max_versions,
                "custom_metadata": {OWNER_KEY: OWNER},
            })),
            &format!("setting max_versions of {path}"),
            deadline,
        )
        .await
    }

    /// Live versions at a path that no secret owns: if this backend made
    /// them ([`BaoClient::claim_path`]'s mark), they are a create cut off
    /// before it was recorded, whose undo never ran. They are destroyed now,
    /// as that undo would have (the next write goes after them), and
    /// `true` is returned; anything else (another tool's) is left alone.
    async fn claim_leftover(&self, ns: &str, name: &str) -> Result<bool> {
        let deadline = self.deadline();
        let Some(meta) = self.metadata(ns, name, deadline).await? else {
            return Ok(false);
        };
        if meta["custom_metadata"][OWNER_KEY].as_str() != Some(OWNER) {
            return Ok(false);
        }
        let live = live_versions(&meta);
        if !live.is_empty() {
            let mount = self.mount_of(ns);
            self.post_ok(
                reqwest::Method::PUT,
                &format!("{mount}/destroy/{name}"),
                Some(&json!({ "versions": live })),
                &format!("destroying the unrecorded versions of {mount}/data/{name}"),
                deadline,
            )
            .await?;
            tracing::warn!(
                "{mount}/data/{name} held version(s) {live:?} of a create this backend never \
                 recorded (cut off by a crash, or answered 503 after OpenBao applied it); they \
                 were destroyed, as that create's undo would have, and the new create goes on"
            );
        }
        Ok(true)
    }

    async fn get(&self, ns: &str, name: &str, version: u64) -> Result<Data> {
        // A version the backend recorded is there; a node that does not
        // show it yet (just elected) is waited for, within the window.
        let deadline = self.deadline();
        let started = Instant::now();
        loop {
            match self.read_data(ns, name, version, deadline).await? {
                Some(d) => return Ok(d),
                None if started.elapsed() < self.stale_wait() && Instant::now() < deadline => {
                    Self::pause(deadline).await;
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

    async fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()> {
        let mount = self.mount_of(ns);
        self.post_ok(
            reqwest::Method::PUT,
            &format!("{mount}/destroy/{name}"),
            Some(&json!({"versions": [version]})),
            &format!("destroying version {version} of {mount}/data/{name}"),
            self.deadline(),
        )
        .await
    }

    async fn destroy_all(&self, ns: &str, name: &str) -> Result<()> {
        let mount = self.mount_of(ns);
        let path = format!("{mount}/metadata/{name}");
        // None (404): nothing was ever written there, or the mount is gone.
        self.call(
            reqwest::Method::DELETE,
            &path,
            None,
            &format!("deleting {path}"),
            self.deadline(),
        )
        .await?;
        Ok(())
    }

    async fn set_deleted(&self, ns: &str, name: &str, current: u64, deleted: bool) -> Result<()> {
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
            self.deadline(),
        )
        .await
    }

    async fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        let Some(m) = self.metadata(ns, name, self.deadline()).await? else {
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

impl Values for OpenBaoValues {
    fn kind(&self) -> &'static str {
        "openbao"
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
        max_versions: u32,
    ) -> Result<(u64, Option<Sealed>)> {
        let v = self
            .rt()
            .block_on(self.client.put(ns, name, data, current, max_versions))?;
        Ok((v, None))
    }

    fn get(&self, ns: &str, name: &str, version: u64, _: Option<Sealed>) -> Result<Data> {
        self.rt().block_on(self.client.get(ns, name, version))
    }

    fn destroy_version(&self, ns: &str, name: &str, version: u64) -> Result<()> {
        self.rt()
            .block_on(self.client.destroy_version(ns, name, version))
    }

    fn destroy_all(&self, ns: &str, name: &str) -> Result<()> {
        self.rt().block_on(self.client.destroy_all(ns, name))
    }

    fn set_deleted(&self, ns: &str, name: &str, current: u64, deleted: bool) -> Result<()> {
        self.rt()
            .block_on(self.client.set_deleted(ns, name, current, deleted))
    }

    fn engine_version(&self, ns: &str, name: &str) -> Result<Option<EngineVersions>> {
        self.rt().block_on(self.client.engine_version(ns, name))
    }

    fn claim_leftover(&self, ns: &str, name: &str) -> Result<bool> {
        self.rt().block_on(self.client.claim_leftover(ns, name))
    }

    fn get_async(
        self: Arc<Self>,
        ns: String,
        name: String,
        version: u64,
        _: Option<Sealed>,
    ) -> BoxFuture<'static, Result<Data>> {
        self.spawn(move |c| async move { c.get(&ns, &name, version).await })
    }

    fn get_current_async(
        self: Arc<Self>,
        ns: String,
        name: String,
    ) -> BoxFuture<'static, Result<Option<(u64, Data)>>> {
        self.spawn(move |c| async move { c.read_current(&ns, &name).await })
    }

    fn put_async(
        self: Arc<Self>,
        ns: String,
        name: String,
        data: Data,
        current: u64,
        max_versions: u32,
    ) -> BoxFuture<'static, Result<(u64, Option<Sealed>)>> {
        self.spawn(move |c| async move {
            let v = c.put(&ns, &name, &data, current, max_versions).await?;
            Ok((v, None))
        })
    }

    fn engine_versions(
        &self,
        secrets: &[(String, String)],
        concurrency: usize,
    ) -> Vec<Result<Option<EngineVersions>>> {
        use futures_util::StreamExt;
        let c = &self.client;
        self.rt().block_on(
            futures_util::stream::iter(secrets)
                .map(|(ns, name)| c.engine_version(ns, name))
                .buffered(concurrency.max(1))
                .collect::<Vec<_>>(),
        )
    }

    fn health(&self) -> Option<BoxFuture<'static, EngineHealth>> {
        Some(OpenBaoValues::health(self))
    }
}
