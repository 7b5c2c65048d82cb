//! `kube-dc ui` on the local context with 1,000 secrets, in a pseudo
//! terminal of its own (openpty). Rows of the B table:
//!
//! - B8: first paint — from the process's start until its first frame
//!   (the list loaded and drawn) reaches the terminal, read from the pty;
//!   beside `kube-dc secrets list` in the same kind of pty. The shipped
//!   binary has no switch for it.
//! - B9: CPU used while the view sits idle between refreshes.
//!
//! `cargo bench --bench ui` (after `cargo build --release --workspace`;
//! `scripts/bench.sh` does both).

#![allow(clippy::disallowed_macros)] // benchmarks print their figures

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_dc_testsupport::bench::{bin, median, row, seed_secrets};

const RUNS: usize = 20;

/// A pseudo terminal of 120×40: (controller, terminal side).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut m, mut t) = (0, 0);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid out-pointers; the new descriptors are owned below.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut t,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: fresh descriptors from openpty, owned by nothing else.
    unsafe { (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(t)) }
}

/// `kube-dc ARGS` on local data `data` with the terminal side of a fresh
/// pty as its stdin, stdout and stderr; a thread drains what it draws.
fn spawn_in_pty(
    home: &Path,
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::fs::File) {
    spawn_in_pty_watched(home, data, args, env, |_| {})
}

/// [`spawn_in_pty`], with `seen` called on everything it draws, as it
/// arrives.
fn spawn_in_pty_watched(
    home: &Path,
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    mut seen: impl FnMut(&[u8]) + Send + 'static,
) -> (std::process::Child, std::fs::File) {
    let (controller, term) = pty();
    let mut drain = controller.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = std::io::Read::read(&mut drain, &mut buf) {
            if n == 0 {
                break;
            }
            seen(&buf[..n]);
        }
    });
    let mut c = Command::new(bin("kube-dc"));
    // SAFETY: only async-signal-safe calls between fork and exec. The pty
    // becomes the child's controlling terminal (crossterm reads /dev/tty).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let child = c
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("USER", "bench")
        .env("TERM", "xterm-256color")
        .env("KUBE_DC_LOCAL_DATA_DIR", data)
        .envs(env.iter().copied())
        .stdin(Stdio::from(term.try_clone().unwrap()))
        .stdout(Stdio::from(term.try_clone().unwrap()))
        .stderr(Stdio::from(term))
        .spawn()
        .unwrap();
    (child, controller)
}

/// The median of `RUNS` runs of `kube-dc ARGS` in a pty, start to exit.
fn timed(label: &str, home: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Duration {
    let mut v = Vec::new();
    for i in 0..RUNS + 2 {
        let t = Instant::now();
        let (mut child, _controller) = spawn_in_pty(home, data, args, env);
        let st = child.wait().unwrap();
        let d = t.elapsed();
        assert!(st.success(), "{label} failed");
        if i >= 2 {
            v.push(d);
        }
    }
    let m = median(v);
    println!("{label:<52} median {:>7.2} ms", m.as_secs_f64() * 1e3);
    m
}

/// The median of `RUNS` runs of `kube-dc ui`: from start until its first
/// frame — the list loaded and drawn, known by the key line under it — is
/// on the terminal; then `q` quits it.
fn first_paint(home: &Path, data: &Path) -> Duration {
    // The last word of the key line, the last thing a frame draws (ratatui
    // moves the cursor over spaces, so words arrive one by one).
    const KEY_LINE: &[u8] = b"quit";
    let mut v = Vec::new();
    for i in 0..RUNS + 2 {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut got: Vec<u8> = Vec::new();
        let t = Instant::now();
        let (mut child, mut controller) =
            spawn_in_pty_watched(home, data, &["ui", "--refresh", "3600"], &[], move |b| {
                got.extend_from_slice(b);
                if got.windows(KEY_LINE.len()).any(|w| w == KEY_LINE) {
                    let _ = tx.send(Instant::now());
                    got.clear();
                }
            });
        let painted = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("kube-dc ui drew no first frame within 30 s");
        controller.write_all(b"q").unwrap();
        let st = child.wait().unwrap();
        assert!(st.success(), "kube-dc ui did not quit cleanly on q: {st:?}");
        if i >= 2 {
            v.push(painted - t);
        }
    }
    let m = median(v);
    println!(
        "{:<52} median {:>7.2} ms",
        "kube-dc ui (start to first frame)",
        m.as_secs_f64() * 1e3
    );
    m
}

/// utime + stime of `pid`, in clock ticks; panics if it is not running.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    assert!(
        matches!(f[0], "S" | "R"),
        "kube-dc ui is not running (state {})",
        f[0]
    );
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().to_path_buf();
    let data = home.join("local-1k");
    seed_secrets(&data, 1000);

    println!("\n== B8: kube-dc ui, first paint with 1,000 secrets (in a 120×40 pty) ==");
    let paint = first_paint(&home, &data);
    let list = timed(
        "kube-dc secrets list (same pty)",
        &home,
        &data,
        &["secrets", "list"],
        &[],
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rows_b8 = (
        "B8",
        "ui first paint, 1,000 secrets".to_string(),
        format!(
            "{:.1} ms from start to first frame = {:.2}× secrets list ({:.1} ms)",
            ms(paint),
            ms(paint) / ms(list),
            ms(list)
        ),
        "≤ 100 ms",
        ms(paint) <= 100.0,
    );

    println!("\n== B9: kube-dc ui idle (refresh every hour) ==");
    let (mut child, mut controller) = spawn_in_pty(&home, &data, &["ui", "--refresh", "3600"], &[]);
    // Past its first frame.
    std::thread::sleep(Duration::from_millis(1500));
    let idle = Duration::from_secs(5);
    let before = cpu_ticks(child.id());
    std::thread::sleep(idle);
    let after = cpu_ticks(child.id());
    // SAFETY: sysconf has no preconditions.
    let tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let used = (after - before) as f64 * tick_ms;
    println!(
        "CPU used by kube-dc ui over {idle:?} idle: {used:.0} ms ({} ticks)",
        after - before
    );
    // `q` quits it.
    controller.write_all(b"q").unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "kube-dc ui did not quit cleanly on q: {st:?}");

    println!();
    let (id, measure, figure, target, met) = rows_b8;
    row(id, &measure, &figure, target, met);
    row(
        "B9",
        "ui idle between refreshes",
        &format!("{used:.0} ms of CPU in {} s", idle.as_secs()),
        "no CPU while idle",
        after == before,
    );
}
