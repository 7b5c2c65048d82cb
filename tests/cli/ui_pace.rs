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

#[test]
fn ui_refreshes_only_while_its_terminal_has_the_focus() {
    need("bash");
    let (h, path) = world();
    let t = Term::bash(&h, &path);
    let _client = t.attach_focused();
    t.run_line("kube-dc ui --refresh 1");
    t.wait_for(&["app-config", "db-creds"], "the list");

    // Focused: a refresh each second.
    let focused = last_seq(&h);
    until(10, "two refreshes while focused", || {
        lists_after(&h, focused) >= 2
    });

    // Another window takes the focus: the view says so and refreshes no more.
    t.tmux(&["new-window", "-t", "t"]);
    until(10, "the paused refresh named on the status line", || {
        t.screen_of("t:0")
            .contains("refresh paused: the terminal is not focused")
    });
    // A refresh already under way when the focus went may still land.
    std::thread::sleep(Duration::from_millis(500));
    let away = last_seq(&h);
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        lists_after(&h, away),
        0,
        "refreshed while unfocused for 3.5 s at --refresh 1"
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
