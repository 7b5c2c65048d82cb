//! Figures, not pass/fail: `cargo bench --bench cli` (after `cargo build
//! --release --workspace`; `scripts/bench.sh` does both). Rows B4–B7:
//!
//! - B4: local-context `secrets list` at 10,000 secrets beside `sqlite3`
//!   reading the same rows, with the CLI's peak memory.
//! - B5: local read commands (`get`, `list`, `audit list`) under `strace`:
//!   fsync calls, and whether the WAL file is the same file afterwards.
//! - B6: remote `secrets get --key` over `http://` loopback beside `curl`
//!   making the same request.
//! - B7: CSV export of a million events from `kube-dc-backend serve`
//!   beside `curl -o`, with the CLI's peak memory at 10,000 and 1,000,000.

#![allow(clippy::disallowed_macros)] // benchmarks and tests print their figures

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_dc_backend::store::Store;
use kube_dc_testsupport::bench::{Server, bin, row, seed_secrets, sqlite3_time};

const RUNS: usize = 40;

/// B4's reference: the secrets of the namespace joined with their KV
/// metadata, every column the list reads from those two tables, in the
/// list's order.
const PLAIN_JOIN: &str = "SELECT m.namespace, m.name, m.type, m.description, m.sync, \
    m.rotation, m.imported_from, m.created_at, m.updated_at, m.last_synced, m.last_rotated, \
    m.next_rotation, m.deleted_at, k.current_version, k.max_versions, k.created_at, \
    k.updated_at FROM managed_secrets m LEFT JOIN kv_meta k ON k.namespace = m.namespace \
    AND k.name = m.name WHERE m.namespace = 'local-default' AND m.deleted_at IS NULL \
    ORDER BY m.name";

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
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{:?} failed: wait status {status:#x}",
        c.get_program()
    );
    (t.elapsed(), ru.ru_maxrss)
}

/// `n` events of organization `org` with a valid hash chain, appended in
/// one transaction to the store in `data` (created if need be).
fn seed_audit(data: &Path, org: &str, n: u64) {
    std::fs::create_dir_all(data).unwrap();
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(data, None).unwrap();
    drop(Store::open(data, cipher).unwrap());
    let mut c = rusqlite::Connection::open(data.join("kube-dc.db")).unwrap();
    let tx = c.transaction().unwrap();
    let mut prev = kube_dc_backend::store::GENESIS_HASH.to_string();
    {
        let mut st = tx
            .prepare("INSERT INTO audit (ts, org, project, service, result, actor, actor_email, actor_sub, body, prev_hash, hash) VALUES (?1, ?5, 'default', 'secrets', 'allowed', 'bench', '', 'bench', ?2, ?3, ?4)")
            .unwrap();
        let t0 = 1_760_000_000_000i64;
        for i in 0..n {
            let ts = t0 + i as i64;
            let body = format!(
                r#"{{"action":"secrets.value.read","actor":"bench","actor_email":"","namespace":"{org}-default","org":"{org}","project":"default","request_id":"req-{i}","resource":"s{}","result":"allowed","service":"secrets","source_ip":"local","status":200}}"#,
                i % 100
            );
            let hash = kube_dc_backend::store::chain_hash(&prev, ts, &body);
            st.execute(rusqlite::params![ts, body, prev, hash, org])
                .unwrap();
            prev = hash;
        }
    }
    tx.commit().unwrap();
    // As a store from before the actor index: opening it indexes them.
    c.pragma_update(None, "user_version", 3).unwrap();
    drop(c);
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(data, None).unwrap();
    drop(Store::open(data, cipher).unwrap());
}

/// fsync-family calls a command makes, counted by strace.
fn fsyncs(c: Command) -> u64 {
    let log = tempfile::NamedTempFile::new().unwrap();
    let program = c.get_program().to_owned();
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let mut st = Command::new("strace");
    st.args([
        "-f",
        "-qq",
        "-e",
        "trace=fsync,fdatasync,sync_file_range",
        "-o",
    ])
    .arg(log.path())
    .arg(program)
    .args(args);
    // The commands here start from a cleared environment.
    st.env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            st.env(k, v);
        }
    }
    let ok = st
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace on PATH");
    assert!(ok.success(), "{c:?} under strace failed");
    std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .filter(|l| l.contains("sync"))
        .count() as u64
}

