//! The streamed audit export: only a complete one is kept.

use super::transport::trickle;
use crate::common::*;

#[test]
fn a_broken_export_leaves_no_file() {
    // The CSV stream stops half-way (the connection drops).
    let stub = Stub::start(|_| {
        (
            200,
            "text/csv",
            b"ts,action,result,actor\n2026,a,b,c\n".to_vec(),
        )
    });
    let h = Home::new();
    let file = h.path().join("x.csv");
    let export = |server: &str| {
        let out = file.to_str().unwrap();
        let args = [
            "--server",
            server,
            "audit",
            "list",
            "--csv",
            "--org-name",
            "acme",
            "--output-file",
            out,
        ];
        h.run_env(&args, &[("KUBE_DC_TOKEN", "t")])
    };
    // Complete export first: the file appears.
    export(&stub.url).ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "ts,action,result,actor\n2026,a,b,c\n"
    );
    std::fs::remove_file(&file).unwrap();
    let r = export(&BrokenStream::start()).code(7);
    assert!(r.stderr.contains("broke off"), "{}", r.stderr);
    assert!(!file.exists(), "no truncated file under the requested name");
    assert_eq!(
        std::fs::read_dir(h.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("kube-dc"))
            .count(),
        0
    );
}

/// A raw TCP server that promises more body than it sends, then hangs up.
struct BrokenStream;

impl BrokenStream {
    fn start() -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 100000\r\n\r\nts,action,result,actor\n2026,secr");
            }
        });
        format!("http://{addr}")
    }
}

fn csv_answer(ctype: &str, trailer: bool, body: &str) -> axum::response::Response {
    let mut b = axum::response::Response::builder()
        .header("content-type", ctype)
        .header("x-request-id", "stub-req-1");
    if trailer {
        b = b.header("x-kube-dc-export-trailer", "rows");
    }
    b.body(axum::body::Body::from(body.to_string())).unwrap()
}

#[test]
fn only_a_complete_audit_export_is_kept() {
    let h = Home::new();
    let file = h.path().join("audit.csv");
    let export = |server: &str| {
        h.run_env(
            &[
                "--server",
                server,
                "audit",
                "list",
                "--csv",
                "--org-name",
                "acme",
                "--output-file",
                file.to_str().unwrap(),
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
    };
    let head = "ts,action,result,actor\n";
    // Complete, with the announced trailer: kept, trailer stripped.
    let ok = Stub::start_full(move |_| {
        csv_answer(
            "text/csv",
            true,
            &format!("{head}1,a,b,c\n#kube-dc-export-end rows=1\n"),
        )
    });
    let r = export(&ok.url).ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{head}1,a,b,c\n")
    );
    assert!(r.stderr.contains("exported 1 events"), "{}", r.stderr);
    std::fs::remove_file(&file).unwrap();
    // A header this client does not know (production's is undocumented),
    // without a trailer: passed through byte for byte.
    let prod = "timestamp,service,event.action,\"actor, display\"\n2026-05-12T08:00:00Z,secrets,x,\"a, b\"\n";
    let stub = Stub::start_full(move |_| csv_answer("text/csv", false, prod));
    export(&stub.url).ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), prod);
    std::fs::remove_file(&file).unwrap();
    let bad: Vec<(&str, bool, String, i32, &str)> = vec![
        (
            "text/html",
            false,
            "<html>Sign in</html>".into(),
            8,
            "not text/csv",
        ),
        (
            "application/json",
            false,
            r#"{"events":[]}"#.into(),
            8,
            "not text/csv",
        ),
        // Any header passes (production's is not documented), but every
        // row must have as many fields as it.
        (
            "text/csv",
            false,
            "junk,junk\n1,2,3\n".into(),
            8,
            "row 1 has 3 field(s) but the header has 2",
        ),
        (
            "text/csv",
            false,
            format!("{head}1,a,b"),
            7,
            "last row has no end",
        ),
        // Cut at a row boundary: only the announced trailer can tell.
        (
            "text/csv",
            true,
            format!("{head}1,a,b,c\n"),
            7,
            "end-of-export line is missing",
        ),
        (
            "text/csv",
            true,
            format!("{head}1,a,b,c\n#kube-dc-export-end rows=5\n"),
            7,
            "sent 5 rows but 1 arrived",
        ),
    ];
    for (ctype, trailer, body, code, why) in bad {
        let stub = Stub::start_full(move |_| csv_answer(ctype, trailer, &body));
        let r = export(&stub.url).code(code);
        assert!(r.stderr.contains(why), "{ctype} {why}: {}", r.stderr);
        assert!(!file.exists(), "nothing under the requested name ({why})");
    }
    assert_eq!(
        std::fs::read_dir(h.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("kube-dc-"))
            .count(),
        0
    );
}

#[test]
fn a_killed_export_leaves_no_file_at_all() {
    // A slow export: a chunk every 100 ms for ~10 s.
    let mut chunks = vec![b"ts,action,result,actor\n".to_vec()];
    chunks.extend(std::iter::repeat_n(b"1,a,b,c\n".to_vec(), 100));
    let url = trickle("text/csv", chunks, std::time::Duration::from_millis(100));
    let h = Home::new();
    let out = h.path().join("exports");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("audit.csv");
    let mut child = h
        .cmd()
        .args([
            "--server",
            &url,
            "audit",
            "list",
            "--csv",
            "--org-name",
            "acme",
            "--output-file",
            file.to_str().unwrap(),
        ])
        .env("KUBE_DC_TOKEN", "t")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
