//! `-o ocsf`: an audit event as an OCSF (Open Cybersecurity Schema
//! Framework, 1.3.0) **API Activity** event, class 6003 of category 6
//! (Application Activity) — the shape SIEMs (Splunk, Sentinel, Security
//! Lake, Datadog) read without a parser of ours. The mapping is in the
//! README ("Audit that leaves the box"); every field of the event that has
//! no OCSF attribute is kept under `unmapped`, the chain fields included,
//! so nothing of the event is lost.

use serde_json::{Map, Value, json};

use kube_dc_api::audit::field_text;

/// The OCSF version the lines follow.
pub const VERSION: &str = "1.3.0";
/// API Activity.
pub const CLASS_UID: u64 = 6003;
/// Application Activity.
pub const CATEGORY_UID: u64 = 6;

/// OCSF's `activity_id` of an action (`service.object.verb`), by its verb
/// (and the object, where the verb alone does not say): 1 Create, 2 Read,
/// 3 Update, 4 Delete, 99 Other.
pub fn activity(action: &str) -> (u64, &'static str) {
    let mut parts = action.rsplitn(2, '.');
    let verb = parts.next().unwrap_or_default();
    match verb {
        "create" | "import" | "restore" => (1, "Create"),
        "read" | "list" | "export" | "verify" | "watch" | "follow" => (2, "Read"),
        "update" | "write" | "rotate" => (3, "Update"),
        "delete" | "destroy" | "release" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

/// The OCSF event of one listed audit event (`ts` RFC 3339, `body` as
/// listed).
pub fn event(ts: &str, body: &Map<String, Value>) -> Value {
    let text = |k: &str| field_text(body, k);
    let action = text("action");
    let (activity_id, activity_name) = activity(&action);
    let result = text("result");
    let (status_id, status, severity_id) = match result.as_str() {
        "allowed" => (1, "Success", 1),
        "denied" => (2, "Failure", 3),
        "error" => (2, "Failure", 2),
        _ => (0, "Unknown", 0),
    };
    let time_ms = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or_default();
    let mut user = Map::new();
    for (ocsf, ours) in [
        ("name", "actor"),
        ("email_addr", "actor_email"),
        ("uid", "actor_sub"),
    ] {
        let v = text(ours);
        if !v.is_empty() {
            user.insert(ocsf.into(), v.into());
        }
    }
    if user.is_empty() {
        user.insert("name".into(), "unknown".into());
    }
    let ip = text("source_ip");
    // OCSF's `ip` is an address; the local context records `local`.
    let src_endpoint = if ip.parse::<std::net::IpAddr>().is_ok() {
        json!({"ip": ip})
    } else if ip.is_empty() {
        json!({"name": "unknown"})
    } else {
        json!({"name": ip})
    };
    let mut resource = Map::new();
    resource.insert("name".into(), text("resource").into());
    resource.insert("type".into(), resource_type(&action).into());
    let ns = text("namespace");
    if !ns.is_empty() {
        resource.insert("namespace".into(), ns.into());
    }
    let mapped = [
        "action",
        "result",
        "actor",
        "actor_email",
        "actor_sub",
        "source_ip",
        "resource",
        "namespace",
        "request_id",
        "service",
        "status",
        "org",
    ];
    let unmapped: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !mapped.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "severity_id": severity_id,
        "status_id": status_id,
        "status": status,
        "status_detail": result,
        "time": time_ms,
        "metadata": {
            "version": VERSION,
            "product": {"name": "kube-dc", "vendor_name": "Kube-DC", "feature": {"name": text("service")}},
            "log_name": "audit",
            "original_time": ts,
            "correlation_uid": text("request_id"),
        },
        "actor": {"user": user},
        "api": {
            "operation": action,
            "service": {"name": text("service")},
            "request": {"uid": text("request_id")},
        },
        "cloud": {"provider": "Kube-DC", "account": {"name": text("org"), "uid": text("org")}},
        "src_endpoint": src_endpoint,
        "resources": [resource],
        "unmapped": unmapped,
    });
    if let Some(code) = body.get("status").and_then(Value::as_u64) {
        out["status_code"] = code.to_string().into();
    }
    out
}

/// What the action is about, for `resources[].type`.
fn resource_type(action: &str) -> &'static str {
    match action.split('.').nth(1).unwrap_or_default() {
        "secret" | "metadata" | "value" | "sync" | "version" | "consumer" | "change" => "secret",
        "projection" => "kubernetes-secret",
        "elevation" => "elevation",
        "event" | "chain" | "checkpoint" | "key" => "audit-log",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_map_to_activities_and_every_field_is_kept() {
        assert_eq!(activity("secrets.secret.create").0, 1);
        assert_eq!(activity("secrets.value.read").0, 2);
        assert_eq!(activity("secrets.value.write").0, 3);
        assert_eq!(activity("secrets.secret.destroy").0, 4);
        assert_eq!(activity("unknown.thing.frobnicate").0, 99);
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"service":"secrets","action":"secrets.value.read","result":"denied","actor":"bob",
                "resource":"db","org":"acme","project":"p","request_id":"r1","status":403,
                "seq":7,"prev_hash":"a","hash":"b","elevation_id":"e1"}"#,
        )
        .unwrap();
        let e = event("2026-12-07T10:00:00.123Z", &body);
        assert_eq!(e["type_uid"], 600302);
        assert_eq!(e["time"], 1_796_637_600_123_i64);
        assert_eq!(
            (e["status_id"].as_u64(), e["severity_id"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(e["status_code"], "403");
        for k in ["seq", "prev_hash", "hash", "elevation_id", "project"] {
            assert!(e["unmapped"].get(k).is_some(), "{k} kept");
        }
        assert_eq!(e["src_endpoint"]["name"], "unknown");
    }
}
