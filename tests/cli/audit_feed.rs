//! Audit that leaves the box, through the built binaries against
//! `kube-dc-backend serve`: signed checkpoints that an export must reach
//! (rows cut from its end found, a forged or foreign checkpoint refused),
//! the live feed resumed across a backend restart and a shipper's restart
//! with its cursor (every event once), `-o ocsf` lines checked against
//! OCSF's API Activity class, and the backend's `--audit-file` mirror.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::watch::Watching;

const ADMIN: (&str, &[&str]) = ("ada", &["acme-project-admins"]);
const ORG_ADMIN: (&str, &[&str]) = ("oscar", &["acme-admins"]);

/// A few audited writes.
fn some_events(be: &Remote, h: &Home, names: &[&str]) {
    for n in names {
        be.run(
            h,
            ADMIN,
            &["secrets", "create", n, "--from-literal=K=v-secret-1"],
        )
        .ok();
    }
}

/// `kube-dc audit verify ARGS…` (offline) in `h`: the run.
fn verify(h: &Home, args: &[&str]) -> Run {
    let mut all = vec!["audit", "verify"];
    all.extend(args);
    h.run_env(&all, &[])
}

#[test]
fn an_export_must_reach_its_checkpoint_and_a_forged_or_foreign_checkpoint_is_refused() {
    let be = Remote::start(&[]);
    let h = Home::new();
    some_events(&be, &h, &["db", "api", "cache"]);
    let dir = h.path().to_path_buf();
    let (cp, csv, cut) = (dir.join("cp.json"), dir.join("a.csv"), dir.join("cut.csv"));
    let (cp_s, csv_s, cut_s) = (
        cp.to_str().unwrap(),
        csv.to_str().unwrap(),
        cut.to_str().unwrap(),
    );

    let r = be
        .run(
            &h,
            ORG_ADMIN,
            &["audit", "checkpoint", "--output-file", cp_s],
        )
        .ok();
    assert!(r.stderr.contains("pinned the audit key"), "{}", r.stderr);
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    assert_eq!(c["org"], "acme");
    assert_eq!(c["server"], be.url.as_str());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cp).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Exported after it: the export holds the checkpoint's event.
    be.run(
        &h,
        ORG_ADMIN,
        &["audit", "list", "--csv", "--output-file", csv_s],
    )
    .ok();
    let ok = verify(&h, &[csv_s, "--checkpoint", cp_s]).ok();
    assert!(ok.stdout.contains("signature valid"), "{}", ok.stdout);
    assert!(
        ok.stdout.contains("reaches the checkpoint"),
        "{}",
        ok.stdout
    );

    // The newest rows cut, down to the signed event: exit 10, naming where
    // the file ends and how many events are missing.
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(c["hash"].as_str().unwrap()) && !l.contains("prev_hash"))
        .expect("the signed event is in the export");
    // Oldest first: the first row holding the hash is the signed event's
    // own (the next holds it as its prev_hash). Keep the rows before it.
    let own = at;
    std::fs::write(&cut, lines[..own].join("\n") + "\n").unwrap();
    let r = verify(&h, &[cut_s, "--checkpoint", cp_s]).code(10);
    assert!(
        r.stderr.contains("do not reach the checkpoint")
            && r.stderr.contains(&format!("line {own}")),
        "names the file's last line {own}: {}",
        r.stderr
    );
    assert!(r.stderr.contains("1 event(s) are missing"), "{}", r.stderr);

    // One character of the checkpoint altered: its signature fails.
    let original = std::fs::read_to_string(&cp).unwrap();
    let hash = c["hash"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if hash.starts_with('0') { '1' } else { '0' },
        &hash[1..]
    );
    let forged = dir.join("forged.json");
    std::fs::write(&forged, original.replace(hash, &flipped)).unwrap();
    let r = verify(&h, &[csv_s, "--checkpoint", forged.to_str().unwrap()]).code(10);
    assert!(
        r.stderr.contains("signature does not match"),
        "{}",
        r.stderr
    );

    // Another backend's checkpoint, passed off as this one's: refused with
    // the fingerprint pinned for this one.
    let other = Remote::start(&[]);
    let other_cp = dir.join("other.json");
    other
        .run(
            &h,
            ORG_ADMIN,
            &[
                "audit",
                "checkpoint",
                "--output-file",
                other_cp.to_str().unwrap(),
            ],
        )
        .ok();
    let mut o: Value = serde_json::from_str(&std::fs::read_to_string(&other_cp).unwrap()).unwrap();
    assert_ne!(o["keyId"], c["keyId"], "each backend has its own key");
    o["server"] = be.url.clone().into();
    std::fs::write(&other_cp, serde_json::to_vec(&o).unwrap()).unwrap();
    let r = verify(&h, &[csv_s, "--checkpoint", other_cp.to_str().unwrap()]).code(10);
    assert!(
        r.stderr.contains(c["keyId"].as_str().unwrap())
            && r.stderr.contains(o["keyId"].as_str().unwrap()),
        "names the pinned key and the signer: {}",
        r.stderr
    );
    // Its own key given with --key: the signature is good, and it is this
    // export that does not reach it (another chain's event).
    let pins = find_file(h.path(), "audit-keys.json").expect("the pinned keys file");
    let pins: Value = serde_json::from_str(&std::fs::read_to_string(pins).unwrap()).unwrap();
    let other_key = pins[other.url.as_str()]["publicKey"]
        .as_str()
        .unwrap()
        .to_string();
    let r = verify(
        &h,
        &[
            csv_s,
            "--checkpoint",
            other_cp.to_str().unwrap(),
            "--key",
            &other_key,
        ],
    )
    .code(10);
    assert!(r.stdout.contains("signature valid"), "{}", r.stdout);
    assert!(
        r.stderr.contains("do not reach the checkpoint"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_changed_backend_key_is_warned_about_and_not_trusted_until_told() {
    let mut be = Remote::start(&[]);
    let h = Home::new();
    some_events(&be, &h, &["db"]);
    be.run(&h, ORG_ADMIN, &["audit", "checkpoint"]).ok();
    // The same data after a restart: the same key, nothing said.
    be.restart();
    let r = be.run(&h, ORG_ADMIN, &["audit", "checkpoint"]).ok();
    assert!(!r.stderr.contains("CHANGED"), "{}", r.stderr);
    // Pinned keys of another installation at the same address: a key that
    // differs is warned about; --trust-new-key pins it.
    let pins = find_file(h.path(), "audit-keys.json").expect("the pinned keys file");
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&pins).unwrap()).unwrap();
    let url = be.url.clone();
    p[&url]["keyId"] = "SHA256:someone-else".into();
    p[&url]["publicKey"] = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=".into();
    std::fs::write(&pins, serde_json::to_vec(&p).unwrap()).unwrap();
    let r = be.run(&h, ORG_ADMIN, &["audit", "checkpoint"]).ok();
    assert!(
        r.stderr.contains("CHANGED") && r.stderr.contains("--trust-new-key"),
        "{}",
        r.stderr
    );
    let r = be
        .run(&h, ORG_ADMIN, &["audit", "checkpoint", "--trust-new-key"])
        .ok();
    assert!(
        r.stderr.contains("replacing the pinned audit key"),
        "{}",
        r.stderr
    );
    let r = be.run(&h, ORG_ADMIN, &["audit", "checkpoint"]).ok();
    assert!(!r.stderr.contains("CHANGED"), "{}", r.stderr);
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(f) = find_file(&p, name)
        {
            return Some(f);
        }
    }
    None
}

