//! Failover on a real three-node OpenBao Raft cluster on loopback: the
//! backend's store is given all three addresses, writers keep writing, the
//! leader is killed with `kill -9`, and every write that was acknowledged
//! must be readable afterwards with its value. Prints its figures.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube_dc_api::wire::{Data, Sensitive};
use kube_dc_backend::openbao::{OpenBaoConfig, OpenBaoValues};
use kube_dc_backend::store::{NewSecret, Store, StoreError};
use kube_dc_testsupport::bao_dev::{Tied, bao_binary, free_port, wait_for};
use serde_json::Value;

const NS: &str = "acme-raft";

struct Node {
    addr: String,
    process: Tied,
}

fn bao(addr: &str, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut c = Command::new(bao_binary());
    c.args(args).env("BAO_ADDR", addr);
    if let Some(t) = token {
        c.env("BAO_TOKEN", t);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn start_node(dir: &Path, i: usize) -> Node {
    let (api, cluster) = (free_port(), free_port());
    let data = dir.join(format!("node{i}"));
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join(format!("node{i}.hcl"));
    std::fs::write(
        &config,
        format!(
            r#"storage "raft" {{
  path = "{data}"
  node_id = "node{i}"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{api}"
cluster_addr = "https://127.0.0.1:{cluster}"
disable_mlock = true
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let process = Tied::spawn(
        &["server".into(), format!("-config={}", config.display())],
        dir,
        &format!("node{i}"),
    );
    let addr = format!("http://127.0.0.1:{api}");
    // Up (sealed and uninitialized answer 501/503).
    assert!(
        wait_for(
            &addr,
            "/v1/sys/health",
            &[200, 429, 472, 473, 501, 503],
            Duration::from_secs(30)
        ),
        "node{i} did not start:\n{}",
        process.log_text()
    );
    Node { addr, process }
}

/// The address of the active node, if one is.
/// Creates opaque secret `name` in `ns` with `V=value`; its version.
fn create(
    store: &Store,
    ns: &str,
    name: &str,
    value: &str,
) -> Result<u64, kube_dc_backend::store::StoreError> {
    let mut d = Data::new();
    d.insert("V".into(), Sensitive::new(value.to_string()));
    let new = NewSecret {
        namespace: ns.into(),
        name: name.into(),
        kind: "opaque".into(),
        description: None,
        sync: Default::default(),
        rotation: None,
        rotation_interval: None,
        imported_from: None,
        key: None,
    };
    store
        .create(
            new,
            Some(&d),
            kube_dc_backend::clock::now_ms(),
            || Ok(()),
            None,
        )
        .map(|r| r.kv.map(|k| k.current_version).unwrap_or(0))
}

fn leader(nodes: &[Node]) -> Option<usize> {
    nodes.iter().position(|n| {
        kube_dc_testsupport::bao_dev::http_status(&n.addr, "/v1/sys/health") == Some(200)
    })
}

// Run by scripts/test.sh with --ignored --nocapture, so that its figures
// are shown (it takes about 30 s, most of it forming the cluster).
#[test]
#[ignore = "run by scripts/test.sh (--ignored --nocapture) to show its figures"]
fn acknowledged_writes_survive_the_leader_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = (0..3).map(|i| start_node(dir.path(), i)).collect();

    // Initialize on node 0, unseal it, join and unseal the others.
    let (ok, out) = bao(
        &nodes[0].addr,
        None,
        &[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ],
    );
    assert!(ok, "{out}");
    let init: Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    let key = init["unseal_keys_b64"][0].as_str().unwrap().to_string();
    let root = init["root_token"].as_str().unwrap().to_string();
    let (ok, out) = bao(&nodes[0].addr, None, &["operator", "unseal", &key]);
    assert!(ok, "{out}");
    assert!(
        wait_for(
            &nodes[0].addr,
            "/v1/sys/health",
            &[200],
            Duration::from_secs(30)
        ),
        "node0 did not become active:\n{}",
        nodes[0].process.log_text()
    );
    for n in &nodes[1..] {
        let (ok, out) = bao(&n.addr, None, &["operator", "raft", "join", &nodes[0].addr]);
        assert!(ok, "{out}");
        let (ok, out) = bao(&n.addr, None, &["operator", "unseal", &key]);
        assert!(ok, "{out}");
    }
    // All three voters, and the standbys ready to take over.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, peers) = bao(
            &nodes[0].addr,
            Some(&root),
            &["operator", "raft", "list-peers", "-format=json"],
        );
        let voters = serde_json::from_str::<Value>(&peers)
            .ok()
            .and_then(|v| {
                v["data"]["config"]["servers"]
                    .as_array()
                    .map(|s| s.iter().filter(|p| p["voter"] == true).count())
            })
            .unwrap_or(0);
        let standbys = nodes[1..]
            .iter()
            .filter(|n| {
                kube_dc_testsupport::bao_dev::http_status(&n.addr, "/v1/sys/health") == Some(429)
            })
            .count();
        if voters == 3 && standbys == 2 {
            break;
        }
        assert!(Instant::now() < until, "the cluster did not form: {peers}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The backend's store, pointed at all three nodes.
    let data_dir = dir.path().join("backend");
    std::fs::create_dir_all(&data_dir).unwrap();
    let cipher =
        Arc::new(kube_dc_backend::crypto::Cipher::load_or_create(&data_dir, None).unwrap());
    let values = OpenBaoValues::new(OpenBaoConfig {
        addrs: nodes.iter().map(|n| n.addr.clone()).collect(),
        token: zeroize::Zeroizing::new(root.clone()),
        ca_cert: None,
        failover: Duration::from_secs(30),
        mount_prefix: "kv-".into(),
    })
    .unwrap();
    let store = Arc::new(Store::open_with(&data_dir, cipher, Arc::new(values)).unwrap());

    // A project's first write enables its KV v2 mount and writes at once:
    // on a cluster OpenBao refuses writes there until it has upgraded the
    // new mount, which the backend waits out (never a 500).
    for p in 0..3 {
        let ns = format!("acme-fresh{p}");
        let t = Instant::now();
        let version = create(&store, &ns, "first", &format!("first-{p}"))
            .unwrap_or_else(|e| panic!("the first write to a new mount in {ns}: {e}"));
        assert_eq!(version, 1);
        println!(
            "new mount kv-{ns}: enabled and written in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }

    // Writers: each creates its secrets and writes versions to them.
    let acked: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    // Each writer owns its secrets: a conflict is a wrong answer (an
    // election must be waited for or answered as unavailable).
    let conflicts = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let last_ack = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, acked, failed, conflicts, stop, last_ack) = (
                store.clone(),
                acked.clone(),
                failed.clone(),
                conflicts.clone(),
                stop.clone(),
                last_ack.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("w{w}-s{}", n / 5);
                    let value = format!("value-{w}-{n}");
                    let mut d = Data::new();
                    d.insert("V".into(), Sensitive::new(value.clone()));
                    let res = if n.is_multiple_of(5) {
                        create(&store, NS, &name, &value)
                    } else {
                        store
                            .put_values(
                                NS,
                                &name,
                                &d,
                                None,
                                kube_dc_backend::clock::now_ms(),
                                None,
                                None,
                            )
                            .map(|v| v.get())
                    };
                    match res {
                        Ok(v) => {
                            acked.lock().unwrap().push((name, v, value));
                            last_ack.lock().unwrap().push(Instant::now());
                        }
                        Err(e) => {
                            let conflict = matches!(e, StoreError::Conflict(_));
                            let text = format!("{name}: {e}");
                            failed.lock().unwrap().push(text.clone());
                            if conflict {
                                conflicts.lock().unwrap().push(text);
                            }
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(3));
    let before_kill = acked.lock().unwrap().len();
    let old = leader(&nodes).expect("a leader");
    let killed_at = Instant::now();
    nodes[old].process.kill9();
    // Keep writing until writes have resumed for a while.
    let resumed = loop {
        std::thread::sleep(Duration::from_millis(100));
        let first_after = last_ack
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|t| *t > killed_at + Duration::from_millis(50))
            .min();
        if let Some(t) = first_after
            && Instant::now() > t + Duration::from_secs(3)
        {
            break Some(t - killed_at);
        }
        if killed_at.elapsed() > Duration::from_secs(60) {
            break None;
        }
    };
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let new_leader = leader(&nodes);

    // Every acknowledged write reads back with its value.
    let acked = acked.lock().unwrap().clone();
    let mut lost = Vec::new();
    for (name, version, value) in &acked {
        match store.read_version(NS, name, Some(*version)) {
            Ok(Some(v)) if v.data.get("V").map(|s| s.expose()) == Some(value.as_str()) => {}
            other => lost.push(format!(
                "{name} v{version}: {:?}",
                other.map(|o| o.map(|v| v.version))
            )),
        }
    }
    let failed = failed.lock().unwrap().clone();
    println!(
        "raft failover: {} writes acknowledged ({} before the kill), {} lost, {} not acknowledged; \
         leader node{old} killed, node{} took over; writes resumed after {}",
        acked.len(),
        before_kill,
        lost.len(),
        failed.len(),
        new_leader.map_or("?".into(), |i| i.to_string()),
        resumed.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64())),
    );
    for f in failed.iter().take(5) {
        println!("  not acknowledged: {f}");
    }
    assert!(before_kill > 0, "no write before the kill");
    let conflicts = conflicts.lock().unwrap().clone();
    assert!(
        conflicts.is_empty(),
        "writes refused as conflicts during the election: {conflicts:?}"
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let resumed = resumed.expect("writes never resumed after the leader was killed");
    assert!(
        resumed < Duration::from_secs(30),
        "resumed only after {resumed:?}"
    );
    assert!(
        acked.len() > before_kill,
        "no write acknowledged after the kill"
    );
}
