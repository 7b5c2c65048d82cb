//! The CLI against the backend over real HTTP, with tokens for different
//! roles from a test OIDC issuer.

use crate::common::*;

const DEV: (&str, &[&str]) = ("dev", &["acme-devs"]);
const ADMIN: (&str, &[&str]) = ("ada", &["acme-project-admins"]);
const ORG_ADMIN: (&str, &[&str]) = ("oscar", &["acme-admins"]);

#[test]
fn roles_elevation_and_audit_over_http() {
    let be = Remote::start(&[]);
    let h = Home::new();
    be.run(
        &h,
        DEV,
        &[
            "secrets",
            "create",
            "db-creds",
            "--from-literal=PASSWORD=remote-s3cret",
        ],
    )
    .ok();
    assert_eq!(
        be.run(
            &h,
            DEV,
            &["secrets", "get", "db-creds", "--key", "PASSWORD"]
        )
        .ok()
        .stdout,
        "remote-s3cret"
    );

    // A developer cannot destroy: a clear permission error, exit 4.
    let r = be
        .run(
            &h,
            DEV,
            &["secrets", "delete", "db-creds", "--destroy", "--yes"],
        )
        .code(4);
    assert!(
        r.stderr.contains("developer")
            && r.stderr.contains("HTTP 403")
            && r.stderr.contains("request id"),
        "{}",
        r.stderr
    );

    // An org admin sees metadata, but reads values only after elevating.
    be.run(&h, ORG_ADMIN, &["secrets", "list"]).ok();
    let r = be
        .run(&h, ORG_ADMIN, &["secrets", "get", "db-creds", "--value"])
        .code(4);
    assert!(
        r.stderr.contains("hint: kube-dc orgs elevate demo"),
        "{}",
        r.stderr
    );
    be.run(&h, ORG_ADMIN, &["orgs", "elevate", "demo"]).code(2); // --reason is required
    // A developer cannot elevate, and the hint is about elevation.
    let r = be
        .run(&h, DEV, &["orgs", "elevate", "demo", "--reason", "x"])
        .code(4);
    assert!(
        r.stderr
            .contains("elevation windows are for organization admins"),
        "{}",
        r.stderr
    );
    let r = be
        .run(
            &h,
            ORG_ADMIN,
            &[
                "orgs",
                "elevate",
                "demo",
                "--reason",
                "incident IR-2026-05-12",
            ],
        )
        .ok();
    assert!(
        r.stdout.starts_with("elevated into acme/demo until"),
        "{}",
        r.stdout
    );
    assert_eq!(
        be.run(
            &h,
            ORG_ADMIN,
            &["secrets", "get", "db-creds", "--key", "PASSWORD"]
        )
        .ok()
        .stdout,
        "remote-s3cret"
    );
    let st = be
        .run(&h, ORG_ADMIN, &["orgs", "status", "demo", "-o", "json"])
        .ok()
        .json();
    assert_eq!(st["active"], true);
    let el = be.run(&h, ORG_ADMIN, &["orgs", "elevations"]).ok();
    assert!(
        el.stdout.contains("incident IR-2026-05-12"),
        "{}",
        el.stdout
    );

    // The org-wide audit shows the read, tagged with the window and reason.
    let a = be
        .run(
            &h,
            ORG_ADMIN,
            &[
                "audit",
                "list",
                "--org",
                "--service",
                "secrets",
                "--actor",
                "oscar",
                "-o",
                "json",
            ],
        )
        .ok()
        .json();
    let read = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["body"]["action"] == "secrets.value.read" && e["body"]["result"] == "allowed")
        .unwrap();
    assert_eq!(read["body"]["resource"], "db-creds");
    assert_eq!(read["body"]["namespace"], "acme-demo");
    assert_eq!(read["body"]["project"], "demo");
    assert_eq!(read["body"]["elevation_id"], st["elevationId"]);
    assert_eq!(read["body"]["reason"], "incident IR-2026-05-12");
    assert_eq!(read["body"]["source_ip"], "127.0.0.1");

    be.run(&h, ORG_ADMIN, &["orgs", "release", "demo"]).ok();
    be.run(&h, ORG_ADMIN, &["secrets", "get", "db-creds", "--value"])
        .code(4);
    // A developer cannot see the org-wide log, but sees the project's.
    be.run(&h, DEV, &["audit", "list", "--org"]).code(4);
    let p = be
        .run(&h, DEV, &["audit", "list", "--result", "denied"])
        .ok();
    assert!(p.stdout.contains("denied"), "{}", p.stdout);

    // CSV export as the org admin.
    let file = h.path().join("audit.csv");
    be.run(
        &h,
        ORG_ADMIN,
        &[
            "audit",
            "list",
            "--csv",
            "--output-file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(
        csv.contains("secrets.value.read,denied,oscar,") && !csv.contains("remote-s3cret"),
        "{csv}"
    );

    // The admin destroys.
    be.run(
        &h,
        ADMIN,
        &["secrets", "delete", "db-creds", "--destroy", "--yes"],
    )
    .ok();
}

