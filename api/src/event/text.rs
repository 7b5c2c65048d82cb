//! An event's text: the JSON object that is hashed into its chain and
//! stored, keys in canonical (sorted) order, written from the event's own
//! fields.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::{AuditEvent, Fact};

/// The fields an event has by type, which no [`Fact`] can take the name of
/// (a test checks the keys).
pub const TYPED_FIELDS: [&str; 15] = [
    "service",
    "action",
    "result",
    "resource",
    "org",
    "project",
    "namespace",
    "actor",
    "actor_email",
    "actor_sub",
    "request_id",
    "source_ip",
    "method",
    "path",
    "status",
];

impl AuditEvent {
    /// The text that is hashed and stored: a JSON object, keys sorted.
    pub fn to_text(&self) -> String {
        self.text_with(&[])
    }

    /// The text of the event with `facts` added to [`AuditEvent::facts`]
    /// (replacing facts of the same key): what [`AuditEvent::to_text`]
    /// gives for the event so changed, without copying it (the store
    /// writer's hot path).
    pub fn text_with(&self, facts: &[Fact]) -> String {
        // Written from borrowed fields (a map of JSON values would copy
        // every string first), keys sorted by bytes as serde_json's map
        // sorted them when the stored events were written.
        serde_json::to_string(&self.fields(facts))
            .expect("an audit event's fields always serialize")
    }

    /// Every field, borrowed, keyed in canonical (sorted) order: the
    /// event's facts, then `facts`, then the typed fields.
    fn fields<'a>(&'a self, facts: &'a [Fact]) -> BTreeMap<&'a str, Field<'a>> {
        let mut o: BTreeMap<&str, Field> = self
            .facts
            .iter()
            .chain(facts)
            .map(|f| (f.key().as_str(), Field::Fact(f)))
            .collect();
        let about = &self.about;
        let mut put = |k: &'static str, v: Field<'a>| {
            o.insert(k, v);
        };
        put("service", Field::Text(&about.service));
        put("action", Field::Text(&about.action));
        put("result", Field::Text(self.result.as_str()));
        put("resource", Field::Text(&about.resource));
        put("org", Field::Text(&about.org));
        if let Some(p) = &about.project {
            put("project", Field::Text(p));
        }
        if let Some(ns) = &about.namespace {
            put("namespace", Field::Text(ns));
        }
        put("actor", Field::Name(self.actor.name()));
        put("actor_email", Field::Text(self.actor.email()));
        put("actor_sub", Field::Text(self.actor.subject()));
        match &self.request {
            Some(r) => {
                put("request_id", Field::Text(&r.id));
                put("source_ip", Field::Text(&r.source_ip));
                put("method", Field::Text(&r.method));
                put("path", Field::Text(&r.path));
                put("status", Field::Status(r.status));
            }
            None => {
                put("request_id", Field::Text(""));
                put("source_ip", Field::Text("local"));
            }
        }
        o
    }
}

/// One field of an event's text, borrowed from the event.
enum Field<'a> {
    Text(&'a str),
    Name(Cow<'a, str>),
    Status(u16),
    Fact(&'a Fact),
}

impl Serialize for Field<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(t) => s.serialize_str(t),
            Field::Name(t) => s.serialize_str(t),
            Field::Status(n) => s.serialize_u16(*n),
            Field::Fact(f) => f.serialize(s),
        }
    }
}
