//! Completion typed into real shells: bash (with bash-completion) and zsh
//! in a tmux terminal, fish through its own `complete -C`, and the elvish
//! script compiled by elvish. The candidates come from the built binary
//! against a temporary local context holding real secrets. And `kube-dc ui`
//! driven by keys in the same tmux terminal.
//!
//! Needs tmux, bash-completion, zsh, fish and elvish (Debian packages that
//! .ci/run installs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::term::{Term, need, world};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> String {
    repo().join("completions").join(name).display().to_string()
}

const VERBS: &[&str] = &[
    "create",
    "list",
    "get",
    "put",
    "sync",
    "import",
    "delete",
    "restore",
    "versions",
    "destroy-version",
    "consumers",
    "apply",
    "run",
    "inject",
    "diff",
];
const SERVICES: &[&str] = &["secrets", "org-admin", "audit", "kms", "db-credentials"];

#[test]
fn bash_with_bash_completion() {
    need("bash");
    assert!(
        Path::new("/usr/share/bash-completion/bash_completion").exists(),
        "bash-completion is needed"
    );
    let (h, path) = world();
    let rc = h.write(
        "bashrc",
        format!(
            "source /usr/share/bash-completion/bash_completion\nsource {}\nPS1='bash$ '\n",
            script("kube-dc.bash")
        ),
    );
    let t = Term::start(
        &h,
        &path,
        &format!("bash --noprofile --rcfile {rc} -i"),
        "bash$",
    );
    t.complete("kube-dc secrets ", VERBS);
    t.complete("kube-dc secrets get ", &["app-config", "db-creds"]);
    t.complete("kube-dc secrets diff ", &["app-config", "db-creds"]);
    t.complete(
        "kube-dc secrets run --",
        &["--env-file", "--only", "--prefix", "--no-masking"],
    );
    t.complete(
        "kube-dc secrets inject --",
        &["--in-file", "--output", "--force"],
    );
    t.complete("kube-dc audit list --service ", SERVICES);
    t.complete("kube-dc u", &["ui", "use"]);
    t.complete("kube-dc ui --", &["--refresh", "--context"]);
    // File names after the file flags (last: a single match completes in
    // place).
    h.write("files/app.env", "A=1\n");
    let dir = h.path().join("files");
    t.complete(
        &format!(
            "kube-dc secrets create x --from-env-file {}/app.e",
            dir.display()
        ),
        &["app.env"],
    );
}

#[test]
fn zsh_with_compinit() {
    need("zsh");
    let (h, path) = world();
    h.write(
        ".zshrc",
        format!(
            "autoload -Uz compinit && compinit -u\nsource {}\nPS1='zsh%% '\n",
            script("_kube-dc")
        ),
    );
    let t = Term::start(&h, &path, "zsh -i", "zsh%");
    t.complete("kube-dc secrets ", VERBS);
    t.complete("kube-dc secrets get ", &["app-config", "db-creds"]);
    t.complete("kube-dc audit list --service ", SERVICES);
}

#[test]
fn fish_complete() {
    need("fish");
    let (h, path) = world();
    let ask = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args([
                "--no-config",
                "-c",
                &format!("source {}; complete -C '{line}'", script("kube-dc.fish")),
            ])
            .env_clear()
            .env("PATH", &path)
            .env("HOME", h.path())
            .env("XDG_CONFIG_HOME", h.path().join("config"))
            .env("XDG_DATA_HOME", h.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    let verbs = ask("kube-dc secrets ");
    for v in VERBS {
        assert!(verbs.iter().any(|c| c == v), "{v} not offered: {verbs:?}");
    }
    let names = ask("kube-dc secrets get ");
    assert!(
        names.contains(&"app-config".to_string()) && names.contains(&"db-creds".to_string()),
        "{names:?}"
    );
    // `restore` is offered what can be restored: the deleted ones only.
    h.run(&["secrets", "create", "gone", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "delete", "gone", "--yes"]).ok();
    let names: Vec<String> = ask("kube-dc secrets restore ")
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect();
    assert_eq!(names, ["gone"]);
    let services = ask("kube-dc audit list --service ");
    for s in SERVICES {
        assert!(
            services.iter().any(|c| c == s),
            "{s} not offered: {services:?}"
        );
    }
}

#[test]
fn elvish_loads_the_script_and_completes() {
    need("elvish");
    let (h, path) = world();
    // The edit: module exists only in an interactive elvish.
    let t = Term::start(&h, &path, "elvish -norc", "> |# ");
    t.tmux(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        &format!("eval (slurp < {})", script("kube-dc.elv")),
    ]);
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    // A marker the shell prints only once the eval is done (the typed
    // line shows it split by quotes, so only the output matches).
    t.run_line("echo eval''-done");
    let s = t.wait_for(&["eval-done"], "the script loaded");
    assert!(!s.contains("Exception") && !s.contains("rror"), "{s}");
    t.complete("kube-dc secrets get ", &["app-config", "db-creds"]);
}

#[test]
fn completion_is_silent_and_quick_when_the_backend_is_unreachable() {
    // A remote context whose server does not answer: no candidates, no
    // error text for the prompt, and back well within the shell's patience.
    let h = Home::new();
    h.write(
        "config/kube-dc/config.yaml",
        "current-context: dead\ncontexts:\n  - name: dead\n    server: http://10.255.255.1:9\n    org: acme\n    project: demo\n",
    );
    let start = Instant::now();
    let out = h
        .cmd()
        .args(["--", "kube-dc", "secrets", "get", ""])
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .env("_CLAP_IFS", "\n")
        .env("KUBE_DC_TOKEN", "t")
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("error"), "{text}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}
