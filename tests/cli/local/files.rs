//! What the CLI writes: atomic owner-only files, audit exports that verify
//! offline, errors that name status, request id and exit code.

use crate::common::*;

#[test]
fn exports_are_atomic_and_pipes_close_quietly() {
    let h = Home::new();
    let big = "v".repeat(300_000);
    let f = h.write("big.txt", &big);
    h.run(&["secrets", "create", "big", &format!("--from-file=K={f}")])
        .ok();
    // A reader that stops early: exit 0, nothing on stderr.
    let out = h
        .cmd()
        .args(["secrets", "get", "big", "--value", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    {
        use std::io::Read;
        let mut first = [0u8; 10];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
    }
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // CSV export to a file: complete, mode 0600, no temporary left over.
    let file = h.path().join("out/audit.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let r = h
        .run(&[
            "audit",
            "list",
            "--csv",
            "--output-file",
            file.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stderr.contains("exported"), "{}", r.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("ts,service,action,result,actor"), "{text}");
    assert!(text.lines().count() >= 3);
    assert!(!text.contains(&big[..100]));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    // Into a folder that does not exist: an error, and no file.
    let r = h
        .run(&[
            "audit",
            "list",
            "--csv",
            "--output-file",
            "/nonexistent-dir/x.csv",
        ])
        .code(2);
    assert!(r.stderr.contains("/nonexistent-dir"), "{}", r.stderr);
}

#[test]
fn errors_name_status_request_id_and_exit_code() {
    let h = Home::new();
    let r = h.run(&["secrets", "get", "missing"]).code(3);
    assert!(
        r.stderr.contains("HTTP 404") && r.stderr.contains("request id"),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "create", "dup"]).ok();
    let r = h.run(&["secrets", "create", "dup"]).code(6);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let r = h
        .run(&["secrets", "put", "dup", "--from-literal=A=1", "--cas", "5"])
        .code(6);
    assert!(r.stderr.contains("check-and-set"), "{}", r.stderr);
    h.run(&["secrets", "bogus-verb"]).code(2);
    h.run(&["secrets", "list", "-o", "env"]).code(2);
    // -v traces requests without values.
    let r = h
        .run(&["-v", "secrets", "put", "dup", "--from-literal=A=hunter2"])
        .ok();
    assert!(
        r.stderr
            .contains("> PUT local:/api/secrets/local-default/dup/values"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("< 200"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"));
    let r = h.run(&["-v", "secrets", "get", "dup", "--value"]).ok();
    assert!(!r.stderr.contains("hunter2") && r.stdout.contains("hunter2"));
}

#[test]
fn every_file_the_cli_creates_is_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let h = Home::new();
    let export = h.path().join("audit.csv");
    for args in [
        vec!["secrets", "create", "k", "--from-literal=K=v"],
        vec!["secrets", "get", "k", "--value"],
        vec!["use", "local"],
        vec![
            "audit",
            "list",
            "--csv",
            "--output-file",
            export.to_str().unwrap(),
        ],
    ] {
        let mut c = h.cmd();
        // SAFETY: umask is async-signal-safe and touches only the child.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let out = c.args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut stack = vec![h.path().to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077,
                0,
                "{} is {mode:o} under umask 022",
                p.display()
            );
            seen += 1;
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(seen >= 6, "{seen} files and folders checked");
}

#[test]
fn an_exported_audit_file_verifies_offline_and_edits_are_found() {
    let h = Home::new();
    h.run(&[
        "secrets",
        "create",
        "k",
        "--from-literal=K=v",
        "--description",
        "=1+1",
    ])
    .ok();
    h.run(&["secrets", "get", "k", "--value"]).ok();
    let file = h.path().join("audit.csv");
    let f = file.to_str().unwrap();
    h.run(&["audit", "list", "--csv", "--output-file", f]).ok();
    let r = h.run(&["audit", "verify", f]).ok();
    assert!(
        r.stdout
            .contains("3 event(s) verified, starting at the organization's first event"),
        "{}",
        r.stdout
    );
    // A listing (newest first, project events only) verifies with its gaps.
    let listing = h.run(&["audit", "list", "-o", "csv"]).ok().stdout;
    let l = h.write("listing.csv", &listing);
    h.run(&["audit", "verify", &l, "--allow-gaps"]).ok();
    // One edited cell is found and named.
    let text = std::fs::read_to_string(&file).unwrap();
    let forged = h.write(
        "forged.csv",
        text.replacen("secrets.value.read", "secrets.metadata.read", 1),
    );
    let r = h.run(&["audit", "verify", &forged]).code(10);
    assert!(
        r.stdout.starts_with("ALTERED: ") && r.stdout.contains("line 3: column action differs"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("the file was altered"), "{}", r.stderr);
    // A removed row is a gap, refused unless gaps are allowed.
    let lines: Vec<&str> = text.lines().collect();
    let cut = h.write("cut.csv", [lines[0], lines[1], lines[3]].join("\n") + "\n");
    let r = h.run(&["audit", "verify", &cut]).code(10);
    assert!(r.stderr.contains("--allow-gaps"), "{}", r.stderr);
    assert!(
        r.stdout.contains("rows are missing before line(s) 3"),
        "{}",
        r.stdout
    );
    // Not an export with hashes: a clear error.
    let other = h.write("other.csv", "a,b\n1,2\n");
    let r = h.run(&["audit", "verify", &other]).code(2);
    assert!(
        r.stderr.contains("not a kube-dc audit export"),
        "{}",
        r.stderr
    );
}

#[test]
fn csv_cells_that_look_like_formulas_are_neutralised() {
    let h = Home::new();
    h.run(&["secrets", "create", "k", "--description", "@SUM(A1)"])
        .ok();
    h.run(&["orgs", "elevate", "default", "--reason=-2+3"]).ok();
    let audit = h.run(&["audit", "list", "--org", "-o", "csv"]).ok().stdout;
    assert!(audit.contains(",'-2+3,"), "{audit}");
    assert!(!audit.contains(",-2+3,"), "{audit}");
}

#[test]
fn a_local_store_that_cannot_open_says_why_and_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let h = Home::new();
    h.run(&["secrets", "list"]).ok();
    let key = h.local_data().join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = h.run(&["secrets", "list"]).code(2);
    assert!(
        r.stderr.contains("readable by other users") && r.stderr.contains("master key seals"),
        "{}",
        r.stderr
    );
}

/// A local store written by kube-dc before audit events had a type (13
/// events, among them the old double event of a refused release): after
/// migrating, its chain verifies, new events continue it, and an export of
/// old and new rows verifies offline.
#[test]
fn an_audit_log_written_before_typed_events_still_verifies() {
    use std::os::unix::fs::PermissionsExt;
    let h = Home::new();
    let data = h.local_data();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit-before-typed-events");
    for f in ["kube-dc.db", "master.key"] {
        std::fs::copy(fixture.join(f), data.join(f)).unwrap();
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let verify_store = || {
        let out = std::process::Command::new(backend_bin())
            .args(["verify-audit", "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    verify_store();
    // New events on top of the old ones.
    h.run(&["secrets", "get", "db", "--value"]).ok();
    h.run(&[
        "secrets",
        "put",
        "db",
        "--from-literal=USER=app",
        "--from-literal=PASSWORD=v3",
    ])
    .ok();
    let file = h.path().join("all.csv");
    h.run(&[
        "audit",
        "list",
        "--csv",
        "--output-file",
        file.to_str().unwrap(),
    ])
    .ok();
    let r = h.run(&["audit", "verify", file.to_str().unwrap()]).ok();
    // 13 old events; the reveal; the put's metadata read, its value read
    // (versions written before key names were recorded have none to show)
    // and its write; the export itself.
    assert!(
        r.stdout
            .contains("18 event(s) verified, starting at the organization's first event"),
        "{}",
        r.stdout
    );
    verify_store();
}
