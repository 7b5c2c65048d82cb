//! CI pipelines, through the real binaries: a service account that signs
//! itself in with the client-credentials grant at the real OIDC provider
//! (a confidential client whose tokens live 2 seconds), exact incremental
//! audit exports with a cursor, sequences of exports verified together,
//! and the README's nightly script run twice.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::idp::Idp;
use crate::common::*;

const CLIENT_ID: &str = "kube-dc-ci";
const SECRET: &str = "ci-secret-0f3a9c";
const ACTOR: &str = "service-account-kube-dc-ci";

struct Setup {
    idp: Idp,
    be: Remote,
    home: Home,
}

fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let idp = Idp::start_env(&[
        ("ACCESS_TTL", "2".into()),
        ("REFRESH_TTL", "3600".into()),
        ("CI_SECRET", SECRET.into()),
    ]);
    let be = Remote::with_issuer(&idp.issuer, BINDINGS, &[]);
    Setup {
        idp,
        be,
        home: Home::new(),
    }
}

impl Setup {
    fn env(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KUBE_DC_CLIENT_ID", CLIENT_ID.into()),
            ("KUBE_DC_CLIENT_SECRET", secret.into()),
            ("KUBE_DC_ISSUER", self.idp.issuer.clone()),
            ("KUBE_DC_SERVER", self.be.url.clone()),
            ("KUBE_DC_ORG", "acme".into()),
        ]
    }

    fn run(&self, args: &[&str]) -> Run {
        let env = self.env(SECRET);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.home.run_env(args, &env)
    }

    /// `n` audited requests (project listings) as the service account, with
    /// tokens the test gets itself (renewed when refused).
    fn activity(&self, n: usize) {
        activity(&self.idp.issuer, &self.be.url, n);
    }

    /// Every event of acme, by hash, from a full export.
    fn all_hashes(&self) -> Vec<String> {
        let out = self.run(&["audit", "list", "--csv"]).ok();
        hashes(&out.stdout)
    }
}

/// A client-credentials token from the provider, as any CI tool gets one.
async fn cc_token(http: &reqwest::Client, issuer: &str) -> String {
    let r = http
        .post(format!("{issuer}/protocol/openid-connect/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "token: {}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// `n` audited requests (listings of acme-demo) through the API.
fn activity(issuer: &str, server: &str, n: usize) {
    let url = format!("{server}/api/secrets/acme-demo");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut token = cc_token(&http, issuer).await;
        let mut done = 0;
        while done < n {
            let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
            if r.status() == 401 {
                token = cc_token(&http, issuer).await;
                continue;
            }
            assert!(r.status().is_success(), "{}", r.status());
            done += 1;
        }
    });
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

/// The `hash` column of an export, in order.
fn hashes(csv_text: &str) -> Vec<String> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let at = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "hash")
        .expect("a hash column");
    r.records()
        .map(|rec| rec.unwrap().get(at).unwrap().to_string())
        .collect()
}

