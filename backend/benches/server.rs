//! B1 and B2: `kube-dc-backend serve` under load from `wrk` on the same
//! machine, each beside the same server's `/healthz` in the same run:
//! `cargo bench -p kube-dc-backend --bench server` (after `cargo build --release --workspace`).
//!
//! `BENCH_SECONDS` (default 20) sets each run's length; connections are 64.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use kube_dc_testsupport::bench::{CONNECTIONS, Server, row, wrk};

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
