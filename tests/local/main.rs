//! The seed workflow and input handling through the built binary, on the
//! embedded local context.

#[path = "../common/mod.rs"]
mod common;
mod truth;

use common::*;
use serde_json::json;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: my-app, namespace: local-default }
spec:
  selector: { matchLabels: { app: my-app } }
  template:
    metadata: { labels: { app: my-app } }
    spec:
      containers:
        - name: app
          image: my-app:latest
          envFrom:
            - secretRef:
                name: app-config
"#;

#[test]
fn seed_workflow_end_to_end() {
    let h = Home::new();
    h.write("data/kube-dc/local/manifests/app.yaml", DEPLOYMENT);
    let env = h.write(
        "app.env",
        "# settings\nexport LOG_LEVEL=debug\nDB_PASSWORD='pa$word'\n",
    );
    let crt = h.write(
        "tls.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    );

    // create, each way
    let r = h.run(&["secrets", "create", "db-creds"]).ok();
    assert_eq!(r.stdout, "secret/db-creds created\n");
    h.run(&[
        "secrets",
        "create",
        "app-config",
        "--from-literal=DATABASE_URL=postgres://u:p@db/app?ssl=true",
        &format!("--from-file=tls.crt={crt}"),
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "app-env",
        &format!("--from-env-file={env}"),
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "api-keys",
        "--sync-disabled",
        "--type",
        "api-key",
        "--from-literal=STRIPE=sk_1",
    ])
    .ok();
    h.run_stdin(
        &[
            "secrets",
            "create",
            "piped",
            "--from-file=TOKEN=-",
            "--trim-newline",
        ],
        b"from-stdin\n",
    )
    .ok();

    // list
    let r = h.run(&["secrets", "list"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["NAME", "TYPE", "SYNC", "TARGET", "VERSION", "UPDATED"]),
        "{}",
        r.stdout
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_string()
    };
    // Sync on and wired (production's Ready=True), but no value is written
    // yet, so the projection is not ready: amber, never a green lie.
    assert!(row("db-creds").contains("● Pending"), "{}", r.stdout);
    assert!(row("app-config").contains("● Ready"));
    assert!(row("api-keys").contains("○ Disabled"));
    let list = h.run(&["secrets", "list", "-o", "json"]).ok().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 5);

    // get --value, --key, -o json
    let r = h.run(&["secrets", "get", "app-config", "--value"]).ok();
    assert!(
        r.stdout.contains("postgres://u:p@db/app?ssl=true"),
        "{}",
        r.stdout
    );
    let r = h
        .run(&["secrets", "get", "app-env", "--key", "DB_PASSWORD"])
        .ok();
    assert_eq!(r.stdout, "pa$word", "a value is never altered");
    let r = h.run(&["secrets", "get", "piped", "--key", "TOKEN"]).ok();
    assert_eq!(r.stdout, "from-stdin");
    let v = h
        .run(&["secrets", "get", "app-config", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"]["tls.crt"],
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    );
    let meta = h.run(&["secrets", "get", "app-config"]).ok();
    assert!(
        !meta.stdout.contains("postgres://"),
        "metadata only without --value"
    );

    // put, versions
    let r = h
        .run(&[
            "secrets",
            "put",
            "db-creds",
            "--from-literal=PASSWORD=s3cr3t",
            "--from-literal=USER=app",
        ])
        .ok();
    assert_eq!(r.stdout, "secret/db-creds version 1 written\n");
    h.run(&[
        "secrets",
        "put",
        "db-creds",
        "--from-literal=PASSWORD=R0tat3d-v2",
        "--from-literal=USER=app",
    ])
    .ok();
    let r = h.run(&["secrets", "versions", "db-creds"]).ok();
    assert!(
        r.stdout.contains("current") && r.stdout.lines().count() == 3,
        "{}",
        r.stdout
    );
    let r = h
        .run(&[
            "secrets",
            "get",
            "db-creds",
            "--key",
            "PASSWORD",
            "--version",
            "1",
        ])
        .ok();
    assert_eq!(r.stdout, "s3cr3t");

    // sync
    let s = h
        .run(&[
            "secrets",
            "sync",
            "db-creds",
            "--keys",
            "PASSWORD",
            "--refresh",
            "15m",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(s["sync"]["keys"], json!(["PASSWORD"]));
    assert_eq!(s["sync"]["refreshInterval"], "15m");
    let s = h
        .run(&[
            "secrets",
            "sync",
            "db-creds",
            "--enabled",
            "false",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(s["sync"]["enabled"], false);

    // consumers
    let r = h.run(&["secrets", "consumers", "app-config"]).ok();
    assert!(
        r.stdout.contains("Deployment")
            && r.stdout.contains("my-app")
            && r.stdout.contains("envFrom"),
        "{}",
        r.stdout
    );

    // delete → restore → destroy. A Deployment uses the projection: the
    // soft delete names it and, without a terminal, needs --yes.
    let r = h.run(&["secrets", "delete", "app-config"]).code(2);
    assert!(
        r.stderr.contains("Deployment/my-app") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "get", "app-config"]).ok();
    h.run(&["secrets", "delete", "app-config", "--yes"]).ok();
    h.run(&["secrets", "get", "app-config"]).code(3);
    h.run(&["secrets", "restore", "app-config"]).ok();
    let r = h
        .run(&["secrets", "get", "app-config", "--key", "DATABASE_URL"])
        .ok();
    assert_eq!(r.stdout, "postgres://u:p@db/app?ssl=true");
    let r = h
        .run(&["secrets", "delete", "app-config", "--destroy"])
        .code(2);
    assert!(
        r.stderr.contains("--yes"),
        "no terminal, no --yes: refuse ({})",
        r.stderr
    );
    let r = h
        .run(&["secrets", "delete", "app-config", "--destroy", "--yes"])
        .ok();
    assert_eq!(r.stdout, "secret/app-config destroyed\n");
    h.run(&["secrets", "restore", "app-config"]).code(3);

    // audit shows each step
    let a = h
        .run(&[
            "audit",
            "list",
            "--service",
            "secrets",
            "--since",
            "1h",
            "--limit",
            "5000",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let actions: Vec<&str> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap())
        .collect();
    for step in [
        "secrets.secret.create",
        "secrets.secret.list",
        "secrets.value.read",
        "secrets.metadata.read",
        "secrets.value.write",
        "secrets.version.list",
        "secrets.sync.update",
        "secrets.consumer.list",
        "secrets.secret.delete",
        "secrets.secret.restore",
        "secrets.secret.destroy",
    ] {
        assert!(actions.contains(&step), "audit lacks {step}: {actions:?}");
    }
    let all = serde_json::to_string(&a).unwrap();
    for secret in ["s3cr3t", "R0tat3d-v2", "pa$word", "sk_1", "from-stdin"] {
        assert!(!all.contains(secret), "a value leaked into the audit log");
    }
    assert!(a["events"][0]["body"]["actor"] == "tester");
    // …and nothing in the data directory holds a value in plaintext.
    for secret in ["s3cr3t", "R0tat3d-v2", "sk_1", "from-stdin"] {
        let mut hits = vec![];
        for e in std::fs::read_dir(h.local_data()).unwrap().flatten() {
            if e.path().is_file()
                && std::fs::read(e.path())
                    .unwrap()
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes())
            {
                hits.push(e.path());
            }
        }
        assert!(hits.is_empty(), "{secret} in plaintext in {hits:?}");
    }
}

#[test]
fn value_inputs_are_taken_exactly() {
    let h = Home::new();
    let crlf = h.write("crlf.env", "A=one\r\nB=\"two words\"\r\n");
    let quoted = h.write(
        "q.env",
        "SINGLE='it is $1'\nDQ=\"say \\\"hi\\\"\"\nDOLLAR=\"$HOME and ${PATH}\"\nRAW=$NOT_EXPANDED\nMULTI=\"line1\nline2\"\nEMPTY=\nEQ=a=b=c\n",
    );
    h.run(&[
        "secrets",
        "create",
        "s1",
        "--from-literal=URL=a=b==c",
        "--from-literal=EMPTY=",
        &format!("--from-env-file={crlf}"),
    ])
    .ok();
    let v = h
        .run(&["secrets", "get", "s1", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"],
        json!({"URL": "a=b==c", "EMPTY": "", "A": "one", "B": "two words"})
    );

    h.run(&[
        "secrets",
        "create",
        "s2",
        &format!("--from-env-file={quoted}"),
    ])
    .ok();
    let v = h
        .run(&["secrets", "get", "s2", "--value", "-o", "json"])
        .ok()
        .json();
    let d = &v["value"]["data"];
    assert_eq!(d["SINGLE"], "it is $1");
    assert_eq!(d["DQ"], "say \"hi\"");
    assert_eq!(d["DOLLAR"], "$HOME and ${PATH}", "no substitution");
    assert_eq!(d["RAW"], "$NOT_EXPANDED");
    assert_eq!(d["MULTI"], "line1\nline2");
    assert_eq!(d["EMPTY"], "");
    assert_eq!(d["EQ"], "a=b=c");
    // Text dotenv cannot read unambiguously is refused, naming the file.
    let odd = h.write("odd.env", "SINGLE='it''s'\n");
    let r = h
        .run(&["secrets", "create", "s3", &format!("--from-env-file={odd}")])
        .code(2);
    assert!(r.stderr.contains("odd.env"), "{}", r.stderr);

    // -o env reads back identically through --from-env-file.
    let tricky = h.write(
        "tricky.txt",
        "back\\slash \"quotes\" 'single' $dollar #hash\nsecond line\r\nthird",
    );
    h.run(&[
        "secrets",
        "create",
        "src",
        &format!("--from-file=T={tricky}"),
        "--from-literal=PLAIN=x",
    ])
    .ok();
    let env_out = h
        .run(&["secrets", "get", "src", "--value", "-o", "env"])
        .ok()
        .stdout;
    let round = h.write("round.env", &env_out);
    h.run(&[
        "secrets",
        "create",
        "dst",
        &format!("--from-env-file={round}"),
    ])
    .ok();
    let a = h
        .run(&["secrets", "get", "src", "--value", "-o", "json"])
        .ok()
        .json();
    let b = h
        .run(&["secrets", "get", "dst", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(a["value"]["data"], b["value"]["data"]);

    // A trailing newline from a file is kept, with a warning.
    let nl = h.write("nl.txt", "value\n");
    let r = h
        .run(&["secrets", "create", "nl", &format!("--from-file=K={nl}")])
        .ok();
    assert!(r.stderr.contains("--trim-newline"), "{}", r.stderr);
    assert_eq!(
        h.run(&["secrets", "get", "nl", "--key", "K"]).ok().stdout,
        "value\n"
    );
    // The key defaults to the file's base name.
    h.run(&["secrets", "create", "base", &format!("--from-file={nl}")])
        .ok();
    assert_eq!(
        h.run(&["secrets", "get", "base", "--key", "nl.txt"])
            .ok()
            .stdout,
        "value\n"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let h = Home::new();
    let dup_env = h.write("dup.env", "K=1\n");
    let latin1 = h.write("latin1.bin", [b'c', b'a', b'f', 0xe9]);
    let hash = h.write("hash.env", "PASS=abc#123\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--from-literal=K=1".into(),
                format!("--from-env-file={dup_env}"),
            ],
            "given twice",
        ),
        (
            vec!["--from-literal=K=1".into(), "--from-literal=K=2".into()],
            "given twice",
        ),
        (vec!["--from-literal=NOEQUALS".into()], "has no '='"),
        (vec!["--from-literal=bad key=1".into()], "invalid key"),
        (
            vec![format!("--from-file=K={}/missing.txt", h.path().display())],
            "no such file",
        ),
        (vec![format!("--from-file=K={latin1}")], "not UTF-8"),
        (vec![format!("--from-env-file={hash}")], "quote the value"),
        (vec!["--from-file=-".into()], "KEY=-"),
        (vec!["--prompt=K".into()], "terminal"),
        (vec!["--sync-refresh=5s".into()], "between 10s and 7d"),
    ];
    for (args, want) in cases {
        let mut all = vec!["secrets", "create", "x"];
        all.extend(args.iter().map(String::as_str));
        let r = h.run(&all).code(2);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    h.run(&["secrets", "create", "Bad_Name"]).code(2);
    // Nothing was created by any of them.
    let list = h.run(&["secrets", "list", "-o", "json"]).ok().json();
    assert_eq!(list["items"], json!([]));
    // …and a failed value file does not even leave an audit event behind.
    let a = h.run(&["audit", "list", "-o", "json"]).ok().json();
    assert!(
        a["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["body"]["action"] != "create")
    );
}

#[test]
fn apply_rotation_manifest_and_run() {
    let h = Home::new();
    let m = h.write(
        "pw.yaml",
        "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata:\n  name: app-password\nspec:\n  type: password\n  rotation:\n    enabled: true\n    interval: 90d\n    generator:\n      length: 32\n      charset: alnum-symbol\n  sync:\n    enabled: true\n    targetSecretName: app-password\n",
    );
    assert_eq!(
        h.run(&["secrets", "apply", "-f", &m]).ok().stdout,
        "managedsecret/app-password created\n"
    );
    assert_eq!(
        h.run(&["secrets", "apply", "-f", &m]).ok().stdout,
        "managedsecret/app-password unchanged\n"
    );
    let pw = h
        .run(&["secrets", "get", "app-password", "--key", "password"])
        .ok()
        .stdout;
    assert_eq!(pw.chars().count(), 32);
    let changed = std::fs::read_to_string(&m)
        .unwrap()
        .replace("interval: 90d", "interval: 30d");
    let m2 = h.write("pw2.yaml", changed);
    assert_eq!(
        h.run(&["secrets", "apply", "-f", &m2]).ok().stdout,
        "managedsecret/app-password configured\n"
    );
    let v = h
        .run(&["secrets", "get", "app-password", "-o", "json"])
        .ok()
        .json();
    assert_eq!(v["rotation"]["interval"], "30d");

    // run: values as environment, the child's exit code comes back.
    h.run(&[
        "secrets",
        "create",
        "cfg",
        "--from-literal=GREETING=hello there",
        "--from-literal=tls.crt=x",
    ])
    .ok();
    let r = h
        .run(&[
            "secrets",
            "run",
            "cfg",
            "app-password",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$GREETING\" \"${#password}\"; exit 7",
        ])
        .code(7);
    assert_eq!(r.stdout, "hello there|32");
    assert!(
        r.stderr.contains("tls.crt"),
        "invalid variable names are skipped with a warning: {}",
        r.stderr
    );
    // As a shell: 127 for no such command, 126 for one that cannot run.
    h.run(&["secrets", "run", "cfg", "--", "/nonexistent/program"])
        .code(127);
    let not_exec = h.write("not-executable.sh", "echo hi\n");
    h.run(&["secrets", "run", "cfg", "--", &not_exec]).code(126);
}

#[test]
fn run_forwards_signals_to_the_child() {
    let h = Home::new();
    h.run(&["secrets", "create", "cfg", "--from-literal=K=v"])
        .ok();
    let mut child = h
        .cmd()
        .args([
            "secrets",
            "run",
            "cfg",
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(kube_dc_backend::testing::first_line(&mut child), "ready\n");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

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
fn go_cli_expectations_on_values_env_files_and_projections() {
    let h = Home::new();
    // A secret without values: the document, with empty data, exit 0.
    h.run(&["secrets", "create", "empty"]).ok();
    let doc = h
        .run(&["secrets", "get", "empty", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(doc["value"]["data"], serde_json::json!({}));
    h.run(&["secrets", "get", "empty", "--key", "K"]).code(3);

    // Env files: whatever dotenv would change silently is an error naming
    // the file, the line and the fix; nothing is created.
    for (text, line, why) in [
        ("PASSWORD=abc   \n", 1, "spaces around it"),
        ("A=1\nNOTE=hello # x\n", 2, "contains '#'"),
        ("A=1\nA=2\n", 2, "already set on line 1"),
    ] {
        let f = h.write("bad.env", text);
        let r = h
            .run(&["secrets", "create", "fromenv", "--from-env-file", &f])
            .code(2);
        assert!(
            r.stderr.contains(&format!("{f}: line {line}:")) && r.stderr.contains(why),
            "{text:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("quote the value") || r.stderr.contains("remove the duplicate"),
            "{}",
            r.stderr
        );
    }
    h.run(&["secrets", "get", "fromenv"]).code(3);
    let f = h.write("good.env", "PASSWORD='abc   '\nNOTE=\"hello # x\"\n");
    h.run(&["secrets", "create", "fromenv", "--from-env-file", &f])
        .ok();
    let v = h
        .run(&["secrets", "get", "fromenv", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"],
        serde_json::json!({"PASSWORD": "abc   ", "NOTE": "hello # x"})
    );

    // Two managed secrets never project into one Kubernetes Secret.
    h.run(&["secrets", "create", "app"]).ok();
    let r = h
        .run(&["secrets", "create", "app2", "--sync-target", "app"])
        .code(6);
    assert!(
        r.stderr
            .contains("already the projection of managed secret \"app\""),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "create", "app3", "--sync-disabled"])
        .ok();
    let r = h
        .run(&[
            "secrets",
            "sync",
            "app3",
            "--enabled",
            "on",
            "--target",
            "app",
        ])
        .code(6);
    assert!(r.stderr.contains("\"app\""), "{}", r.stderr);
}
