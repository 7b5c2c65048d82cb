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

/// An editor: a shell script (`$1` is the file).
fn editor(h: &Home, name: &str, body: &str) -> String {
    let path = h.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn edit_writes_what_the_editor_changed_and_nothing_else() {
    let h = Home::new();
    let runtime = h.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let rt = runtime.to_str().unwrap();
    h.run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=A=1",
        "--from-literal=B=it's",
    ])
    .ok();
    let version = |h: &Home| {
        h.run(&["secrets", "get", "db", "-o", "json"]).ok().json()["openbao"]["currentVersion"]
            .as_u64()
            .unwrap()
    };
    let get = |h: &Home| {
        values(
            &h.run(&["secrets", "get", "db", "--value", "-o", "json"])
                .ok(),
        )
    };
    let log = h.path().join("editor.log");
    // One value changed; the file was private while it was edited.
    let ed = editor(
        &h,
        "change-a",
        &format!(
            "stat -c %a \"$1\" > {log}; sed -i 's/^A=1$/A=changed/' \"$1\"",
            log = log.display()
        ),
    );
    let r = h.run_env(
        &["secrets", "edit", "db"],
        &[("EDITOR", &ed), ("XDG_RUNTIME_DIR", rt)],
    );
    let r = r.ok();
    assert!(r.stdout.contains("version 2 written"), "{}", r.stdout);
    assert_eq!(get(&h), serde_json::json!({"A": "changed", "B": "it's"}));
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "600");
    // An editor that fails, or saves nothing new: nothing written.
    let fail = editor(&h, "fail", "echo C=3 >> \"$1\"; exit 3");
    h.run_env(
        &["secrets", "edit", "db"],
        &[("EDITOR", &fail), ("XDG_RUNTIME_DIR", rt)],
    )
    .code(1);
    let r = h
        .run_env(
            &["secrets", "edit", "db"],
            &[("VISUAL", "true"), ("XDG_RUNTIME_DIR", rt)],
        )
        .ok();
    assert!(r.stderr.contains("no changes"), "{}", r.stderr);
    assert_eq!(version(&h), 2);
    // A line that is not KEY=VALUE: the editor opens again with the error;
    // the second pass fixes it.
    let state = h.path().join("state");
    let twice = editor(
        &h,
        "twice",
        &format!(
            "if [ ! -f {s} ]; then touch {s}; echo 'BROKEN LINE' >> \"$1\"; \
             else cp \"$1\" {log}; sed -i '/^BROKEN LINE$/d; s/^A=changed$/A=fixed/' \"$1\"; fi",
            s = state.display(),
            log = log.display()
        ),
    );
    h.run_env(
        &["secrets", "edit", "db"],
        &[("EDITOR", &twice), ("XDG_RUNTIME_DIR", rt)],
    )
    .ok();
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("# ERROR"),
        "the error is shown on top"
    );
    assert_eq!(get(&h)["A"], "fixed");
    // Ctrl-C while the editor runs (SIGINT to the whole process group, as
    // a terminal sends it): nothing written, no file left.
    use std::os::unix::process::CommandExt;
    let slow = editor(&h, "slow", "sleep 30");
    let child = h
        .cmd()
        .process_group(0)
        .args(["secrets", "edit", "db"])
        .env("EDITOR", &slow)
        .env("XDG_RUNTIME_DIR", rt)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    until(20, "the temporary file appeared", || {
        std::fs::read_dir(&runtime).unwrap().next().map(|_| ())
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let group = format!("-{}", child.id());
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let left: Vec<_> = std::fs::read_dir(&runtime).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert_eq!(version(&h), 3);
}

#[test]
fn as_role_tries_the_permission_table_on_the_local_context() {
    let h = Home::new();
    h.run(&["secrets", "create", "db", "--from-literal=K=v"])
        .ok();
    // A developer reveals in its project, and may not destroy.
    h.run(&["--as", "developer", "secrets", "get", "db", "--key", "K"])
        .ok();
    let r = h
        .run(&[
            "--as",
            "developer",
            "secrets",
            "delete",
            "db",
            "--destroy",
            "--yes",
        ])
        .code(4);
    assert!(r.stderr.contains("needs admin"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    // A user sees metadata only.
    h.run(&["--as", "user", "secrets", "get", "db"]).ok();
    h.run(&["--as", "user", "secrets", "get", "db", "--value"])
        .code(4);
    // An organization admin reads values only inside an elevation window.
    let r = h
        .run(&["--as", "org-admin", "secrets", "get", "db", "--value"])
        .code(4);
    assert!(r.stderr.contains("kube-dc orgs elevate"), "{}", r.stderr);
    h.run(&[
        "--as",
        "org-admin",
        "orgs",
        "elevate",
        "default",
        "--reason",
        "IR-7",
    ])
    .ok();
    h.run(&["--as", "org-admin", "secrets", "get", "db", "--key", "K"])
        .ok();
    // The audit says who acted as what.
    let events = h.run(&["audit", "list", "-o", "json"]).ok().json()["events"].clone();
    let roles: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["body"]["result"] == "allowed")
        .filter_map(|e| Some((e["body"]["action"].as_str()?, e["body"]["role"].as_str()?)))
        .collect();
    assert_eq!(
        roles,
        [
            ("secrets.value.read", "org-admin"),
            ("secrets.metadata.read", "user"),
            ("secrets.value.read", "developer"),
            ("secrets.secret.create", "admin"),
        ],
        "{events}"
    );
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["body"]["action"] == "secrets.value.read"
                && e["body"]["elevation_id"].is_string())
    );
    // Anywhere else, --as is refused rather than ignored.
    let r = h
        .run(&[
            "--as",
            "admin",
            "--server",
            "http://127.0.0.1:9",
            "secrets",
            "list",
        ])
        .code(2);
    assert!(r.stderr.contains("local context only"), "{}", r.stderr);
}

