//! B17 and B18: the change stream under load.
//! `cargo bench -p kube-dc-backend --bench watch` (after `cargo build
//! --release --workspace`).
//!
//! - B17: change → notice at each of 1,000 open watchers (this process
//!   reads them all), p50/p99 over 100 changes a second apart enough to
//!   settle; the server's memory with 1,000 watchers beside none.
//! - B18: B2 (audited writes, `wrk`) with 1,000 watchers open beside none,
//!   in the same run.
//!
//! `WATCHERS` (default 1000) and `BENCH_SECONDS` (default 20) change the
//! sizes.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube_dc_testsupport::bench::{Server, quantile, row, rss_kib, wrk};

/// When each watcher received each version.
type Seen = Arc<Mutex<Vec<HashMap<u64, Instant>>>>;

fn main() {
    let watchers: usize = std::env::var("WATCHERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&rt, work.path());
    let secret = server.create_db("bench-value");
    let pid = server.child.id();
    let put = work.path().join("put.lua");
    std::fs::write(
        &put,
        "wrk.method = \"PUT\"\nwrk.body = '{\"data\":{\"PASSWORD\":\"rotated-bench-value\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();

    println!("\n== B18 reference: B2 without watchers ==");
    let alone = wrk(
        "PUT …/values, no watcher",
        &format!("{secret}/values"),
        &server.token,
        Some(&put),
    );
    std::thread::sleep(Duration::from_secs(1));
    let rss_none = rss_kib(pid);

    println!("\n== B17: {watchers} watchers ==");
    let seen: Seen = Arc::new(Mutex::new(vec![HashMap::new(); watchers]));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/api/watch/secrets/acme-demo", server.url);
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // While B17 measures, watchers decode each line; during B18's load they
    // only count lines, as a cheap consumer would (they share the 2 cores
    // with the server).
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // While only counting: each watcher's last complete line.
    let lasts: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(vec![Vec::new(); watchers]));
    for i in 0..watchers {
        let lasts = lasts.clone();
        let (http, url, token, seen, opened, measuring, lines) = (
            http.clone(),
            url.clone(),
            server.token.clone(),
            seen.clone(),
            opened.clone(),
            measuring.clone(),
            lines.clone(),
        );
        rt.spawn(async move {
            let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut first = true;
            while let Some(Ok(chunk)) = body.next().await {
                let now = Instant::now();
                if !first && !measuring.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = chunk.iter().filter(|b| **b == b'\n').count();
                    lines.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    // Lines are never split across writes: the chunk ends
                    // with one.
                    let body = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
                    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                    lasts.lock().unwrap()[i] = body[start..].to_vec();
                    continue;
                }
                buf.extend_from_slice(&chunk);
                while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=at).collect();
                    if first {
                        first = false;
                        opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    if let Some(n) = v["version"].as_u64() {
                        seen.lock().unwrap()[i].insert(n, now);
                    }
                }
            }
        });
    }
    let t = Instant::now();
    while opened.load(std::sync::atomic::Ordering::SeqCst) < watchers {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "watchers did not open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("{watchers} watchers open in {:.1?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = rss_kib(pid);

    // 100 changes, 50 ms apart: when each was sent, by its version.
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let writer = reqwest::blocking::Client::new();
    for _ in 0..100 {
        let t0 = Instant::now();
        let r = writer
            .put(format!("{secret}/values"))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({"data": {"PASSWORD": "rotated"}}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
        let v: serde_json::Value = r.json().unwrap();
        sent.insert(v["version"].as_u64().unwrap(), t0);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss_busy = rss_kib(pid);
    let mut lat = Vec::new();
    let mut missing = 0;
    for w in seen.lock().unwrap().iter() {
        for (v, t0) in &sent {
            match w.get(v) {
                Some(t1) => lat.push(t1.duration_since(*t0).as_secs_f64() * 1000.0),
                None => missing += 1,
            }
        }
    }
    let p50 = quantile(&mut lat, 0.5);
    let p99 = quantile(&mut lat, 0.99);
    println!(
        "change → notice over {} notices: p50 {p50:.2} ms, p99 {p99:.2} ms; {missing} missing",
        lat.len()
    );
    println!(
        "server RSS: {:.1} MiB with none, {:.1} MiB with {watchers} idle, {:.1} MiB after the changes",
        rss_none as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        rss_busy as f64 / 1024.0
    );

    println!("\n== B18: B2 with {watchers} watchers open ==");
    measuring.store(false, std::sync::atomic::Ordering::SeqCst);
    let before = lines.load(std::sync::atomic::Ordering::SeqCst);
    let with = wrk(
        &format!("PUT …/values, {watchers} watchers"),
        &format!("{secret}/values"),
        &server.token,
        Some(&put),
    );
    let ratio = with.rps / alone.rps;
    std::thread::sleep(Duration::from_secs(1));
    let delivered = lines.load(std::sync::atomic::Ordering::SeqCst) - before;
    println!(
        "notices delivered to the watchers during the run: {delivered} ({:.0}/s)",
        delivered as f64 / kube_dc_testsupport::bench::bench_seconds() as f64
    );
    // Every watcher's last line names the secret's version after the run.
    let current = writer
        .get(&secret)
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["openbao"]["currentVersion"]
        .as_u64()
        .unwrap();
    let newest = lasts
        .lock()
        .unwrap()
        .iter()
        .filter(|l| {
            serde_json::from_slice::<serde_json::Value>(l)
                .is_ok_and(|v| v["version"].as_u64() == Some(current))
        })
        .count();
    println!(
        "watchers whose last notice is version {current}, the secret's: {newest} of {watchers}"
    );
    let extra = (rss_idle.max(rss_busy) as f64 - rss_none as f64) / 1024.0;
    println!();
    row(
        "B17",
        &format!("change → notice, {watchers} watchers"),
        &format!(
            "p50 {p50:.2} ms, p99 {p99:.2} ms ({missing} missing); server +{extra:.1} MiB over none"
        ),
        "p99 ≤ 50 ms; ≤ 64 MiB more",
        p99 <= 50.0 && missing == 0 && extra <= 64.0,
    );
    row(
        "B18",
        &format!("B2 with {watchers} watchers"),
        &format!(
            "{:.0} req/s = {ratio:.2}× without ({:.0}); {} errors; {newest} of {watchers} watchers ended at the last version",
            with.rps, alone.rps, with.errors
        ),
        "≥ 0.8×",
        ratio >= 0.8 && with.errors == 0 && newest == watchers,
    );
}
