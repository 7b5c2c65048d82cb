//! The write protocol's failure windows, deterministically: the store on a
//! scripted value engine (`kube_dc_testsupport::scripted`) that loses an
//! answer after applying a write, or fails to undo one, and a store opened
//! again as after a crash. After each: nothing acknowledged is lost, every
//! version the store lists is audited (by its write's event or a
//! `secrets.reconcile` event), and the organization's chain verifies.

use std::path::Path;
use std::sync::Arc;

use kube_dc_api::event::{AuditEvent, Outcome, Subject, SystemActor};
use kube_dc_api::wire::{Data, Sensitive};
use kube_dc_backend::store::{
    AuditFilter, AuditRecord, Conflict, IdempotencyKey, NewSecret, Store, StoreError,
};
use kube_dc_testsupport::scripted::Scripted;
use serde_json::Value;

const NS: &str = "acme-demo";

fn open(dir: &Path, engine: &Arc<Scripted>) -> Store {
    let cipher = Arc::new(kube_dc_backend::crypto::Cipher::load_or_create(dir, None).unwrap());
    Store::open_with(dir, cipher, engine.clone()).unwrap()
}

fn data(v: &str) -> Data {
    let mut d = Data::new();
    d.insert("K".into(), Sensitive::new(v.to_string()));
    d
}

/// The event a write of `name` commits with.
fn event(action: &str, name: &str) -> AuditRecord {
    let about = Subject {
        service: "secrets".into(),
        action: action.into(),
        resource: name.into(),
        org: "acme".into(),
        project: Some("demo".into()),
        namespace: Some(NS.into()),
    };
    AuditRecord {
        ts: kube_dc_backend::clock::now_ms(),
        event: AuditEvent::system(about, SystemActor::Backend, Outcome::Allowed),
    }
}

fn create(s: &Store, name: &str, value: &str) -> u64 {
    let new = NewSecret {
        namespace: NS.into(),
        name: name.into(),
        kind: "opaque".into(),
        description: None,
        sync: Default::default(),
        rotation: None,
        rotation_interval: None,
        imported_from: None,
        key: None,
    };
    let rec = s
        .create(
            new,
            Some(&data(value)),
            kube_dc_backend::clock::now_ms(),
            || Ok(()),
            Some(&event("secrets.secret.create", name)),
        )
        .unwrap();
    rec.kv.unwrap().current_version
}

fn put(s: &Store, name: &str, value: &str, key: Option<&str>) -> Result<u64, StoreError> {
    let key = key.map(|k| IdempotencyKey {
        subject: "tester".into(),
        key: k.into(),
        route: "put",
    });
    s.put_values(
        NS,
        name,
        &data(value),
        None,
        kube_dc_backend::clock::now_ms(),
        Some(&event("secrets.value.write", name)),
        key,
    )
    .map(|v| v.get())
}

/// The store opened again on the same engine, as after a crash, with the
/// start-up reconciliation run.
fn restart(dir: &Path, engine: &Arc<Scripted>) -> Store {
    let s = open(dir, engine);
    s.reconcile_values(
        |_| ("acme".to_string(), "demo".to_string()),
        kube_dc_backend::clock::now_ms,
    )
    .unwrap();
    s
}

/// Nothing acknowledged lost, every listed version audited, the chain
/// intact.
fn assert_sound(s: &Store, name: &str, acked: &[(u64, &str)]) {
    for (v, value) in acked {
        let got = s.read_version(NS, name, Some(*v)).unwrap().unwrap();
        assert_eq!(got.data, data(value), "acknowledged version {v} of {name}");
    }
    let rows = s
        .query_audit(&AuditFilter {
            org: "acme".into(),
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap();
    let events: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(r.body().unwrap()))
        .filter(|b| b["resource"] == name)
        .collect();
    for v in s.versions(NS, name).unwrap() {
        if v.destroyed {
            continue;
        }
        let n = v.version;
        let audited = events.iter().any(|e| {
            (e["action"] != "secrets.reconcile" && e["version"] == n)
                || (e["action"] == "secrets.reconcile"
                    && e["recorded_version"].as_u64() < Some(n)
                    && Some(n) <= e["openbao_version"].as_u64())
        });
        assert!(audited, "version {n} of {name} has no event: {events:#?}");
    }
    let verdict = s.verify_audit("acme").unwrap();
    assert!(verdict.is_ok(), "the chain verifies: {verdict:?}");
}

#[test]
fn an_answer_lost_after_the_engine_applied_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Scripted::default());
    let s = open(dir.path(), &engine);
    assert_eq!(create(&s, "a", "v1"), 1);
    engine.script.lock().unwrap().lose_put_answer = true;
    let lost = put(&s, "a", "v2", None);
    assert!(
        matches!(lost, Err(StoreError::Unavailable { .. })),
        "{lost:?}"
    );
    assert_eq!(engine.current(NS, "a"), 2, "the engine applied it");
    // The next write finds it: listed with its event, and refused.
    match put(&s, "a", "v3", None) {
        Err(StoreError::Conflict(Conflict::Adopted { adopted, .. })) => assert_eq!(adopted, [2]),
        other => panic!("{other:?}"),
    }
    assert_eq!(put(&s, "a", "v3", None).unwrap(), 3);
    assert_sound(&s, "a", &[(1, "v1"), (3, "v3")]);
}

