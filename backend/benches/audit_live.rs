//! B3': audit queries on a log made by real requests. `kube-dc-backend
//! serve` takes value reads from `wrk` for `BENCH_SECONDS` (default 20)
//! from 11 users, one request in a thousand by a 12th user who is denied;
//! then each filter is asked through the API (the org admin's view, or a
//! project's) and timed beside the same SQL run alone by the `sqlite3`
//! shell, with the plan SQLite chose for it.
//!
//! `cargo bench -p kube-dc-backend --bench audit_live` (after `cargo build
//! --release --workspace`; needs `wrk` and `sqlite3`).

#![allow(clippy::disallowed_macros)] // a benchmark prints its figures

use std::time::{Duration, Instant};

use kube_dc_backend::store::{AuditFilter, Store};
use kube_dc_testsupport::bench::{Server, median, row, sqlite3_time, wrk};

const RUNS: usize = 9;
const USERS: usize = 11;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&rt, work.path());
    let secret = server.create_db("bench-value");
    let path = secret
        .strip_prefix(&server.url)
        .expect("the secret's URL is on the server")
        .to_string();

    // Value reads by 11 users of the project; one in a thousand by a user
    // with no role there (denied).
    let tokens: Vec<String> = (0..USERS)
        .map(|i| {
            server
                .issuer
                .token(&format!("user{i}"), &["devs"], Some("acme"))
        })
        .collect();
    let outsider = server.issuer.token("mallory", &[], Some("acme"));
    let script = work.path().join("users.lua");
    let lua_list = tokens
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &script,
        format!(
            "local tokens = {{ {lua_list} }}\n\
             local outsider = \"{outsider}\"\n\
             local n = 0\n\
             request = function()\n\
               n = n + 1\n\
               local t = tokens[(n % {USERS}) + 1]\n\
               if n % 1000 == 0 then t = outsider end\n\
               return wrk.format(\"GET\", \"{path}?includeValue=true\", {{[\"Authorization\"] = \"Bearer \" .. t}})\n\
             end\n"
        ),
    )
    .unwrap();
    println!("\n== B3': audit queries on a log made by real requests ==");
    wrk(
        "value reads by 11 users (0.1% denied)",
        &format!("{}/", server.url),
        &server.token,
        Some(&script),
    );

    let now_s = kube_dc_backend::clock::now_ms() / 1000;
    let base = |project: Option<&str>| AuditFilter {
        org: "acme".into(),
        project: project.map(str::to_string),
        limit: Some(500),
        ..Default::default()
    };
    // (label, API path and query, the same filter for the store)
    let cases: Vec<(&str, String, AuditFilter)> = vec![
        (
            "no filter (newest 500)",
            "/api/audit/orgs/acme".into(),
            base(None),
        ),
        (
            "since=1h",
            format!("/api/audit/orgs/acme?since={}", now_s - 3600),
            AuditFilter {
                since_ms: Some((now_s - 3600) * 1000),
                ..base(None)
            },
        ),
        (
            "project=demo result=denied",
            "/api/audit/orgs/acme/projects/demo?result=denied".into(),
            AuditFilter {
                result: Some("denied".into()),
                ..base(Some("demo"))
            },
        ),
        (
            "actor=user3",
            "/api/audit/orgs/acme?actor=user3".into(),
            AuditFilter {
                actor: Some("user3".into()),
                ..base(None)
            },
        ),
        (
            "service=audit",
            "/api/audit/orgs/acme?service=audit".into(),
            AuditFilter {
                service: Some("audit".into()),
                ..base(None)
            },
        ),
        (
            "since=1h result=denied",
            format!("/api/audit/orgs/acme?since={}&result=denied", now_s - 3600),
            AuditFilter {
                since_ms: Some((now_s - 3600) * 1000),
                result: Some("denied".into()),
                ..base(None)
            },
        ),
    ];
    // One kept-alive connection, as a client paging through would use;
    // one query first, to warm the server's caches.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let mut timings = Vec::new();
    for (_, query, _) in cases.iter().take(1).chain(&cases) {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let r = http
                .get(format!("{}{query}", server.url))
                .bearer_auth(&server.token)
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{query}: {}", r.status());
            size = r.bytes().unwrap().len();
            times.push(t.elapsed());
        }
        timings.push((median(times), size));
    }
    timings.remove(0);
    let url = server.url.clone();
    drop(server);
    println!("(wrk's non-2xx answers are the outsider's denied reads)");

    // The same SQL in sqlite3, on the log as the server left it.
    let data = work.path().join("data");
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(&data, None).unwrap();
    let store = Store::open(&data, cipher).unwrap();
    let db = data.join(Store::DB_FILE);
    let events: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    println!("{events} events in the log ({url} stopped)");
    println!(
        "\n{:<28} {:>9} {:>9} {:>9} {:>6} {:>12}  plan",
        "query", "API p50", "store p50", "sqlite3", "ratio", "before (v5)"
    );
    let (mut worst_api, mut worst_ratio) = (Duration::ZERO, 0f64);
    for ((label, _, filter), (api, _)) in cases.iter().zip(timings) {
        // The rows and the JSON of their bodies, as the API answers.
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let found = store.query_audit(filter).unwrap();
            let mut json = Vec::new();
            for r in &found {
                r.write_body_json(&mut json).unwrap();
            }
            times.push(t.elapsed());
        }
        let ours = median(times);
        let sql = store.audit_query_sql(filter).unwrap();
        let reference = sqlite3_time(&db, &sql);
        // The plan every filter had before schema 6: the log newest first.
        let before = sqlite3_time(&db, &with_index(&sql, "audit_org_seq"));
        let ratio = ours.as_secs_f64() / reference.as_secs_f64().max(1e-6);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{label:<28} {:>7.2}ms {:>7.2}ms {:>7.2}ms {ratio:>5.2}x {:>10.2}ms  {}",
            ms(api),
            ms(ours),
            ms(reference),
            ms(before),
            query_plan(&db, &sql)
        );
        worst_api = worst_api.max(api);
        worst_ratio = worst_ratio.max(ratio);
    }
    println!(
        "(API: through HTTP, the JSON of up to 500 events; store: the query and that JSON, in process;"
    );
    println!(
        " sqlite3: the same SQL in the sqlite3 shell; before: that SQL on the log index alone, as schema 5 ran it)"
    );
    println!();
    row(
        "B3'",
        &format!(
            "audit queries on a real log ({events} events), {} filters",
            cases.len()
        ),
        &format!(
            "slowest API p50 {:.2} ms; worst store {worst_ratio:.2}x sqlite3",
            worst_api.as_secs_f64() * 1e3
        ),
        "p50 ≤ 30 ms; ≤ 2× sqlite3",
        worst_api <= Duration::from_millis(30) && worst_ratio <= 2.0,
    );
}

/// `sql` with its `INDEXED BY` clause naming `index`.
fn with_index(sql: &str, index: &str) -> String {
    let Some(at) = sql.find("INDEXED BY ") else {
        return sql.to_string();
    };
    let rest = &sql[at + "INDEXED BY ".len()..];
    let end = rest.find(' ').unwrap_or(rest.len());
    format!("{}INDEXED BY {index}{}", &sql[..at], &rest[end..])
}

/// `EXPLAIN QUERY PLAN` of `sql`, its steps on one line.
fn query_plan(db: &std::path::Path, sql: &str) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    steps.join("; ")
}
