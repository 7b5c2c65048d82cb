//! The filters of `audit list`, as one value the listing and the feed
//! share: the server's (service, actor, result), which the feed applies
//! itself, and kube-dc's own (request id, action, resource).

use serde_json::{Map, Value};

use kube_dc_api::event::Shown;

/// What `audit list` was asked to keep.
#[derive(Clone, Copy, Default, Debug)]
pub struct Filters<'a> {
    pub service: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub result: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub resource: Option<&'a str>,
}

impl Filters<'_> {
    /// kube-dc's own filters (the server has none for these).
    pub fn local(&self, body: &Map<String, Value>) -> bool {
        let e = Shown::of(body);
        let is = |want: Option<&str>, got: &str| want.is_none_or(|w| w == got);
        is(self.request_id, &e.request_id)
            && is(self.action, &e.action)
            && is(self.resource, &e.resource)
    }

    /// The server's filters, applied here to what the feed sends (it
    /// sends every event, so a cursor moves past the ones filtered out):
    /// the service and result exactly, the actor as a substring of the
    /// name, email or subject, in any case.
    pub fn server(&self, body: &Map<String, Value>) -> bool {
        let text = |k: &str| kube_dc_api::audit::field_text(body, k);
        let actor_ok = self.actor.is_none_or(|want| {
            let w = want.to_lowercase();
            ["actor", "actor_email", "actor_sub"]
                .iter()
                .any(|k| text(k).to_lowercase().contains(&w))
        });
        self.service.is_none_or(|s| s == text("service"))
            && self.result.is_none_or(|r| r == text("result"))
            && actor_ok
    }
}
