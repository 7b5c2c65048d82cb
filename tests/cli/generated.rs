//! Completions, man pages and the CLI reference are generated from the
//! clap definitions and committed. These tests regenerate them in memory:
//! a flag added without regenerating fails here, naming the command that
//! fixes it.

use std::path::Path;
use std::process::Command;

#[test]
fn committed_generated_files_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (path, want) in kube_dc::docs::generated_files() {
        match std::fs::read(root.join(&path)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    // No leftovers from commands that no longer exist.
    let expected: Vec<_> = kube_dc::docs::generated_files()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for dir in ["man", "completions", "backend/man"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let rel = Path::new(dir).join(e.file_name());
            if !expected.contains(&rel) {
                stale.push(format!("{} is no longer generated", rel.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are stale:\n  {}\nregenerate them with: {}",
        stale.join("\n  "),
        kube_dc::docs::REGENERATE
    );
}

#[test]
fn completion_command_prints_the_committed_scripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in kube_dc::docs::SHELLS {
        let out = Command::new(env!("CARGO_BIN_EXE_kube-dc"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let committed = std::fs::read_to_string(root.join("completions").join(file)).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim_end(),
            committed.trim_end(),
            "{shell}"
        );
    }
}

#[test]
fn every_command_has_examples_and_says_which_role_it_needs() {
    let reference = kube_dc::docs::cli_reference();
    for section in reference.split("\n## ").skip(1) {
        let name = section.lines().next().unwrap();
        let is_group = ["kube-dc", "kube-dc config"].contains(&name);
        if !is_group {
            assert!(
                section.contains("Examples:") || section.contains("Install:"),
                "{name} has no examples"
            );
        }
        if name.starts_with("kube-dc secrets ")
            || name.starts_with("kube-dc orgs ")
            || name.starts_with("kube-dc audit ")
        {
            assert!(
                section.contains("Role:"),
                "{name} does not say which role it needs"
            );
        }
    }
    // Every usage the seed document shows is in the reference.
    for usage in [
        "kube-dc secrets create db-creds",
        "kube-dc secrets create app-config",
        "--from-literal=DATABASE_URL=postgres://...",
        "--from-file=tls.crt=./tls.crt",
        "kube-dc secrets create app-env --from-env-file=./app.env",
        "kube-dc secrets create api-keys --sync-disabled",
        "kube-dc secrets import app-config --from legacy-app-credentials",
        "kube-dc secrets get app-config --value",
        "kube-dc orgs elevate payments --reason \"incident IR-2026-05-12\"",
        "kube-dc orgs release payments",
        "kube-dc audit list --service secrets --since 1h",
        "kube-dc audit list --org --service secrets",
        "kube-dc audit list --csv --output-file incident-2026-05-12.csv",
        "kube-dc secrets consumers db-creds",
        "kube-dc secrets delete db-creds --destroy",
        "kube-dc secrets get app-config --value -o yaml",
        "interval: 90d",
    ] {
        assert!(reference.contains(usage), "the help never shows {usage:?}");
    }
}

#[test]
fn man_page_renders() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/kube-dc-secrets-create.1");
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("`man` is needed (Debian man-db): .ci/run installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "kube-dc-secrets-create",
        "--from-env-file",
        "--sync-disabled",
        "Examples:",
    ] {
        assert!(
            text.contains(want),
            "{want} missing from the rendered page:\n{text}"
        );
    }
}