/// Lines of a follower until one holds `resource`: their bodies.
fn until(w: &Watching, resource: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let v = w.next();
        let done =
            v["body"]["resource"] == resource && v["body"]["action"] == "secrets.secret.create";
        got.push(v["body"].clone());
        if done {
            return got;
        }
    }
}

#[test]
fn the_feed_gives_every_event_once_across_a_backend_restart_and_a_shipper_restart() {
    let mut be = Remote::start(&[]);
    let h = Home::new();
    let cursor = h.path().join("feed.cursor");
    let cursor_s = cursor.to_str().unwrap().to_string();
    let args = [
        "audit", "list", "--org", "-f", "-o", "jsonl", "--cursor", &cursor_s,
    ];
    let mut w = Watching::start(be.cli(&h, ORG_ADMIN, &args));
    // The feed starts from the beginning (a new cursor, no --since).
    some_events(&be, &h, &["one", "two"]);
    let mut seen = until(&w, "two");
    // Killed and started again: the follower resumes after its last event.
    be.restart();
    some_events(&be, &h, &["three"]);
    seen.extend(until(&w, "three"));
    assert!(
        w.stderr_so_far().contains("reconnecting"),
        "says it lost the feed"
    );
    // The shipper stopped (SIGTERM) and started again with its cursor;
    // what it printed up to then counts.
    assert!(w.terminate().success());
    seen.extend(w.drain().into_iter().map(|v| v["body"].clone()));
    some_events(&be, &h, &["four"]);
    let w2 = Watching::start(be.cli(&h, ORG_ADMIN, &args));
    seen.extend(until(&w2, "four"));
    drop(w2);

    // One unbroken chain: every event of the organization, each once.
    let hashes: Vec<&str> = seen.iter().map(|b| b["hash"].as_str().unwrap()).collect();
    assert_eq!(
        hashes.iter().collect::<HashSet<_>>().len(),
        hashes.len(),
        "no event twice"
    );
    assert_eq!(seen[0]["prev_hash"], kube_dc_api::audit::GENESIS_HASH);
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "none missed: {pair:?}"
        );
    }
    // The export agrees: the same events, in the same order.
    let csv = be
        .run(
            &h,
            ORG_ADMIN,
            &["audit", "list", "--org", "-o", "jsonl", "--limit", "5000"],
        )
        .ok();
    let listed: Vec<String> = csv
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["body"]["hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(&listed[..hashes.len()], hashes.as_slice());
}

