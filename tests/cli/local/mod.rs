//! The seed workflow and input handling through the built binary, on the
//! embedded local context.

mod apply_run;
mod everyday;
mod files;
mod inputs;
mod migrate;
mod recovery;
mod references;
mod truth;

use crate::common::*;
use serde_json::json;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: my-app, namespace: local-default }
spec:
  selector: { matchLabels: { app: my-app } }
  template:
    metadata: { labels: { app: my-app } }
    spec:
      containers:
        - name: app
          image: my-app:latest
          envFrom:
            - secretRef:
                name: app-config
"#;

/// A local context as the seed's workflow starts it: five secrets created
/// each way (empty, literals and a file, an env file, sync off, stdin), and
/// a Deployment that uses `app-config`.
fn seeded() -> Home {
    let h = Home::new();
    h.write("data/kube-dc/local/manifests/app.yaml", DEPLOYMENT);
    let env = h.write(
        "app.env",
        "# settings\nexport LOG_LEVEL=debug\nDB_PASSWORD='pa$word'\n",
    );
    let crt = h.write(
        "tls.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    );

    // create, each way
    let r = h.run(&["secrets", "create", "db-creds"]).ok();
    assert_eq!(r.stdout, "secret/db-creds created\n");
    h.run(&[
        "secrets",
        "create",
        "app-config",
        "--from-literal=DATABASE_URL=postgres://u:p@db/app?ssl=true",
        &format!("--from-file=tls.crt={crt}"),
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "app-env",
        &format!("--from-env-file={env}"),
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "api-keys",
        "--sync-disabled",
        "--type",
        "api-key",
        "--from-literal=STRIPE=sk_1",
    ])
    .ok();
    h.run_stdin(
        &[
            "secrets",
            "create",
            "piped",
            "--from-file=TOKEN=-",
            "--trim-newline",
        ],
        b"from-stdin\n",
    )
    .ok();

    h
}

/// The smoke test: the seed's whole workflow, each verb once, then the
/// audit log holds a step for each and no value, and no file holds one in
/// plaintext. The tests after it look at each part closely.
#[test]
fn seed_workflow_end_to_end() {
    let h = seeded();
    for args in [
        &["secrets", "list"][..],
        &["secrets", "get", "app-config", "--value"],
        &["secrets", "get", "app-config"],
        &[
            "secrets",
            "put",
            "db-creds",
            "--from-literal=PASSWORD=s3cr3t",
            "--from-literal=USER=app",
        ],
        &[
            "secrets",
            "put",
            "db-creds",
            "--from-literal=PASSWORD=R0tat3d-v2",
            "--from-literal=USER=app",
        ],
        &["secrets", "versions", "db-creds"],
        &["secrets", "sync", "db-creds", "--keys", "PASSWORD"],
        &["secrets", "consumers", "app-config"],
        &["secrets", "delete", "app-config", "--yes"],
        &["secrets", "restore", "app-config"],
        &["secrets", "delete", "app-config", "--destroy", "--yes"],
    ] {
        h.run(args).ok();
    }

    // audit shows each step
    let a = h
        .run(&[
            "audit",
            "list",
            "--service",
            "secrets",
            "--since",
            "1h",
            "--limit",
            "5000",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let actions: Vec<&str> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap())
        .collect();
    for step in [
        "secrets.secret.create",
        "secrets.secret.list",
        "secrets.value.read",
        "secrets.metadata.read",
        "secrets.value.write",
        "secrets.version.list",
        "secrets.sync.update",
        "secrets.consumer.list",
        "secrets.secret.delete",
        "secrets.secret.restore",
        "secrets.secret.destroy",
    ] {
        assert!(actions.contains(&step), "audit lacks {step}: {actions:?}");
    }
    let all = serde_json::to_string(&a).unwrap();
    for secret in ["s3cr3t", "R0tat3d-v2", "pa$word", "sk_1", "from-stdin"] {
        assert!(!all.contains(secret), "a value leaked into the audit log");
    }
    assert!(a["events"][0]["body"]["actor"] == "tester");
    // …and nothing in the data directory holds a value in plaintext.
    for secret in ["s3cr3t", "R0tat3d-v2", "sk_1", "from-stdin"] {
        let mut hits = vec![];
        for e in std::fs::read_dir(h.local_data()).unwrap().flatten() {
            if e.path().is_file()
                && std::fs::read(e.path())
                    .unwrap()
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes())
            {
                hits.push(e.path());
            }
        }
        assert!(hits.is_empty(), "{secret} in plaintext in {hits:?}");
    }
}

#[test]
fn seed_workflow_creates_lists_and_reads() {
    let h = seeded();
    // list
    let r = h.run(&["secrets", "list"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["NAME", "TYPE", "SYNC", "TARGET", "VERSION", "UPDATED"]),
        "{}",
        r.stdout
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_string()
    };
    // Sync on and wired (production's Ready=True), but no value is written
    // yet, so the projection is not ready: amber, never a green lie.
    assert!(row("db-creds").contains("● Pending"), "{}", r.stdout);
    assert!(row("app-config").contains("● Ready"));
    assert!(row("api-keys").contains("○ Disabled"));
    let list = h.run(&["secrets", "list", "-o", "json"]).ok().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 5);

    // get --value, --key, -o json
    let r = h.run(&["secrets", "get", "app-config", "--value"]).ok();
    assert!(
        r.stdout.contains("postgres://u:p@db/app?ssl=true"),
        "{}",
        r.stdout
    );
    let r = h
        .run(&["secrets", "get", "app-env", "--key", "DB_PASSWORD"])
        .ok();
    assert_eq!(r.stdout, "pa$word", "a value is never altered");
    let r = h.run(&["secrets", "get", "piped", "--key", "TOKEN"]).ok();
    assert_eq!(r.stdout, "from-stdin");
    let v = h
        .run(&["secrets", "get", "app-config", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"]["tls.crt"],
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    );
    let meta = h.run(&["secrets", "get", "app-config"]).ok();
    assert!(
        !meta.stdout.contains("postgres://"),
        "metadata only without --value"
    );
}

#[test]
fn seed_workflow_puts_versions_and_syncs() {
    let h = seeded();
    // put, versions
    let r = h
        .run(&[
            "secrets",
            "put",
            "db-creds",
            "--from-literal=PASSWORD=s3cr3t",
            "--from-literal=USER=app",
        ])
        .ok();
    assert_eq!(r.stdout, "secret/db-creds version 1 written\n");
    h.run(&[
        "secrets",
        "put",
        "db-creds",
        "--from-literal=PASSWORD=R0tat3d-v2",
        "--from-literal=USER=app",
    ])
    .ok();
    let r = h.run(&["secrets", "versions", "db-creds"]).ok();
    assert!(
        r.stdout.contains("current") && r.stdout.lines().count() == 3,
        "{}",
        r.stdout
    );
    let r = h
        .run(&[
            "secrets",
            "get",
            "db-creds",
            "--key",
            "PASSWORD",
            "--version",
            "1",
        ])
        .ok();
    assert_eq!(r.stdout, "s3cr3t");

    // sync
    let s = h
        .run(&[
            "secrets",
            "sync",
            "db-creds",
            "--keys",
            "PASSWORD",
            "--refresh",
            "15m",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(s["sync"]["keys"], json!(["PASSWORD"]));
    assert_eq!(s["sync"]["refreshInterval"], "15m");
    let s = h
        .run(&[
            "secrets",
            "sync",
            "db-creds",
            "--enabled",
            "false",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(s["sync"]["enabled"], false);
}

#[test]
fn seed_workflow_consumers_delete_restore_and_destroy() {
    let h = seeded();
    // consumers
    let r = h.run(&["secrets", "consumers", "app-config"]).ok();
    assert!(
        r.stdout.contains("Deployment")
            && r.stdout.contains("my-app")
            && r.stdout.contains("envFrom"),
        "{}",
        r.stdout
    );

    // delete → restore → destroy. A Deployment uses the projection: the
    // soft delete names it and, without a terminal, needs --yes.
    let r = h.run(&["secrets", "delete", "app-config"]).code(2);
    assert!(
        r.stderr.contains("Deployment/my-app") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "get", "app-config"]).ok();
    h.run(&["secrets", "delete", "app-config", "--yes"]).ok();
    h.run(&["secrets", "get", "app-config"]).code(3);
    h.run(&["secrets", "restore", "app-config"]).ok();
    let r = h
        .run(&["secrets", "get", "app-config", "--key", "DATABASE_URL"])
        .ok();
    assert_eq!(r.stdout, "postgres://u:p@db/app?ssl=true");
    let r = h
        .run(&["secrets", "delete", "app-config", "--destroy"])
        .code(2);
    assert!(
        r.stderr.contains("--yes"),
        "no terminal, no --yes: refuse ({})",
        r.stderr
    );
    let r = h
        .run(&["secrets", "delete", "app-config", "--destroy", "--yes"])
        .ok();
    assert_eq!(r.stdout, "secret/app-config destroyed\n");
    h.run(&["secrets", "restore", "app-config"]).code(3);
}
