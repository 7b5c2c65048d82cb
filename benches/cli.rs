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
//! - B15: local `secrets inject` of 50 references over 10 secrets: the
//!   requests it makes, and its time beside 10 `get --value` run at once.
//! - B16: `secrets run` relaying 100 MiB of a child's stdout through the
//!   mask beside `--no-masking`, and the latency the mask adds to a line.
//! - B19: `secrets run --watch`: from a `secrets put` returning to the
//!   command started again with the new value (it stops at once on
//!   SIGTERM: no grace period used).

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

    // BENCH_ONLY_MIGRATE=1: B23 only.
    if std::env::var_os("BENCH_ONLY_MIGRATE").is_some() {
        let r = bench_migrate(&kube_dc, &home, &base);
        row(r.0, &r.1, &r.2, r.3, r.4);
        return;
    }
    let refs_data = home.join("local-refs");
    rows.push(bench_inject(&refs_data, &local));
    rows.extend(bench_masking(&refs_data, &local));
    rows.push(bench_run_watch(&refs_data, &local));
    // BENCH_ONLY_REFS=1: B15, B16 and B19 only.
    if std::env::var_os("BENCH_ONLY_REFS").is_some() {
        println!();
        for (id, measure, figure, target, met) in rows {
            row(id, &measure, &figure, target, met);
        }
        return;
    }

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

    // BENCH_SKIP_SERVER=1: B15, B16, B4 and B5 only (B7 seeds a million events).
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

    // Organization-wide commands against the server: no namespace (it
    // would name a project).
    let org_cli = |args: &[&str]| {
        let mut c = Command::new(&kube_dc);
        base(&mut c);
        c.args(["--server", &url])
            .args(args)
            .env("KUBE_DC_TOKEN", &token);
        c
    };
    // B20's checkpoint, signed before the exports: they reach it.
    let checkpoint = home.join("checkpoint.json");
    let signed = org_cli(&["audit", "checkpoint", "--org-name", "acme", "--output-file"])
        .arg(&checkpoint)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );

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
        let mut c = org_cli(&[
            "audit",
            "list",
            "--org-name",
            "acme",
            "--csv",
            "--output-file",
        ]);
        c.arg(&cli_out);
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
    rows.push(bench_verify(&kube_dc, &cli_out, &checkpoint, &base));
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
    rows.push(bench_migrate(&kube_dc, &home, &base));
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

