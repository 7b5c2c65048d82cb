//! `kube-dc ui` driven by keys in a real terminal (tmux) through the real
//! binary on the local context: what it shows, what it changes, and that
//! each change leaves the audit events of its CLI verb.

use std::time::Duration;

use crate::common::*;
use crate::term::{Term, need, world};

/// `kube-dc ui` in a real terminal on the local context: the list shows
/// the sync dots, Enter and `r` show a value, `u` the workload that uses
/// it, and after `q` nothing revealed is left anywhere in the terminal's
/// history.
#[test]
fn ui_in_a_real_terminal() {
    need("bash");
    let (h, path) = world();
    h.write(
        "data/kube-dc/local/manifests/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: payments-api, namespace: local-default }\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: p:1\n\
         \x20         envFrom:\n            - secretRef: { name: db-creds }\n",
    );
    h.run(&[
        "secrets",
        "put",
        "db-creds",
        "--from-literal=PASSWORD=ui-secret-4417",
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "legacy",
        "--from-literal=K=v",
        "--sync-disabled",
    ])
    .ok();
    let t = Term::bash_running(&h, &path, "kube-dc ui");
    let s = t.wait_for(
        &["● Ready", "○ Disabled", "app-config", "legacy"],
        "the list",
    );
    assert!(s.contains("context local"), "{s}");
    assert!(!s.contains("ui-secret-4417"));

    // Filter to db-creds, open it, reveal.
    send(&t, &["/", "d", "b", "-", "c", "Enter", "Enter"]);
    let s = t.wait_for(&["db-creds · detail", "Values", "••••"], "the detail");
    assert!(!s.contains("ui-secret-4417"), "masked until r:\n{s}");
    t.tmux(&["send-keys", "-t", "t", "r"]);
    t.wait_for(
        &["PASSWORD = ui-secret-4417", "revealed (audited)"],
        "the value",
    );

    // Used by: the Deployment that mounts it.
    t.tmux(&["send-keys", "-t", "t", "u"]);
    t.wait_for(&["payments-api", "Deployment", "envFrom"], "the workload");

    // Help lists the keys.
    t.tmux(&["send-keys", "-t", "t", "?"]);
    t.wait_for(&["reveal the values", "OSC 52", "filter the list"], "help");
    send(&t, &["Escape", "q", "q", "q"]);
    // Back at the prompt, with the whole history free of the value.
    t.wait_for(&["bash$ kube-dc ui", "bash$"], "the prompt after q");
    let history = t.tmux(&["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t"]);
    assert!(history.contains("kube-dc ui"), "{history}");
    assert!(
        !history.contains("ui-secret-4417"),
        "a value stayed behind:\n{history}"
    );

    // The reveal went through the API and was audited like `get --value`.
    let ev = h
        .run(&["audit", "list", "--limit", "50", "-o", "json"])
        .ok()
        .json();
    let reads = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["body"]["action"] == "secrets.value.read" && e["body"]["resource"] == "db-creds"
        })
        .count();
    assert_eq!(reads, 1, "{ev}");
}

/// With NO_COLOR the view draws no colour at all; the states stay readable
/// as dots and words.
#[test]
fn ui_without_colour() {
    need("bash");
    let (h, path) = world();
    let t = Term::bash_running(&h, &path, "NO_COLOR=1 kube-dc ui");
    t.wait_for(&["● Ready", "app-config"], "the list");
    let styled = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
    // No foreground colour escape anywhere (SGR 30–37, 90–97, 38;…).
    let colour = regex_free_find_colour(&styled);
    assert!(colour.is_none(), "colour {colour:?} in:\n{styled}");
    t.tmux(&["send-keys", "-t", "t", "q"]);
    t.wait_for(&["bash$"], "the prompt");
}

/// The first SGR colour parameter in `text`, if any.
fn regex_free_find_colour(text: &str) -> Option<String> {
    for seq in text.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if params
            .split(';')
            .any(|p| matches!(p.parse::<u32>(), Ok(30..=38 | 90..=97)))
        {
            return Some(params.to_string());
        }
    }
    None
}

const PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUui77\n-----END CERTIFICATE-----\n";

/// A modelled Kubernetes Secret to import, and a PEM secret to reveal.
fn world_to_change() -> (Home, String) {
    let (h, path) = world();
    h.write(
        "data/kube-dc/local/manifests/legacy.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: { name: legacy-creds, namespace: local-default }\n\
         stringData: { TOKEN: legacy-token-5521 }\n",
    );
    let pem = h.write("tls.crt", PEM);
    h.run(&[
        "secrets",
        "create",
        "tls-cert",
        &format!("--from-file=tls.crt={pem}"),
    ])
    .ok();
    (h, path)
}

