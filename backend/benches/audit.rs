//! B3: audit queries over 1,000,000 events, every documented filter alone
//! and combined, timed through the store (the rows and their JSON bodies,
//! as the API answers) beside the same SQL run alone by the `sqlite3`
//! shell (its own `.timer`), in one run.
//!
//! `cargo bench -p kube-dc-backend --bench audit` (needs `sqlite3` on PATH). Prints a table;
//! passes or fails nothing.

#![allow(clippy::disallowed_macros)] // a benchmark prints its figures

use std::path::Path;
use std::time::Instant;

use kube_dc_backend::store::{AuditFilter, GENESIS_HASH, Store, chain_hash};
use kube_dc_testsupport::bench::{median, sqlite3_time};

const EVENTS: u64 = 1_000_000;
const RUNS: usize = 7;

/// A valid log (one hash chain per organization) of `n` events over the
/// last 30 days: 20 projects, 200 actors plus a rare `carol`, mostly
/// secrets events, some denied and some errors.
fn seed(dir: &Path, n: u64) {
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(dir, None).unwrap();
    drop(Store::open(dir, cipher).unwrap());
    let mut c = rusqlite::Connection::open(dir.join("kube-dc.db")).unwrap();
    c.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = c.transaction().unwrap();
    let now = kube_dc_backend::clock::now_ms();
    let start = now - 30 * 86_400_000;
    let step = (now - start) / n as i64;
    let mut prev = std::collections::HashMap::<&str, String>::new();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .unwrap();
        for i in 0..n {
            let ts = start + i as i64 * step;
            let org = if i % 10 == 9 { "globex" } else { "acme" };
            let project = format!("p{}", i % 20);
            let service = match i % 10 {
                0 => "org-admin",
                1 => "audit",
                _ => "secrets",
            };
            let result = match i % 50 {
                0..=3 => "denied",
                4 => "error",
                _ => "allowed",
            };
            let actor = if i % 997 == 0 {
                "carol".to_string()
            } else {
                format!("user{}", i % 200)
            };
            let email = format!("{actor}@example.com");
            let body = format!(
                r#"{{"action":"secrets.value.read","actor":"{actor}","actor_email":"{email}","namespace":"{org}-{project}","org":"{org}","project":"{project}","request_id":"req-{i}","resource":"s{}","result":"{result}","service":"{service}","source_ip":"10.0.0.1","status":200}}"#,
                i % 100
            );
            let p = prev.entry(org).or_insert_with(|| GENESIS_HASH.to_string());
            let hash = chain_hash(p, ts, &body);
            st.execute(rusqlite::params![
                ts,
                org,
                project,
                service,
                result,
                actor,
                email,
                actor,
                body,
                p.as_str(),
                hash
            ])
            .unwrap();
            *p = hash;
        }
    }
    tx.commit().unwrap();
    // As a store from before the actor index: opening it migrates.
    c.pragma_update(None, "user_version", 2).unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    seed(dir.path(), EVENTS);
    println!("seeded {EVENTS} events in {:.1?}", t.elapsed());
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(dir.path(), None).unwrap();
    let t = Instant::now();
    let store = Store::open(dir.path(), cipher).unwrap();
    println!(
        "opened it (the actor index migration) in {:.1?}",
        t.elapsed()
    );
    let now = kube_dc_backend::clock::now_ms();
    let base = || AuditFilter {
        org: "acme".into(),
        limit: Some(500),
        ..Default::default()
    };
    let cases: Vec<(&str, AuditFilter)> = vec![
        ("no filter (newest 500)", base()),
        (
            "since=1h",
            AuditFilter {
                since_ms: Some(now - 3_600_000),
                ..base()
            },
        ),
        (
            "actor=carol",
            AuditFilter {
                actor: Some("carol".into()),
                ..base()
            },
        ),
        (
            "service=org-admin",
            AuditFilter {
                service: Some("org-admin".into()),
                ..base()
            },
        ),
        (
            "result=error",
            AuditFilter {
                result: Some("error".into()),
                ..base()
            },
        ),
        (
            "project=p3 result=denied",
            AuditFilter {
                project: Some("p3".into()),
                result: Some("denied".into()),
                ..base()
            },
        ),
        (
            "since=1d actor=carol result=allowed",
            AuditFilter {
                since_ms: Some(now - 86_400_000),
                actor: Some("carol".into()),
                result: Some("allowed".into()),
                ..base()
            },
        ),
        (
            "project=p3 service=secrets since=7d",
            AuditFilter {
                project: Some("p3".into()),
                service: Some("secrets".into()),
                since_ms: Some(now - 7 * 86_400_000),
                ..base()
            },
        ),
    ];
    println!(
        "\n{:<40} {:>10} {:>10} {:>8} {:>6}",
        "B3 audit query, 1M events", "store p50", "sqlite3", "ratio", "rows"
    );
    let (mut worst_p50, mut worst_ratio) = (0f64, 0f64);
    let count = cases.len();
    for (name, f) in cases {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..RUNS {
            // The rows and the JSON of their bodies, as the API answers.
            let t = Instant::now();
            let found = store.query_audit(&f).unwrap();
            let mut json = Vec::new();
            for r in &found {
                r.write_body_json(&mut json).unwrap();
            }
            times.push(t.elapsed());
            rows = found.len();
        }
        let ours = median(times);
        let query = store.audit_query_sql(&f).unwrap();
        let reference = sqlite3_time(&dir.path().join("kube-dc.db"), &query);
        let ratio = ours.as_secs_f64() / reference.as_secs_f64().max(1e-6);
        println!(
            "{name:<40} {:>8.2}ms {:>8.2}ms {:>7.2}x {rows:>6}",
            ours.as_secs_f64() * 1e3,
            reference.as_secs_f64() * 1e3,
            ratio
        );
        worst_p50 = worst_p50.max(ours.as_secs_f64() * 1e3);
        worst_ratio = worst_ratio.max(ratio);
    }
    println!();
    kube_dc_testsupport::bench::row(
        "B3",
        &format!("audit queries over 1M events, {count} filters"),
        &format!("slowest p50 {worst_p50:.2} ms; worst {worst_ratio:.2}x sqlite3"),
        "p50 ≤ 30 ms; ≤ 2× sqlite3",
        worst_p50 <= 30.0 && worst_ratio <= 2.0,
    );
}
