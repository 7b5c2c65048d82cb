//! B24, B25: B1 and B2 with the records on PostgreSQL (`serve
//! --database`), beside the same on SQLite in the same run; B26: both with
//! two replicas on one database behind HAProxy.
//! `cargo bench -p kube-dc-backend --bench postgres` (after `cargo build
//! --release --workspace`); PostgreSQL and HAProxy from Debian's packages
//! (`scripts/postgres.sh` starts a server of its own in a temporary
//! directory).
//!
//! `BENCH_SECONDS` (default 20) sets each run's length; connections are 64.
//! `BENCH_BASELINE=PATH` also measures another build of the backend beside
//! this one (before/after a change): on SQLite, and on PostgreSQL when
//! that build has `--database` (`BENCH_BASELINE_POSTGRES=1`).
//! `BENCH_ONLY_SQLITE=1` with `BENCH_BASELINE`: SQLite only, the two builds
//! alternating twice.
//! `BENCH_ONLY_POSTGRES=1`: PostgreSQL with one replica only, this build and
//! (with `BENCH_BASELINE`) the baseline build alternating twice.

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use kube_dc_testsupport::bench::{CONNECTIONS, Load, Server, row, wrk};
use kube_dc_testsupport::haproxy::Haproxy;
use kube_dc_testsupport::pg::{TempServer, master_key_file, new_database};

/// B1's read and B2's write against `secret` (its URL through `base`).
fn load(
    label: &str,
    base: &str,
    secret_path: &str,
    token: &str,
    put: &std::path::Path,
) -> (Load, Load) {
    let url = format!("{base}{secret_path}");
    let read = wrk(
        &format!("{label}: GET ?includeValue=true"),
        &format!("{url}?includeValue=true"),
        token,
        None,
    );
    let write = wrk(
        &format!("{label}: PUT …/values"),
        &format!("{url}/values"),
        token,
        Some(put),
    );
    (read, write)
}

/// This build's B1 and B2 (req/s) against a baseline build's, on `on`.
fn compare(on: &str, (read, write): (f64, f64), (base_read, base_write): (f64, f64)) {
    println!(
        "this build against the baseline build on {on}: B1 {:.2}× ({read:.0} vs {base_read:.0} \
         req/s), B2 {:.2}× ({write:.0} vs {base_write:.0} req/s)",
        read / base_read,
        write / base_write,
    );
}

/// `BENCH_ONLY_POSTGRES=1`: B1 and B2 on PostgreSQL, one replica, this
/// build and (with `BENCH_BASELINE`) the baseline build alternating twice
/// — for measuring a change to the PostgreSQL path alone.
fn only_postgres(
    rt: &tokio::runtime::Runtime,
    pg: &TempServer,
    work: &std::path::Path,
    path: &str,
    put: &std::path::Path,
) {
    let key = master_key_file(work);
    let key = key.to_str().unwrap();
    let mut builds = vec![("this build", super_bin())];
    if let Some(base) = std::env::var_os("BENCH_BASELINE") {
        builds.push(("baseline build", base.into()));
    }
    let mut best: Vec<(f64, f64)> = vec![(0.0, 0.0); builds.len()];
    for round in 0..2 {
        for (i, (label, exe)) in builds.iter().enumerate() {
            let database = new_database(&pg.url);
            let args = ["--database", &database, "--master-key-file", key];
            let s = Server::start_bin(exe, rt, &work.join(format!("{label}-{round}")), &args, &[]);
            s.create_db("bench-value");
            let (r, w) = load(&format!("postgres, {label}"), &s.url, path, &s.token, put);
            best[i] = (best[i].0.max(r.rps), best[i].1.max(w.rps));
        }
    }
    if best.len() == 2 {
        compare(
            "PostgreSQL (the better of two alternating runs)",
            best[0],
            best[1],
        );
    }
}

