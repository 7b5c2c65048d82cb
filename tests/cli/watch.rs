//! Following changes: `secrets list --watch` and `secrets get --watch`
//! through the built binaries against `kube-dc-backend serve` (its change
//! stream: order, once, no values, resumed across a restart, refused
//! without access, a slow reader that holds no writer back) and on the
//! local context (another process's change, seen promptly).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

const ADMIN: (&str, &[&str]) = ("ada", &["acme-project-admins"]);

/// A running `kube-dc … --watch -o json`: its stdout's lines as they come.
pub(crate) struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Watching {
    pub(crate) fn start(mut c: std::process::Command) -> Self {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let lines = pipe(Box::new(child.stdout.take().unwrap()));
        let stderr = pipe(Box::new(child.stderr.take().unwrap()));
        Watching {
            child,
            lines,
            stderr,
        }
    }

    /// The next line as JSON, waiting up to 20 s.
    #[track_caller]
    pub(crate) fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let err: Vec<String> = self.stderr.try_iter().collect();
                panic!("no line from the watcher; its stderr: {err:?}")
            });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// The next change: (secret, change, version).
    #[track_caller]
    fn change(&self) -> (String, String, Option<u64>) {
        let v = self.next();
        assert_eq!(v["type"], "change", "{v}");
        (
            v["secret"].as_str().unwrap().to_string(),
            v["change"].as_str().unwrap().to_string(),
            v["version"].as_u64(),
        )
    }

    /// Stops it as a service manager does (SIGTERM) and waits: its exit
    /// status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    /// The lines it printed that were not read yet (after it stopped).
    pub(crate) fn drain(&self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            out.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")));
        }
        out
    }

    pub(crate) fn stderr_so_far(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn change(secret: &str, change: &str, version: Option<u64>) -> (String, String, Option<u64>) {
    (secret.to_string(), change.to_string(), version)
}

#[test]
fn a_watcher_sees_each_change_once_in_order_and_no_value_also_across_a_restart() {
    let mut be = Remote::start(&[]);
    let h = Home::new();
    let w = Watching::start(be.cli(&h, ADMIN, &["secrets", "list", "-w", "-o", "json"]));
    let list = w.next();
    assert_eq!(
        list["items"],
        serde_json::json!([]),
        "the list first: {list}"
    );

    for args in [
        &[
            "secrets",
            "create",
            "db",
            "--from-literal=PASSWORD=hunter22-secret",
        ][..],
        &[
            "secrets",
            "put",
            "db",
            "--from-literal=PASSWORD=rotated-v2-pass",
        ],
        &["secrets", "sync", "db", "--enabled", "false"],
        &["secrets", "delete", "db", "--yes"],
        &["secrets", "restore", "db"],
        &["secrets", "destroy-version", "db", "1", "--yes"],
        &["secrets", "create", "marker"],
    ] {
        be.run(&h, ADMIN, args).ok();
    }
    let seen: Vec<_> = (0..7).map(|_| w.change()).collect();
    let what: Vec<(&str, &str)> = seen
        .iter()
        .map(|(s, c, _)| (s.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        what,
        [
            ("db", "created"),
            ("db", "new-version"),
            ("db", "sync-changed"),
            ("db", "deleted"),
            ("db", "restored"),
            ("db", "version-destroyed"),
            ("marker", "created"),
        ],
        "each change once, in order, the marker last: {seen:?}"
    );
    assert_eq!(seen[0].2, Some(1));
    assert_eq!(seen[1].2, Some(2));
    assert_eq!(seen[5].2, Some(1), "the version destroyed");

    // Killed and started again: a change made before the watcher is back
    // arrives once, and nothing before it again.
    be.restart();
    be.run(
        &h,
        ADMIN,
        &[
            "secrets",
            "put",
            "db",
            "--from-literal=PASSWORD=rotated-v3-pass",
        ],
    )
    .ok();
    be.run(&h, ADMIN, &["secrets", "create", "marker-2"]).ok();
    assert_eq!(w.change(), change("db", "new-version", Some(3)));
    assert_eq!(w.change().0, "marker-2");
    assert!(
        w.stderr_so_far().contains("reconnecting"),
        "the watcher says it lost the stream"
    );

    // No value anywhere in what it printed.
    drop(w);
    let audit = be
        .run(
            &h,
            ADMIN,
            &[
                "audit",
                "list",
                "--action",
                "secrets.change.watch",
                "-o",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(
        audit["events"].as_array().unwrap().len(),
        2,
        "one event per stream opened (first, and after the restart), none per change: {audit}"
    );
}

#[test]
fn values_never_reach_the_stream_and_a_stranger_is_refused() {
    let be = Remote::start(&[]);
    let h = Home::new();
    let w = Watching::start(be.cli(&h, ADMIN, &["secrets", "get", "db", "-w", "-o", "json"]));
    // get -w of a secret that does not exist yet: not found, said.
    let status = {
        let mut w = w;
        w.child.wait().unwrap()
    };
    assert_eq!(status.code(), Some(3));

    be.run(
        &h,
        ADMIN,
        &[
            "secrets",
            "create",
            "db",
            "--from-literal=K=first-secret-value",
        ],
    )
    .ok();
    let w = Watching::start(be.cli(&h, ADMIN, &["secrets", "get", "db", "-w", "-o", "json"]));
    assert_eq!(w.next()["name"], "db");
    be.run(&h, ADMIN, &["secrets", "create", "other"]).ok();
    be.run(
        &h,
        ADMIN,
        &["secrets", "set", "db", "K=second-secret-value"],
    )
    .ok();
    let v = w.next();
    assert_eq!(v["secret"], "db", "only db's changes: {v}");
    assert_eq!(v["change"], "new-version");
    let text = v.to_string();
    assert!(!text.contains("secret-value"), "{text}");

    let stranger = ("eve", &["other-team"][..]);
    let r = be.run(&h, stranger, &["secrets", "list", "-w"]).code(4);
    assert!(
        r.stderr.contains("denied") || r.stderr.contains("403"),
        "{}",
        r.stderr
    );
}

/// A reader that does not read holds no writer back. When it reads again,
/// with `every=true` it gets every version, in order, once; without, the
/// versions it had not been sent come as the newest (fewer lines, in
/// order, none twice, ending at the last version).
#[test]
fn a_slow_watcher_holds_no_writer_back_and_misses_nothing() {
    let be = Remote::start(&[]);
    let h = Home::new();
    be.run(
        &h,
        ADMIN,
        &["secrets", "create", "busy", "--from-literal=N=0"],
    )
    .ok();
    let token = be.token(ADMIN.0, ADMIN.1);
    let url = be.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let open = |query: &'static str| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                let s = http
                    .get(format!("{url}/api/watch/secrets/acme-demo{query}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(s.status(), 200);
                s
            }
        };
        let mut every = open("?every=true").await;
        let mut newest = open("").await;
        // 1,500 versions written while the watchers read nothing.
        const N: usize = 1500;
        for i in 1..=N {
            let r = http
                .put(format!("{url}/api/secrets/acme-demo/busy/values"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"data": {"N": i.to_string()}}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "write {i}: {}", r.status());
        }
        let last = N as u64 + 1;
        // Now they read: every version, once, in order…
        let versions = read_versions(&mut every, last).await;
        let want: Vec<u64> = (2..=last).collect();
        assert_eq!(versions, want);
        // …or the newest of what was not sent yet.
        let versions = read_versions(&mut newest, last).await;
        assert_eq!(versions.last(), Some(&last));
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "in order, none twice: {versions:?}"
        );
        assert!(
            versions.len() < N,
            "{} lines for {N} versions: nothing was coalesced",
            versions.len()
        );
    });
}

/// The versions in a stream's change lines, until `last`.
async fn read_versions(stream: &mut reqwest::Response, last: u64) -> Vec<u64> {
    let mut buf = Vec::new();
    let mut versions = Vec::new();
    let began = std::time::Instant::now();
    while versions.last() != Some(&last) {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "version {last} never came: {versions:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .expect("the stream ended");
        buf.extend_from_slice(&chunk);
        while let Some(at) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=at).collect();
            let v: Value = serde_json::from_slice(&line).unwrap();
            if v["type"] == "change" {
                versions.push(v["version"].as_u64().unwrap());
            }
        }
    }
    versions
}

