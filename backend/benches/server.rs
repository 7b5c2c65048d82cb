//! B1 and B2: `kube-dc-backend serve` under load from `wrk` on the same
//! machine, each beside the same server's `/healthz` in the same run:
//! `cargo bench -p kube-dc-backend --bench server` (after `cargo build --release --workspace`).
//!
//! `BENCH_SECONDS` (default 20) sets each run's length; connections are 64.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::process::Command;

use kube_dc_testsupport::bench::{Server, row};

const CONNECTIONS: u32 = 64;

struct Load {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

/// Runs wrk against `url` with the token (and an optional Lua script) and
/// reads requests/s and the 99th percentile from its report.
fn wrk(label: &str, url: &str, token: &str, script: Option<&std::path::Path>) -> Load {
    let secs: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{secs}s"),
        "--latency",
    ])
    .arg("-H")
    .arg(format!("Authorization: Bearer {token}"));
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    let out = c
        .arg(url)
        .output()
        .expect("wrk (install it: scripts/bench.sh does)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        println!("{text}");
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .expect("wrk rps");
    let p99 = field("99%").expect("wrk p99");
    let p99_ms = if let Some(v) = p99.strip_suffix("us") {
        v.parse::<f64>().unwrap() / 1000.0
    } else if let Some(v) = p99.strip_suffix("ms") {
        v.parse().unwrap()
    } else if let Some(v) = p99.strip_suffix('s') {
        v.parse::<f64>().unwrap() * 1000.0
    } else {
        panic!("wrk p99 {p99:?}")
    };
    // Non-2xx answers and socket errors both count as errors.
    let errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64)
        + field("Socket errors:")
            .map(|v| {
                v.split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
    println!("{label:<40} {rps:>10.0} req/s   p99 {p99_ms:>7.2} ms   errors {errors}");
    Load {
        rps,
        p99_ms,
        errors,
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&rt, work.path());
    let secret = server.create_db("bench-value");
    let put = work.path().join("put.lua");
    std::fs::write(
        &put,
        "wrk.method = \"PUT\"\nwrk.body = '{\"data\":{\"PASSWORD\":\"rotated-bench-value\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();

    println!("\n== backend under load: {CONNECTIONS} connections, wrk on the same machine ==");
    let health = wrk(
        "GET /healthz",
        &format!("{}/healthz", server.url),
        &server.token,
        None,
    );
    let read = wrk(
        "GET ?includeValue=true (audited read)",
        &format!("{secret}?includeValue=true"),
        &server.token,
        None,
    );
    let write = wrk(
        "PUT …/values (audited write)",
        &format!("{secret}/values"),
        &server.token,
        Some(&put),
    );
    let health2 = wrk(
        "GET /healthz (again)",
        &format!("{}/healthz", server.url),
        &server.token,
        None,
    );
    // The reference is the better of the two /healthz runs around the others.
    let reference = health.rps.max(health2.rps);
    let versions = server.curl(&[&format!("{secret}/versions")]);
    let versions: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    let newest = versions["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["version"].as_u64())
        .max()
        .unwrap_or(0);
    println!("newest version after the write run: {newest}");
    let b1 = read.rps / reference;
    let b2 = write.rps / reference;
    println!();
    row(
        "B1",
        "GET includeValue, 64 conns",
        &format!(
            "{:.0} req/s = {:.1}% of /healthz ({:.0}); p99 {:.2} ms; {} errors",
            read.rps,
            b1 * 100.0,
            reference,
            read.p99_ms,
            read.errors
        ),
        "≥ 15%; p99 ≤ 10 ms",
        b1 >= 0.15 && read.p99_ms <= 10.0 && read.errors == 0,
    );
    row(
        "B2",
        "PUT values, 64 conns",
        &format!(
            "{:.0} req/s = {:.1}% of /healthz; p99 {:.2} ms; {} errors",
            write.rps,
            b2 * 100.0,
            write.p99_ms,
            write.errors
        ),
        "≥ 8%",
        b2 >= 0.08 && write.errors == 0,
    );
}