/// The highest audit sequence number so far.
pub(crate) fn last_seq(h: &Home) -> u64 {
    let ev = h
        .run(&["audit", "list", "--limit", "1", "-o", "json"])
        .ok()
        .json();
    ev["events"][0]["body"]["seq"].as_u64().unwrap_or(0)
}

/// The events after `after`, oldest first, as `action resource result`,
/// without the reads a view makes to show itself (list, metadata,
/// versions, consumers, audit), which `kube-dc ui` makes on its own
/// schedule and a CLI verb only sometimes.
fn changes_since(h: &Home, after: u64) -> Vec<String> {
    let ev = h
        .run(&["audit", "list", "--limit", "1000", "-o", "json"])
        .ok()
        .json();
    let mut out: Vec<(u64, String)> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["body"])
        .filter(|b| b["seq"].as_u64().unwrap() > after)
        .filter(|b| {
            !matches!(
                b["action"].as_str().unwrap(),
                "secrets.secret.list"
                    | "secrets.metadata.read"
                    | "secrets.version.list"
                    | "secrets.consumer.list"
                    | "secrets.change.watch"
                    | "audit.event.list"
            )
        })
        .map(|b| {
            (
                b["seq"].as_u64().unwrap(),
                format!(
                    "{} {} {}",
                    b["action"].as_str().unwrap(),
                    b["resource"].as_str().unwrap(),
                    b["result"].as_str().unwrap()
                ),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

fn send(t: &Term, keys: &[&str]) {
    for k in keys {
        t.tmux(&["send-keys", "-t", "t", k]);
        std::thread::sleep(Duration::from_millis(60));
    }
}

fn typed(t: &Term, text: &str) {
    t.tmux(&["send-keys", "-t", "t", "-l", text]);
    std::thread::sleep(Duration::from_millis(100));
}

fn value(h: &Home, name: &str) -> serde_json::Value {
    h.run(&["secrets", "get", name, "--value", "-o", "json"])
        .ok()
        .json()["value"]["data"]
        .clone()
}

/// Create with initial values, import, put (and the removed-keys warning),
/// sync off, reveal a PEM, soft delete and restore, destroy, roll back and
/// destroy a version — by keys in `kube-dc ui`; then the same with the CLI
/// verbs in a twin home: the same audit events, in the same order.
#[test]
fn ui_changes_secrets_as_the_cli_verbs_do() {
    need("bash");
    let (h, path) = world_to_change();
    let start = last_seq(&h);
    let clock = TestClock::new();
    let (var, file) = clock.env();
    let t = Term::bash_running(&h, &path, &format!("{var}={file} kube-dc ui --refresh 2"));
    t.wait_for(&["tls-cert", "app-config"], "the list");

    // n: a new secret with two values, written with the create.
    send(&t, &["n"]);
    t.wait_for(&["New secret in local-default", "Name"], "the create form");
    typed(&t, "ui-made");
    send(&t, &["Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab"]);
    typed(&t, "USER");
    send(&t, &["Tab"]);
    typed(&t, "app");
    send(&t, &["Tab"]);
    typed(&t, "PASS");
    send(&t, &["Tab"]);
    typed(&t, "pa$word 1");
    let s = t.screen();
    assert!(!s.contains("pa$word"), "typed values are masked:\n{s}");
    // A third value from a file (Ctrl-O), taken exactly as it is.
    send(&t, &["Tab"]);
    typed(&t, "CERT");
    send(&t, &["Tab", "C-o"]);
    typed(&t, &h.path().join("tls.crt").display().to_string());
    send(&t, &["Enter"]);
    t.wait_for(&["secret/ui-made created, version 1 written"], "the create");
    let v = value(&h, "ui-made");
    assert_eq!(
        (v["USER"].as_str(), v["PASS"].as_str()),
        (Some("app"), Some("pa$word 1")),
        "{v}"
    );
    assert_eq!(v["CERT"], PEM);
    // A refused create keeps the form and says why in it.
    send(&t, &["n"]);
    typed(&t, "ui-made");
    send(&t, &["Enter"]);
    t.wait_for(
        &["New secret in local-default", "already exists"],
        "the refusal in the form",
    );
    send(&t, &["Escape"]);
    t.wait_for(&["cancelled: nothing was sent"], "the form closed");

    // i: import the modelled Secret under another name.
    send(&t, &["i"]);
    t.wait_for(&["Import a Kubernetes Secret"], "the import form");
    typed(&t, "legacy-creds");
    send(&t, &["Tab", "Tab", "Tab"]);
    typed(&t, "imported");
    send(&t, &["Enter"]);
    t.wait_for(
        &["secret/imported imported from legacy-creds"],
        "the import",
    );
    assert_eq!(value(&h, "imported")["TOKEN"], "legacy-token-5521");

    // p: change one value; then remove a key, which is said first.
    send(&t, &["/"]);
    typed(&t, "ui-made");
    send(&t, &["Enter", "Enter"]);
    t.wait_for(&["ui-made · detail", "Values"], "the detail");
    send(&t, &["p"]);
    t.wait_for(
        &["Values of ui-made (version 1)", "type to replace"],
        "the put form",
    );
    // Rows in key order: CERT, PASS, USER.
    send(&t, &["Tab", "Tab", "Tab", "Tab", "Tab"]);
    typed(&t, "admin");
    send(&t, &["Enter"]);
    t.wait_for(&["secret/ui-made version 2 written"], "the put");
    assert_eq!(value(&h, "ui-made")["USER"], "admin");
    send(&t, &["p"]);
    t.wait_for(&["Values of ui-made (version 2)"], "the put form again");
    send(
        &t,
        &["Tab", "Tab", "Tab", "Tab", "C-u", "Tab", "C-u", "Enter"],
    );
    t.wait_for(
        &["this writes a version without USER"],
        "the removed-keys warning",
    );
    let meta = h
        .run(&["secrets", "get", "ui-made", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        meta["openbao"]["currentVersion"], 2,
        "nothing written yet: {meta}"
    );
    send(&t, &["Enter"]);
    t.wait_for(
        &["secret/ui-made version 3 written"],
        "the put without USER",
    );
    let v = value(&h, "ui-made");
    assert!(v.get("USER").is_none() && v["PASS"] == "pa$word 1", "{v}");

    // s: sync off.
    send(&t, &["s"]);
    t.wait_for(&["Sync of ui-made"], "the sync form");
    send(&t, &["Space", "Enter"]);
    t.wait_for(&["secret/ui-made sync updated: Disabled"], "the sync");
    let got = h
        .run(&["secrets", "get", "ui-made", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["sync"]["enabled"], false, "{got}");

    // v: roll back to version 2, then destroy version 1.
    send(&t, &["v"]);
    t.wait_for(
        &["ui-made · versions", "VERSION", "current"],
        "the versions",
    );
    send(&t, &["j", "b"]);
    t.wait_for(
        &["the values of version 2 of ui-made again"],
        "the rollback question",
    );
    send(&t, &["y"]);
    t.wait_for(
        &["version 4 written (the values of version 2)"],
        "the rollback",
    );
    assert_eq!(value(&h, "ui-made")["USER"], "admin");
    send(&t, &["G", "x"]);
    t.wait_for(
        &["Erase version 1 of secret ui-made"],
        "the destroy-version question",
    );
    send(&t, &["y"]);
    t.wait_for(
        &["secret/ui-made version 1 destroyed"],
        "the destroy-version",
    );

    // d: soft delete, then restore from the deleted secrets (t).
    send(&t, &["q", "q", "Escape"]);
    send(&t, &["/"]);
    typed(&t, "ui-made");
    send(&t, &["Enter", "d"]);
    t.wait_for(
        &["Delete secret ui-made and its projected Secret?", "y/N"],
        "the delete question",
    );
    send(&t, &["y"]);
    t.wait_for(&["secret/ui-made deleted (history kept"], "the soft delete");
    send(&t, &["Escape", "t"]);
    t.wait_for(&["deleted secrets", "ui-made"], "the deleted view");
    send(&t, &["Enter"]);
    t.wait_for(&["Restore secret ui-made"], "the restore question");
    send(&t, &["y"]);
    t.wait_for(&["secret/ui-made restored"], "the restore");
    assert_eq!(value(&h, "ui-made")["USER"], "admin");

    // D: destroy, with the name typed.
    send(&t, &["q", "/"]);
    typed(&t, "imported");
    send(&t, &["Enter", "D"]);
    t.wait_for(
        &["Destroy secret imported and every stored version"],
        "the destroy question",
    );
    typed(&t, "imported");
    send(&t, &["Enter"]);
    t.wait_for(&["secret/imported destroyed"], "the destroy");

    // A PEM revealed keeps its lines, and stays through refresh periods.
    send(&t, &["Escape", "/"]);
    typed(&t, "tls-cert");
    send(&t, &["Enter", "Enter", "r"]);
    let s = t.wait_for(
        &["-----BEGIN CERTIFICATE-----", "revealed (audited)"],
        "the PEM",
    );
    let rows: Vec<&str> = s.lines().map(str::trim).collect();
    let begin = rows
        .iter()
        .position(|l| *l == "-----BEGIN CERTIFICATE-----")
        .expect(&s);
    assert_eq!(rows[begin + 1], "MIIBszCCAVmgAwIBAgIUui77", "{s}");
    assert_eq!(rows[begin + 2], "-----END CERTIFICATE-----", "{s}");
    // Twelve seconds on (six refresh periods): the countdown has moved
    // past them and the values are still shown.
    clock.advance(12.0);
    t.wait_for(
        &[
            "MIIBszCCAVmgAwIBAgIUui77",
            "revealed (audited) · hidden in 1",
        ],
        "the reveal after 6 refresh periods",
    );

    send(&t, &["q", "Escape", "q"]);
    t.wait_for(&["bash$"], "the prompt after q");
    let history = t.tmux(&["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t"]);
    for secret in ["pa$word 1", "MIIBszCCAVmgAwIBAgIUui77", "legacy-token-5521"] {
        assert!(
            !history.contains(secret),
            "{secret} stayed behind:\n{history}"
        );
    }
    let ui = changes_since(&h, start);

    // The same with the CLI verbs, in a twin home.
    let (c, _) = world_to_change();
    let start = last_seq(&c);
    let ok = |args: &[&str]| {
        c.run(args).ok();
    };
    // With the test's own value reads where the test above makes them.
    let check = |name: &str| {
        value(&c, name);
    };
    let pem = c.path().join("tls.crt").display().to_string();
    ok(&[
        "secrets",
        "create",
        "ui-made",
        "--from-literal=USER=app",
        "--from-literal=PASS=pa$word 1",
        &format!("--from-file=CERT={pem}"),
    ]);
    check("ui-made");
    c.run(&["secrets", "create", "ui-made"]).code(6);
    ok(&["secrets", "import", "imported", "--from", "legacy-creds"]);
    check("imported");
    c.run_env(
        &["secrets", "edit", "ui-made"],
        &[("EDITOR", "sed -i s/^USER=app$/USER=admin/")],
    )
    .ok();
    check("ui-made");
    c.run_env(
        &["secrets", "edit", "ui-made"],
        &[("EDITOR", "sed -i /^USER=/d")],
    )
    .ok();
    check("ui-made");
    ok(&["secrets", "sync", "ui-made", "--enabled", "false"]);
    ok(&["secrets", "rollback", "ui-made", "--to-version", "2"]);
    check("ui-made");
    ok(&["secrets", "destroy-version", "ui-made", "1", "--yes"]);
    ok(&["secrets", "delete", "ui-made"]);
    ok(&["secrets", "restore", "ui-made"]);
    check("ui-made");
    ok(&["secrets", "delete", "imported", "--destroy", "--yes"]);
    ok(&["secrets", "get", "tls-cert", "--value"]);
    let cli = changes_since(&c, start);
    assert_eq!(
        ui, cli,
        "kube-dc ui and the CLI verbs left different events"
    );
}

/// At 40×15 the detail does not fit: it says so, scrolls to the values,
/// and the key line still ends with help and back.
#[test]
fn ui_in_a_small_terminal_scrolls_to_the_values() {
    need("bash");
    let (h, path) = world();
    h.run(&[
        "secrets",
        "create",
        "small",
        "--description",
        "the payment provider's key, rotated by hand every quarter",
        "--from-literal=A=small-value-8812",
    ])
    .ok();
    let t = Term::bash_running(&h, &path, "kube-dc ui");
    t.wait_for(&["small"], "the list");
    t.tmux(&["resize-window", "-t", "t", "-x", "40", "-y", "15"]);
    send(&t, &["/"]);
    typed(&t, "small");
    send(&t, &["Enter", "Enter"]);
    let s = t.wait_for(
        &["Name", "PgDn more", "? help  q back"],
        "the detail at 40×15",
    );
    assert!(
        !s.contains("Values"),
        "Values is below the fold at first:\n{s}"
    );
    send(&t, &["G"]);
    t.wait_for(&["Values", "••••"], "the end of the detail");
    send(&t, &["g", "r"]);
    t.wait_for(&["A = small-value-8812"], "the revealed value, scrolled to");
    send(&t, &["q", "Escape", "q"]);
    t.wait_for(&["bash$"], "the prompt");
    let history = t.tmux(&["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t"]);
    assert!(!history.contains("small-value-8812"), "{history}");
}