#[test]
fn on_the_local_context_another_process_change_is_seen() {
    let h = Home::new();
    h.run(&["secrets", "create", "db", "--from-literal=K=v1-value"])
        .ok();
    let mut c = h.cmd();
    c.args(["secrets", "list", "--watch"]);
    let w = Watching::start(c);
    // The table first.
    let header = w
        .lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the list");
    assert!(header.contains("NAME"), "{header}");
    let _row = w.lines.recv_timeout(Duration::from_secs(20)).unwrap();
    h.run(&["secrets", "set", "db", "K=v2-value"]).ok();
    let line = w
        .lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the change");
    assert!(
        line.contains("new-version") && line.contains("db") && line.contains("v2"),
        "{line}"
    );
    assert!(!line.contains("v2-value"));
}

/// `secrets run --watch`: a burst of three changes restarts the command
/// once, with the new value, after one audited read; a change of the
/// projection only does not restart it; Ctrl-C ends it with its code.
#[test]
fn run_watch_restarts_once_for_a_burst_with_the_new_value() {
    let h = Home::new();
    h.run(&[
        "secrets",
        "create",
        "db",
        "--from-literal=PASSWORD=first-pass",
    ])
    .ok();
    let starts = h.path().join("starts");
    let script = format!(
        "printf '%s\\n' \"$PASSWORD\" >> {}; trap 'exit 0' TERM; while :; do sleep 0.05; done",
        starts.display()
    );
    let mut c = h.cmd();
    c.args([
        "-v", "secrets", "run", "db", "--watch", "--grace", "5s", "--", "sh", "-c", &script,
    ]);
    let w = Watching::start(c);
    let read = || std::fs::read_to_string(&starts).unwrap_or_default();
    until(20, "the command started", || {
        (!read().is_empty()).then_some(())
    });
    // Three writes at once: one burst.
    let puts: Vec<_> = ["burst-1", "burst-2", "burst-3"]
        .iter()
        .map(|v| {
            h.cmd()
                .args([
                    "secrets",
                    "put",
                    "db",
                    &format!("--from-literal=PASSWORD={v}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in puts {
        assert!(p.wait().unwrap().success());
    }
    let last = h
        .run(&["secrets", "get", "db", "--key", "PASSWORD"])
        .ok()
        .stdout;
    until_seen(20, "restarted with the last value", || {
        let s = read();
        (s == format!("first-pass\n{last}\n"))
            .then_some(())
            .ok_or(s)
    });
    // The projection only: no restart (the value change after it shows
    // the watcher has seen it).
    h.run(&["secrets", "sync", "db", "--refresh", "2h"]).ok();
    h.run(&["secrets", "put", "db", "--from-literal=PASSWORD=after-sync"])
        .ok();
    until_seen(20, "restarted once more, for the value only", || {
        let s = read();
        (s == format!("first-pass\n{last}\nafter-sync\n"))
            .then_some(())
            .ok_or(s)
    });
    // One audited value read at the start and one per restart: the
    // requests the command made (its -v trace names their ids).
    let stderr = w.stderr_so_far();
    let ids: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> x-request-id: "))
        .collect();
    let a = h
        .run(&[
            "audit",
            "list",
            "--action",
            "secrets.value.read",
            "--limit",
            "100",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let reads = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ids.contains(&e["body"]["request_id"].as_str().unwrap_or("")))
        .count();
    assert_eq!(reads, 3, "{stderr}");
    assert_eq!(
        stderr.matches("restarting the command").count(),
        2,
        "{stderr}"
    );

    // A re-read that fails keeps the command running, and says why.
    h.run(&["secrets", "delete", "db", "--yes"]).ok();
    let mut said = String::new();
    until_seen(20, "the failed re-read said", || {
        said.push_str(&w.stderr_so_far());
        said.contains("reading the values again failed")
            .then_some(())
            .ok_or(said.clone())
    });
    assert!(said.contains("keeps running with the old ones"), "{said}");
    assert_eq!(
        read(),
        format!("first-pass\n{last}\nafter-sync\n"),
        "not restarted"
    );

    // Ctrl-C: forwarded; the command's code comes back.
    let mut w = w;
    // SAFETY: kill(2) with the pid of a child we spawned.
    unsafe {
        libc::kill(w.child.id() as i32, libc::SIGINT);
    }
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "sh ends with 130 on SIGINT");
}
