//! HAProxy (Debian's package) as the load balancer in front of several
//! `kube-dc-backend serve` replicas: round robin, `/readyz` checked every
//! 200 ms (down after 2 failures), a request whose connection could not be
//! made sent to another replica. Stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running HAProxy.
pub struct Haproxy {
    child: Child,
    /// Where it listens (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// In front of `replicas` (their `http://HOST:PORT` URLs), with its
    /// configuration written in `dir`.
    pub fn start(dir: &Path, replicas: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let addr = url.trim_start_matches("http://");
                format!("  server r{i} {addr} check\n")
            })
            .collect();
        let cfg = format!(
            "global\n  maxconn 4000\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             \x20 retries 3\n  option redispatch\n  retry-on conn-failure\n  option http-keep-alive\n\
             frontend api\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n  option httpchk GET /readyz\n\
             \x20 default-server inter 200ms fall 2 rise 2\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let bin = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("HAProxy is missing: apt-get install -y haproxy (scripts/test.sh installs it)");
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "HAProxy did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}
