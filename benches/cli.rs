//! Figures, not pass/fail: `cargo bench --bench cli`.
//!
//! 1. One request: `kube-dc secrets get --key` against `kube-dc-backend
//!    serve`, side by side with `curl` making the same request.
//! 2. Start-up: `kube-dc --help`, and a local-context `secrets list`.
//! 3. Export: `audit list --csv --output-file` over a million events on the
//!    local context, with the exporter's peak memory (flat if streaming works).

#![allow(clippy::disallowed_macros)] // benchmarks and tests print their figures

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_dc_backend::testing::TestIssuer;

const RUNS: usize = 40;

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release --workspace` first",
        p.display()
    );
    p
}

fn time_runs(label: &str, mut make: impl FnMut() -> Command) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS + 3 {
        let mut c = make();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let st = c.status().unwrap();
        let d = t.elapsed();
        assert!(st.success(), "{label} failed");
        if i >= 3 {
            samples.push(d);
        }
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let mean: Duration = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<48} median {:>7.2} ms   mean {:>7.2} ms   min {:>7.2} ms",
        ms(median),
        ms(mean),
        ms(samples[0])
    );
    median
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a command and returns (wall time, peak RSS in KiB) from wait4.
// The child is reaped by wait4 itself, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn peak_rss(mut c: Command) -> (Duration, i64) {
    let t = Instant::now();
    let child = c.stdout(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "export failed"
    );
    (t.elapsed(), ru.ru_maxrss)
}

fn seed_audit(data: &Path, n: u64) {
    // Opening the embedded backend creates the schema and key; then rows
    // are appended with a valid hash chain in one transaction.
    drop(kube_dc_backend::Backend::embedded(data, "local", "bench").unwrap());
    let mut c = rusqlite::Connection::open(data.join("kube-dc.db")).unwrap();
    let tx = c.transaction().unwrap();
    let mut prev = kube_dc_backend::store::GENESIS_HASH.to_string();
    {
        let mut st = tx
            .prepare("INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash) VALUES (?1, 'local', 'default', 'secrets', 'allowed', 'bench', '', 'bench', ?2, ?3, ?4)")
            .unwrap();
        let t0 = 1_760_000_000_000i64;
        for i in 0..n {
            let ts = t0 + i as i64;
            let body = format!(
                r#"{{"action":"secrets.value.read","actor":"bench","actor_email":"","namespace":"local-default","org":"local","project":"default","request_id":"req-{i}","resource":"s{}","result":"allowed","service":"secrets","source_ip":"local","status":200}}"#,
                i % 100
            );
            let hash = kube_dc_backend::store::chain_hash(&prev, ts, &body);
            st.execute(rusqlite::params![ts, body, prev, hash]).unwrap();
            prev = hash;
        }
    }
    tx.commit().unwrap();
}

fn main() {
    let kube_dc = bin("kube-dc");
    let backend = bin("kube-dc-backend");
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let base = |c: &mut Command| {
        c.env_clear()
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("USER", "bench");
    };

    // 1. One request, kube-dc beside curl.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = rt.block_on(TestIssuer::start());
    std::fs::write(
        home.join("b.yaml"),
        "orgs:\n  acme: { projects: [demo] }\nbindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n",
    )
    .unwrap();
    let mut server = Command::new(&backend)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oidc-issuer",
            &issuer.url,
            "--bindings",
        ])
        .arg(home.join("b.yaml"))
        .arg("--data-dir")
        .arg(home.join("srv"))
        .env("KUBE_DC_BACKEND_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = serde_json::from_str::<serde_json::Value>(&line).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = issuer.token("dev", &["devs"], Some("acme"));
    let mut create = Command::new(&kube_dc);
    base(&mut create);
    let st = create
        .args([
            "--server",
            &url,
            "-n",
            "acme-demo",
            "secrets",
            "create",
            "db",
            "--from-literal=PASSWORD=bench",
        ])
        .env("KUBE_DC_TOKEN", &token)
        .status()
        .unwrap();
    assert!(st.success());
    // Warm the server's key cache.
    let _ = Command::new("curl")
        .args([
            "-sf",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{url}/api/secrets/acme-demo/db"),
        ])
        .output();

    println!("\n== one request (GET a secret's value over HTTP), {RUNS} runs each ==");
    let curl = time_runs("curl", || {
        let mut c = Command::new("curl");
        c.args([
            "-sf",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Accept: application/json",
            &format!("{url}/api/secrets/acme-demo/db?includeValue=true"),
        ]);
        c
    });
    let cli = time_runs("kube-dc secrets get db --key PASSWORD", || {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args([
            "--server",
            &url,
            "-n",
            "acme-demo",
            "secrets",
            "get",
            "db",
            "--key",
            "PASSWORD",
        ])
        .env("KUBE_DC_TOKEN", &token);
        c
    });
    println!(
        "{:<48} {:+.2} ms ({:.2}x)",
        "kube-dc minus curl (median)",
        ms(cli) - ms(curl),
        ms(cli) / ms(curl)
    );
    let _ = server.kill();
    let _ = server.wait();

    println!("\n== start-up ==");
    time_runs("kube-dc --help", || {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.arg("--help");
        c
    });
    time_runs("kube-dc secrets list (local context)", || {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args(["secrets", "list"]);
        c
    });

    println!("\n== audit export on the local context ==");
    for n in [10_000u64, 1_000_000] {
        let data = work.path().join(format!("local-{n}"));
        let t = Instant::now();
        seed_audit(&data, n);
        let seeded = t.elapsed();
        let out = work.path().join(format!("audit-{n}.csv"));
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.env("KUBE_DC_LOCAL_DATA_DIR", &data)
            .args(["audit", "list", "--csv", "--output-file"])
            .arg(&out);
        let (wall, rss) = peak_rss(c);
        let size = std::fs::metadata(&out).unwrap().len();
        println!(
            "{n:>9} events: seeded in {:.1} s; exported {:.1} MB in {:.2} s; exporter peak RSS {:.1} MiB",
            seeded.as_secs_f64(),
            size as f64 / 1e6,
            wall.as_secs_f64(),
            rss as f64 / 1024.0
        );
    }
}