fn inode(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

fn main() {
    let kube_dc = bin("kube-dc");
    let work = tempfile::tempdir().unwrap();
    let home = work.path().to_path_buf();
    // BENCH_KEEP=1 leaves the seeded stores behind for profiling.
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("keeping {}", work.keep().display());
    }
    let base = |c: &mut Command| {
        c.env_clear()
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("USER", "bench");
    };
    let local = |data: &Path, args: &[&str]| {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.env("KUBE_DC_LOCAL_DATA_DIR", data).args(args);
        c
    };
    let mut rows = Vec::new();

    // B4: list at 10,000 secrets.
    let data = home.join("local-10k");
    let t = Instant::now();
    seed_secrets(&data, 10_000);
    let seeded = t.elapsed();
    // B5 first, while only kube-dc has opened this store (the sqlite3 shell
    // of B4 checkpoints and removes the WAL when it closes).
    // B5: read commands write nothing durable and keep the WAL file.
    println!("\n== B5: local read commands under strace ==");
    let wal = PathBuf::from(format!("{}-wal", data.join(Store::DB_FILE).display()));
    let before = inode(&wal);
    let mut total = 0;
    for args in [
        &["secrets", "get", "secret-00042"][..],
        &["secrets", "list"][..],
        &["audit", "list", "--limit", "20"][..],
    ] {
        let n = fsyncs(local(&data, args));
        println!(
            "{:<48} {n} fsync calls",
            format!("kube-dc {}", args.join(" "))
        );
        total += n;
    }
    let after = inode(&wal);
    let same_wal = before.is_some() && before == after;
    println!(
        "WAL file before/after: inode {before:?} / {after:?} ({})",
        if same_wal { "kept" } else { "re-created" }
    );
    rows.push((
        "B5",
        "local get, list, audit list".to_string(),
        format!(
            "{total} fsync calls; WAL {}",
            if same_wal { "kept" } else { "re-created" }
        ),
        "no fsync; no WAL re-creation",
        total == 0 && same_wal,
    ));

    println!("\n== B4: local secrets list at 10,000 secrets (seeded in {seeded:.1?}) ==");
    // The seeding's last commits are still in the WAL (the writer copies
    // it into the main file every 1,000 pages), which the first process to
    // open the store reads whole: shown, but not the row's figure.
    let wal_pages = std::fs::metadata(&wal).map_or(0, |m| m.len() / 4096);
    time_runs(
        &format!("kube-dc secrets list, seeding's WAL ({wal_pages} pages)"),
        || local(&data, &["secrets", "list"]),
    );
    // Like for like: the sqlite3 shell copies the WAL into the main file
    // when it closes, so after its first run the references read a store
    // without one; the list is timed on that state too (each list then
    // appends its audit event to a fresh WAL, as a user's commands do).
    let status = Command::new("sqlite3")
        .arg(data.join(Store::DB_FILE))
        .arg("PRAGMA wal_checkpoint(TRUNCATE)")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "checkpoint failed");
    let list = time_runs("kube-dc secrets list", || {
        local(&data, &["secrets", "list"])
    });
    let (_, list_rss) = peak_rss(local(&data, &["secrets", "list"]));
    // The store's own list query, run by the sqlite3 shell.
    let query = Store::LIST_SQL.replace("?1", "'local-default'");
    let query = query.as_str();
    // Like for like: both are a process started, reading the rows and
    // printing them (to /dev/null), timed from start to exit.
    let reference = time_runs("sqlite3 reading the same rows", || {
        let mut c = Command::new("sqlite3");
        c.arg(data.join(Store::DB_FILE)).arg(query);
        c
    });
    println!(
        "{:<48} median {:>7.2} ms",
        "(the sqlite3 shell's own timer for the query)",
        ms(sqlite3_time(&data.join(Store::DB_FILE), query))
    );
    // The target's reference: the plain join of the same two tables (the
    // secret and its KV metadata), without the current version's row.
    let plain = time_runs("sqlite3 plain join of the same tables", || {
        let mut c = Command::new("sqlite3");
        c.arg(data.join(Store::DB_FILE)).arg(PLAIN_JOIN);
        c
    });
    let ratio = ms(list) / ms(plain);
    rows.push((
        "B4",
        "local secrets list, 10,000 secrets".to_string(),
        format!(
            "{:.1} ms = {ratio:.2}× sqlite3's plain join ({:.1} ms), {:.2}× the store's list query ({:.1} ms); peak RSS {:.1} MiB",
            ms(list),
            ms(plain),
            ms(list) / ms(reference),
            ms(reference),
            list_rss as f64 / 1024.0
        ),
        "≤ 2× the plain join; ≤ 32 MiB",
        ratio <= 2.0 && list_rss <= 32 * 1024,
    ));

    // BENCH_SKIP_SERVER=1: B4 and B5 only (B7 seeds a million events).
    if std::env::var_os("BENCH_SKIP_SERVER").is_some() {
        println!();
        for (id, measure, figure, target, met) in rows {
            row(id, &measure, &figure, target, met);
        }
        return;
    }

    // B6 and B7 against `kube-dc-backend serve`, with a million events of
    // organization acme in its store before it starts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv_dir = home.join("srv");
    let t = Instant::now();
    seed_audit(&srv_dir.join("data"), "acme", 1_000_000);
    println!(
        "\nseeded 1,000,000 events for the server in {:.1?}",
        t.elapsed()
    );
    let server = Server::start(&rt, &srv_dir);
    let (url, token) = (server.url.clone(), server.token.clone());
    server.create_db("bench");
    let remote = |args: &[&str]| {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args(["--server", &url, "-n", "acme-demo"])
            .args(args)
            .env("KUBE_DC_TOKEN", &token);
        c
    };

    println!("\n== B6: one request (GET a secret's value over http://), {RUNS} runs each ==");
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
        remote(&["secrets", "get", "db", "--key", "PASSWORD"])
    });
    let ratio = ms(cli) / ms(curl);
    rows.push((
        "B6",
        "remote secrets get --key, http://".to_string(),
        format!("{:.2} ms = {ratio:.2}× curl ({:.2} ms)", ms(cli), ms(curl)),
        "≤ 0.6× curl",
        ratio <= 0.6,
    ));

    println!("\n== B7: CSV export of 1,000,000 events from the server ==");
    let csv_url = format!("{url}/api/audit/orgs/acme/csv");
    let curl_out = home.join("curl.csv");
    let cli_out = home.join("cli.csv");
    let curl_export = || {
        let mut c = Command::new("curl");
        c.args(["-sf", "-H", &format!("Authorization: Bearer {token}"), "-o"])
            .arg(&curl_out)
            .arg(&csv_url);
        c
    };
    let cli_export = || {
        // The organization's export: no namespace (it would name a project).
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args([
            "--server",
            &url,
            "audit",
            "list",
            "--org-name",
            "acme",
            "--csv",
        ])
        .arg("--output-file")
        .arg(&cli_out)
        .env("KUBE_DC_TOKEN", &token);
        c
    };
    // Three of each, alternating: the medians.
    let (mut curls, mut clis, mut cli_rss) = (Vec::new(), Vec::new(), 0);
    for _ in 0..3 {
        curls.push(peak_rss(curl_export()).0);
        let (wall, rss) = peak_rss(cli_export());
        clis.push(wall);
        cli_rss = cli_rss.max(rss);
    }
    curls.sort();
    clis.sort();
    let (curl_wall, cli_wall) = (curls[1], clis[1]);
    let size = std::fs::metadata(&cli_out).unwrap().len();
    println!(
        "curl -o: {:.2} s; kube-dc: {:.2} s, {:.1} MB, peak RSS {:.1} MiB",
        curl_wall.as_secs_f64(),
        cli_wall.as_secs_f64(),
        size as f64 / 1e6,
        cli_rss as f64 / 1024.0
    );
    drop(server);
    // The same export at 10,000 events: memory must not grow with size.
    let small_dir = home.join("srv-10k");
    seed_audit(&small_dir.join("data"), "acme", 10_000);
    let small = Server::start(&rt, &small_dir);
    let (_, small_rss) = peak_rss({
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args([
            "--server",
            &small.url,
            "audit",
            "list",
            "--org-name",
            "acme",
            "--csv",
            "--output-file",
        ])
        .arg(home.join("small.csv"))
        .env("KUBE_DC_TOKEN", &small.token);
        c
    });
    drop(small);
    let ratio = cli_wall.as_secs_f64() / curl_wall.as_secs_f64();
    rows.push((
        "B7",
        "CSV export, 1M events".to_string(),
        format!(
            "{:.2} s = {ratio:.2}× curl -o ({:.2} s); peak RSS {:.1} MiB at 1M, {:.1} MiB at 10k",
            cli_wall.as_secs_f64(),
            curl_wall.as_secs_f64(),
            cli_rss as f64 / 1024.0,
            small_rss as f64 / 1024.0
        ),
        "≤ 1.1× curl -o; ≤ 16 MiB, flat",
        ratio <= 1.1 && cli_rss <= 16 * 1024 && (cli_rss - small_rss).abs() <= 2 * 1024,
    ));

    println!();
    for (id, measure, figure, target, met) in rows {
        row(id, &measure, &figure, target, met);
    }
}
