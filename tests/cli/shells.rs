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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> String {
    repo().join("completions").join(name).display().to_string()
}

/// A local context with two secrets, and the PATH that finds `kube-dc`.
fn world() -> (Home, String) {
    let h = Home::new();
    h.run(&["secrets", "create", "app-config", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "create", "db-creds"]).ok();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    (h, format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"))
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        found,
        "{tool} is needed for the completion tests (.ci/run installs it)"
    );
}

/// A shell in a detached tmux terminal.
struct Term {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Term {
    fn start(h: &Home, path: &str, shell: &str, prompt: &str) -> Self {
        need("tmux");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let home = h.path().display();
        let cmd = format!(
            "exec env -i PATH={path} HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data USER=tester TERM=xterm ZDOTDIR={home} {shell}"
        );
        let st = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                "-s",
                "t",
                &cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let t = Term { socket, _dir: dir };
        // Any of the '|'-separated prompts (elvish shows '>' or, for root, '#').
        let start = Instant::now();
        while !prompt.split('|').any(|p| t.screen().contains(p)) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no prompt {prompt:?}:\n{}",
                t.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t
    }

    /// A plain bash (prompt `bash$`) that has been told to run `line`.
    fn bash_running(h: &Home, path: &str, line: &str) -> Self {
        let rc = h.write("bashrc", "PS1='bash$ '\n");
        let t = Term::start(
            h,
            path,
            &format!("bash --noprofile --rcfile {rc} -i"),
            "bash$",
        );
        t.tmux(&["send-keys", "-t", "t", "-l", line]);
        t.tmux(&["send-keys", "-t", "t", "Enter"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn wait_for(&self, words: &[&str], what: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if words.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{what}: {words:?} never appeared:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `line`, presses Tab (twice: bash lists on the second), and
    /// waits for every expected candidate on the screen; then clears the line.
    fn complete(&self, line: &str, expect: &[&str]) -> String {
        self.tmux(&["send-keys", "-t", "t", "-l", line]);
        std::thread::sleep(Duration::from_millis(200));
        self.tmux(&["send-keys", "-t", "t", "Tab"]);
        std::thread::sleep(Duration::from_millis(300));
        self.tmux(&["send-keys", "-t", "t", "Tab"]);
        let s = self.wait_for(expect, line);
        self.tmux(&["send-keys", "-t", "t", "C-c"]);
        self.tmux(&["send-keys", "-t", "t", "clear", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        s
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
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
    std::thread::sleep(Duration::from_millis(500));
    let s = t.screen();
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

/// `kube-dc ui` in a real terminal on the local context: the list shows
/// the sync dots, Enter and `r` show a value, `u` the workload that uses
/// it, and after `q` nothing revealed is left anywhere in the terminal's
/// history.
#[test]
fn ui_in_a_real_terminal() {
    need("bash");
    let (h, path) = world();
    h.write(
        "data/kube-dc/local/manifests/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: payments-api, namespace: local-default }\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: p:1\n\
         \x20         envFrom:\n            - secretRef: { name: db-creds }\n",
    );
    h.run(&[
        "secrets",
        "put",
        "db-creds",
        "--from-literal=PASSWORD=ui-secret-4417",
    ])
    .ok();
    h.run(&[
        "secrets",
        "create",
        "legacy",
        "--from-literal=K=v",
        "--sync-disabled",
    ])
    .ok();
    let t = Term::bash_running(&h, &path, "kube-dc ui");
    let s = t.wait_for(
        &["● Ready", "○ Disabled", "app-config", "legacy"],
        "the list",
    );
    assert!(s.contains("context local"), "{s}");
    assert!(!s.contains("ui-secret-4417"));

    // Filter to db-creds, open it, reveal.
    for k in ["/", "d", "b", "-", "c", "Enter", "Enter"] {
        t.tmux(&["send-keys", "-t", "t", k]);
        std::thread::sleep(Duration::from_millis(60));
    }
    let s = t.wait_for(&["db-creds · detail", "Values", "••••"], "the detail");
    assert!(!s.contains("ui-secret-4417"), "masked until r:\n{s}");
    t.tmux(&["send-keys", "-t", "t", "r"]);
    t.wait_for(
        &["PASSWORD = ui-secret-4417", "revealed (audited)"],
        "the value",
    );

    // Used by: the Deployment that mounts it.
    t.tmux(&["send-keys", "-t", "t", "u"]);
    t.wait_for(&["payments-api", "Deployment", "envFrom"], "the workload");

    // Help lists the keys.
    t.tmux(&["send-keys", "-t", "t", "?"]);
    t.wait_for(&["reveal the values", "OSC 52", "filter the list"], "help");
    for k in ["Escape", "q", "q", "q"] {
        t.tmux(&["send-keys", "-t", "t", k]);
        std::thread::sleep(Duration::from_millis(150));
    }
    // Back at the prompt, with the whole history free of the value.
    t.wait_for(&["bash$ kube-dc ui", "bash$"], "the prompt after q");
    let history = t.tmux(&["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t"]);
    assert!(history.contains("kube-dc ui"), "{history}");
    assert!(
        !history.contains("ui-secret-4417"),
        "a value stayed behind:\n{history}"
    );

    // The reveal went through the API and was audited like `get --value`.
    let ev = h
        .run(&["audit", "list", "--limit", "50", "-o", "json"])
        .ok()
        .json();
    let reads = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["body"]["action"] == "secrets.value.read" && e["body"]["resource"] == "db-creds"
        })
        .count();
    assert_eq!(reads, 1, "{ev}");
}

/// With NO_COLOR the view draws no colour at all; the states stay readable
/// as dots and words.
#[test]
fn ui_without_colour() {
    need("bash");
    let (h, path) = world();
    let t = Term::bash_running(&h, &path, "NO_COLOR=1 kube-dc ui");
    t.wait_for(&["● Ready", "app-config"], "the list");
    let styled = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
    // No foreground colour escape anywhere (SGR 30–37, 90–97, 38;…).
    let colour = regex_free_find_colour(&styled);
    assert!(colour.is_none(), "colour {colour:?} in:\n{styled}");
    t.tmux(&["send-keys", "-t", "t", "q"]);
    t.wait_for(&["bash$"], "the prompt");
}

/// The first SGR colour parameter in `text`, if any.
fn regex_free_find_colour(text: &str) -> Option<String> {
    for seq in text.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if params
            .split(';')
            .any(|p| matches!(p.parse::<u32>(), Ok(30..=38 | 90..=97)))
        {
            return Some(params.to_string());
        }
    }
    None
}
