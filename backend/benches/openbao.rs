//! B10–B14: `kube-dc-backend serve --store openbao` against a real `bao
//! server -dev` on the same machine, each beside OpenBao's own figure (or
//! the same backend's, before OpenBao hangs) in the same run:
//! `cargo bench -p kube-dc-backend --bench openbao` (after `cargo build
//! --release --workspace`; `scripts/install-openbao.sh` for `bao`).
//!
//! - B10: value reads (`GET …?includeValue=true`) vs OpenBao's KV v2 read
//!   of the same path, both with `wrk`, two rounds each, alternating, with
//!   the same read on the SQLite store and OpenBao's read through a bare
//!   proxy beside them (what the backend's own work and the extra HTTP hop
//!   each cost on this machine);
//! - B11: value writes (`PUT …/values` with `cas`) vs OpenBao's KV v2 write
//!   with `cas`, 64 workers each writing its own secret;
//! - B12: requests that need no value (metadata, list, audit query) before
//!   and while OpenBao hangs (`SIGSTOP`), with value reads piling up;
//! - B13: one value read while OpenBao hangs: its status, `Retry-After`,
//!   how long it took, and the result of its audit event;
//! - B14: the start-up reconciliation of 10,000 secrets (`BENCH_SECRETS`).
//!
//! `BENCH_SECONDS` (default 20) sets each load run's length; `BENCH_ROUNDS`
//! (default 2) how many rounds B10 alternates.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube_dc_testsupport::bao_dev::{DevServer, ROOT_TOKEN};
use kube_dc_testsupport::bench::{
    Load, Server, bench_seconds, closed_loop, cpu_secs, row, thread_cpu_secs, wrk,
};
use serde_json::{Value, json};

/// The backend's OpenBao failover budget in these runs (seconds), as its
/// argument.
const FAILOVER: &str = "2";
const WRITERS: usize = 64;
/// The name of the backend's store writer thread.
const WRITER_THREAD: &str = "kube-dc-store-writer";

fn backend(rt: &tokio::runtime::Runtime, dir: &std::path::Path, dev: &DevServer) -> Server {
    Server::start_with(rt, dir, &backend_args(dev), &[("BAO_TOKEN", ROOT_TOKEN)])
}

