//! One audit event: what the backend hashes into an organization's chain,
//! stores and answers queries with. Built by constructors for the two kinds
//! there are — a request's and the backend's own (`system:…`) — and
//! serialized in one place, as a JSON object whose keys are in canonical
//! (sorted) order, so that a client that parses a listed event and writes
//! it again gets the hashed text back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod fact;
mod text;

pub use fact::{Fact, FactKey, Facts, Version};
pub use text::TYPED_FIELDS;

/// The result of the request an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The request succeeded (2xx).
    Allowed,
    /// Refused for who the caller is (401, 403).
    Denied,
    /// Failed for any other reason (4xx, 5xx).
    Error,
}

impl Outcome {
    /// The outcome of a request answered with `status`.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Allowed,
            401 | 403 => Outcome::Denied,
            _ => Outcome::Error,
        }
    }

    /// The result as written in an event (`allowed`, `denied`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }

    /// Reads `allowed`, `denied` or `error`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Allowed, Outcome::Denied, Outcome::Error]
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(text))
    }
}

/// The backend's own actors (no request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemActor {
    /// Scheduled password rotation.
    Rotation,
    /// The start-up comparison of the value engine with the records.
    Backend,
}

impl SystemActor {
    /// The actor name its events carry (`system:rotation`).
    pub fn name(self) -> &'static str {
        match self {
            SystemActor::Rotation => "system:rotation",
            SystemActor::Backend => "system:kube-dc-backend",
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A caller whose token was verified.
    User {
        /// Its username (`preferred_username`, else the subject).
        name: String,
        /// Its email, when the token has one.
        email: String,
        /// The token's subject (`sub`).
        subject: String,
    },
    /// A request without (valid) credentials.
    Anonymous,
    /// The backend itself.
    System(SystemActor),
}

impl Actor {
    /// The caller of a request: a user, or anonymous without a name.
    pub fn caller(name: &str, email: &str, subject: &str) -> Self {
        if name.is_empty() {
            Actor::Anonymous
        } else {
            Actor::User {
                name: name.into(),
                email: email.into(),
                subject: subject.into(),
            }
        }
    }

    /// `actor`: the username, `anonymous`, or `system:…`.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            Actor::User { name, .. } => Cow::Borrowed(name),
            Actor::Anonymous => Cow::Borrowed("anonymous"),
            Actor::System(s) => Cow::Borrowed(s.name()),
        }
    }

    /// `actor_email` (empty when there is none).
    pub fn email(&self) -> &str {
        match self {
            Actor::User { email, .. } => email,
            _ => "",
        }
    }

    /// `actor_sub`: the token's subject, or the system actor's name.
    pub fn subject(&self) -> &str {
        match self {
            Actor::User { subject, .. } => subject,
            Actor::Anonymous => "",
            Actor::System(s) => s.name(),
        }
    }
}

/// The HTTP request an event records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request id (`X-Request-Id`, given or made).
    pub id: String,
    /// The caller's address as the backend saw it.
    pub source_ip: String,
    /// The HTTP method.
    pub method: String,
    /// The path, printable and bounded.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
}

/// What an event is about: its service, action, resource and place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The audited service (`secrets`, `audit`, `org-admin`).
    pub service: String,
    /// The action, `service.object.verb`.
    pub action: String,
    /// The secret, or the project or organization, the event is about.
    pub resource: String,
    /// The organization whose chain records it.
    pub org: String,
    /// The project, when the event is about one.
    pub project: Option<String>,
    /// The project's backing namespace, when the event is about one.
    pub namespace: Option<String>,
}

/// One audit event. It never holds a secret value.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// What it is about.
    pub about: Subject,
    /// Its result.
    pub result: Outcome,
    /// Who acted.
    pub actor: Actor,
    /// None for the backend's own events.
    pub request: Option<RequestInfo>,
    /// What the handler, the write or the backend adds: the caller's role,
    /// the elevation and its reason, the version written, an error message.
    pub facts: Facts,
}

impl AuditEvent {
    /// A request's event; its result follows the status.
    pub fn request(about: Subject, actor: Actor, request: RequestInfo) -> Self {
        AuditEvent {
            result: Outcome::of_status(request.status),
            about,
            actor,
            request: Some(request),
            facts: Facts::default(),
        }
    }

    /// The backend's own event.
    pub fn system(about: Subject, actor: SystemActor, result: Outcome) -> Self {
        AuditEvent {
            about,
            result,
            actor: Actor::System(actor),
            request: None,
            facts: Facts::default(),
        }
    }

    /// Adds `fact` to [`AuditEvent::facts`] (replacing one of its key).
    pub fn with(mut self, fact: Fact) -> Self {
        self.facts.put(fact);
        self
    }
}

/// The fields clients show of a listed event, read from its body
/// leniently: an installation may leave some out (empty here) or add
/// others (kept in the raw body, not here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// The audited service.
    pub service: String,
    /// The action, `service.object.verb`.
    pub action: String,
    /// As sent; [`Shown::outcome`] reads it.
    pub result: String,
    /// What the event is about.
    pub resource: String,
    /// Who acted, as the installation names them.
    pub actor: String,
    /// The request's id.
    pub request_id: String,
    /// The elevation window the request used, if any.
    pub elevation_id: String,
    /// The caller's role, when the installation records one.
    pub role: String,
    /// The version the request wrote or read, when it records one.
    pub version: Option<Version>,
}

impl Shown {
    /// Reads the fields from a listed event's body; a missing one is empty.
    pub fn of(body: &Map<String, Value>) -> Self {
        let text = |k: &str| crate::audit::field_text(body, k);
        Shown {
            service: text("service"),
            action: text("action"),
            result: text("result"),
            resource: text("resource"),
            actor: text("actor"),
            request_id: text("request_id"),
            elevation_id: FactKey::ElevationId.text_in(body),
            role: FactKey::Role.text_in(body),
            version: FactKey::Version.version_in(body),
        }
    }

