//! `secrets apply` of manifests and `secrets run` of a program, and the
//! output formats of the commands that print no document of their own.

use crate::common::*;

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
            // The values as they are (masking is tested with references).
            "--no-masking",
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
    assert_eq!(
        kube_dc_testsupport::testing::first_line(&mut child),
        "ready\n"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

/// `-o` is honoured or refused, never ignored: the commands that print no
/// document of their own refuse it before doing anything.
#[test]
fn an_output_format_a_command_cannot_print_is_refused_before_anything_runs() {
    let h = Home::new();
    h.run(&["secrets", "create", "db", "--from-literal=K=v"])
        .ok();
    let marker = h.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let r = h
        .run(&[
            "secrets", "run", "db", "-o", "json", "--", "sh", "-c", &touch,
        ])
        .code(2);
    assert!(
        r.stderr.contains("secrets run cannot print -o json"),
        "{}",
        r.stderr
    );
    assert!(!marker.exists(), "the command ran");
    for (args, what) in [
        (
            &["secrets", "set", "db", "K=w", "-o", "csv"][..],
            "secrets set cannot print -o csv",
        ),
        (
            &["secrets", "unset", "db", "K", "-o", "wide"][..],
            "secrets unset cannot print -o wide",
        ),
        (
            &["secrets", "edit", "db", "-o", "jsonl"][..],
            "secrets edit cannot print -o jsonl",
        ),
        (&["ui", "-o", "json"][..], "ui cannot print -o json"),
        (&["logout", "-o", "yaml"][..], "logout cannot print -o yaml"),
    ] {
        let r = h.run(args).code(2);
        assert!(r.stderr.contains(what), "{args:?}: {}", r.stderr);
    }
    // Nothing was written: still version 1 with K=v.
    let v = h
        .run(&["secrets", "get", "db", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(v["value"]["data"]["K"], "v");
    assert_eq!(v["value"]["metadata"]["version"], 1);
    // The formats they can print still work.
    let r = h.run(&["secrets", "set", "db", "K2=w", "-o", "json"]).ok();
    assert_eq!(r.json()["version"], 2);

    // KUBE_DC_OUTPUT is a preference, not a command line: where a command
    // cannot print it, the command prints its own default.
    let csv = [("KUBE_DC_OUTPUT", "csv")];
    let r = h.run_env(&["secrets", "get", "db"], &csv).ok();
    assert!(r.stdout.contains("Name:"), "{}", r.stdout);
    let r = h
        .run_env(&["secrets", "run", "db", "--", "true"], &csv)
        .ok();
    assert!(!r.stderr.contains("-o"), "{}", r.stderr);
    let r = h.run_env(&["secrets", "list"], &csv).ok();
    assert!(
        r.stdout.starts_with("name,type,"),
        "list prints CSV: {}",
        r.stdout
    );
    let r = h
        .run_env(&["secrets", "get", "db"], &[("KUBE_DC_OUTPUT", "json")])
        .ok();
    assert_eq!(r.json()["name"], "db");
}