fn backend_args(dev: &DevServer) -> Vec<&str> {
    vec![
        "--store",
        "openbao",
        "--openbao-addr",
        &dev.addr,
        "--openbao-failover",
        FAILOVER,
    ]
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A bare pass-through proxy in front of OpenBao, on the HTTP stack the
/// backend uses (an axum server on as many worker threads as the backend
/// takes by default, and a reqwest client),
/// with nothing else: no authentication, authorization, record or audit
/// event. What one more HTTP hop costs on this machine: the floor under
/// B10. It runs in this process (whose CPU, less wrk's, is the proxy's).
fn bare_proxy(bao: &str) -> (tokio::runtime::Runtime, String) {
    use axum::extract::{Request, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(kube_dc_backend::cli::default_workers())
        .enable_all()
        .build()
        .unwrap();
    let http = client();
    let forward = |State((http, bao)): State<(reqwest::Client, String)>, req: Request| async move {
        let mut out = http.get(format!("{bao}{}", req.uri()));
        if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
            out = out.header(header::AUTHORIZATION, auth);
        }
        match out.send().await {
            Ok(r) => {
                let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
                let body = r.bytes().await.unwrap_or_default();
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        }
    };
    let app = axum::Router::new()
        .fallback(forward)
        .with_state((http, bao.to_string()));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, url)
}

/// B10: value reads through the backend beside OpenBao's own KV read of
/// the same path, `BENCH_ROUNDS` rounds alternating, with each side's CPU
/// per request, and two references in the same rounds: the same read on
/// the SQLite store (the backend's own cost of a read) and OpenBao's read
/// through a bare proxy (the cost of the extra HTTP hop alone).
/// `BENCH_BASELINE=/path/to/kube-dc-backend` measures another build in the
/// same rounds (before and after a change, side by side).
fn reads(
    rt: &tokio::runtime::Runtime,
    dev: &DevServer,
    server: &Server,
    secret: &str,
    work: &std::path::Path,
) {
    let baseline = std::env::var_os("BENCH_BASELINE").map(|exe| {
        let b = Server::start_bin(
            std::path::Path::new(&exe),
            rt,
            &work.join("baseline"),
            // Its own mounts: both builds write `db` in acme-demo.
            &[&backend_args(dev)[..], &["--openbao-mount-prefix", "base-"]].concat(),
            &[("BAO_TOKEN", ROOT_TOKEN)],
        );
        let url = b.create_db("bench-value");
        (b, url)
    });
    let direct = format!("{}/v1/kv-acme-demo/data/db", dev.addr);
    let bao_pid = dev.process.pid();
    // Where the machine's time goes, per request: OpenBao's and the
    // backend's CPU (less noisy than throughput on a shared machine).
    let measure = |label: &str, url: &str, token: &str, pid: Option<u32>| {
        let cpu = |p: Option<u32>| p.map_or(0.0, cpu_secs);
        // The backend's store writer thread (none in the bare proxy).
        let writer = |p: Option<u32>| p.map_or(0.0, |p| thread_cpu_secs(p, WRITER_THREAD));
        let (b0, o0, w0) = (cpu_secs(bao_pid), cpu(pid), writer(pid));
        let load = wrk(label, url, token, None);
        let n = load.requests.max(1) as f64;
        let (b, o) = ((cpu_secs(bao_pid) - b0) / n, (cpu(pid) - o0) / n);
        let w = (writer(pid) - w0) / n;
        match pid {
            Some(_) if w > 0.0 => println!(
                "  CPU per request: OpenBao {:.0} µs, in front of it {:.0} µs (its store writer {:.0} µs)",
                b * 1e6,
                o * 1e6,
                w * 1e6
            ),
            Some(_) => println!(
                "  CPU per request: OpenBao {:.0} µs, in front of it {:.0} µs",
                b * 1e6,
                o * 1e6
            ),
            None => println!("  CPU per request: OpenBao {:.0} µs", b * 1e6),
        }
        (load, b, o)
    };
    // The backend's own cost of the same read with its values in SQLite.
    let local = Server::start(rt, &work.join("sqlite"));
    let local_read = format!("{}?includeValue=true", local.create_db("bench-value"));
    let (_proxy_rt, proxy) = bare_proxy(&dev.addr);
    let proxied = direct.replacen(&dev.addr, &proxy, 1);
    let (mut bao, mut ours, mut base, mut bare, mut sqlite) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let value_read = format!("{secret}?includeValue=true");
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    for _ in 0..rounds {
        bao.push(measure(
            "OpenBao KV read, direct",
            &direct,
            ROOT_TOKEN,
            None,
        ));
        ours.push(measure(
            "GET ?includeValue=true, --store openbao",
            &value_read,
            &server.token,
            Some(server.child.id()),
        ));
        sqlite.push(measure(
            "  the same read, --store sqlite",
            &local_read,
            &local.token,
            Some(local.child.id()),
        ));
        bare.push(measure(
            "  OpenBao's read through a bare proxy",
            &proxied,
            ROOT_TOKEN,
            Some(std::process::id()),
        ));
        if let Some((b, url)) = &baseline {
            base.push(measure(
                "  the same, BENCH_BASELINE's build",
                &format!("{url}?includeValue=true"),
                &b.token,
                Some(b.child.id()),
            ));
        }
    }
    // If the machine's CPU bounds both runs, the ratio it allows: OpenBao's
    // cost of a read over the cost of one through the backend (OpenBao's
    // share plus the backend's).
    let builds = [
        ("this build", &ours),
        ("BENCH_BASELINE", &base),
        ("the bare proxy", &bare),
        ("--store sqlite", &sqlite),
    ];
    for (label, runs) in builds {
        for ((_, d, _), (_, tb, to)) in bao.iter().zip(runs.iter()) {
            println!(
                "  CPU-bound ratio, {label}: {:.0} µs / ({:.0} + {:.0}) µs = {:.2}×",
                d * 1e6,
                tb * 1e6,
                to * 1e6,
                d / (tb + to)
            );
        }
    }
    // Each build's mean CPU per read over the rounds: OpenBao's share and
    // the backend's.
    let mean = |v: &[(Load, f64, f64)]| {
        let n = v.len().max(1) as f64;
        let (b, o) = v.iter().fold((0.0, 0.0), |(b, o), l| (b + l.1, o + l.2));
        (b / n * 1e6, o / n * 1e6)
    };
    for (label, runs) in builds {
        if !runs.is_empty() {
            let (b, o) = mean(runs);
            println!("  mean CPU per read, {label}: OpenBao {b:.0} µs, itself {o:.0} µs");
        }
    }
    let best = |v: &[(Load, f64, f64)]| v.iter().map(|l| l.0.rps).fold(0.0, f64::max);
    let ratio = best(&ours) / best(&bao);
    let floor = best(&bare) / best(&bao);
    println!(
        "  the bare proxy: {:.0} req/s = {floor:.2}× OpenBao",
        best(&bare),
    );
    if !base.is_empty() {
        println!(
            "  BENCH_BASELINE: {:.0} req/s = {:.2}× OpenBao",
            best(&base),
            best(&base) / best(&bao)
        );
    }
    let errors: u64 = ours.iter().chain(&bao).map(|l| l.0.errors).sum();
    let p99 = ours.iter().map(|l| l.0.p99_ms).fold(f64::MAX, f64::min);
    row(
        "B10",
        "value read, --store openbao vs OpenBao",
        &format!(
            "{:.0} req/s = {ratio:.2}× OpenBao's {:.0} (a bare proxy: {floor:.2}×); p99 {p99:.1} ms; {errors} errors",
            best(&ours),
            best(&bao)
        ),
        "≥ 0.7×",
        ratio >= 0.7 && errors == 0,
    );
}

/// B11: each of 64 workers writes its own path with check-and-set on the
/// version it wrote last, first straight to OpenBao, then through the
/// backend.
fn writes(rt: &tokio::runtime::Runtime, dev: &DevServer, server: &Server) -> (f64, u64, String) {
    let http = client();
    let secs = f64::from(bench_seconds()) / 2.0;
    let bao = dev.addr.clone();
    let url = server.url.clone();
    let token = server.token.clone();
    rt.block_on(async {
        let r = http
            .post(format!("{bao}/v1/sys/mounts/bench-kv"))
            .bearer_auth(ROOT_TOKEN)
            .json(&json!({"type": "kv", "options": {"version": "2"}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "mount: {}", r.status());
        for w in 0..WRITERS {
            let r = http
                .post(format!("{url}/api/secrets/acme-demo/w{w}"))
                .bearer_auth(&token)
                .json(&json!({"type": "opaque", "initialValues": {"PASSWORD": "v"}}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "create w{w}: {}", r.status());
        }
    });
    let body = |v: u64| json!({"PASSWORD": format!("rotated-bench-value-{v}")});
    // The version each worker's path is at, straight in OpenBao and in the
    // backend (created with a first version).
    let at = |v: u64| -> Arc<Vec<AtomicU64>> {
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(v)).collect())
    };
    let (in_bao, in_backend) = (at(0), at(1));
    let run = |direct: bool| {
        let versions = if direct { &in_bao } else { &in_backend }.clone();
        let (http, bao, url, token) = (http.clone(), bao.clone(), url.clone(), token.clone());
        rt.block_on(closed_loop(WRITERS, secs, move |w, _| {
            let (http, versions) = (http.clone(), versions.clone());
            let (bao, url, token) = (bao.clone(), url.clone(), token.clone());
            async move {
                let cas = versions[w].load(Ordering::Relaxed);
                let req = if direct {
                    http.post(format!("{bao}/v1/bench-kv/data/w{w}"))
                        .bearer_auth(ROOT_TOKEN)
                        .json(&json!({"options": {"cas": cas}, "data": body(cas + 1)}))
                } else {
                    http.put(format!("{url}/api/secrets/acme-demo/w{w}/values"))
                        .bearer_auth(&token)
                        .json(&json!({"cas": cas, "data": body(cas + 1)}))
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        versions[w].store(cas + 1, Ordering::Relaxed);
                        true
                    }
                    _ => false,
                }
            }
        }))
    };
    let direct = run(true);
    direct.print("OpenBao KV write (cas), direct");
    let ours = run(false);
    ours.print("PUT …/values (cas), --store openbao");
    let direct2 = run(true);
    direct2.print("OpenBao KV write (cas), direct (again)");
    let reference = direct.rps().max(direct2.rps());
    let errors = ours.errors + direct.errors + direct2.errors;
    (
        ours.rps() / reference,
        errors,
        format!(
            "{:.0} writes/s = {:.2}× OpenBao's {:.0}; p99 {:.1} ms; {} errors",
            ours.rps(),
            ours.rps() / reference,
            reference,
            ours.quantile_ms(0.99),
            errors
        ),
    )
}

/// B12 and B13 on a backend of their own whose OpenBao is stopped.
fn hang(rt: &tokio::runtime::Runtime, work: &std::path::Path) {
    let dev = DevServer::start();
    let server = backend(rt, &work.join("hang"), &dev);
    let secret = server.create_db("hang-value");
    let http = client();
    let (url, token) = (server.url.clone(), server.token.clone());
    let no_value = |label: &str| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        let r = rt.block_on(closed_loop(8, 4.0, move |_, i| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                let path = match i % 3 {
                    0 => "/api/secrets/acme-demo/db".to_string(),
                    1 => "/api/secrets/acme-demo".to_string(),
                    _ => "/api/audit/orgs/acme/projects/demo?limit=50".to_string(),
                };
                http.get(format!("{url}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }));
        r.print(label);
        r
    };
    let before = no_value("metadata, list, audit: OpenBao serving");

    let pid = dev.process.pid().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    // Value reads pile up while OpenBao hangs.
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (http, secret, token) = (http.clone(), secret.clone(), token.clone());
            rt.spawn(async move {
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until {
                    let _ = http
                        .get(format!("{secret}?includeValue=true"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let probe = {
        let (http, secret, token) = (http.clone(), secret.clone(), token.clone());
        rt.spawn(async move {
            let t = Instant::now();
            let r = match http
                .get(format!("{secret}?includeValue=true"))
                .header("X-Request-Id", "bench-b13")
                .bearer_auth(&token)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    println!("value read while OpenBao is stopped: {e}");
                    return (0, None, t.elapsed());
                }
            };
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (status, retry, t.elapsed())
        })
    };
    let during = no_value("metadata, list, audit: OpenBao stopped");
    let (status, retry, took) = rt.block_on(probe).unwrap();
    signal("-CONT");
    for r in readers {
        let _ = rt.block_on(r);
    }
    let event: Value = rt.block_on(async {
        let r = http
            .get(format!(
                "{url}/api/audit/orgs/acme/projects/demo?result=error&limit=500"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["body"]["request_id"] == "bench-b13")
            .map(|e| e["body"].clone())
            .unwrap_or(Value::Null)
    });
    let result = event["result"].as_str().unwrap_or("none").to_string();
    println!(
        "value read while OpenBao is stopped: HTTP {status}, Retry-After {retry:?}, {:.2} s, audit result {result}",
        took.as_secs_f64()
    );
    let (p99_before, p99_during) = (before.quantile_ms(0.99), during.quantile_ms(0.99));
    row(
        "B12",
        "no-value requests while OpenBao hangs",
        &format!(
            "p99 {p99_during:.1} ms stopped vs {p99_before:.1} ms serving; {} errors",
            during.errors
        ),
        "p99 ≤ 50 ms",
        p99_during <= 50.0 && during.errors == 0,
    );
    row(
        "B13",
        "value read while OpenBao hangs",
        &format!(
            "HTTP {status} after {:.2} s (failover {FAILOVER} s), Retry-After {}, audited {result}",
            took.as_secs_f64(),
            retry.as_deref().unwrap_or("none")
        ),
        "503 + Retry-After ≤ failover + 1 s; audited error",
        status == 503
            && retry.is_some()
            && took <= Duration::from_secs(FAILOVER.parse::<u64>().unwrap() + 1)
            && result == "error",
    );
}

/// B14: seeds `n` secrets through the backend, then times a fresh start
/// (whose reconciliation compares each with OpenBao).
fn reconciliation(rt: &tokio::runtime::Runtime, work: &std::path::Path) {
    let n: usize = std::env::var("BENCH_SECRETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dev = DevServer::start();
    let dir = work.join("reconcile");
    {
        let server = backend(rt, &dir, &dev);
        let http = client();
        let (url, token) = (server.url.clone(), server.token.clone());
        let t = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..32 {
                let (http, url, token, next) =
                    (http.clone(), url.clone(), token.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= n {
                            break;
                        }
                        let r = http
                            .post(format!("{url}/api/secrets/acme-demo/s{i:05}"))
                            .bearer_auth(&token)
                            .json(
                                &json!({"type": "opaque", "initialValues": {"K": format!("v{i}")}}),
                            )
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success(), "create s{i:05}: {}", r.status());
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let took = t.elapsed();
        println!(
            "seeded {n} secrets through the backend in {:.1} s ({:.0}/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
    let t = Instant::now();
    let server = backend(rt, &dir, &dev);
    let start = t.elapsed();
    drop(server);
    println!(
        "start with {n} secrets to reconcile: {:.2} s",
        start.as_secs_f64()
    );
    row(
        "B14",
        &format!("start-up reconciliation, {n} secrets"),
        &format!("ready after {:.2} s", start.as_secs_f64()),
        "≤ 5 s",
        start <= Duration::from_secs(5),
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let want = |b: &str| only.is_empty() || only.split(',').any(|o| o == b);

    println!("\n== --store openbao beside OpenBao itself (bao server -dev, same machine) ==");
    if want("B10") || want("B11") {
        let dev = DevServer::start();
        let server = backend(&rt, &work.path().join("load"), &dev);
        let secret = server.create_db("bench-value");
        if want("B10") {
            reads(&rt, &dev, &server, &secret, work.path());
        }
        if want("B11") {
            let (ratio, errors, figure) = writes(&rt, &dev, &server);
            row(
                "B11",
                "value write (cas), --store openbao vs OpenBao",
                &figure,
                "≥ 0.6×",
                ratio >= 0.6 && errors == 0,
            );
        }
    }
    if want("B12") || want("B13") {
        hang(&rt, work.path());
    }
    if want("B14") {
        reconciliation(&rt, work.path());
    }
}
