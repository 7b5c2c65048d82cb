//! One method per route of the endpoint table, each rendering its path
//! from the table (values percent-encoded as single segments).

use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Client, Doc, Streamed};
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::endpoints::{Origin, Route};
use kube_dc_api::wire::{
    AuditResponse, ConsumersResponse, CreateRequest, DeleteResponse, DestroyVersionResponse,
    ElevateRequest, ElevationStatus, Grant, ImportRequest, ItemList, PutValuesRequest,
    PutValuesResponse, Secret, SyncPatch, UpdateRequest, VersionInfo,
};

/// Query string from (name, value) pairs; pairs with no value are left out.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", serde_urlencoded::to_string(set).unwrap_or_default())
    }
}

/// A request for one route of the endpoint table: the path is rendered from
/// the route's template (each value percent-encoded as one segment), and a
/// 404/405 from an extension route means "this installation lacks it".
pub struct Call {
    pub route: Route,
    /// (namespace, name) when the route is about one secret.
    pub secret: Option<(String, String)>,
    /// The rendered path, without the query.
    pub path: String,
    pub query: String,
    /// The request uses an extension field or parameter on a production route.
    pub uses_extension: bool,
}

impl Call {
    pub fn new(route: Route, params: &[&str]) -> Self {
        let named = route.endpoint().params().collect::<Vec<_>>();
        let secret = (named.starts_with(&["ns", "name"]) && params.len() >= 2)
            .then(|| (params[0].to_string(), params[1].to_string()));
        Call {
            route,
            secret,
            path: route.endpoint().path_for(params),
            query: String::new(),
            uses_extension: false,
        }
    }
    pub fn query(mut self, q: String) -> Self {
        self.query = q;
        self
    }
    pub fn extension(mut self, yes: bool) -> Self {
        self.uses_extension = yes;
        self
    }
    fn method(&self) -> Method {
        Method::from_bytes(self.route.endpoint().method.as_bytes()).expect("table method")
    }
    pub(super) fn path(&self) -> String {
        format!("{}{}", self.path, self.query)
    }
    fn missing_means_unsupported(&self) -> bool {
        self.uses_extension || self.route.endpoint().origin == Origin::Extension
    }
}

impl Client {
    /// Sends `call` with an optional JSON body; reads JSON.
    ///
    /// A JSON 404 from an extension route about one secret is ambiguous:
    /// the secret is missing, or the route is. The production route that
    /// reads the secret tells which.
    pub async fn call<T: DeserializeOwned>(
        &self,
        call: Call,
        body: Option<&impl Serialize>,
    ) -> Result<(T, Doc)> {
        let doc = self.call_doc(call, body).await?;
        Ok((doc.typed()?, doc))
    }

    /// Sends a change — or, under `--dry-run`, adds it to the plan and
    /// answers `None` (nothing was sent, so there is no answer to read).
    pub async fn change<T: DeserializeOwned>(
        &self,
        call: Call,
        body: Option<&impl Serialize>,
    ) -> Result<Option<(T, Doc)>> {
        if self.planned(&call, body) {
            return Ok(None);
        }
        self.call(call, body).await.map(Some)
    }

    /// [`Client::call`], the answer left as a document to decode later.
    pub async fn call_doc(&self, call: Call, body: Option<&impl Serialize>) -> Result<Doc> {
        let res = self
            .json_doc(
                call.method(),
                &call.path(),
                body,
                call.missing_means_unsupported(),
            )
            .await;
        match res {
            Err(e)
                if e.status == Some(404)
                    && e.kind == ErrorKind::NotFound
                    && call.route.endpoint().origin == Origin::Extension
                    && call.secret.is_some() =>
            {
                let (ns, name) = call.secret.clone().unwrap_or_default();
                let probe = Route::GetSecret.endpoint().path_for(&[&ns, &name]);
                match self
                    .json::<Value>(Method::GET, &probe, None::<&()>, false)
                    .await
                {
                    Ok(_) => {
                        let mut u = CliError::new(
                            ErrorKind::NotSupported,
                            format!(
                                "{} {} is not supported by this installation (it is an extension of kube-dc's own backend)",
                                call.route.endpoint().method,
                                call.route.endpoint().path
                            ),
                        );
                        u.status = e.status;
                        u.request_id = e.request_id.clone();
                        Err(u)
                    }
                    Err(_) => Err(e),
                }
            }
            other => other,
        }
    }

    /// Sends `call`; the 2xx body is read as it arrives.
    pub async fn call_streamed(&self, call: Call) -> Result<Streamed> {
        self.send(
            call.method(),
            &call.path(),
            None,
            call.missing_means_unsupported(),
            false,
        )
        .await
    }

    /// The server's version from its health endpoint (`kube-dc-backend`
    /// reports one; an installation that does not answers `None`).
    pub async fn server_version(&self) -> Result<Option<String>> {
        let raw = self.raw(Method::GET, "/healthz", None, false).await?;
        let v: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        Ok(v["version"]
            .as_str()
            .map(|s| format!("kube-dc-backend {s}")))
    }

    /// The project's secrets as the server sent them: decode with
    /// [`Doc::typed`] as `ItemList<Secret>`, or as a slimmer view that
    /// borrows from the document (`secrets list` at 10,000 secrets).
    pub async fn list_secrets(&self, ns: &str) -> Result<Doc> {
        self.call_doc(Call::new(Route::ListSecrets, &[ns]), None::<&()>)
            .await
    }