#[test]
fn dry_run_prints_the_change_masks_values_and_sends_nothing() {
    let h = Home::new();
    h.run(&["secrets", "create", "db", "--from-literal=K=v"])
        .ok();
    let writes = |h: &Home| -> Vec<String> {
        h.run(&["audit", "list", "-o", "json"]).ok().json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["body"]["action"].as_str().unwrap_or_default().to_string())
            .filter(|a| !a.ends_with(".read") && !a.ends_with(".list"))
            .collect()
    };
    let before = writes(&h);
    for args in [
        &["secrets", "create", "new", "--from-literal=P=pa$word"][..],
        &["secrets", "put", "db", "--from-literal=K=v2"],
        &["secrets", "sync", "db", "--enabled", "off"],
        &["secrets", "delete", "db", "--yes"],
        &["secrets", "destroy-version", "db", "1", "--yes"],
        &["orgs", "elevate", "default", "--reason", "r"],
    ] {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let r = h.run(&all).ok();
        assert!(r.stdout.starts_with("dry run: "), "{args:?}: {}", r.stdout);
        assert!(r.stdout.contains("(nothing was sent)"), "{}", r.stdout);
        assert!(
            !r.stdout.contains("pa$word") && !r.stdout.contains("\"v2\""),
            "{}",
            r.stdout
        );
    }
    let shown = h
        .run(&[
            "--dry-run",
            "--show-values",
            "secrets",
            "put",
            "db",
            "--from-literal=K=v2",
        ])
        .ok();
    assert!(shown.stdout.contains("\"v2\""), "{}", shown.stdout);
    assert_eq!(writes(&h), before, "no change reached the audit log");
    assert_eq!(
        h.run(&["secrets", "get", "db", "--key", "K"]).ok().stdout,
        "v"
    );
}

#[test]
fn dry_run_plans_every_change_of_a_command() {
    let h = Home::new();
    h.run(&["secrets", "create", "a", "--from-literal=K=v"])
        .ok();
    let manifests = h.path().join("three.yaml");
    let doc = |name: &str, spec: &str| {
        format!(
            "apiVersion: security.kube-dc.com/v1alpha1\nkind: ManagedSecret\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        )
    };
    std::fs::write(
        &manifests,
        [
            // An update that both moves the sync and changes the
            // description: two requests, both planned.
            doc(
                "a",
                "{type: opaque, description: d, sync: {enabled: false}}",
            ),
            doc("b", "{type: opaque}"),
            doc("c", "{type: opaque}"),
        ]
        .join("---\n"),
    )
    .unwrap();
    let file = manifests.to_str().unwrap();
    let r = h.run(&["--dry-run", "secrets", "apply", "-f", file]).ok();
    let planned: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("dry run: "))
        .collect();
    assert_eq!(planned.len(), 4, "{}", r.stdout);
    assert!(r.stdout.ends_with("4 changes planned (nothing was sent)\n"));
    assert!(r.stderr.contains("managedsecret/c created"), "{}", r.stderr);
    let json = h
        .run(&["--dry-run", "secrets", "apply", "-f", file, "-o", "json"])
        .ok()
        .json();
    let actions: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "secrets.sync.update",
            "secrets.secret.update",
            "secrets.secret.create",
            "secrets.secret.create"
        ]
    );
    assert_eq!(json["dryRun"], true);
    // Nothing was sent.
    h.run(&["secrets", "get", "b"]).code(3);
    // A command that makes no change says so; one whose changes cannot
    // be planned refuses.
    let r = h.run(&["--dry-run", "secrets", "list"]).ok();
    assert!(r.stderr.contains("--dry-run has no effect"), "{}", r.stderr);
    let r = h.run(&["--dry-run", "ui"]).code(2);
    assert!(r.stderr.contains("does not take --dry-run"), "{}", r.stderr);
    // A change that writes nothing plans nothing.
    let r = h.run(&["--dry-run", "secrets", "set", "a", "K=v"]).ok();
    assert!(r.stdout.contains("no change to make"), "{}", r.stdout);
}

