//! References (`kube-dc://PROJECT/SECRET/KEY`) into the software that uses
//! them: `secrets inject` renders templates, `secrets run --env-file`
//! resolves env files and masks the child's output, `secrets diff` compares
//! versions without printing values. Each through the built binary on the
//! local context; the last test does it again against the backend.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
const JSON: &str = "{\"user\": \"app\", \"list\": [1, \"x\\\"y\"], \"nested\": {\"a\": null}}";
const LINES: &str = "first line\n  indented second\n\nafter a blank\n\n";

/// The highest audit sequence number so far.
fn audit_head(h: &Home) -> u64 {
    let a = h
        .run(&["audit", "list", "--limit", "1", "-o", "json"])
        .ok()
        .json();
    a["events"][0]["body"]["seq"].as_u64().unwrap_or(0)
}

/// The value reads audited after `seq`, counted per secret.
fn value_reads_after(h: &Home, seq: u64) -> BTreeMap<String, usize> {
    let a = h
        .run(&[
            "audit",
            "list",
            "--action",
            "secrets.value.read",
            "--limit",
            "5000",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let mut n = BTreeMap::new();
    for e in a["events"].as_array().unwrap() {
        if e["body"]["seq"].as_u64().unwrap() > seq {
            *n.entry(e["body"]["resource"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    n
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Two secrets whose values are what templates are made of: a PEM key with
/// its trailing newline, a JSON document, lines with blanks; and a
/// database's credentials.
fn world() -> Home {
    let h = Home::new();
    let pem = h.write("tls.key", PEM);
    let lines = h.write("lines.txt", LINES);
    h.run(&[
        "secrets",
        "create",
        "tls",
        &format!("--from-file=tls.key={pem}"),
        &format!("--from-file=notes={lines}"),
        &format!("--from-literal=config.json={JSON}"),
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=PASSWORD=hunter22-secret",
        "--from-literal=USER=app-user",
    ])
    .ok();
    h
}

#[test]
fn inject_renders_values_byte_for_byte_reading_each_secret_once() {
    let h = world();
    let template = "\
key: |
{{ kube-dc://default/tls/tls.key }}json: {{kube-dc://default/tls/config.json}}
notes: {{  kube-dc://default/tls/notes  }}
dsn: postgres://{{ kube-dc://default/db/USER }}:{{ kube-dc://default/db/PASSWORD }}@db/app
again: {{ kube-dc://local/default/db/PASSWORD }}
literal: \\{{ kube-dc://default/db/PASSWORD }}
helm: {{ .Values.image }} and {{ x }}
";
    let want = format!(
        "key: |\n{PEM}json: {JSON}\nnotes: {LINES}\ndsn: postgres://app-user:hunter22-secret@db/app\n\
         again: hunter22-secret\nliteral: {{{{ kube-dc://default/db/PASSWORD }}}}\n\
         helm: {{{{ .Values.image }}}} and {{{{ x }}}}\n"
    );
    let tpl = h.write("config.tpl", template);

    // stdin to stdout
    let before = audit_head(&h);
    let r = h
        .run_stdin(&["secrets", "inject"], template.as_bytes())
        .ok();
    assert_eq!(r.stdout, want, "rendered byte for byte");
    assert_eq!(
        value_reads_after(&h, before),
        counts(&[("db", 1), ("tls", 1)]),
        "one audited read per secret, however many of its keys the template uses"
    );

    // -o FILE: written atomically, 0600, never over an existing file
    // without --force
    let out = h.path().join("config.yml");
    let out_s = out.display().to_string();
    h.run(&["secrets", "inject", "-i", &tpl, "-o", &out_s]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::write(&out, "kept").unwrap();
    let r = h
        .run(&["secrets", "inject", "-i", &tpl, "-o", &out_s])
        .code(2);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept");
    h.run(&["secrets", "inject", "-i", &tpl, "-o", &out_s, "--force"])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The output format flag before the verb is not a file.
    let r = h
        .run(&["-o", "json", "secrets", "inject", "-i", &tpl])
        .code(2);
    assert!(r.stderr.contains("-o FILE"), "{}", r.stderr);
    // …and KUBE_DC_OUTPUT, a preference, does not make it fail.
    let r = h
        .run_env(
            &["secrets", "inject", "-i", &tpl],
            &[("KUBE_DC_OUTPUT", "json")],
        )
        .ok();
    assert_eq!(r.stdout, want);

    // A version: the value as it was.
    h.run(&[
        "secrets",
        "put",
        "db",
        "--from-literal=PASSWORD=rotated-v2-pass",
        "--from-literal=USER=app-user",
    ])
    .ok();
    let r = h
        .run_stdin(
            &["secrets", "inject"],
            b"{{ kube-dc://default/db@1/PASSWORD }} {{ kube-dc://default/db/PASSWORD }}",
        )
        .ok();
    assert_eq!(r.stdout, "hunter22-secret rotated-v2-pass");
}

#[test]
fn inject_names_line_and_column_of_what_does_not_resolve_and_writes_nothing() {
    let h = world();
    let out = h.path().join("out.yml");
    let out_s = out.display().to_string();

    // A key the secret does not have: where, which keys it has.
    let tpl = h.write(
        "missing.tpl",
        "a: {{ kube-dc://default/db/USER }}\n  b: {{ kube-dc://default/db/NOPE }}\n",
    );
    let r = h.run(&["secrets", "inject", "-i", &tpl, "-o", &out_s]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("missing.tpl:2:9"), "{}", r.stderr);
    assert!(r.stderr.contains("PASSWORD, USER"), "{}", r.stderr);
    assert!(!out.exists(), "nothing is written on an error");
    assert!(!r.stdout.contains("app-user"), "{}", r.stdout);

    // A secret that does not exist.
    let tpl = h.write("nosecret.tpl", "x\ny {{ kube-dc://default/nope/KEY }}");
    let r = h
        .run(&["secrets", "inject", "-i", &tpl, "-o", &out_s])
        .code(3);
    assert!(r.stderr.contains("nosecret.tpl:2:6"), "{}", r.stderr);
    assert!(!out.exists());

    // Malformed references: parsed before anything is read.
    let before = audit_head(&h);
    for (text, at) in [
        ("ok\n{{ kube-dc://default/db }}", "bad.tpl:2:4"),
        ("{{ kube-dc://default/db@0/USER }}", "bad.tpl:1:25"),
        ("{{ kube-dc://default/db/USER", "bad.tpl:1:1"),
        ("{{ kube-dc://default/Bad_Name/USER }}", "bad.tpl:1:22"),
    ] {
        let tpl = h.write("bad.tpl", text);
        let r = h
            .run(&["secrets", "inject", "-i", &tpl, "-o", &out_s])
            .code(2);
        assert!(r.stderr.contains(at), "{text:?}: want {at}: {}", r.stderr);
        assert!(!out.exists());
    }
    assert!(value_reads_after(&h, before).is_empty());

    // --dry-run: each reference and whether it resolves; no value read.
    let tpl = h.write(
        "plan.tpl",
        "{{ kube-dc://default/db/USER }}\n{{ kube-dc://default/db/NOPE }} {{ kube-dc://default/gone/X }}\n",
    );
    let before = audit_head(&h);
    let r = h.run(&["--dry-run", "secrets", "inject", "-i", &tpl, "-o", &out_s]);
    assert!(r.stdout.contains("plan.tpl:1:4"), "{}", r.stdout);
    let line = |needle: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {}", r.stdout))
            .to_string()
    };
    assert!(line("db/USER").contains("resolves"));
    assert!(line("db/NOPE").contains("does not resolve"));
    assert!(line("gone/X").contains("does not resolve"));
    assert_ne!(r.code, 0, "a plan with a reference that does not resolve");
    assert!(!out.exists());
    assert!(value_reads_after(&h, before).is_empty(), "no value read");
}

/// The child's environment as it saw it: `VAR` written byte for byte to
/// a file (its output would be masked).
fn seen(h: &Home, var: &str) -> String {
    std::fs::read_to_string(h.path().join(format!("seen-{var}"))).unwrap()
}

fn record(vars: &[&str]) -> String {
    vars.iter()
        .map(|v| format!("printf '%s' \"${{{v}-UNSET}}\" > seen-{v};"))
        .collect()
}

#[test]
fn run_resolves_references_in_env_files_and_passes_the_rest_through() {
    let h = world();
    let base = h.write(
        "base.env",
        "PORT=8080\nDB_PASSWORD=kube-dc://default/db/PASSWORD\nTLS_KEY=kube-dc://default/tls/tls.key\n\
         NOTE=\"see kube-dc://default/db/PASSWORD\"\nALMOST=kube-dc://default/db\nUSER=from-file\n",
    );
    let over = h.write("override.env", "PORT=9090\n");
    let vars = [
        "PORT",
        "DB_PASSWORD",
        "TLS_KEY",
        "NOTE",
        "ALMOST",
        "USER",
        "PASSWORD",
    ];
    let before = audit_head(&h);
    let mut c = h.cmd();
    c.current_dir(h.path()).args([
        "secrets",
        "run",
        "db",
        "--env-file",
        &base,
        "--env-file",
        &over,
        "--",
        "sh",
        "-c",
        &record(&vars),
    ]);
    let o = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(seen(&h, "PORT"), "9090", "a later file overrides");
    assert_eq!(seen(&h, "DB_PASSWORD"), "hunter22-secret");
    assert_eq!(
        seen(&h, "TLS_KEY"),
        PEM,
        "multi-line, trailing newline kept"
    );
    assert_eq!(seen(&h, "NOTE"), "see kube-dc://default/db/PASSWORD");
    assert_eq!(seen(&h, "ALMOST"), "kube-dc://default/db");
    assert!(
        stderr.contains("ALMOST is passed through unchanged"),
        "a value that starts like a reference but is none is named: {stderr}"
    );
    assert_eq!(seen(&h, "USER"), "from-file", "the env file overrides db");
    assert_eq!(seen(&h, "PASSWORD"), "hunter22-secret");
    assert!(!stderr.contains("hunter22"), "{stderr}");
    assert_eq!(
        value_reads_after(&h, before),
        counts(&[("db", 1), ("tls", 1)]),
        "db is named and referenced: still one read"
    );

    // --only and --prefix for whole secrets
    let o = h
        .cmd()
        .current_dir(h.path())
        .args([
            "secrets",
            "run",
            "db",
            "--only",
            "PASSWORD",
            "--prefix",
            "DB_",
            "--",
            "sh",
            "-c",
            &record(&["DB_PASSWORD", "DB_USER", "PASSWORD"]),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(seen(&h, "DB_PASSWORD"), "hunter22-secret");
    assert_eq!(seen(&h, "DB_USER"), "UNSET");
    assert_eq!(seen(&h, "PASSWORD"), "UNSET");

    // A reference that does not resolve: nothing runs.
    let bad = h.write("bad.env", "X=kube-dc://default/db/NOPE\n");
    let r = h.run(&["secrets", "run", "--env-file", &bad, "--", "touch", "ran"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bad.env:1"), "{}", r.stderr);
    assert!(!h.path().join("ran").exists());
}

#[test]
fn run_masks_secret_values_in_the_childs_output() {
    let h = world();
    // The value written in two pieces with a pause between them (two reads
    // on our side, usually: the mask's own tests split at every byte); on
    // stderr too; plain values untouched; the exit code forwarded.
    let script = "printf 'pw=hunter22'; sleep 0.2; printf -- '-secret!\\n'; \
                  echo \"user=$USER\" >&2; echo \"port=$PORT\"; exit 7";
    let env = h.write("app.env", "PORT=8080\n");
    let r = h
        .run(&[
            "secrets",
            "run",
            "db",
            "--env-file",
            &env,
            "--",
            "sh",
            "-c",
            script,
        ])
        .code(7);
    assert_eq!(
        r.stdout, "pw=<concealed by kube-dc>!\nport=8080\n",
        "split value masked; plain values are not secrets"
    );
    assert!(
        r.stderr.contains("user=<concealed by kube-dc>\n"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("app-user"), "{}", r.stderr);

    // A multi-line value, line by line.
    let r = h
        .run(&[
            "secrets",
            "run",
            "tls",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$notes\"",
        ])
        .ok();
    assert!(!r.stdout.contains("first line"), "{}", r.stdout);
    assert!(r.stdout.contains("<concealed by kube-dc>"), "{}", r.stdout);

    let r = h
        .run(&[
            "secrets",
            "run",
            "db",
            "--no-masking",
            "--",
            "sh",
            "-c",
            "echo $PASSWORD",
        ])
        .ok();
    assert_eq!(r.stdout, "hunter22-secret\n");
}

#[test]
fn diff_compares_versions_and_files_with_values_masked() {
    let h = world();
    let r = h.run(&["secrets", "diff", "db"]).code(2);
    assert!(r.stderr.contains("one version"), "{}", r.stderr);
    h.run(&[
        "secrets",
        "put",
        "db",
        "--replace",
        "--from-literal=PASSWORD=rotated-v2-pass",
        "--from-literal=HOST=db.internal",
    ])
    .ok();
    let before = audit_head(&h);
    let r = h.run(&["secrets", "diff", "db"]).code(1);
    let rows: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["KEY", "CHANGE"],
            vec!["HOST", "added"],
            vec!["PASSWORD", "changed"],
            vec!["USER", "removed"],
        ]
    );
    for v in ["hunter22", "rotated", "db.internal", "app-user"] {
        assert!(!r.stdout.contains(v) && !r.stderr.contains(v), "{v} shown");
    }
    assert_eq!(value_reads_after(&h, before), counts(&[("db", 2)]));

    let j = h
        .run(&["secrets", "diff", "db", "1", "2", "-o", "json"])
        .code(1)
        .json();
    assert_eq!(j["equal"], false);
    assert_eq!(j["keys"][1]["key"], "PASSWORD");
    assert_eq!(j["keys"][1]["change"], "changed");
    assert!(j["keys"][1].get("from").is_none(), "masked: {j}");

    let j = h
        .run(&["secrets", "diff", "db", "--show-values", "-o", "json"])
        .code(1)
        .json();
    assert_eq!(j["keys"][1]["from"], "hunter22-secret");
    assert_eq!(j["keys"][1]["to"], "rotated-v2-pass");

    // equal: exit 0
    let r = h.run(&["secrets", "diff", "db", "2", "2"]).ok();
    assert!(r.stdout.contains("unchanged"), "{}", r.stdout);

    // a local env file or directory against the current version
    let same = h.write("same.env", "PASSWORD=rotated-v2-pass\nHOST=db.internal\n");
    h.run(&["secrets", "diff", "db", "--file", &same]).ok();
    let next = h.write(
        "next.env",
        "PASSWORD=rotated-v3-pass\nHOST=db.internal\nPORT=5432\n",
    );
    let j = h
        .run(&["secrets", "diff", "db", "--file", &next, "-o", "json"])
        .code(1)
        .json();
    let changes: BTreeMap<&str, &str> = j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key"].as_str().unwrap(), k["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("HOST", "unchanged"),
            ("PASSWORD", "changed"),
            ("PORT", "added")
        ]
        .into_iter()
        .collect()
    );
    h.write("dir/PASSWORD", "rotated-v2-pass");
    let r = h
        .run(&[
            "secrets",
            "diff",
            "db",
            "--file",
            &h.path().join("dir").display().to_string(),
        ])
        .code(1);
    assert!(r.stdout.contains("HOST") && r.stdout.contains("removed"));
}

/// The same verbs against the backend over HTTP, as a developer of
/// acme/demo.
#[test]
fn inject_run_and_diff_against_the_backend() {
    let be = Remote::start(&[]);
    let h = Home::new();
    let dev = ("dana", &["acme-devs"][..]);
    let pem = h.write("tls.key", PEM);
    be.run(
        &h,
        dev,
        &[
            "secrets",
            "create",
            "tls",
            &format!("--from-file=tls.key={pem}"),
            &format!("--from-literal=config.json={JSON}"),
        ],
    )
    .ok();
    be.run(
        &h,
        dev,
        &[
            "secrets",
            "create",
            "db",
            "--from-literal=PASSWORD=hunter22-secret",
        ],
    )
    .ok();
    let r = be
        .run_stdin(
            &h,
            dev,
            &["secrets", "inject"],
            b"{{ kube-dc://demo/tls/tls.key }}{{ kube-dc://acme/demo/tls/config.json }}\n{{kube-dc://demo/db/PASSWORD}}",
        )
        .ok();
    assert_eq!(r.stdout, format!("{PEM}{JSON}\nhunter22-secret"));

    let env = h.write("app.env", "PW=kube-dc://demo/db/PASSWORD\nPLAIN=yes\n");
    let r = be
        .run(
            &h,
            dev,
            &[
                "secrets",
                "run",
                "--env-file",
                &env,
                "--",
                "sh",
                "-c",
                "echo $PLAIN $PW",
            ],
        )
        .ok();
    assert_eq!(r.stdout, "yes <concealed by kube-dc>\n");

    be.run(
        &h,
        dev,
        &[
            "secrets",
            "put",
            "db",
            "--from-literal=PASSWORD=rotated-v2-pass",
        ],
    )
    .ok();
    let r = be.run(&h, dev, &["secrets", "diff", "db"]).code(1);
    assert!(r.stdout.contains("PASSWORD") && r.stdout.contains("changed"));
    assert!(!r.stdout.contains("hunter22") && !r.stdout.contains("rotated"));
}

/// An interactive child (stdin a terminal) keeps its terminal: it reads
/// what is typed, its output is not masked, and kube-dc says so.
#[test]
fn run_with_a_terminal_keeps_it_and_says_output_is_not_masked() {
    let h = world();
    let bin_dir = std::path::Path::new(BIN)
        .parent()
        .unwrap()
        .display()
        .to_string();
    let path = format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin");
    let t = crate::term::Term::bash_running(
        &h,
        &path,
        "kube-dc secrets run db -- sh -c 'read -r x; echo \"got $x pw=$PASSWORD\"'",
    );
    t.wait_for(&["not masked: stdin is a terminal"], "the note");
    t.run_line("typed");
    t.wait_for(&["got typed pw=hunter22-secret"], "the child's answer");
}