#[test]
fn ocsf_lines_carry_what_the_api_activity_class_requires() {
    let be = Remote::start(&[]);
    let h = Home::new();
    some_events(&be, &h, &["db"]);
    // A denied request and an error, too.
    be.run(&h, ("mallory", &[]), &["secrets", "list"]);
    be.run(&h, ADMIN, &["secrets", "get", "nope"]);
    let schema: Value =
        serde_json::from_str(include_str!("ocsf/api_activity.schema.json")).unwrap();
    let v = jsonschema::validator_for(&schema).expect("the schema compiles");
    let r = be
        .run(&h, ORG_ADMIN, &["audit", "list", "--org", "-o", "ocsf"])
        .ok();
    let mut results = HashSet::new();
    for line in r.stdout.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&e)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{e}");
        assert_eq!(
            e["type_uid"].as_u64(),
            Some(e["class_uid"].as_u64().unwrap() * 100 + e["activity_id"].as_u64().unwrap())
        );
        // Nothing of the event is lost: its chain fields are kept.
        assert!(e["unmapped"]["hash"].is_string(), "{e}");
        results.insert(e["status_detail"].as_str().unwrap().to_string());
    }
    assert!(
        results.contains("allowed") && results.contains("denied") && results.contains("error"),
        "{results:?}"
    );
    // Followed, the same shape.
    let w = Watching::start(be.cli(
        &h,
        ORG_ADMIN,
        &["audit", "list", "--org", "-f", "-o", "ocsf"],
    ));
    some_events(&be, &h, &["later"]);
    loop {
        let e = w.next();
        assert!(v.is_valid(&e), "{e}");
        if e["api"]["operation"] == "secrets.secret.create" {
            break;
        }
    }
}

#[test]
fn the_audit_file_mirrors_every_event_and_is_reopened_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let be = Remote::start_with(&[], &["--audit-file", file.to_str().unwrap()], &[]);
    let h = Home::new();
    some_events(&be, &h, &["db", "api"]);
    let read = |f: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let wait_for = |f: &std::path::Path, resource: &str| -> Vec<Value> {
        for _ in 0..100 {
            let lines = read(f);
            if lines.iter().any(|l| l["body"]["resource"] == resource) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{resource} never reached {}", f.display());
    };
    let lines = wait_for(&file, "api");
    for pair in lines.windows(2) {
        assert_eq!(
            pair[1]["body"]["prev_hash"], pair[0]["body"]["hash"],
            "{pair:?}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // logrotate: moved aside, SIGHUP; the next events go to a new file.
    let rotated = dir.path().join("audit.jsonl.1");
    std::fs::rename(&file, &rotated).unwrap();
    // SAFETY: kill(2) on the backend child's pid.
    unsafe { libc::kill(be.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    some_events(&be, &h, &["after-rotate"]);
    let fresh = wait_for(&file, "after-rotate");
    let old = read(&rotated);
    let last_old = old.last().unwrap()["body"]["seq"].as_i64().unwrap();
    assert_eq!(
        fresh[0]["body"]["seq"].as_i64().unwrap(),
        last_old + 1,
        "the new file continues where the rotated one ends"
    );
}
