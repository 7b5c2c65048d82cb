//! `--dry-run`: every change a command would make, collected instead of
//! sent — a plan, printed once the command has decided all of it (through
//! the printer, so `-o json` is a document). Which request is a change is
//! the endpoint table's word ([`Route::changes`]), not the HTTP method's.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;

use super::{Call, Client, Transport};
use kube_dc_api::endpoints::Route;

/// One change a command would make.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    pub method: &'static str,
    /// Where it would go: the installation's base and the path with its
    /// query (`local:` for the built-in context).
    pub url: String,
    /// The endpoint table's path template.
    pub route: &'static str,
    /// The audit action it would be recorded as.
    pub action: &'static str,
    /// The body, values masked unless `--show-values`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// The changes collected so far; shared by every client of one command.
#[derive(Clone, Default)]
pub struct Plan {
    changes: Arc<Mutex<Vec<PlannedChange>>>,
    show_values: bool,
}

impl Plan {
    /// A plan whose bodies show the values (`--show-values`) or mask them.
    pub fn new(show_values: bool) -> Self {
        Self {
            changes: Arc::default(),
            show_values,
        }
    }

    /// The changes in the order the command decided them.
    pub fn changes(&self) -> Vec<PlannedChange> {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, change: PlannedChange) {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change);
    }
}

impl Client {
    /// Collects changes into `plan` instead of sending them (`--dry-run`).
    pub fn planning(mut self, plan: Option<Plan>) -> Self {
        self.plan = plan;
        self
    }

    /// Under `--dry-run`, adds `call` to the plan and says so (`true`).
    pub(super) fn planned(&self, call: &Call, body: Option<&impl Serialize>) -> bool {
        let Some(plan) = &self.plan else {
            return false;
        };
        let base = match &self.transport {
            #[cfg(feature = "local")]
            Transport::Local(_) => "local:".to_string(),
            Transport::Http { base, .. } => base.clone(),
        };
        let endpoint = call.route.endpoint();
        let mut body = body.and_then(|b| serde_json::to_value(b).ok());
        if !plan.show_values {
            body.iter_mut().for_each(mask_values);
        }
        plan.push(PlannedChange {
            method: endpoint.method,
            url: format!("{base}{}", call.path()),
            route: endpoint.path,
            action: endpoint.action,
            body,
        });
        true
    }
}

/// Whether a raw request (method and path, no [`Call`]) would change
/// something: refused under `--dry-run`, as every change must be planned.
pub(super) fn is_change(method: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    Route::recognize(method, path).map_or(method != "GET", |(r, _)| r.changes())
}

/// Replaces every value under a `data` or `initialValues` object with a
/// note of its size.
fn mask_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if let ("data" | "initialValues", Value::Object(values)) = (k.as_str(), &mut *child)
                {
                    for val in values.values_mut() {
                        let n = val.as_str().map_or(0, str::len);
                        *val =
                            Value::String(format!("(masked, {n} bytes; --show-values shows it)"));
                    }
                } else {
                    mask_values(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_values),
        _ => {}
    }
}
