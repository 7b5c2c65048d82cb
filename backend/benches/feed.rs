//! B21 and B22: the audit feed and checkpoint signing under B2's load.
//! `cargo bench -p kube-dc-backend --bench feed` (after `cargo build
//! --release --workspace`).
//!
//! - B21: `kube-dc audit list --org -f -o jsonl` (the real CLI, a process)
//!   follows `kube-dc-backend serve` while `wrk` writes values at full
//!   speed (B2): the lag from each event's time to its line at the
//!   follower (p50/p99), every write's event delivered, and the follower's
//!   memory a quarter of the way in beside at the end.
//! - B22: B2 against a server signing a checkpoint every second
//!   (`--checkpoint-every 1`) beside one that signs none, alternating, two
//!   rounds each.
//!
//! `BENCH_SECONDS` (default 20) sets each run's length.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kube_dc_testsupport::bench::{Server, bench_seconds, bin, quantile, row, rss_kib, wrk};

fn put_script(dir: &std::path::Path) -> std::path::PathBuf {
    let put = dir.join("put.lua");
    std::fs::write(
        &put,
        "wrk.method = \"PUT\"\nwrk.body = '{\"data\":{\"PASSWORD\":\"rotated-bench-value\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    put
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let put = put_script(work.path());

    println!("\n== B22: B2 with a checkpoint signed every second, beside none ==");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..2 {
        for every in ["0", "1"] {
            let dir = work.path().join(format!("b22-{round}-{every}"));
            let server = Server::start_with(&rt, &dir, &["--checkpoint-every", every], &[]);
            let secret = server.create_db("bench-value");
            let load = wrk(
                &format!("PUT …/values, --checkpoint-every {every}"),
                &format!("{secret}/values"),
                &server.token,
                Some(&put),
            );
            if every == "1" {
                let out = server.curl(&[
                    "-s",
                    &format!("{}/api/audit/orgs/acme/checkpoints?limit=5000", server.url),
                ]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                println!(
                    "  checkpoints signed during the run: {}",
                    v["items"].as_array().map_or(0, Vec::len)
                );
                with.push(load.rps);
            } else {
                without.push(load.rps);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let b22 = mean(&with) / mean(&without);

    println!("\n== B21: audit list --follow during B2 ==");
    let server = Server::start(&rt, &work.path().join("b21"));
    let secret = server.create_db("bench-value");
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut follower = Command::new(bin("kube-dc"))
        .args([
            "--server",
            &server.url,
            "audit",
            "list",
            "--org-name",
            "acme",
            "--org",
            "-f",
            "-o",
            "jsonl",
        ])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBE_DC_TOKEN", &server.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = follower.id();
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let last_line = Arc::new(Mutex::new(Instant::now()));
    let writes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (lags, last_line, writes) = (lags.clone(), last_line.clone(), writes.clone());
        let out = follower.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64()
                    * 1000.0;
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let ts = v["ts"].as_str().unwrap();
                let t =
                    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                        .unwrap();
                let ms = (t.unix_timestamp_nanos() / 1_000_000) as f64;
                lags.lock().unwrap().push(now - ms);
                if v["body"]["action"] == "secrets.value.write" {
                    writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                *last_line.lock().unwrap() = Instant::now();
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let rss_start = rss_kib(pid);
    let quarter = {
        let secs = bench_seconds() as u64;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs / 4));
            rss_kib(pid)
        })
    };
    let load = wrk(
        "PUT …/values, a follower",
        &format!("{secret}/values"),
        &server.token,
        Some(&put),
    );
    let rss_quarter = quarter.join().unwrap();
    let rss_end = rss_kib(pid);
    // Caught up: no line for two seconds.
    while last_line.lock().unwrap().elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();
    let mut lags = std::mem::take(&mut *lags.lock().unwrap());
    let delivered = writes.load(std::sync::atomic::Ordering::Relaxed);
    let (p50, p99, max) = (
        quantile(&mut lags, 0.5),
        quantile(&mut lags, 0.99),
        quantile(&mut lags, 1.0),
    );
    // wrk counts the requests it completed; writes cut off at its end may
    // still be answered, so the follower may see a few more.
    let complete = delivered + load.errors >= load.requests;
    println!(
        "follower: {} lines, {delivered} value writes of {} completed; lag p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms; \
         RSS {:.1} MiB at start, {:.1} MiB a quarter in, {:.1} MiB at the end",
        lags.len(),
        load.requests,
        rss_start as f64 / 1024.0,
        rss_quarter as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    let flat = rss_end <= rss_quarter + 4 * 1024;
    println!();
    row(
        "B21",
        "audit list --follow during B2",
        &format!(
            "lag p99 {p99:.0} ms (p50 {p50:.0}) over {} events, every write seen: {complete}; RSS {:.1} → {:.1} MiB",
            lags.len(),
            rss_quarter as f64 / 1024.0,
            rss_end as f64 / 1024.0
        ),
        "p99 ≤ 1 s; memory flat",
        p99 <= 1000.0 && complete && flat,
    );
    row(
        "B22",
        "B2 with a checkpoint every second",
        &format!(
            "{:.0} req/s = {b22:.3}× without ({:.0}), two rounds each",
            mean(&with),
            mean(&without)
        ),
        "≥ 0.95×",
        b22 >= 0.95,
    );
}