#[test]
fn credentials_are_required_and_never_sent_in_clear() {
    let be = Remote::start(&[]);
    let h = Home::new();
    let r = h
        .run_env(
            &["--server", &be.url, "-p", "demo", "secrets", "list"],
            &[("KUBE_DC_ORG", "acme")],
        )
        .code(5);
    assert!(
        r.stderr.contains("HTTP 401") && r.stderr.contains("KUBE_DC_TOKEN"),
        "{}",
        r.stderr
    );
    let expired = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
    let r = h
        .run_env(
            &["--server", &be.url, "-p", "demo", "secrets", "list"],
            &[("KUBE_DC_ORG", "acme"), ("KUBE_DC_TOKEN", expired)],
        )
        .code(5);
    assert!(r.stderr.contains("invalid token"), "{}", r.stderr);
    // Plain http to a non-loopback host: refused before anything is sent.
    let r = h
        .run_env(
            &[
                "--server",
                "http://backend.example.com",
                "-n",
                "acme-demo",
                "secrets",
                "list",
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
        .code(2);
    assert!(r.stderr.contains("plain http"), "{}", r.stderr);
    // Nothing listening: a network error, exit 7.
    let r = h
        .run_env(
            &[
                "--server",
                "http://127.0.0.1:9",
                "-n",
                "acme-demo",
                "--timeout",
                "3s",
                "secrets",
                "list",
            ],
            &[("KUBE_DC_TOKEN", "t")],
        )
        .code(7);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    // --domain builds https://backend.DOMAIN; a path is refused.
    h.run(&["--domain", "example.com/x", "-n", "a-b", "secrets", "list"])
        .code(2);
}

/// `kube-dc-backend serve --store openbao` on a real `bao server -dev`:
/// what the CLI writes is what `bao kv get` shows, and `kube-dc secrets
/// versions` is `bao kv metadata get`.
#[test]
fn on_openbao_bao_shows_what_the_cli_wrote() {
    use kube_dc_testsupport::bao_dev::{DevServer, ROOT_TOKEN};
    let dev = DevServer::shared();
    let prefix = dev.config().mount_prefix;
    let be = Remote::start_with(
        &[],
        &[
            "--store",
            "openbao",
            "--openbao-addr",
            &dev.addr,
            "--openbao-mount-prefix",
            &prefix,
        ],
        &[("BAO_TOKEN", ROOT_TOKEN)],
    );
    let h = Home::new();
    be.run(
        &h,
        DEV,
        &["secrets", "create", "api", "--from-literal=TOKEN=t$1"],
    )
    .ok();
    be.run(
        &h,
        DEV,
        &["secrets", "put", "api", "--from-literal=TOKEN=t2"],
    )
    .ok();
    be.run(
        &h,
        DEV,
        &["secrets", "put", "api", "--from-literal=TOKEN=t3"],
    )
    .ok();
    be.run(
        &h,
        ADMIN,
        &["secrets", "destroy-version", "api", "2", "--yes"],
    )
    .ok();
    let bao = |args: &[&str]| -> serde_json::Value {
        let (ok, json, text) = dev.bao(ROOT_TOKEN, args);
        assert!(ok, "{text}");
        json
    };
    let mount = format!("-mount={prefix}acme-demo");
    let got = bao(&["kv", "get", "-format=json", &mount, "api"]);
    assert_eq!(got["data"]["data"]["TOKEN"], "t3");
    let first = bao(&["kv", "get", "-format=json", "-version=1", &mount, "api"]);
    assert_eq!(first["data"]["data"]["TOKEN"], "t$1");

    let meta = bao(&["kv", "metadata", "get", "-format=json", &mount, "api"]);
    let theirs = kube_dc_testsupport::bao_dev::versions_of(&meta);
    let ours = be
        .run(&h, DEV, &["secrets", "versions", "api", "-o", "json"])
        .ok()
        .json();
    let list = ours["items"].as_array().unwrap_or_else(|| panic!("{ours}"));
    let ours: Vec<(u64, bool)> = list
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["destroyed"] == true))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours, vec![(1, false), (2, true), (3, false)]);
    // The CLI's table says the same.
    let table = be.run(&h, DEV, &["secrets", "versions", "api"]).ok().stdout;
    assert!(table.contains("destroyed"), "{table}");
}

/// A token of the right issuer for another audience (Keycloak's default
/// `account`): the error names both audiences and does not send the user
/// to `login`, which would give the same token; the backend's log, written
/// to a file, says so too, in plain text.
#[test]
fn a_token_for_another_audience_names_both_and_the_backend_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("be.err");
    let be = Remote::logging_to(&log);
    let issuer = kube_dc_testsupport::testing::TestIssuer {
        url: be.issuer_url.clone(),
        addr: "127.0.0.1:0".parse().unwrap(),
        up: Default::default(),
    };
    let mut claims = issuer.claims("dev", &["acme-devs"], Some("acme"));
    claims["aud"] = serde_json::json!("account");
    let token = issuer.sign_rs256(&claims);
    let h = Home::new();
    let r = h
        .run_env(
            &["--server", &be.url, "-n", "acme-demo", "secrets", "list"],
            &[("KUBE_DC_TOKEN", &token), ("KUBE_DC_ORG", "acme")],
        )
        .code(5);
    assert!(
        r.stderr.contains("audience \"account\"") && r.stderr.contains("accepts \"kube-dc\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("audience mapper"), "{}", r.stderr);
    assert!(!r.stderr.contains("kube-dc login"), "{}", r.stderr);
    let text = until(10, "the warning in the backend's log", || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("another audience").then_some(text)
    });
    let line = text
        .lines()
        .find(|l| l.contains("another audience"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("\"account\"") && line.contains("kube-dc"),
        "{line}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file:\n{text:?}"
    );
    assert!(!text.contains(&token), "never the token");
}