    /// The soft-deleted secrets (`?deleted=true`, an extension: check the
    /// answer's `deleted` marker).
    pub async fn list_deleted_secrets(&self, ns: &str) -> Result<Doc> {
        let call =
            Call::new(Route::ListSecrets, &[ns]).query(query(&[("deleted", Some("true".into()))]));
        self.call_doc(call, None::<&()>).await
    }

    pub async fn get_secret(
        &self,
        ns: &str,
        name: &str,
        reveal: bool,
        version: Option<u64>,
    ) -> Result<(Secret, Doc)> {
        let q = query(&[
            ("includeValue", reveal.then(|| "true".into())),
            ("version", version.map(|v| v.to_string())),
        ]);
        let call = Call::new(Route::GetSecret, &[ns, name])
            .query(q)
            .extension(version.is_some());
        self.call(call, None::<&()>).await
    }

    /// The production one-round-trip create. A 404/405 here means an
    /// installation older than that route: the caller says so.
    pub async fn create_secret(
        &self,
        ns: &str,
        name: &str,
        req: &CreateRequest,
    ) -> Result<Option<(Secret, Doc)>> {
        let call = Call::new(Route::CreateSecret, &[ns, name]).extension(true);
        self.change(call, Some(req)).await
    }

    pub async fn update_secret(
        &self,
        ns: &str,
        name: &str,
        req: &UpdateRequest,
    ) -> Result<Option<(Secret, Doc)>> {
        self.change(Call::new(Route::UpdateSecret, &[ns, name]), Some(req))
            .await
    }

    pub async fn put_values(
        &self,
        ns: &str,
        name: &str,
        req: &PutValuesRequest,
    ) -> Result<Option<(PutValuesResponse, Doc)>> {
        self.change(Call::new(Route::PutValues, &[ns, name]), Some(req))
            .await
    }

    pub async fn sync(
        &self,
        ns: &str,
        name: &str,
        patch: &SyncPatch,
    ) -> Result<Option<(Secret, Doc)>> {
        self.change(Call::new(Route::SyncSecret, &[ns, name]), Some(patch))
            .await
    }

    pub async fn import(
        &self,
        ns: &str,
        name: &str,
        req: &ImportRequest,
    ) -> Result<Option<(Secret, Doc)>> {
        self.change(Call::new(Route::ImportSecret, &[ns, name]), Some(req))
            .await
    }

    pub async fn delete(
        &self,
        ns: &str,
        name: &str,
        destroy: bool,
    ) -> Result<Option<(DeleteResponse, Doc)>> {
        let q = query(&[("destroy", destroy.then(|| "true".into()))]);
        let call = Call::new(Route::DeleteSecret, &[ns, name]).query(q);
        self.change(call, None::<&()>).await
    }

    pub async fn destroy_version(
        &self,
        ns: &str,
        name: &str,
        v: u64,
    ) -> Result<Option<(DestroyVersionResponse, Doc)>> {
        let v = v.to_string();
        self.change(
            Call::new(Route::DestroyVersion, &[ns, name, &v]),
            None::<&()>,
        )
        .await
    }

    pub async fn consumers(&self, ns: &str, name: &str) -> Result<(ConsumersResponse, Doc)> {
        self.call(Call::new(Route::Consumers, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn versions(&self, ns: &str, name: &str) -> Result<(ItemList<VersionInfo>, Doc)> {
        self.call(Call::new(Route::ListVersions, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn restore(&self, ns: &str, name: &str) -> Result<Option<(Secret, Doc)>> {
        self.change(Call::new(Route::RestoreSecret, &[ns, name]), None::<&()>)
            .await
    }

    pub async fn audit(
        &self,
        org: &str,
        project: Option<&str>,
        q: &str,
    ) -> Result<(AuditResponse, Doc)> {
        let call = match project {
            Some(p) => Call::new(Route::AuditProject, &[org, p]),
            None => Call::new(Route::AuditOrg, &[org]),
        };
        self.call(call.query(q.to_string()), None::<&()>).await
    }

    pub async fn audit_csv(&self, org: &str, q: &str) -> Result<Streamed> {
        self.call_streamed(Call::new(Route::AuditCsv, &[org]).query(q.to_string()))
            .await
    }

    pub async fn elevate(
        &self,
        org: &str,
        project: &str,
        reason: &str,
    ) -> Result<Option<(Grant, Doc)>> {
        let body = ElevateRequest {
            reason: reason.into(),
        };
        self.change(Call::new(Route::Elevate, &[org, project]), Some(&body))
            .await
    }

    pub async fn elevation_status(
        &self,
        org: &str,
        project: &str,
    ) -> Result<(ElevationStatus, Doc)> {
        self.call(
            Call::new(Route::ElevationStatus, &[org, project]),
            None::<&()>,
        )
        .await
    }

    pub async fn release(&self, org: &str, project: &str) -> Result<Option<(Grant, Doc)>> {
        self.change(Call::new(Route::Release, &[org, project]), None::<&()>)
            .await
    }

    pub async fn elevations(&self, org: &str) -> Result<(ItemList<Grant>, Doc)> {
        self.call(Call::new(Route::ListElevations, &[org]), None::<&()>)
            .await
    }
}