#[test]
fn from_file_dir_takes_one_key_per_file() {
    let h = Home::new();
    let dir = h.path().join("conf");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("tls.crt"), "CERT").unwrap();
    std::fs::write(dir.join("tls.key"), "KEY\n").unwrap();
    std::fs::write(dir.join("..data"), "skip").unwrap();
    let spec = format!("--from-file={}", dir.display());
    let r = h
        .run(&["secrets", "create", "tls", &spec, "--trim-newline"])
        .ok();
    assert!(r.stderr.contains("skipped \"sub\""), "{}", r.stderr);
    let v = values(
        &h.run(&["secrets", "get", "tls", "--value", "-o", "json"])
            .ok(),
    );
    assert_eq!(v, serde_json::json!({"tls.crt": "CERT", "tls.key": "KEY"}));
    let empty = h.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    h.run(&[
        "secrets",
        "create",
        "none",
        &format!("--from-file={}", empty.display()),
    ])
    .code(2);
}

#[test]
fn edit_and_dry_run_against_the_backend() {
    let be = Remote::start(&[]);
    let h = Home::new();
    be.run(
        &h,
        ADMIN,
        &["secrets", "create", "db", "--from-literal=A=1"],
    )
    .ok();
    let ed = editor(&h, "change", "sed -i 's/^A=1$/A=2/' \"$1\"");
    let token = be.token(ADMIN.0, ADMIN.1);
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut all = vec!["--server", &be.url, "-n", "acme-demo"];
        all.extend_from_slice(args);
        let mut env = vec![("KUBE_DC_TOKEN", token.as_str()), ("KUBE_DC_ORG", "acme")];
        env.extend_from_slice(extra);
        h.run_env(&all, &env)
    };
    run(&["secrets", "edit", "db"], &[("EDITOR", &ed)]).ok();
    assert_eq!(
        run(&["secrets", "get", "db", "--key", "A"], &[])
            .ok()
            .stdout,
        "2"
    );
    let r = run(&["--dry-run", "secrets", "set", "db", "A=3"], &[]).ok();
    assert!(
        r.stdout.contains(&format!(
            "dry run: PUT {}/api/secrets/acme-demo/db/values",
            be.url
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        run(&["secrets", "get", "db", "--key", "A"], &[])
            .ok()
            .stdout,
        "2"
    );
    // --as is the local context's alone.
    run(&["--as", "developer", "secrets", "list"], &[]).code(2);
}

#[test]
fn jsonpath_templates_over_the_json_document() {
    let h = Home::new();
    h.run(&["secrets", "create", "db", "--from-literal=USER=app"])
        .ok();
    h.run(&["secrets", "create", "web", "--from-literal=T=x"])
        .ok();
    let r = h
        .run(&[
            "secrets",
            "list",
            "-o",
            "jsonpath={range .items[*]}{.name}{\"\\n\"}{end}",
        ])
        .ok();
    assert_eq!(r.stdout, "db\nweb\n");
    let r = h
        .run(&[
            "secrets",
            "get",
            "db",
            "--value",
            "-o",
            "jsonpath={.value.data.USER}",
        ])
        .ok();
    assert_eq!(r.stdout, "app");
    let r = h
        .run(&["secrets", "get", "db", "-o", "jsonpath={.nope}"])
        .code(2);
    assert!(r.stderr.contains(".nope"), "{}", r.stderr);
    h.run(&["secrets", "list", "-o", "jsonpath={.items[x]}"])
        .code(2);
}
