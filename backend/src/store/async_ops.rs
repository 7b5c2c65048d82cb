//! One async method per store operation, for the handlers: each runs the
//! store's own (blocking) method off the runtime and takes what it needs by
//! value, so a handler neither clones its arguments into a closure nor
//! reaches the store any other way.

use std::time::Duration;

use kube_dc_api::event::Version;
use kube_dc_api::wire::{Data, Grant, Rotation, SyncSpec, VersionInfo};

use super::{AsyncStore, AuditFilter, AuditRecord, AuditRow, NewSecret, Result, SecretRecord};

impl AsyncStore {
    /// [`super::Store::keyed_write`].
    pub async fn keyed_write(
        &self,
        key: super::IdempotencyKey,
    ) -> Result<Option<super::KeyedWrite>> {
        self.call(move |s| s.keyed_write(&key)).await
    }

    /// [`super::Store::get_live`].
    pub async fn get_live(&self, ns: String, name: String) -> Result<SecretRecord> {
        self.call(move |s| s.get_live(&ns, &name)).await
    }

    /// [`super::Store::create`] (`fault`: a test's injected failure point).
    pub async fn create(
        &self,
        new: NewSecret,
        data: Option<Data>,
        now: i64,
        fault: impl FnOnce() -> Result<()> + Send + 'static,
        audit: AuditRecord,
    ) -> Result<SecretRecord> {
        self.call(move |s| s.create(new, data.as_ref(), now, fault, Some(&audit)))
            .await
    }

    /// [`super::Store::update_spec`].
    pub async fn update_spec(
        &self,
        ns: String,
        name: String,
        description: Option<String>,
        rotation: Option<(Rotation, Duration)>,
        now: i64,
        audit: AuditRecord,
    ) -> Result<SecretRecord> {
        self.call(move |s| {
            s.update_spec(
                &ns,
                &name,
                description.as_deref(),
                rotation.as_ref().map(|(r, d)| (r, *d)),
                now,
                Some(&audit),
            )
        })
        .await
    }

    /// [`super::Store::update_sync`].
    pub async fn update_sync(
        &self,
        ns: String,
        name: String,
        sync: SyncSpec,
        now: i64,
        audit: AuditRecord,
    ) -> Result<SecretRecord> {
        self.call(move |s| s.update_sync(&ns, &name, &sync, now, Some(&audit)))
            .await
    }

    /// [`super::Store::soft_delete`], or with `destroy` [`super::Store::destroy`].
    pub async fn delete(
        &self,
        ns: String,
        name: String,
        destroy: bool,
        now: i64,
        audit: AuditRecord,
    ) -> Result<()> {
        self.call(move |s| {
            if destroy {
                s.destroy(&ns, &name, Some(&audit))
            } else {
                s.soft_delete(&ns, &name, now, Some(&audit))
            }
        })
        .await
    }

    /// [`super::Store::restore`].
    pub async fn restore(
        &self,
        ns: String,
        name: String,
        now: i64,
        audit: AuditRecord,
    ) -> Result<SecretRecord> {
        self.call(move |s| s.restore(&ns, &name, now, Some(&audit)))
            .await
    }

    /// [`super::Store::versions`].
    pub async fn versions(&self, ns: String, name: String) -> Result<Vec<VersionInfo>> {
        self.call(move |s| s.versions(&ns, &name)).await
    }

    /// [`super::Store::destroy_version`].
    pub async fn destroy_version(
        &self,
        ns: String,
        name: String,
        version: u64,
        now: i64,
        audit: AuditRecord,
    ) -> Result<()> {
        self.call(move |s| s.destroy_version(&ns, &name, version, now, Some(&audit)))
            .await
    }

    /// [`super::Store::elevate`].
    #[allow(clippy::too_many_arguments)]
    pub async fn elevate(
        &self,
        user: String,
        org: String,
        project: String,
        reason: String,
        ttl: Duration,
        now: i64,
        audit: AuditRecord,
    ) -> Result<Grant> {
        self.call(move |s| s.elevate(&user, &org, &project, &reason, ttl, now, Some(&audit)))
            .await
    }

    /// [`super::Store::release`].
    pub async fn release(
        &self,
        user: String,
        org: String,
        project: String,
        now: i64,
        audit: AuditRecord,
    ) -> Result<Grant> {
        self.call(move |s| s.release(&user, &org, &project, now, Some(&audit)))
            .await
    }

    /// [`super::Store::active_elevation`].
    pub async fn active_elevation(
        &self,
        user: String,
        org: String,
        project: String,
        now: i64,
    ) -> Result<Option<Grant>> {
        self.call(move |s| s.active_elevation(&user, &org, &project, now))
            .await
    }

    /// [`super::Store::active_elevations`].
    pub async fn active_elevations(&self, org: String, now: i64) -> Result<Vec<Grant>> {
        self.call(move |s| s.active_elevations(&org, now)).await
    }

    /// [`super::Store::query_audit`].
    pub async fn query_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>> {
        self.call(move |s| s.query_audit(&filter)).await
    }

    /// [`super::Store::verify_audit`].
    pub async fn verify_audit(
        &self,
        org: String,
    ) -> Result<std::result::Result<u64, (i64, String)>> {
        self.call(move |s| s.verify_audit(&org)).await
    }

    /// [`super::Store::due_rotations`].
    pub async fn due_rotations(&self, now: i64) -> Result<Vec<(String, String)>> {
        self.call(move |s| s.due_rotations(now)).await
    }

    /// [`super::Store::rotate_if_due`].
    pub async fn rotate_if_due(
        &self,
        ns: String,
        name: String,
        now: i64,
        generate: impl FnOnce(&Rotation) -> Data + Send + 'static,
        audit: AuditRecord,
    ) -> Result<Option<Version>> {
        self.call(move |s| s.rotate_if_due(&ns, &name, now, generate, Some(&audit)))
            .await
    }
}