/// B20: `audit verify` of the million-event export with its checkpoint,
/// beside the same verify without it (three of each, alternating: the
/// medians), and the events verified per second.
fn bench_verify(
    kube_dc: &Path,
    export: &Path,
    checkpoint: &Path,
    base: &dyn Fn(&mut Command),
) -> Row {
    println!("\n== B20: audit verify of 1,000,000 events, with and without the checkpoint ==");
    let verify = |with: bool| {
        let mut c = Command::new(kube_dc);
        base(&mut c);
        c.args(["audit", "verify"]).arg(export);
        if with {
            c.arg("--checkpoint").arg(checkpoint);
        }
        c
    };
    let (mut plain, mut checked, mut rss) = (Vec::new(), Vec::new(), 0);
    for _ in 0..3 {
        let (wall, r) = peak_rss(verify(false));
        plain.push(wall);
        let (wall, r2) = peak_rss(verify(true));
        checked.push(wall);
        rss = rss.max(r).max(r2);
    }
    let out = verify(true).output().unwrap();
    assert!(
        out.status.success(),
        "verify --checkpoint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.split_once(" event(s) verified")?
                .0
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    use kube_dc_testsupport::bench::median;
    let (plain, checked) = (median(plain), median(checked));
    let ratio = checked.as_secs_f64() / plain.as_secs_f64();
    let rate = events / checked.as_secs_f64();
    println!(
        "verify: {:.2} s; with the checkpoint: {:.2} s ({ratio:.2}×); {:.0} events/s; peak RSS {:.0} MiB",
        plain.as_secs_f64(),
        checked.as_secs_f64(),
        rate,
        rss as f64 / 1024.0
    );
    (
        "B20",
        "audit verify, 1M events, --checkpoint".to_string(),
        format!(
            "{:.2} s = {ratio:.2}× without ({:.2} s); {:.0}k events/s; peak RSS {:.0} MiB",
            checked.as_secs_f64(),
            plain.as_secs_f64(),
            rate / 1000.0,
            rss as f64 / 1024.0
        ),
        "≤ 1.2×; ≥ 200k events/s",
        ratio <= 1.2 && rate >= 200_000.0,
    )
}

/// B23: `secrets migrate` of 1,000 KV v2 paths from a `bao server -dev`
/// into `kube-dc-backend serve`, beside a shell loop of `curl` making the
/// same reads (OpenBao) and writes (the backend) one at a time; the
/// migrating process's peak memory at 100 and at 1,000 paths; and the same
/// migration into the local context.
fn bench_migrate(kube_dc: &Path, home: &Path, base: &dyn Fn(&mut Command)) -> Row {
    println!("\n== B23: secrets migrate, 1,000 KV paths from OpenBao ==");
    let bao =
        std::env::var("KUBE_DC_BAO").expect("KUBE_DC_BAO (scripts/install-openbao.sh prints it)");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("http://127.0.0.1:{port}");
    let mut dev = Command::new(&bao)
        .args(["server", "-dev", "-dev-root-token-id=root"])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null"])
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let t = Instant::now();
    while !curl(&[&format!("{addr}/v1/sys/health")]) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "bao server -dev did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // 1,000 paths (and 100 under their own prefix), written through one
    // keep-alive connection by a script curl reads from stdin.
    let seed = |prefix: &str, n: usize| {
        let mut cfg = String::new();
        for i in 0..n {
            cfg.push_str(&format!(
                "next\nurl = \"{addr}/v1/secret/data/{prefix}/svc-{i:04}\"\nheader = \"X-Vault-Token: root\"\n\
                 data = \"{{\\\"data\\\":{{\\\"TOKEN\\\":\\\"token-{i}-abcdefghijklmnop\\\",\\\"N\\\":\\\"{i}\\\"}}}}\"\n\
                 output = \"/dev/null\"\n"
            ));
        }
        let mut c = Command::new("curl")
            .args(["-sf", "-K", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        c.stdin
            .take()
            .unwrap()
            .write_all(cfg.trim_start_matches("next\n").as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "seeding {prefix}");
    };
    seed("b1000", 1000);
    seed("b100", 100);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let migrate = |srv: &Server, prefix: &str| {
        let mut c = Command::new(kube_dc);
        base(&mut c);
        c.args([
            "--server",
            &srv.url,
            "-n",
            "acme-demo",
            "secrets",
            "migrate",
        ])
        .arg(format!("vault://secret/{prefix}"))
        .args(["--recursive", "--yes"])
        .env("KUBE_DC_TOKEN", &srv.token)
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", "root");
        c
    };
    // The reference: per path, one curl GET from OpenBao, one curl POST
    // to the backend, one after the other.
    let loop_script = |srv: &Server, prefix: &str| {
        let script = format!(
            "for i in $(seq -f %04g 0 999); do \
               v=$(curl -sf -H 'X-Vault-Token: root' {addr}/v1/secret/data/{prefix}/svc-$i) || exit 1; \
               d=$(printf '%s' \"$v\" | sed -e 's/.*\"data\":{{\"data\":\\({{[^}}]*}}\\).*/\\1/'); \
               curl -sf -o /dev/null -H \"Authorization: Bearer {token}\" -H 'Content-Type: application/json' \
                 -d \"{{\\\"type\\\":\\\"opaque\\\",\\\"initialValues\\\":$d}}\" \
                 {url}/api/secrets/acme-demo/curl-$i || exit 1; \
             done",
            token = srv.token,
            url = srv.url
        );
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let (mut clis, mut loops) = (Vec::new(), Vec::new());
    let mut rss_1000 = 0;
    for round in 0..2 {
        let srv = Server::start(&rt, &home.join(format!("b23-{round}")));
        let (wall, rss) = peak_rss(migrate(&srv, "b1000"));
        let listed = srv.curl(&["-s", &format!("{}/api/secrets/acme-demo", srv.url)]);
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(
            listed["items"].as_array().map(Vec::len),
            Some(1000),
            "migrate wrote every path"
        );
        clis.push(wall);
        rss_1000 = rss_1000.max(rss);
        loops.push(peak_rss(loop_script(&srv, "b1000")).0);
    }
    let srv = Server::start(&rt, &home.join("b23-100"));
    let (_, rss_100) = peak_rss(migrate(&srv, "b100"));
    drop(srv);
    // Into the local context (the embedded backend).
    let local_data = home.join("b23-local");
    let local_wall = {
        let mut c = Command::new(kube_dc);
        base(&mut c);
        c.env("KUBE_DC_LOCAL_DATA_DIR", &local_data)
            .args([
                "secrets",
                "migrate",
                "vault://secret/b1000",
                "--recursive",
                "--yes",
            ])
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", "root");
        peak_rss(c).0
    };
    let _ = dev.kill();
    let _ = dev.wait();
    use kube_dc_testsupport::bench::median;
    let (cli, reference) = (median(clis), median(loops));
    let ratio = cli.as_secs_f64() / reference.as_secs_f64();
    println!(
        "migrate: {:.2} s; curl loop: {:.2} s ({ratio:.2}×); into the local context: {:.2} s; \
         peak RSS {:.1} MiB at 100 paths, {:.1} MiB at 1,000",
        cli.as_secs_f64(),
        reference.as_secs_f64(),
        local_wall.as_secs_f64(),
        rss_100 as f64 / 1024.0,
        rss_1000 as f64 / 1024.0
    );
    (
        "B23",
        "secrets migrate, 1,000 KV paths".to_string(),
        format!(
            "{:.2} s = {ratio:.2}× a curl loop ({:.2} s); local {:.2} s; RSS {:.1} → {:.1} MiB (100 → 1,000)",
            cli.as_secs_f64(),
            reference.as_secs_f64(),
            local_wall.as_secs_f64(),
            rss_100 as f64 / 1024.0,
            rss_1000 as f64 / 1024.0
        ),
        "≤ 0.5×; memory flat",
        ratio <= 0.5 && rss_1000 <= rss_100 + 8 * 1024,
    )
}

/// One row of the summary table: id, measure, figure, target, met.
type Row = (&'static str, String, String, &'static str, bool);

/// B15: a template of 50 references over 10 secrets (5 keys each), rendered
/// by one `inject`, beside the 10 `get --value` it replaces run at once.
fn bench_inject(data: &Path, local: &dyn Fn(&Path, &[&str]) -> Command) -> Row {
    println!("\n== B15: secrets inject, 50 references over 10 secrets, {RUNS} runs each ==");
    let mut template = String::new();
    for s in 0..10 {
        let mut c = local(data, &["secrets", "create", &format!("app-{s}")]);
        for k in 0..5 {
            c.arg(format!(
                "--from-literal=KEY_{k}=value-{s}-{k}-{}",
                "x".repeat(40)
            ));
        }
        c.stdout(Stdio::null()).stderr(Stdio::null());
        assert!(c.status().unwrap().success(), "seeding app-{s}");
        for k in 0..5 {
            template.push_str(&format!(
                "s{s}k{k}: {{{{ kube-dc://default/app-{s}/KEY_{k} }}}}\n"
            ));
        }
    }
    let tpl = data.join("bench.tpl");
    std::fs::write(&tpl, &template).unwrap();
    let tpl = tpl.display().to_string();
    // The requests it makes, from its own -v trace.
    let out = local(data, &["-v", "secrets", "inject", "-i", &tpl])
        .output()
        .unwrap();
    assert!(out.status.success(), "inject failed");
    let requests = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("> GET ") || l.starts_with("> POST ") || l.starts_with("> PUT "))
        .count();
    println!("requests made by one inject: {requests}");
    let inject = time_runs("kube-dc secrets inject (50 references)", || {
        local(data, &["secrets", "inject", "-i", &tpl])
    });
    // The reference: the same 10 reads as 10 processes started together.
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS + 3 {
        let t = Instant::now();
        let children: Vec<_> = (0..10)
            .map(|s| {
                local(data, &["secrets", "get", &format!("app-{s}"), "--value"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "get --value failed");
        }
        if i >= 3 {
            samples.push(t.elapsed());
        }
    }
    let gets = kube_dc_testsupport::bench::median(samples);
    println!(
        "{:<48} median {:>7.2} ms",
        "10 × kube-dc secrets get --value, at once",
        ms(gets)
    );
    let ratio = ms(inject) / ms(gets);
    (
        "B15",
        "local inject, 50 references over 10 secrets".to_string(),
        format!(
            "{requests} requests; {:.1} ms = {ratio:.2}× 10 concurrent `get --value` ({:.1} ms)",
            ms(inject),
            ms(gets)
        ),
        "10 requests; ≤ 1.5×",
        requests == 10 && ratio <= 1.5,
    )
}

/// B16: a child writing 100 MiB of log lines (some holding the value) to
/// stdout, read by this process from a pipe, through the mask and with
/// --no-masking; then 200 lines written 5 ms apart, each stamped by the
/// child, and how late each reaches the reader.
fn bench_masking(data: &Path, local: &dyn Fn(&Path, &[&str]) -> Command) -> Vec<Row> {
    use std::io::{BufRead, Read};
    println!("\n== B16: secrets run, the child's stdout through the mask ==");
    let c = local(
        data,
        &[
            "secrets",
            "create",
            "masked",
            "--from-literal=TOKEN=tok-3f9a2c71e8b54d06",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert!(c.success(), "seeding masked");
    const SIZE: u64 = 100 << 20;
    // A line in 64 holds the value.
    let writer = format!(
        "awk 'BEGIN {{ l = \"2026-12-07T11:00:00Z INFO request served in 3 ms path=/api/v1/items status=200\"; \
         for (i = 0; ; i++) {{ if (i % 64 == 0) print l \" token=\" ENVIRON[\"TOKEN\"]; else print l }} }}' | head -c {SIZE}"
    );
    let relay = |masking: bool| -> (Duration, u64) {
        let mut args = vec!["secrets", "run", "masked"];
        if !masking {
            args.push("--no-masking");
        }
        args.extend(["--", "sh", "-c", &writer]);
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let mut child = local(data, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut out = child.stdout.take().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            bytes = 0;
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes += n as u64,
                }
            }
            child.wait().unwrap();
            samples.push(t.elapsed());
        }
        (kube_dc_testsupport::bench::median(samples), bytes)
    };
    let (plain, plain_bytes) = relay(false);
    let (masked, masked_bytes) = relay(true);
    let mib = SIZE as f64 / (1 << 20) as f64;
    let (plain_rate, masked_rate) = (mib / plain.as_secs_f64(), mib / masked.as_secs_f64());
    println!(
        "{:<48} {:>8.1} MiB/s ({plain_bytes} bytes out)",
        "--no-masking", plain_rate
    );
    println!(
        "{:<48} {:>8.1} MiB/s ({masked_bytes} bytes out)",
        "masked", masked_rate
    );
    // The marker is 2 bytes longer than the value, once in 64 lines.
    assert_ne!(masked_bytes, plain_bytes, "the value was not masked");
    let ratio = masked_rate / plain_rate;

    // Per line: the child stamps each line with the wall clock as it
    // writes it; the reader compares with its own on arrival.
    let stamper = "i=0; while [ $i -lt 200 ]; do date +%s%N; sleep 0.005; i=$((i+1)); done";
    let lateness = |masking: bool| -> Vec<f64> {
        let mut args = vec!["secrets", "run", "masked"];
        if !masking {
            args.push("--no-masking");
        }
        args.extend(["--", "sh", "-c", stamper]);
        let mut child = local(data, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut late = Vec::new();
        for line in out.lines().map_while(std::result::Result::ok) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as f64;
            if let Ok(sent) = line.trim().parse::<f64>() {
                late.push((now - sent) / 1e6);
            }
        }
        child.wait().unwrap();
        late.sort_by(f64::total_cmp);
        late
    };
    let q = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    let plain_late = lateness(false);
    let masked_late = lateness(true);
    println!(
        "{:<48} p50 {:.3} ms  p99 {:.3} ms",
        "line lateness, --no-masking",
        q(&plain_late, 0.5),
        q(&plain_late, 0.99)
    );
    println!(
        "{:<48} p50 {:.3} ms  p99 {:.3} ms",
        "line lateness, masked",
        q(&masked_late, 0.5),
        q(&masked_late, 0.99)
    );
    let added = q(&masked_late, 0.5) - q(&plain_late, 0.5);
    let added99 = q(&masked_late, 0.99) - q(&plain_late, 0.99);
    vec![
        (
            "B16",
            "run, 100 MiB of stdout through the mask".to_string(),
            format!("{masked_rate:.0} MiB/s = {ratio:.2}× --no-masking ({plain_rate:.0} MiB/s)"),
            "≥ 0.5×",
            ratio >= 0.5,
        ),
        (
            "B16'",
            "run, latency the mask adds to a line".to_string(),
            format!("p50 {added:+.3} ms, p99 {added99:+.3} ms"),
            "≤ 1 ms",
            added <= 1.0,
        ),
    ]
}

/// B19: a put, then the watched command restarted with its value: 10
/// times, the time from the put's return to the new start.
fn bench_run_watch(data: &Path, local: &dyn Fn(&Path, &[&str]) -> Command) -> Row {
    println!("\n== B19: secrets run --watch, change → command restarted ==");
    let st = local(
        data,
        &["secrets", "create", "watched", "--from-literal=V=0"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert!(st.success(), "seeding watched");
    let starts = data.join("starts");
    let script = format!(
        "printf '%s\\n' \"$V\" >> {}; trap 'exit 0' TERM; while :; do sleep 0.01; done",
        starts.display()
    );
    let mut child = local(
        data,
        &[
            "secrets", "run", "watched", "--watch", "--", "sh", "-c", &script,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines = || std::fs::read_to_string(&starts).unwrap_or_default();
    let wait_for = |want: &str| {
        let t = Instant::now();
        while !lines().ends_with(&format!("{want}\n")) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no restart with {want}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait_for("0");
    let mut samples = Vec::new();
    for i in 1..=10 {
        let st = local(
            data,
            &[
                "secrets",
                "put",
                "watched",
                &format!("--from-literal=V={i}"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
        assert!(st.success());
        let t = Instant::now();
        wait_for(&i.to_string());
        samples.push(t.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort();
    let (p50, max) = (samples[samples.len() / 2], samples[samples.len() - 1]);
    println!(
        "put returned → restarted with the value: median {:.0} ms, worst {:.0} ms (of which the burst window: 400 ms)",
        ms(p50),
        ms(max)
    );
    (
        "B19",
        "run --watch, change → command restarted".to_string(),
        format!(
            "median {:.0} ms, worst {:.0} ms (grace unused)",
            ms(p50),
            ms(max)
        ),
        "≤ 1 s plus the grace period",
        max <= Duration::from_secs(1),
    )
}