    /// The result, when it is one of the three.
    pub fn outcome(&self) -> Option<Outcome> {
        Outcome::parse(&self.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> Subject {
        Subject {
            service: "secrets".into(),
            action: "secrets.value.read".into(),
            resource: "db".into(),
            org: "acme".into(),
            project: Some("demo".into()),
            namespace: Some("acme-demo".into()),
        }
    }

    #[test]
    fn outcomes_follow_the_status() {
        for (status, want) in [
            (200, Outcome::Allowed),
            (204, Outcome::Allowed),
            (401, Outcome::Denied),
            (403, Outcome::Denied),
            (400, Outcome::Error),
            (404, Outcome::Error),
            (409, Outcome::Error),
            (500, Outcome::Error),
            (503, Outcome::Error),
        ] {
            assert_eq!(Outcome::of_status(status), want, "{status}");
        }
        assert_eq!(Outcome::parse("DENIED"), Some(Outcome::Denied));
        assert_eq!(Outcome::parse("nope"), None);
    }

    /// The text of events written before the type existed, byte for byte:
    /// an event built from the same facts hashes the same.
    #[test]
    fn the_text_is_what_the_untyped_events_were() {
        let request = RequestInfo {
            id: "r-1".into(),
            source_ip: "127.0.0.1".into(),
            method: "GET".into(),
            path: "/api/secrets/acme-demo/db".into(),
            status: 200,
        };
        let e = AuditEvent::request(
            about(),
            Actor::caller("ada", "ada@example.com", "sub-ada"),
            request,
        )
        .with(Fact::Role("admin".into()));
        assert_eq!(
            e.to_text(),
            r#"{"action":"secrets.value.read","actor":"ada","actor_email":"ada@example.com","actor_sub":"sub-ada","method":"GET","namespace":"acme-demo","org":"acme","path":"/api/secrets/acme-demo/db","project":"demo","request_id":"r-1","resource":"db","result":"allowed","role":"admin","service":"secrets","source_ip":"127.0.0.1","status":200}"#
        );
        let anon = AuditEvent::request(
            about(),
            Actor::caller("", "", ""),
            RequestInfo {
                status: 401,
                ..e.request.clone().unwrap()
            },
        );
        let t = anon.to_text();
        assert!(
            t.contains(r#""actor":"anonymous","actor_email":"","actor_sub":"""#),
            "{t}"
        );
        assert!(t.contains(r#""result":"denied""#), "{t}");
        let sys = AuditEvent::system(about(), SystemActor::Rotation, Outcome::Allowed);
        assert_eq!(
            sys.to_text(),
            r#"{"action":"secrets.value.read","actor":"system:rotation","actor_email":"","actor_sub":"system:rotation","namespace":"acme-demo","org":"acme","project":"demo","request_id":"","resource":"db","result":"allowed","service":"secrets","source_ip":"local"}"#
        );
    }

    /// The store's hot path writes the text of an event with facts added
    /// without changing (copying) the event: the same bytes as the event
    /// changed first (whose text the test above pins).
    #[test]
    fn text_with_facts_is_the_changed_events_text() {
        let e = AuditEvent::system(about(), SystemActor::Backend, Outcome::Error)
            .with(Fact::Message(
                "a \"quoted\" line\nand\u{7f} more, caf\u{e9}".into(),
            ))
            .with(Fact::RecordedVersion(Version(7)))
            .with(Fact::Replayed(true))
            .with(Fact::Role("viewer".into()));
        let facts = [Fact::Role("admin".into()), Fact::Version(Version(3))];
        let mut changed = e.clone();
        changed.facts.extend(facts.clone());
        let text = e.text_with(&facts);
        assert_eq!(text, changed.to_text());
        let parsed: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["role"], "admin", "a later fact replaces an earlier");
        assert_eq!(parsed["version"], 3);
        assert_eq!(parsed["recorded_version"], 7);
        assert_eq!(parsed["replayed"], true);
        assert_eq!(parsed["result"], "error");
        assert_eq!(e.text_with(&[]), e.to_text());
    }

    /// A fact cannot take the place of a field the event has by type, nor
    /// of one a query adds (`seq`, `prev_hash`, `hash`), and each key is
    /// one fact's: checked over every key.
    #[test]
    fn fact_keys_are_their_own() {
        let keys: Vec<&str> = FactKey::ALL.iter().map(|k| k.as_str()).collect();
        for k in &keys {
            assert!(!TYPED_FIELDS.contains(k), "{k} is a typed field");
            assert!(!crate::audit::QUERY_FIELDS.contains(k), "{k}");
        }
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "two facts share a key");
    }

    /// What a listed event records is read back by the same keys: an
    /// event's text, parsed as a client parses a listed body, shows its
    /// role, elevation and version.
    #[test]
    fn a_listed_event_shows_the_facts_it_was_written_with() {
        let e = AuditEvent::system(about(), SystemActor::Rotation, Outcome::Allowed)
            .with(Fact::Role("admin".into()))
            .with(Fact::ElevationId("el-1".into()))
            .with(Fact::Version(Version(4)));
        let body: Map<String, Value> = serde_json::from_str(&e.to_text()).unwrap();
        let shown = Shown::of(&body);
        assert_eq!(shown.role, "admin");
        assert_eq!(shown.elevation_id, "el-1");
        assert_eq!(shown.version, Some(Version(4)));
        assert_eq!(shown.outcome(), Some(Outcome::Allowed));
        assert_eq!(shown.actor, "system:rotation");
    }
}