#[test]
fn a_keyed_retry_of_a_write_whose_answer_was_lost_gets_that_version() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Scripted::default());
    let s = open(dir.path(), &engine);
    create(&s, "a", "v1");
    engine.script.lock().unwrap().lose_put_answer = true;
    assert!(put(&s, "a", "v2", Some("k1")).is_err());
    // The retry, same key and values: the engine's version 2 is its own.
    assert_eq!(put(&s, "a", "v2", Some("k1")).unwrap(), 2);
    assert_eq!(engine.current(NS, "a"), 2, "not written twice");
    // And once recorded, the key answers with it.
    match put(&s, "a", "v2", Some("k1")) {
        Err(StoreError::Replayed(w)) => assert_eq!(w.version, 2),
        other => panic!("{other:?}"),
    }
    assert_sound(&s, "a", &[(1, "v1"), (2, "v2")]);
}

#[test]
fn a_crash_between_the_engine_write_and_its_record_is_found_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Scripted::default());
    let s = open(dir.path(), &engine);
    create(&s, "a", "v1");
    engine.script.lock().unwrap().lose_put_answer = true;
    assert!(put(&s, "a", "v2", None).is_err());
    drop(s);
    let s = restart(dir.path(), &engine);
    let listed: Vec<u64> = s
        .versions(NS, "a")
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, [1, 2]);
    assert_sound(&s, "a", &[(1, "v1")]);
    // A second start finds nothing more to report.
    drop(s);
    let s = restart(dir.path(), &engine);
    assert_eq!(put(&s, "a", "v3", None).unwrap(), 3);
    assert_sound(&s, "a", &[(1, "v1"), (3, "v3")]);
}

#[test]
fn a_write_whose_job_fails_after_the_engine_write_is_undone_there() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Scripted::default());
    let s = open(dir.path(), &engine);
    create(&s, "a", "v1");
    assert_eq!(put(&s, "a", "v2", Some("k1")).unwrap(), 2);
    // The same key again reaches the engine (version 3) before its job
    // finds the key recorded and fails: version 3 is undone there.
    assert!(matches!(
        put(&s, "a", "v2", Some("k1")),
        Err(StoreError::Replayed(_))
    ));
    assert_eq!(engine.live(NS, "a"), [1, 2], "version 3 destroyed");
    // The next write goes after it.
    assert_eq!(put(&s, "a", "v4", None).unwrap(), 4);
    let v3 = s
        .versions(NS, "a")
        .unwrap()
        .into_iter()
        .find(|v| v.version == 3)
        .unwrap();
    assert!(v3.destroyed, "listed as destroyed");
    assert_sound(&s, "a", &[(1, "v1"), (2, "v2"), (4, "v4")]);
}

#[test]
fn an_undo_that_fails_leaves_a_version_the_next_write_adopts_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Scripted::default());
    let s = open(dir.path(), &engine);
    create(&s, "a", "v1");
    assert_eq!(put(&s, "a", "v2", Some("k1")).unwrap(), 2);
    engine.script.lock().unwrap().fail_destroy = true;
    assert!(matches!(
        put(&s, "a", "v2", Some("k1")),
        Err(StoreError::Replayed(_))
    ));
    assert_eq!(engine.live(NS, "a"), [1, 2, 3], "the undo failed");
    match put(&s, "a", "v4", None) {
        Err(StoreError::Conflict(Conflict::Adopted { adopted, .. })) => assert_eq!(adopted, [3]),
        other => panic!("{other:?}"),
    }
    assert_eq!(put(&s, "a", "v4", None).unwrap(), 4);
    assert_sound(&s, "a", &[(1, "v1"), (2, "v2"), (4, "v4")]);
}