#[test]
fn a_service_account_signs_itself_in_renews_its_token_and_a_wrong_secret_is_exit_5() {
    let s = setup();
    // Signs itself in: no login, no keyring. (A listing shows the events
    // before its own: the second shows the first.)
    s.run(&["audit", "list", "--org", "-o", "json"]).ok();
    let r = s.run(&["audit", "list", "--org", "-o", "json"]).ok();
    let events = r.json()["events"].as_array().unwrap().clone();
    assert!(
        events.iter().any(|e| e["body"]["actor"] == ACTOR),
        "events name the service account: {events:?}"
    );
    assert_eq!(s.idp.count("grant.success", Some("client_credentials")), 2);

    // A command that outlives its token: an export in pages of 40 events,
    // read slowly, lasts longer than the token's 2 s and the backend's 5 s
    // of leeway; kube-dc renews the token between pages.
    s.activity(400);
    let env = s.env(SECRET);
    let mut cmd = s.home.cmd();
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let cursor = s.home.path().join("slow.cursor");
    let mut child = cmd
        .env("KUBE_DC_AUDIT_PAGE", "40")
        .args(["audit", "list", "--csv", "--cursor"])
        .arg(&cursor)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(60));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{err}");
    assert!(
        took > Duration::from_secs(8),
        "the export must outlive the token and the leeway; it took {took:?}"
    );
    let text = String::from_utf8(got).unwrap();
    assert!(hashes(&text).len() >= 400, "{err}");
    assert!(
        s.idp.count("grant.success", Some("client_credentials")) >= 4,
        "renewed during the export: {} grants",
        s.idp.count("grant.success", Some("client_credentials"))
    );

    // A wrong secret: exit 5, the provider's code, a hint, and never the
    // secret itself.
    let env = s.env("not-the-secret");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = s
        .home
        .run_env(&["audit", "list", "--org", "-v"], &env)
        .code(5);
    assert!(r.stderr.contains("invalid_client"), "{}", r.stderr);
    assert!(r.stderr.contains("KUBE_DC_CLIENT_SECRET"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-the-secret"), "{}", r.stderr);
    // Verbose traces never show the secret or a token.
    let r = s.run(&["audit", "list", "--org", "-v"]).ok();
    assert!(!r.stderr.contains(SECRET), "{}", r.stderr);
    assert!(!r.stderr.contains("eyJ"), "{}", r.stderr);
    // The secret is nowhere on disk.
    assert!(
        files_containing(s.home.path(), SECRET.as_bytes()).is_empty(),
        "the secret was written to disk"
    );
}

#[test]
fn cursor_exports_are_disjoint_complete_verifiable_and_race_free() {
    let s = setup();
    let dir = s.home.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let cursor = dir.join("cursor.json");
    // An export to `name`, with global flags `before` it; the file's path
    // and what the command said.
    let export_with = |before: &[&str], name: &str| -> (String, Run) {
        let out = dir.join(name);
        let mut args = before.to_vec();
        args.extend([
            "audit",
            "list",
            "--csv",
            "--cursor",
            cursor.to_str().unwrap(),
            "--output-file",
            out.to_str().unwrap(),
        ]);
        let r = s.run(&args).ok();
        (out.to_str().unwrap().to_string(), r)
    };
    let export = |name: &str| export_with(&[], name).0;
    s.activity(30);
    let a = export("a.csv");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cursor).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the cursor is owner-only");
    }
    // Writers race with the next export.
    let racing = {
        let (issuer, server) = (s.idp.issuer.clone(), s.be.url.clone());
        std::thread::spawn(move || activity(&issuer, &server, 300))
    };
    let b = export("b.csv");
    racing.join().unwrap();
    let c = export("c.csv");

    let read = |p: &str| hashes(&std::fs::read_to_string(p).unwrap());
    let (ha, hb, hc) = (read(&a), read(&b), read(&c));
    let mut seen = BTreeSet::new();
    for h in ha.iter().chain(&hb).chain(&hc) {
        assert!(seen.insert(h.clone()), "exported twice: {h}");
    }
    // Together they hold every event there was before the last export (the
    // later ones are that export's own and the full export's).
    let all = s.all_hashes();
    let joined: Vec<String> = ha.iter().chain(&hb).chain(&hc).cloned().collect();
    assert_eq!(
        all[..joined.len()],
        joined[..],
        "the exports, in order, are the log's beginning"
    );
    assert!(!hb.is_empty() && !hc.is_empty());
    s.run(&["audit", "verify", &a, &b, &c]).ok();
    // The same backend at another address (`localhost` for `127.0.0.1`):
    // the cursor carries on, the server checking it holds its last event.
    s.activity(5);
    let moved = s.be.url.replace("127.0.0.1", "localhost");
    let (d, r) = export_with(&["--server", &moved], "d.csv");
    assert!(
        r.stderr.contains("continuing from its last event"),
        "{}",
        r.stderr
    );
    assert!(!read(&d).is_empty());
    s.run(&["audit", "verify", &a, &b, &c, &d]).ok();
    // Out of order, or with one missing: not consecutive.
    let r = s.run(&["audit", "verify", &a, &c]).code(10);
    assert!(r.stdout.contains("does not continue"), "{}", r.stdout);

    // A filter with a cursor is refused, as is --since once there is one.
    let c = cursor.to_str().unwrap();
    for (flag, value, says) in [
        (
            "--service",
            "secrets",
            "--service cannot be combined with --cursor",
        ),
        ("--since", "1h", "--since applies to the first export only"),
    ] {
        let r = s
            .run(&["audit", "list", "--csv", "--cursor", c, flag, value])
            .code(2);
        assert!(r.stderr.contains(says), "{}", r.stderr);
    }
}

