//! What the tool says is true, and no verb loses data silently: each
//! through the built binary on the local context.

use crate::common::*;

/// A second project, `other`, declared by a Namespace manifest.
const OTHER_PROJECT: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: local-other
  labels: { kube-dc.com/organization: local, kube-dc.com/project: other }
"#;

fn two_projects() -> Home {
    let h = Home::new();
    h.write("data/kube-dc/local/manifests/ns.yaml", OTHER_PROJECT);
    h.run(&[
        "-p",
        "other",
        "secrets",
        "create",
        "in-other",
        "--from-literal=A=1",
    ])
    .ok();
    h.run(&["secrets", "create", "in-default", "--from-literal=A=1"])
        .ok();
    h
}

/// The request id an error message names.
fn request_id(stderr: &str) -> String {
    let at = stderr.find("request id ").expect(stderr) + "request id ".len();
    stderr[at..]
        .split(|c: char| c == ')' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn scope_flags_select_the_same_project_everywhere() {
    let h = two_projects();
    // -n names project `other` for audit as for secrets.
    for scope in [["-n", "local-other"], ["-p", "other"]] {
        let r = h
            .run(&[scope[0], scope[1], "audit", "list", "-o", "json"])
            .ok();
        let events = r.json()["events"].as_array().unwrap().clone();
        assert!(!events.is_empty());
        assert!(
            events.iter().all(|e| e["body"]["project"] == "other"),
            "{scope:?}: {}",
            r.stdout
        );
        let r = h.run(&[scope[0], scope[1], "secrets", "list"]).ok();
        assert!(r.stdout.contains("in-other") && !r.stdout.contains("in-default"));
    }
    // Contradictions and flags a command cannot honour are refused.
    let r = h
        .run(&["-n", "local-default", "-p", "other", "audit", "list"])
        .code(2);
    assert!(r.stderr.contains("name different projects"), "{}", r.stderr);
    let r = h.run(&["-n", "elsewhere-x", "audit", "list"]).code(2);
    assert!(
        r.stderr.contains("not a project of organization"),
        "{}",
        r.stderr
    );
    // An organization-wide command typed with -p/-n (scripts written for
    // the Go CLI pass -n everywhere) says the flag does not narrow it, and
    // goes on: the whole organization, events of both projects.
    for args in [
        &["-p", "other", "audit", "list", "--org"][..],
        &["-n", "local-other", "audit", "list", "--csv"],
        &["-p", "other", "orgs", "elevations"],
    ] {
        let r = h.run(args).ok();
        assert!(
            r.stderr.contains("does not narrow it"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let csv = h.run(&["-n", "local-other", "audit", "list", "--csv"]).ok();
    assert!(
        csv.stdout.contains("in-default") && csv.stdout.contains("in-other"),
        "{}",
        csv.stdout
    );
    // The same from the environment is a default that does not apply:
    // silently the organization's, as without it.
    for (var, val) in [
        ("KUBE_DC_NAMESPACE", "local-other"),
        ("KUBE_DC_PROJECT", "other"),
    ] {
        for args in [
            &["audit", "list", "--csv"][..],
            &["audit", "list", "--org"],
            &["orgs", "elevations"],
        ] {
            let r = h.run_env(args, &[(var, val)]).ok();
            assert!(!r.stderr.contains("narrow"), "{var} {args:?}: {}", r.stderr);
        }
        let r = h.run_env(&["audit", "list", "--csv"], &[(var, val)]).ok();
        assert!(
            r.stdout.contains("in-default") && r.stdout.contains("in-other"),
            "{}",
            r.stdout
        );
        // ... and an argument overrides it.
        let r = h
            .run_env(&["orgs", "status", "default"], &[(var, val)])
            .ok();
        assert!(r.stdout.contains("local/default"), "{}", r.stdout);
    }
    // A typed -p or -n beats the other one's default from the environment.
    let r = h
        .run_env(
            &["-p", "default", "secrets", "list"],
            &[("KUBE_DC_NAMESPACE", "local-other")],
        )
        .ok();
    assert!(
        r.stdout.contains("in-default") && !r.stdout.contains("in-other"),
        "{}",
        r.stdout
    );
    let r = h.run(&["-p", "other", "orgs", "status", "default"]).code(2);
    assert!(r.stderr.contains("disagree"), "{}", r.stderr);
    let r = h.run(&["-p", "other", "orgs", "status"]).ok();
    assert!(r.stdout.contains("local/other"), "{}", r.stdout);
    // Completion reads -p from the line being completed.
    let complete = |line: &[&str]| {
        let out = h
            .cmd()
            .arg("--")
            .args(line)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (line.len() - 1).to_string())
            .env("_CLAP_IFS", "\n")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let got = complete(&["kube-dc", "-p", "other", "secrets", "get", ""]);
    assert!(
        got.contains("in-other") && !got.contains("in-default"),
        "{got}"
    );
    let got = complete(&["kube-dc", "secrets", "get", ""]);
    assert!(
        got.contains("in-default") && !got.contains("in-other"),
        "{got}"
    );
}

#[test]
fn a_refused_release_is_one_event_whose_result_is_error() {
    let h = Home::new();
    let r = h.run(&["orgs", "release", "default"]).code(3);
    let id = request_id(&r.stderr);
    let r = h
        .run(&["audit", "list", "--request-id", &id, "-o", "json"])
        .ok();
    let events = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{}", r.stdout);
    assert_eq!(events[0]["body"]["result"], "error");
    assert_eq!(events[0]["body"]["action"], "org-admin.elevation.release");
}

#[test]
fn a_projection_is_ready_only_when_it_holds_what_it_is_asked_for() {
    let h = Home::new();
    h.run(&["secrets", "create", "empty"]).ok();
    h.run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=USER=u",
        "--from-literal=PASS=p",
    ])
    .ok();
    h.run(&["secrets", "create", "gone", "--from-literal=K=v"])
        .ok();
    h.run(&["secrets", "destroy-version", "gone", "1", "--yes"])
        .ok();
    let r = h.run(&["secrets", "list"]).ok();
    let row = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_string()
    };
    assert!(row("empty").contains("● Pending"), "{}", r.stdout);
    assert!(row("gone").contains("● Pending"), "{}", r.stdout);
    assert!(row("db").contains("● Ready"), "{}", r.stdout);
    let r = h.run(&["secrets", "get", "gone"]).ok();
    assert!(r.stdout.contains("CurrentVersionDestroyed"), "{}", r.stdout);
    // An allowlist of keys the secret lacks is refused, naming those it has.
    let r = h.run(&["secrets", "sync", "db", "--keys", "NOPE"]).code(2);
    assert!(r.stderr.contains("its keys: PASS, USER"), "{}", r.stderr);
    h.run(&["secrets", "sync", "db", "--keys", "USER"]).ok();
    // A version without the allowlisted key: amber, and why.
    h.run(&[
        "secrets",
        "put",
        "db",
        "--from-literal=PASS=p2",
        "--replace",
    ])
    .ok();
    let r = h.run(&["secrets", "get", "db"]).ok();
    assert!(
        r.stdout
            .contains("● Pending (KeysMissing: the key allowlist names USER"),
        "{}",
        r.stdout
    );
    // In CSV, "none" is an empty cell, never a guarded "'-".
    let csv = h.run(&["secrets", "list", "-o", "csv"]).ok().stdout;
    assert!(!csv.contains("'-"), "{csv}");
    assert!(csv.contains("empty,opaque,Pending,empty,,\n"), "{csv}");
}

#[test]
fn put_names_the_keys_it_would_remove_and_never_stores_empty_stdin() {
    let h = Home::new();
    h.run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=A=1",
        "--from-literal=B=2",
        "--from-literal=C=3",
        "--from-literal=D=4",
    ])
    .ok();
    let r = h
        .run(&["secrets", "put", "db", "--from-literal=A=9"])
        .code(2);
    assert!(r.stderr.contains("without B, C, D"), "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    let v = h
        .run(&["secrets", "get", "db", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(v["value"]["metadata"]["version"], 1, "nothing was written");
    // Every key given: no question.
    h.run(&[
        "secrets",
        "put",
        "db",
        "--from-literal=A=9",
        "--from-literal=B=2",
        "--from-literal=C=3",
        "--from-literal=D=4",
    ])
    .ok();
    let r = h
        .run(&["secrets", "put", "db", "--from-literal=A=1", "--replace"])
        .ok();
    assert_eq!(r.stdout, "secret/db version 3 written\n");
    // A failed command upstream leaves stdin empty: refused, value kept.
    let r = h
        .run_stdin(
            &["secrets", "put", "db", "--from-file=A=-", "--replace"],
            b"",
        )
        .code(2);
    assert!(r.stderr.contains("stdin was empty"), "{}", r.stderr);
    let r = h.run(&["secrets", "get", "db", "--key", "A"]).ok();
    assert_eq!(r.stdout, "1");
}

#[test]
fn env_output_reads_back_exactly_in_a_shell_and_in_kube_dc() {
    let h = Home::new();
    let values: &[(&str, &str)] = &[
        ("DB_PASSWORD", "pa$word"),
        ("TICKS", "`touch pwned` $(touch pwned2) ${HOME}"),
        ("BACKSLASH", r"C:\new\table \\"),
        ("QUOTES", r#"it's "double" ''"#),
        ("MULTI", "line1\nline2\n"),
        ("SPACES", "  around  "),
        ("PLAIN", "abc-1.2_3"),
    ];
    let mut args = vec!["secrets".to_string(), "create".into(), "s".into()];
    for (k, v) in values {
        args.push(format!("--from-literal={k}={v}"));
    }
    h.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let env = h
        .run(&["secrets", "get", "s", "--value", "-o", "env"])
        .ok()
        .stdout;
    let file = h.write("s.env", &env);
    // POSIX sh, as `set -a; . FILE` in a script does.
    for (k, v) in values {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("set -a; . '{file}'; printf %s \"${k}\"")])
            .current_dir(h.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), *v, "{k} from {env}");
    }
    assert!(!h.path().join("pwned").exists() && !h.path().join("pwned2").exists());
    // And our own --from-env-file.
    h.run(&[
        "secrets",
        "create",
        "back",
        &format!("--from-env-file={file}"),
    ])
    .ok();
    let a = h
        .run(&["secrets", "get", "s", "--value", "-o", "json"])
        .ok()
        .json();
    let b = h
        .run(&["secrets", "get", "back", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(a["value"]["data"], b["value"]["data"]);
    // Docker's --env-file has no quoting and no line breaks.
    let r = h
        .run(&[
            "secrets",
            "get",
            "s",
            "--value",
            "-o",
            "env",
            "--env-dialect",
            "docker",
        ])
        .code(2);
    assert!(
        r.stderr.contains("MULTI") && r.stderr.contains("line break"),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "create", "one", "--from-literal=P=pa$word 'x'"])
        .ok();
    let r = h
        .run(&[
            "secrets",
            "get",
            "one",
            "--value",
            "-o",
            "env",
            "--env-dialect",
            "docker",
        ])
        .ok();
    assert_eq!(r.stdout, "P=pa$word 'x'\n");
}

#[test]
fn env_files_with_nothing_or_a_bom_are_named() {
    let h = Home::new();
    let empty = h.write("empty.env", "# only a comment\n\n");
    let r = h
        .run(&[
            "secrets",
            "create",
            "e",
            &format!("--from-env-file={empty}"),
        ])
        .code(2);
    assert!(r.stderr.contains("no keys"), "{}", r.stderr);
    let bom = h.write("bom.env", "\u{feff}A=1\n");
    let r = h
        .run(&["secrets", "create", "e", &format!("--from-env-file={bom}")])
        .code(2);
    assert!(r.stderr.contains("byte order mark"), "{}", r.stderr);
    h.run(&["secrets", "get", "e"]).code(3);
}

#[test]
fn deletions_can_be_found_and_the_current_version_is_not_erased_unasked() {
    let h = Home::new();
    h.run(&["secrets", "create", "old", "--from-literal=K=v"])
        .ok();
    h.run(&["secrets", "put", "old", "--from-literal=K=v2"])
        .ok();
    // Erasing the current version warns and asks; an older one just asks.
    let r = h.run(&["secrets", "destroy-version", "old", "2"]).code(2);
    assert!(r.stderr.contains("is the current version"), "{}", r.stderr);
    let r = h.run(&["secrets", "destroy-version", "old", "1"]).code(2);
    assert!(!r.stderr.contains("current version"), "{}", r.stderr);
    h.run(&["secrets", "delete", "old"]).ok();
    let r = h.run(&["secrets", "get", "old"]).code(3);
    assert!(
        r.stderr.contains("was deleted") && r.stderr.contains("kube-dc secrets restore old"),
        "{}",
        r.stderr
    );
    let r = h.run(&["secrets", "list", "--deleted"]).ok();
    assert!(r.stdout.contains("old"), "{}", r.stdout);
    let r = h.run(&["secrets", "list"]).ok();
    assert!(!r.stdout.contains("old"), "{}", r.stdout);
    h.run(&["secrets", "restore", "old"]).ok();
    assert!(
        !h.run(&["secrets", "list", "--deleted"])
            .ok()
            .stdout
            .contains("old")
    );
}

#[test]
fn audit_answers_questions() {
    let h = Home::new();
    h.run(&["secrets", "create", "a", "--from-literal=K=v"])
        .ok();
    h.run(&["secrets", "get", "a", "--value"]).ok();
    let r = h.run(&["secrets", "get", "missing"]).code(3);
    let id = request_id(&r.stderr);
    // Filters kube-dc applies, and the REQUEST ID column in -o wide.
    let r = h
        .run(&["audit", "list", "-o", "wide", "--request-id", &id])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(
        lines[0].contains("REQUEST ID") && lines[1].contains(&id),
        "{}",
        r.stdout
    );
    let r = h
        .run(&[
            "audit",
            "list",
            "--action",
            "secrets.value.read",
            "-o",
            "json",
        ])
        .ok();
    let events = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    let r = h
        .run(&["audit", "list", "--resource", "missing", "-o", "json"])
        .ok();
    assert_eq!(r.json()["events"].as_array().unwrap().len(), 1);
    // Fixed-width UTC times with milliseconds.
    let r = h.run(&["audit", "list"]).ok();
    for line in r.stdout.lines().skip(1) {
        let ts = line.split_whitespace().next().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }
    // Times as people write them; impossible ranges refused.
    h.run(&["audit", "list", "--since", "1w"]).ok();
    h.run(&["audit", "list", "--since", "2026-01-01"]).ok();
    let r = h
        .run(&["audit", "list", "--since", "1h", "--until", "2d"])
        .code(2);
    assert!(r.stderr.contains("is after --until"), "{}", r.stderr);
    let r = h
        .run(&["audit", "list", "--result", "ALLOWED", "-o", "json"])
        .ok();
    assert!(!r.json()["events"].as_array().unwrap().is_empty());
    // A filter the streamed export cannot apply is refused, not ignored.
    let r = h.run(&["audit", "list", "--csv", "--action", "x"]).code(2);
    assert!(r.stderr.contains("--action"), "{}", r.stderr);
}
