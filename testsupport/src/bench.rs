//! What the benchmarks (the CLI's and the backend's) share: finding the
//! release binaries, starting `kube-dc-backend serve` against an
//! in-process OIDC issuer, and printing one row of the B1–B9 table.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::testing::TestIssuer;

/// A release binary of the workspace, next to the benchmark's own.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release --workspace` first (scripts/bench.sh does)",
        p.display()
    );
    p
}

/// `kube-dc-backend serve` on a loopback port, one organization `acme`
/// with project `demo`, user `dev` its admin.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub issuer: TestIssuer,
}

impl Server {
    pub fn start(rt: &tokio::runtime::Runtime, dir: &Path) -> Self {
        Self::start_with(rt, dir, &[], &[])
    }

    /// [`Server::start`] with more arguments to `serve` and environment.
    pub fn start_with(
        rt: &tokio::runtime::Runtime,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_bin(&bin("kube-dc-backend"), rt, dir, args, env)
    }

    /// [`Self::start_with`] from another build of the backend (a baseline
    /// measured beside this one).
    pub fn start_bin(
        exe: &Path,
        rt: &tokio::runtime::Runtime,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let issuer = rt.block_on(TestIssuer::start());
        let mut child = spawn_serve(exe, &issuer.url, dir, args, env);
        let url = crate::testing::ready_url(&mut child);
        let token = issuer.token("dev", &["devs"], Some("acme"));
        Server {
            child,
            url,
            token,
            issuer,
        }
    }

    /// `curl` with the bearer token, failing on HTTP errors.
    /// Creates secret `db` in acme-demo with `PASSWORD=value`; its URL.
    pub fn create_db(&self, value: &str) -> String {
        let secret = format!("{}/api/secrets/acme-demo/db", self.url);
        let body = serde_json::json!({"type": "opaque", "initialValues": {"PASSWORD": value}});
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
            &secret,
        ]);
        secret
    }

    pub fn curl(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-H"])
            .arg(format!("Authorization: Bearer {}", self.token))
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident memory (KiB), from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `q` quantile of `v` (sorted in place); NaN for none.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

/// One row of the results table; `scripts/bench.sh` gathers the rows of
/// every benchmark into one table.
pub fn row(id: &str, measure: &str, figure: &str, target: &str, met: bool) {
    println!(
        "| {id} | {measure} | {figure} | {target} | {} |",
        if met { "met" } else { "NOT MET" }
    );
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What one run of `query` costs the `sqlite3` shell: the shell is timed
/// running it `REPEAT` times and running nothing, each three times, and the
/// difference of the medians is divided by `REPEAT`. (The shell's own
/// `.timer` counts whole milliseconds, too coarse for a 1 ms query.) The
/// rows are printed, to /dev/null.
pub fn sqlite3_time(db: &Path, query: &str) -> Duration {
    use std::io::Write;
    const REPEAT: u32 = 20;
    let run = |script: &str| {
        let t = std::time::Instant::now();
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sqlite3 on PATH");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "sqlite3 failed");
        t.elapsed()
    };
    let script = format!("{query};\n").repeat(REPEAT as usize);
    let idle = median((0..3).map(|_| run("")).collect());
    let busy = median((0..3).map(|_| run(&script)).collect());
    busy.saturating_sub(idle) / REPEAT
}

/// `n` secrets with one version each in the local context's namespace,
/// created through the store from several threads (group commit).
pub fn seed_secrets(data: &Path, n: usize) {
    std::fs::create_dir_all(data).unwrap();
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(data, None).unwrap();
    let store = std::sync::Arc::new(kube_dc_backend::store::Store::open(data, cipher).unwrap());
    let threads = 16;
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = store.clone();
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let mut d = kube_dc_api::wire::Data::new();
                    d.insert(
                        "PASSWORD".into(),
                        kube_dc_api::wire::Sensitive::new(format!("value-{i}")),
                    );
                    let new = kube_dc_backend::store::NewSecret {
                        namespace: "local-default".into(),
                        name: format!("secret-{i:05}"),
                        kind: "opaque".into(),
                        description: Some(format!("bench secret {i}")),
                        sync: Default::default(),
                        rotation: None,
                        rotation_interval: None,
                        imported_from: None,
                        key: None,
                    };
                    store
                        .create(new, Some(&d), 1_760_000_000_000, || Ok(()), None)
                        .unwrap();
                }
            });
        }
    });
}

