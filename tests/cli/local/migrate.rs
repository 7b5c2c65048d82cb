//! `secrets migrate` and `secrets export` through the built binary on the
//! local context: from a real OpenBao dev server (KV v1 and v2, nested
//! paths, text of any characters, a PEM, every version), from
//! `kubectl`-shaped Secret YAML, back and forth through `export`, and a
//! 200-secret migration interrupted and run again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::common::*;
use kube_dc_testsupport::bao_dev::{DevServer, ROOT_TOKEN};

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUd2Vi\nLXRscy1jZXJ0\n-----END CERTIFICATE-----\n";
const ODD: &str = "it's \"quoted\" $HOME `x` \\n ünïcödé\ttab = # not a comment ";

/// A value of a secret (`secrets get NAME -o json`), optionally of a version.
fn value(h: &Home, name: &str, key: &str, version: Option<u64>) -> String {
    let v = version.map(|v| v.to_string());
    let mut args = vec!["secrets", "get", name, "--value", "-o", "json"];
    if let Some(v) = &v {
        args.extend(["--version", v]);
    }
    let doc = h.run(&args).ok().json();
    doc["value"]["data"][key]
        .as_str()
        .or_else(|| doc["data"][key].as_str())
        .unwrap_or_else(|| panic!("{name}/{key}: {doc}"))
        .to_string()
}

/// `bao` against the dev server, failing the test when it fails.
fn bao(dev: &DevServer, args: &[&str]) {
    let (ok, _, text) = dev.bao(ROOT_TOKEN, args);
    assert!(ok, "bao {args:?}: {text}");
}

#[test]
fn a_kv_tree_migrates_with_every_version_refusals_listed_values_masked_and_a_rerun_changes_nothing()
{
    let dev = DevServer::shared();
    let p = format!("mig{}", std::process::id());
    let kv1 = format!("{p}-v1");
    let pem_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pem_file.path(), PEM).unwrap();
    let pem_arg = format!("CERT=@{}", pem_file.path().display());
    for pass in ["first-pass-1", "second-pass-2", "third-pass-3"] {
        let password = format!("PASSWORD={pass}");
        bao(
            dev,
            &[
                "kv",
                "put",
                &format!("secret/{p}/apps/web/db"),
                &password,
                "USER=app",
            ],
        );
    }
    bao(
        dev,
        &[
            "kv",
            "put",
            &format!("secret/{p}/apps/tls"),
            &pem_arg,
            &format!("ODD={ODD}"),
        ],
    );
    bao(
        dev,
        &[
            "kv",
            "put",
            &format!("secret/{p}/apps/deep/a/b"),
            "K=deep-value-9",
        ],
    );
    bao(
        dev,
        &[
            "kv",
            "put",
            &format!("secret/{p}/apps/Bad_Name"),
            "K=refused-value",
        ],
    );
    bao(
        dev,
        &[
            "secrets",
            "enable",
            &format!("-path={kv1}"),
            "-version=1",
            "kv",
        ],
    );
    bao(
        dev,
        &[
            "kv",
            "put",
            &format!("{kv1}/team/cache"),
            "URL=redis://cache:6379/0",
        ],
    );

    let h = Home::new();
    let env = [
        ("VAULT_ADDR", dev.addr.as_str()),
        ("VAULT_TOKEN", ROOT_TOKEN),
    ];
    let src_v2 = format!("vault://secret/{p}/apps");
    let src_v1 = format!("vault://{kv1}/team/cache");
    let args = [
        "secrets",
        "migrate",
        &src_v2,
        "--recursive",
        "--all-versions",
        &src_v1,
    ];

    // The plan: every value masked, the refused name listed with why.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let plan = h.run_env(&dry, &env).ok();
    for secret in [
        "first-pass-1",
        "third-pass-3",
        "deep-value-9",
        "MIIBszCC",
        "refused-value",
        "redis://",
    ] {
        assert!(
            !plan.stdout.contains(secret) && !plan.stderr.contains(secret),
            "{secret} shown: {}",
            plan.stdout
        );
    }
    for (a, b) in [
        ("web-db", "3 versions"),
        ("Bad_Name", "refused"),
        ("deep-a-b", "cache"),
    ] {
        assert!(
            plan.stdout.contains(a) && plan.stdout.contains(b),
            "{a}, {b}: {}",
            plan.stdout
        );
    }
    assert!(
        h.run(&["secrets", "get", "web-db"]).code != 0,
        "--dry-run wrote nothing"
    );

    let mut yes = args.to_vec();
    yes.push("--yes");
    let r = h.run_env(&yes, &env).ok();
    assert!(
        r.stderr.contains("4 of 4 secret(s) written"),
        "{}",
        r.stderr
    );
    // Every version, oldest first; the values byte for byte.
    assert_eq!(value(&h, "web-db", "PASSWORD", Some(1)), "first-pass-1");
    assert_eq!(value(&h, "web-db", "PASSWORD", Some(2)), "second-pass-2");
    assert_eq!(value(&h, "web-db", "PASSWORD", None), "third-pass-3");
    assert_eq!(value(&h, "tls", "CERT", None), PEM);
    assert_eq!(value(&h, "tls", "ODD", None), ODD);
    assert_eq!(value(&h, "deep-a-b", "K", None), "deep-value-9");
    assert_eq!(value(&h, "cache", "URL", None), "redis://cache:6379/0");
    assert!(h.run(&["secrets", "get", "Bad_Name"]).code != 0);

    // Again: everything unchanged, nothing written.
    let again = h.run_env(&yes, &env).ok();
    assert!(
        again
            .stdout
            .contains("0 to create, 0 new version(s), 4 unchanged, 1 refused"),
        "{}",
        again.stdout
    );
    assert!(
        again.stderr.contains("nothing to write"),
        "{}",
        again.stderr
    );
    let versions = h
        .run(&["secrets", "versions", "web-db", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        versions["items"].as_array().map(Vec::len),
        Some(3),
        "no version twice: {versions}"
    );

    // A new version at the source: the rerun writes only it, on top.
    bao(
        dev,
        &[
            "kv",
            "put",
            &format!("secret/{p}/apps/web/db"),
            "PASSWORD=fourth-pass-4",
            "USER=app",
        ],
    );
    let more = h.run_env(&yes, &env).ok();
    assert!(more.stdout.contains("new version"), "{}", more.stdout);
    assert_eq!(value(&h, "web-db", "PASSWORD", Some(4)), "fourth-pass-4");

    // The refused one, brought under another name.
    let mut renamed = yes.clone();
    renamed.extend(["--rename", "Bad_Name=bad-name"]);
    h.run_env(&renamed, &env).ok();
    assert_eq!(value(&h, "bad-name", "K", None), "refused-value");
}

