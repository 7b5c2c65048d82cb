//! The everyday verbs: `set`, `unset`, `rollback` and `get --keys`, on the
//! local context and against the real backend over HTTP.

use crate::common::*;

const ADMIN: (&str, &[&str]) = ("ada", &["acme-project-admins"]);

fn values(out: &Run) -> serde_json::Value {
    out.json()["value"]["data"].clone()
}

/// The same script of verbs, through `run`, whatever the context.
fn everyday(run: &dyn Fn(&[&str]) -> Run) {
    run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=USER=app",
        "--from-literal=PASSWORD=pa$word",
        "--from-literal=HOST=h",
    ])
    .ok();
    // One key changed, the others kept.
    let r = run(&["secrets", "set", "db", "PASSWORD=n3w", "PORT=5432"]).ok();
    assert!(r.stdout.contains("version 2 written"), "{}", r.stdout);
    let v = values(&run(&["secrets", "get", "db", "--value", "-o", "json"]).ok());
    assert_eq!(
        v,
        serde_json::json!({"USER": "app", "PASSWORD": "n3w", "HOST": "h", "PORT": "5432"})
    );
    // Removed, the others kept; unknown keys and removing everything refused.
    run(&["secrets", "unset", "db", "HOST"]).ok();
    let r = run(&["secrets", "unset", "db", "NOPE"]).code(3);
    assert!(r.stderr.contains("has no key NOPE"), "{}", r.stderr);
    let r = run(&["secrets", "unset", "db", "USER", "PASSWORD", "PORT"]).code(2);
    assert!(r.stderr.contains("without any key"), "{}", r.stderr);
    let v = values(&run(&["secrets", "get", "db", "--value", "-o", "json"]).ok());
    assert_eq!(
        v,
        serde_json::json!({"USER": "app", "PASSWORD": "n3w", "PORT": "5432"})
    );
    // Version 1's values, as version 4.
    let r = run(&["secrets", "rollback", "db", "--to-version", "1"]).ok();
    assert!(r.stdout.contains("version 4 written"), "{}", r.stdout);
    let v = values(&run(&["secrets", "get", "db", "--value", "-o", "json"]).ok());
    assert_eq!(
        v,
        serde_json::json!({"USER": "app", "PASSWORD": "pa$word", "HOST": "h"})
    );
    run(&["secrets", "rollback", "db", "--to-version", "4"]).code(2);
    // A destroyed version cannot be rolled back to.
    run(&["secrets", "destroy-version", "db", "2", "--yes"]).ok();
    run(&["secrets", "rollback", "db", "--to-version", "2"]).code(3);
    // Names, sizes and kinds; never a value.
    run(&[
        "secrets",
        "set",
        "db",
        "CERT=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "EMPTY=",
    ])
    .ok();
    let r = run(&["secrets", "get", "db", "--keys", "-o", "json"]).ok();
    let keys = r.json()["keys"].clone();
    assert_eq!(
        keys[0],
        serde_json::json!({"name": "CERT", "bytes": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".len(), "kind": "PEM"})
    );
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "EMPTY" && k["kind"] == "empty")
    );
    let table = run(&["secrets", "get", "db", "--keys"]).ok();
    assert!(
        !table.stdout.contains("pa$word") && !table.stdout.contains("MIIB"),
        "{}",
        table.stdout
    );
}

#[test]
fn set_unset_rollback_and_keys_on_the_local_context() {
    let h = Home::new();
    everyday(&|args| h.run(args));
    // Two concurrent sets of different keys: both land, nothing lost.
    h.run(&["secrets", "create", "race", "--from-literal=A=0"])
        .ok();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = h.cmd();
            c.arg("secrets")
                .arg("set")
                .arg("race")
                .arg(format!("K{i}=v{i}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        // Each lands, or gives up with exit 6 having written nothing.
        assert!(
            o.status.success() || o.status.code() == Some(6),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let v = values(
        &h.run(&["secrets", "get", "race", "--value", "-o", "json"])
            .ok(),
    );
    let versions = h
        .run(&["secrets", "versions", "race", "-o", "json"])
        .ok()
        .json();
    let written = versions["items"].as_array().unwrap().len() - 1;
    let landed = (0..4).filter(|i| v.get(format!("K{i}")).is_some()).count();
    assert_eq!(
        landed, written,
        "every write that landed kept the others: {v}"
    );
}

#[test]
fn set_unset_rollback_and_keys_against_the_backend() {
    let be = Remote::start(&[]);
    let h = Home::new();
    everyday(&|args| be.run(&h, ADMIN, args));
}