/// This build's `kube-dc-backend`.
fn super_bin() -> std::path::PathBuf {
    kube_dc_testsupport::bench::bin("kube-dc-backend")
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let put = work.path().join("put.lua");
    std::fs::write(
        &put,
        "wrk.method = \"PUT\"\nwrk.body = '{\"data\":{\"PASSWORD\":\"rotated-bench-value\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    let path = "/api/secrets/acme-demo/db";
    if std::env::var("BENCH_ONLY_SQLITE").as_deref() == Ok("1") {
        let base =
            std::env::var_os("BENCH_BASELINE").expect("BENCH_ONLY_SQLITE needs BENCH_BASELINE");
        let mut this = Vec::new();
        let mut that = Vec::new();
        for round in 0..2 {
            for (label, exe, out) in [
                ("sqlite, this build", super_bin(), &mut this),
                (
                    "sqlite, baseline build",
                    std::path::PathBuf::from(&base),
                    &mut that,
                ),
            ] {
                let s = Server::start_bin(
                    &exe,
                    &rt,
                    &work.path().join(format!("{label}-{round}")),
                    &[],
                    &[],
                );
                s.create_db("bench-value");
                out.push(load(label, &s.url, path, &s.token, &put));
            }
        }
        let best = |v: &[(Load, Load)], w: bool| {
            v.iter()
                .map(|(r, p)| if w { p.rps } else { r.rps })
                .fold(0.0, f64::max)
        };
        compare(
            "SQLite (the better of two alternating runs)",
            (best(&this, false), best(&this, true)),
            (best(&that, false), best(&that, true)),
        );
        return;
    }
    let pg = TempServer::start();
    if std::env::var("BENCH_ONLY_POSTGRES").as_deref() == Ok("1") {
        only_postgres(&rt, &pg, work.path(), path, &put);
        return;
    }
    println!(
        "\n== B1/B2 on SQLite and on PostgreSQL: {CONNECTIONS} connections, wrk on the same machine =="
    );

    let sqlite = Server::start(&rt, &work.path().join("sqlite"));
    sqlite.create_db("bench-value");
    let (lite_read, lite_write) = load("sqlite", &sqlite.url, path, &sqlite.token, &put);
    drop(sqlite);

    let baseline_bin = std::env::var_os("BENCH_BASELINE");
    let lite_baseline = baseline_bin.as_ref().map(|bin| {
        let base = Server::start_bin(
            std::path::Path::new(bin),
            &rt,
            &work.path().join("sqlite-baseline"),
            &[],
            &[],
        );
        base.create_db("bench-value");
        load("sqlite, baseline build", &base.url, path, &base.token, &put)
    });

    let database = new_database(&pg.url);
    let key = master_key_file(work.path());
    let key = key.to_str().unwrap();
    let args = ["--database", &database, "--master-key-file", key];
    let one = Server::start_with(&rt, &work.path().join("pg-a"), &args, &[]);
    one.create_db("bench-value");
    let (pg_read, pg_write) = load("postgres, 1 replica", &one.url, path, &one.token, &put);

    let pg_baseline = std::env::var("BENCH_BASELINE_POSTGRES").as_deref() == Ok("1");
    let baseline = baseline_bin.filter(|_| pg_baseline).map(|bin| {
        let database = new_database(&pg.url);
        let args = ["--database", &database, "--master-key-file", key];
        let base = Server::start_bin(
            std::path::Path::new(&bin),
            &rt,
            &work.path().join("pg-baseline"),
            &args,
            &[],
        );
        base.create_db("bench-value");
        load(
            "postgres, 1 replica, baseline build",
            &base.url,
            path,
            &base.token,
            &put,
        )
    });

    let (mut second, second_url) = one.replica(&work.path().join("pg-b"), &args);
    let lb = Haproxy::start(work.path(), &[&one.url, &second_url]);
    let (two_read, two_write) = load(
        "postgres, 2 replicas + HAProxy",
        &lb.url,
        path,
        &one.token,
        &put,
    );
    drop(lb);
    let _ = second.kill();
    let _ = second.wait();
    drop(one);

    // SQLite once more, so that neither side had the machine to itself.
    let sqlite = Server::start(&rt, &work.path().join("sqlite2"));
    sqlite.create_db("bench-value");
    let (lite_read2, lite_write2) = load("sqlite (again)", &sqlite.url, path, &sqlite.token, &put);
    drop(sqlite);

    let lite_r = lite_read.rps.max(lite_read2.rps);
    let lite_w = lite_write.rps.max(lite_write2.rps);
    println!();
    for (id, what, pg, lite) in [
        (
            "B24",
            "GET includeValue on PostgreSQL, 1 replica",
            &pg_read,
            lite_r,
        ),
        (
            "B25",
            "PUT values on PostgreSQL, 1 replica",
            &pg_write,
            lite_w,
        ),
    ] {
        let ratio = pg.rps / lite;
        row(
            id,
            what,
            &format!(
                "{:.0} req/s = {ratio:.2}× SQLite ({lite:.0}); p99 {:.1} ms; {} errors",
                pg.rps, pg.p99_ms, pg.errors
            ),
            "≥ 0.5×",
            ratio >= 0.5 && pg.errors == 0,
        );
    }
    row(
        "B26",
        "B1 and B2 with 2 replicas behind HAProxy",
        &format!(
            "reads {:.0} req/s = {:.2}× one replica, p99 {:.1} ms; writes {:.0} req/s = {:.2}× \
             one replica, p99 {:.1} ms; {} errors",
            two_read.rps,
            two_read.rps / pg_read.rps,
            two_read.p99_ms,
            two_write.rps,
            two_write.rps / pg_write.rps,
            two_write.p99_ms,
            two_read.errors + two_write.errors
        ),
        "reported (2 cores: no scaling expected); 0 errors",
        two_read.errors + two_write.errors == 0,
    );
    if let Some(base) = lite_baseline {
        compare(
            "SQLite",
            (lite_read.rps, lite_write.rps),
            (base.0.rps, base.1.rps),
        );
    }
    if let Some(base) = baseline {
        compare(
            "PostgreSQL",
            (pg_read.rps, pg_write.rps),
            (base.0.rps, base.1.rps),
        );
    }
    drop(pg);
}
