//! `kube-dc ui`'s refresh policy in a real terminal with a client attached:
//! each refresh is an audited list, so the view refreshes on its period
//! only while its terminal has the focus, and at once when it is back.

use std::time::Duration;

use crate::common::*;
use crate::term::{Term, need, world};
use crate::ui::last_seq;

/// The view's refreshes (`secrets.secret.list` events) after `after`.
fn lists_after(h: &Home, after: u64) -> usize {
    let ev = h
        .run(&["audit", "list", "--limit", "1000", "-o", "json"])
        .ok()
        .json();
    ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["body"])
        .filter(|b| b["seq"].as_u64().unwrap() > after)
        .filter(|b| b["action"] == "secrets.secret.list")
        .count()
}

/// Waits (up to `secs`) until `ok` holds.
fn until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    crate::common::until(secs, what, || ok().then_some(()));
}

/// The change-stream event the view opens with.
fn watch_opened(h: &Home) -> bool {
    let ev = h
        .run(&[
            "audit",
            "list",
            "--action",
            "secrets.change.watch",
            "-o",
            "json",
        ])
        .ok()
        .json();
    !ev["events"].as_array().unwrap().is_empty()
}

#[test]
fn ui_refreshes_on_a_change_only_while_its_terminal_has_the_focus() {
    need("bash");
    let (h, path) = world();
    let t = Term::bash(&h, &path);
    let _client = t.attach_focused();
    t.run_line("kube-dc ui --refresh 1");
    t.wait_for(&["app-config", "db-creds"], "the list");
    until(10, "the change stream opened", || watch_opened(&h));

    // Focused: a change made elsewhere refreshes the view (and no period
    // does: --refresh 1 is for installations without a stream).
    let before = last_seq(&h);
    h.run(&["secrets", "set", "app-config", "A=2"]).ok();
    until(10, "a refresh after the change", || {
        lists_after(&h, before) >= 1
    });

    // Another window takes the focus: the view says so and refreshes no more.
    t.tmux(&["new-window", "-t", "t"]);
    h.run(&["secrets", "set", "app-config", "A=3"]).ok();
    until(10, "the paused refresh named on the status line", || {
        t.screen_of("t:0")
            .contains("refresh paused: the terminal is not focused")
    });
    // A refresh already under way when the focus went may still land.
    std::thread::sleep(Duration::from_millis(500));
    let away = last_seq(&h);
    h.run(&["secrets", "set", "app-config", "A=4"]).ok();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        lists_after(&h, away),
        0,
        "refreshed on a change while unfocused"
    );

    // Focus back: the held refresh happens, and the pause is no longer named.
    t.tmux(&["select-window", "-t", "t:0"]);
    until(5, "a refresh once focused again", || {
        lists_after(&h, away) >= 1
    });
    until(5, "the pause message gone", || {
        !t.screen_of("t:0").contains("refresh paused")
    });
    t.tmux(&["send-keys", "-t", "t:0", "q"]);
}

/// An open view that nobody uses writes nothing to the audit log: five
/// minutes on its clock, keys that only move the view, no event.
#[test]
fn an_idle_view_writes_no_audit_event() {
    need("bash");
    let (h, path) = world();
    let clock = TestClock::new();
    let (var, file) = clock.env();
    let t = Term::bash_running(&h, &path, &format!("{var}={file} kube-dc ui --refresh 60"));
    t.wait_for(&["app-config", "db-creds"], "the list");
    until(10, "the change stream opened", || watch_opened(&h));
    let loaded = last_seq(&h);
    for _ in 0..5 {
        clock.advance(60.0);
        // A key that only shows the help and one that closes it: the loop
        // runs and looks at its schedule.
        t.tmux(&["send-keys", "-t", "t", "?"]);
        t.wait_for(&["namespace local-default · help"], "the help");
        t.tmux(&["send-keys", "-t", "t", "Escape"]);
    }
    t.wait_for(&["app-config"], "the list again");
    let ev = h
        .run(&["audit", "list", "--limit", "100", "-o", "json"])
        .ok()
        .json();
    let after: Vec<&serde_json::Value> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["body"]["seq"].as_u64().unwrap() > loaded)
        .filter(|e| e["body"]["action"] != "audit.event.list")
        .collect();
    assert!(after.is_empty(), "an idle view wrote {after:?}");
    t.tmux(&["send-keys", "-t", "t", "q"]);
}

/// Against an installation without a change stream the view refreshes on
/// its period, and says so.
#[test]
fn without_a_change_stream_the_view_refreshes_on_its_period_and_says_so() {
    need("bash");
    let stub = Stub::start(|s| {
        match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/api/secrets/acme-demo") => (
            200,
            "application/json",
            br#"{"items":[{"name":"db","namespace":"acme-demo","type":"opaque","sync":{"enabled":true},"status":{"currentVersion":1}}]}"#.to_vec(),
        ),
        _ => (404, "text/plain", b"404 page not found".to_vec()),
    }
    });
    let (h, path) = world();
    let t = Term::bash_running(
        &h,
        &path,
        &format!(
            "KUBE_DC_TOKEN=t kube-dc --server {} -n acme-demo ui --refresh 1",
            stub.url
        ),
    );
    t.wait_for(&["no change stream here: refreshing every 1s"], "the note");
    until(10, "two refreshes on the period", || {
        stub.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == "/api/secrets/acme-demo")
            .count()
            >= 3
    });
    t.tmux(&["send-keys", "-t", "t", "q"]);
}