/// Against an installation without the extension (no trailer, no `after`,
/// as production): one export by time from the cursor's last time, without
/// the rows the previous export held at that time.
#[test]
fn cursor_exports_by_time_and_request_id_where_there_is_no_after() {
    let header = "ts,service,action,result,actor,request_id\n";
    let row = |ts: &str, id: &str| format!("{ts},secrets,secrets.value.read,allowed,alice,{id}\n");
    let first = format!(
        "{header}{}{}{}",
        row("2026-05-12T08:00:00.000Z", "r1"),
        row("2026-05-12T08:00:01.000Z", "r2"),
        row("2026-05-12T08:00:01.000Z", "r3"),
    );
    // The server's second answer repeats the boundary second, with a new
    // event in it and a later one.
    let second = format!(
        "{header}{}{}{}{}",
        row("2026-05-12T08:00:01.000Z", "r2"),
        row("2026-05-12T08:00:01.000Z", "r3"),
        row("2026-05-12T08:00:01.000Z", "r4"),
        row("2026-05-12T08:00:02.000Z", "r5"),
    );
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = calls.clone();
    let stub = Stub::start(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // The first run's paged request, then its export by time; then the
        // second run's export by time.
        let body = if i < 2 { first.clone() } else { second.clone() };
        (200, "text/csv", body.into())
    });
    let h = Home::new();
    let cursor = h.path().join("prod.cursor");
    let export = |name: &str| {
        let out = h.path().join(name);
        h.run_env(
            &[
                "--server",
                &stub.url,
                "audit",
                "list",
                "--csv",
                "--cursor",
                cursor.to_str().unwrap(),
                "--output-file",
                out.to_str().unwrap(),
            ],
            &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")],
        )
        .ok();
        std::fs::read_to_string(out).unwrap()
    };
    let a = export("a.csv");
    assert_eq!(a.lines().count(), 4, "{a}");
    let b = export("b.csv");
    let ids: Vec<&str> = b
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    assert_eq!(ids, ["r4", "r5"], "{b}");
    // The second run asked from the cursor's last time.
    let seen = stub.take();
    let last = seen.last().unwrap();
    assert!(
        last.query
            .as_deref()
            .unwrap_or("")
            .contains("since=2026-05-12T08%3A00%3A01.000Z"),
        "{:?}",
        last.query
    );
    // The same installation under another address: a time-window cursor
    // cannot be checked there, so it takes --cursor-rebind, then carries on.
    let moved = stub.url.replace("127.0.0.1", "localhost");
    let at_moved = |extra: &[&str]| {
        let out = h.path().join("c.csv");
        let mut args = vec![
            "--server",
            moved.as_str(),
            "audit",
            "list",
            "--csv",
            "--cursor",
            cursor.to_str().unwrap(),
            "--output-file",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        h.run_env(&args, &[("KUBE_DC_TOKEN", "t"), ("KUBE_DC_ORG", "acme")])
    };
    let r = at_moved(&[]).code(2);
    assert!(r.stderr.contains("--cursor-rebind"), "{}", r.stderr);
    assert!(stub.take().is_empty(), "nothing asked before the refusal");
    let r = at_moved(&["--cursor-rebind"]).ok();
    assert!(
        r.stderr.contains("continuing from its last event"),
        "{}",
        r.stderr
    );
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cursor).unwrap()).unwrap();
    assert_eq!(
        c["server"],
        moved.as_str(),
        "the cursor records the new address"
    );
}

#[test]
fn the_nightly_script_runs_twice_and_each_file_continues_the_last() {
    let s = setup();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nightly-audit-export.sh");
    let dir = s.home.path().join("nightly");
    let run = || {
        let env = s.env(SECRET);
        let mut sh = std::process::Command::new("sh");
        sh.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", s.home.path())
            .env("XDG_CONFIG_HOME", s.home.path().join("config"))
            .env("XDG_DATA_HOME", s.home.path().join("data"))
            .env("AUDIT_DIR", &dir)
            .env("KUBE_DC", env!("CARGO_BIN_EXE_kube-dc"));
        for (k, v) in &env {
            sh.env(k, v);
        }
        let o = sh.arg(&script).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        );
        assert!(
            o.status.success(),
            "nightly script failed:\n{stdout}\n{stderr}"
        );
        stdout
    };
    s.activity(20);
    let first = run();
    assert!(first.contains("event(s) verified"), "{first}");
    // At once: the files are numbered, so a run in the same second gets a
    // name of its own.
    s.activity(20);
    let second = run();
    assert!(second.contains("continues"), "{second}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let a = hashes(&std::fs::read_to_string(&files[0]).unwrap());
    let b = hashes(&std::fs::read_to_string(&files[1]).unwrap());
    assert!(a.iter().all(|h| !b.contains(h)), "disjoint");
    let all = s.all_hashes();
    let joined: Vec<String> = a.iter().chain(&b).cloned().collect();
    assert_eq!(
        all[..joined.len()],
        joined[..],
        "together, every event in order"
    );
}

/// "Which identity does this job run as?" — the first question after a
/// 403 in CI — answered for the service account the environment names.
#[test]
fn whoami_names_the_service_account_of_the_environment() {
    let s = setup();
    let w = s.run(&["whoami", "-o", "json"]).ok().json();
    assert_eq!(w["user"], ACTOR, "{w}");
    assert_eq!(w["org"], "acme", "{w}");
    assert_eq!(
        w["credential"],
        format!("service account {CLIENT_ID} (KUBE_DC_CLIENT_ID)"),
        "{w}"
    );
    let t = s.run(&["whoami"]).ok();
    assert!(t.stdout.contains(ACTOR), "{}", t.stdout);
    assert!(!t.stdout.contains("eyJ"), "never the token: {}", t.stdout);
}