/// Connections of every `wrk` run.
pub const CONNECTIONS: u32 = 64;

/// What one `wrk` run measured.
pub struct Load {
    pub rps: f64,
    /// Requests completed (wrk's "N requests in …" line).
    pub requests: u64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// Seconds of each load run: `BENCH_SECONDS`, default 20.
pub fn bench_seconds() -> u32 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// Runs `wrk -t2 -c64` against `url` with the bearer token (and an optional
/// Lua script), prints a line and reads requests/s and the 99th percentile
/// from its report.
pub fn wrk(label: &str, url: &str, token: &str, script: Option<&Path>) -> Load {
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{}s", bench_seconds()),
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
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())
        .expect("wrk request count");
    println!("{label:<44} {rps:>10.0} req/s   p99 {p99_ms:>7.2} ms   errors {errors}");
    Load {
        rps,
        requests,
        p99_ms,
        errors,
    }
}

/// What a closed-loop run measured: every request's latency and how many
/// failed.
pub struct Closed {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Closed {
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    /// The `q` quantile (0.5, 0.99) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    }
    pub fn print(&self, label: &str) {
        println!(
            "{label:<44} {:>10.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}",
            self.rps(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.errors
        );
    }
}

/// `workers` tasks, each sending its next request as soon as its last was
/// answered, for `secs`: `step(worker, iteration)` sends one request and
/// says whether it succeeded. (For loads `wrk` cannot make: a
/// check-and-set per worker, several kinds of requests.)
pub async fn closed_loop<F, Fut>(workers: usize, secs: f64, step: F) -> Closed
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = std::sync::Arc::new(step);
    let started = std::time::Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut i) = (Vec::new(), 0u64, 0u64);
            while std::time::Instant::now() < until {
                let t = std::time::Instant::now();
                if step(w, i).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    let mut out = Closed {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, e) = t.await.unwrap();
        out.latencies.extend(l);
        out.errors += e;
    }
    out.elapsed = started.elapsed();
    out
}

/// CPU time (user + system, seconds) process `pid` has used so far, from
/// `/proc/PID/stat` (0 where there is none).
pub fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system, seconds) the threads of process `pid` whose
/// name starts with `name` have used so far (their names as the kernel
/// keeps them: at most 15 bytes).
pub fn thread_cpu_secs(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with(name) || name.starts_with(c.trim_end()))
        })
        .map(|t| stat_cpu_secs(&t.path().join("stat").to_string_lossy()))
        .sum()
}

fn stat_cpu_secs(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f
        .get(11)
        .zip(f.get(12))
        .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
        .unwrap_or(0.0);
    ticks / 100.0
}

impl Server {
    /// Another `serve` of the same installation (its database and master
    /// key in `args`), trusting this server's issuer, with a data
    /// directory of its own in `dir`: a second replica. Its URL; killed
    /// when the returned child is.
    pub fn replica(&self, dir: &Path, args: &[&str]) -> (Child, String) {
        let mut child = spawn_serve(&bin("kube-dc-backend"), &self.issuer.url, dir, args, &[]);
        let url = crate::testing::ready_url(&mut child);
        (child, url)
    }
}

/// `exe serve` on a loopback port, trusting `issuer`, with the bench's
/// bindings and a data directory in `dir`.
fn spawn_serve(exe: &Path, issuer: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let bindings = dir.join("bindings.yaml");
    std::fs::write(
        &bindings,
        "orgs:\n  acme: { projects: [demo], adminUsers: [dev] }\nbindings:\n  - { group: devs, namespace: acme-demo, role: admin }\n",
    )
    .unwrap();
    Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--oidc-issuer", issuer])
        .arg("--bindings")
        .arg(&bindings)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .envs(env.iter().copied())
        .env("KUBE_DC_BACKEND_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}