const KUBECTL_LIST: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata:
    name: web-tls
    namespace: legacy
    resourceVersion: "1234"
  type: kubernetes.io/tls
  data:
    tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzekNDQVZtZ0F3SUJBZ0lVZDJWaQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==
    tls.key: a2V5LWJ5dGVzCg==
- apiVersion: v1
  kind: Secret
  metadata:
    name: app-config
  type: Opaque
  data:
    JSON: eyJhIjogWzEsICJ4XCJ5Il19
  stringData:
    MULTI: |
      line one
        line two
    PLAIN: "value: with colon"
- apiVersion: v1
  kind: Secret
  metadata:
    name: basic
  type: kubernetes.io/basic-auth
  data:
    username: YWRtaW4=
    password: cMOkc3N3w7ZyZA==
"#;

/// Every secret's values (`export -o json`), by name.
fn exported(h: &Home) -> BTreeMap<String, Value> {
    let doc: Value =
        serde_json::from_str(&h.run(&["secrets", "export", "-o", "json"]).ok().stdout).unwrap();
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_string(), i["data"].clone()))
        .collect()
}

#[test]
fn kubectl_secret_yaml_migrates_byte_for_byte_and_an_export_round_trips() {
    let h = Home::new();
    let file = h.path().join("legacy.yaml");
    std::fs::write(&file, KUBECTL_LIST).unwrap();
    let r = h
        .run(&["secrets", "migrate", file.to_str().unwrap(), "--yes"])
        .ok();
    assert!(
        r.stdout
            .contains("Kubernetes type kubernetes.io/basic-auth brought as opaque"),
        "{}",
        r.stdout
    );
    assert_eq!(
        value(&h, "web-tls", "tls.crt", None),
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUd2Vi\n-----END CERTIFICATE-----\n"
    );
    assert_eq!(value(&h, "web-tls", "tls.key", None), "key-bytes\n");
    assert_eq!(
        value(&h, "app-config", "JSON", None),
        r#"{"a": [1, "x\"y"]}"#
    );
    assert_eq!(
        value(&h, "app-config", "MULTI", None),
        "line one\n  line two\n"
    );
    assert_eq!(value(&h, "app-config", "PLAIN", None), "value: with colon");
    assert_eq!(value(&h, "basic", "password", None), "pässwörd");
    let got = h
        .run(&["secrets", "get", "web-tls", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["type"], "tls", "{got}");

    // export -o k8s (a List, and one file per secret), migrated into
    // another installation: every value exactly.
    let before = exported(&h);
    let list = h.run(&["secrets", "export", "-o", "k8s"]).ok().stdout;
    let dir = h.path().join("manifests");
    let r = h
        .run(&[
            "secrets",
            "export",
            "-o",
            "k8s",
            "--output-dir",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stderr.contains("exported 3 secret(s)"), "{}", r.stderr);
    use std::os::unix::fs::PermissionsExt;
    for f in std::fs::read_dir(&dir).unwrap() {
        let mode = f.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    for source in ["list", "dir", "json", "env"] {
        let other = Home::new();
        let arg = match source {
            "list" => {
                let f = other.path().join("all.yaml");
                std::fs::write(&f, &list).unwrap();
                f
            }
            "dir" => dir.clone(),
            "json" => {
                let f = other.path().join("all.json");
                std::fs::write(&f, h.run(&["secrets", "export", "-o", "json"]).ok().stdout)
                    .unwrap();
                f
            }
            _ => {
                let d = other.path().join("envs");
                h.run(&[
                    "secrets",
                    "export",
                    "-o",
                    "env",
                    "--output-dir",
                    d.to_str().unwrap(),
                ])
                .ok();
                d
            }
        };
        other
            .run(&["secrets", "migrate", arg.to_str().unwrap(), "--yes"])
            .ok();
        assert_eq!(exported(&other), before, "round trip through {source}");
        let again = other
            .run(&["secrets", "migrate", arg.to_str().unwrap(), "--yes"])
            .ok();
        assert!(
            again.stdout.contains("3 unchanged"),
            "{source}: {}",
            again.stdout
        );
    }
    // An existing secret with other values: refused without --update, a
    // new version with it.
    let changed = KUBECTL_LIST.replace("YWRtaW4=", "cm9vdA==");
    std::fs::write(&file, changed).unwrap();
    let r = h
        .run(&["secrets", "migrate", file.to_str().unwrap(), "--yes"])
        .ok();
    assert!(
        r.stdout.contains("--update writes them as a new version"),
        "{}",
        r.stdout
    );
    assert_eq!(value(&h, "basic", "username", None), "admin");
    h.run(&[
        "secrets",
        "migrate",
        file.to_str().unwrap(),
        "--update",
        "--yes",
    ])
    .ok();
    assert_eq!(value(&h, "basic", "username", Some(2)), "root");
}

#[test]
fn an_interrupted_migration_of_200_secrets_run_again_ends_with_each_once() {
    let h = Home::new();
    let dir = h.path().join("envs");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..200 {
        std::fs::write(
            dir.join(format!("svc-{i:03}.env")),
            format!("TOKEN=token-{i}\nN={i}\n"),
        )
        .unwrap();
    }
    let mut child = h
        .cmd()
        .args(["secrets", "migrate", dir.to_str().unwrap(), "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut wrote = 0;
    while wrote < 20 {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "ended before 20 writes"
        );
        wrote += usize::from(line.starts_with("wrote "));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted migration fails: {rest}");
    assert!(
        rest.contains("secret(s) written") && rest.contains("not written"),
        "{rest}"
    );
    let written: usize = rest
        .lines()
        .find_map(|l| {
            l.split_once(" of 200 secret(s) written")?
                .0
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("how many were written");
    assert!(written < 200, "{rest}");

    let again = h
        .run(&["secrets", "migrate", dir.to_str().unwrap(), "--yes"])
        .ok();
    assert!(
        again.stdout.contains(&format!(
            "{} to create, 0 new version(s), {written} unchanged",
            200 - written
        )),
        "{}",
        again.stdout
    );
    let list = h.run(&["secrets", "list", "-o", "json"]).ok().json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    for s in items {
        assert_eq!(s["status"]["currentVersion"], 1, "each exactly once: {s}");
    }
    assert_eq!(value(&h, "svc-137", "TOKEN", None), "token-137");
}
