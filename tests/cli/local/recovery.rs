//! The paths users take once something has gone wrong: an editor killed or
//! stuck, a destroyed current version, an empty answer, a projection cut
//! off, a hint followed to the letter.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

/// An executable shell script in the home (`$1` is the file it is given).
fn script(h: &Home, name: &str, body: &str) -> String {
    let path = h.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Everything below `dir`, recursively.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(tree(&e.path()));
        }
    }
    out
}

fn current_version(h: &Home, name: &str) -> u64 {
    h.run(&["secrets", "get", name, "-o", "json"]).ok().json()["openbao"]["currentVersion"]
        .as_u64()
        .unwrap()
}

/// A local context with secret `app-env`, and an empty temporary
/// directory for `secrets edit` (TMPDIR; no XDG_RUNTIME_DIR).
fn edit_world() -> (Home, std::path::PathBuf) {
    let h = Home::new();
    h.run(&["secrets", "create", "app-env", "--from-literal=TOKEN=t0p"])
        .ok();
    let tmp = h.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    (h, tmp)
}

/// `secrets edit app-env` with `editor`, started in a process group of its
/// own, stderr piped.
fn spawn_edit(h: &Home, tmp: &Path, editor: &str) -> std::process::Child {
    h.cmd()
        .process_group(0)
        .args(["secrets", "edit", "app-env"])
        .env("EDITOR", editor)
        .env("TMPDIR", tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `secrets edit` killed with `signal` (to kube-dc alone, as `kill PID`
/// or a closed terminal sends it) while the editor runs, with no
/// XDG_RUNTIME_DIR: the values were in a private directory, and nothing is
/// left of it.
fn edit_killed_by(signal: &str, number: i32) {
    let (h, tmp) = edit_world();
    let seen = h.path().join("seen");
    let slow = script(
        &h,
        "slow-editor.sh",
        &format!(
            "stat -c '%a %n' \"$(dirname \"$1\")\" \"$1\" > {seen}.part && mv {seen}.part {seen}; sleep 30",
            seen = seen.display()
        ),
    );
    let child = spawn_edit(&h, &tmp, &slow);
    until(20, "the editor started", || seen.exists().then_some(()));
    let modes = std::fs::read_to_string(&seen).unwrap();
    let mut lines = modes.lines();
    let dir_line = lines.next().unwrap();
    let file_line = lines.next().unwrap();
    assert!(dir_line.starts_with("700 "), "a private directory: {modes}");
    assert!(file_line.starts_with("600 "), "an owner-only file: {modes}");
    assert!(
        file_line.contains(&tmp.display().to_string()),
        "in the temporary directory: {modes}"
    );
    assert!(
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut child = child;
    let status = until(20, &format!("kube-dc ended on {signal}"), || {
        child.try_wait().unwrap()
    });
    // What the editor script left running (its sleep) holds stderr open.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.code(),
        Some(128 + number),
        "exits as killed by {signal}: {stderr}"
    );
    assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let left = tree(&tmp);
    assert!(left.is_empty(), "left behind after {signal}: {left:?}");
    assert_eq!(current_version(&h, "app-env"), 1);
}

#[test]
fn edit_killed_by_sigterm_leaves_no_file() {
    edit_killed_by("TERM", 15);
}

#[test]
fn edit_killed_by_sighup_leaves_no_file() {
    edit_killed_by("HUP", 1);
}

#[test]
fn edit_gives_up_on_an_editor_that_keeps_breaking_the_file() {
    let (h, tmp) = edit_world();
    let count = h.path().join("count");
    // Appends a line that is not KEY=VALUE every time it is opened.
    let bad = script(
        &h,
        "bad-editor.sh",
        &format!(
            "echo x >> {c}; echo 'NOT A LINE' >> \"$1\"",
            c = count.display()
        ),
    );
    let mut child = spawn_edit(&h, &tmp, &bad);
    // Bounded here, so a regression fails instead of hanging the suite
    // (the child is killed when the wait fails: kill_on_drop below).
    let guard = KillOnDrop(&mut child);
    until(60, "secrets edit gave up on the editor", || {
        guard.0.try_wait().unwrap()
    });
    drop(guard);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the same error again"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let rounds = std::fs::read_to_string(&count).unwrap().lines().count();
    assert_eq!(rounds, 2, "opened once, then once more with the error");
    assert!(tree(&tmp).is_empty(), "{:?}", tree(&tmp));
    assert_eq!(current_version(&h, "app-env"), 1);
}

#[test]
fn rollback_and_set_work_after_the_current_version_was_destroyed() {
    let h = Home::new();
    h.run(&["secrets", "create", "dv", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "set", "dv", "A=2"]).ok();
    h.run(&["secrets", "destroy-version", "dv", "2", "--yes"])
        .ok();
    // What is there says so, and names the way back.
    let r = h.run(&["secrets", "get", "dv", "--value"]).ok();
    assert!(
        r.stderr
            .contains("version 2, the current version of dv, was destroyed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("rollback dv --to-version N"),
        "{}",
        r.stderr
    );
    // The recovery itself: version 1's values as version 3.
    let r = h
        .run(&["secrets", "rollback", "dv", "--to-version", "1"])
        .ok();
    assert!(r.stdout.contains("version 3 written"), "{}", r.stdout);
    let v = h
        .run(&["secrets", "get", "dv", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(v["value"]["data"], serde_json::json!({"A": "1"}));
    assert_eq!(v["value"]["metadata"]["version"], 3);
    // No error events: the rollback was one read of version 1, one read of
    // the current state and one write.
    let audit = h
        .run(&["audit", "list", "--resource", "dv", "-o", "json"])
        .ok()
        .json();
    let errors: Vec<_> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["body"]["result"] == "error")
        .collect();
    assert!(!audit["events"].as_array().unwrap().is_empty());
    assert!(errors.is_empty(), "{errors:?}");
    // `set` over a destroyed current version writes and says what it holds.
    h.run(&["secrets", "destroy-version", "dv", "3", "--yes"])
        .ok();
    let r = h.run(&["secrets", "set", "dv", "B=2"]).ok();
    assert!(r.stdout.contains("version 4 written"), "{}", r.stdout);
    assert!(r.stderr.contains("had been destroyed"), "{}", r.stderr);
    let v = h
        .run(&["secrets", "get", "dv", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(v["value"]["data"], serde_json::json!({"B": "2"}));
}

/// `--prompt` at a real terminal: Enter alone is asked again, never stored.
#[test]
fn an_empty_prompt_answer_is_asked_again_and_never_stored() {
    use crate::term::{Term, world};
    let (h, path) = world();
    h.run(&["secrets", "create", "api", "--from-literal=TOKEN=old"])
        .ok();
    let t = Term::bash_running(
        &h,
        &path,
        "kube-dc secrets set api --prompt TOKEN; echo rc=$?",
    );
    t.wait_for(&["Value for TOKEN:"], "the prompt");
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    t.wait_for(&["the value for TOKEN is empty"], "asked again");
    t.tmux(&["send-keys", "-t", "t", "-l", "n3w"]);
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    t.wait_for(&["version 2 written", "rc=0"], "written once typed");
    let got = h.run(&["secrets", "get", "api", "--key", "TOKEN"]).ok();
    assert_eq!(got.stdout, "n3w");
    // Three empty answers: refused, nothing written.
    t.run_line("clear; kube-dc secrets set api --prompt TOKEN; echo rc=$?");
    for _ in 0..3 {
        t.wait_for(&["Value for TOKEN:"], "the prompt");
        t.tmux(&["send-keys", "-t", "t", "Enter"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = t.wait_for(&["3 empty answers", "rc=2"], "refused");
    assert!(s.contains("--from-literal=TOKEN="), "{s}");
    assert_eq!(current_version(&h, "api"), 2);
}

/// Turning sync off, or moving it to another target, cuts off the
/// workloads that use the projection, as deleting the secret would: the
/// same list and the same question first.
#[test]
fn sync_off_or_a_new_target_shows_the_consumers_and_asks() {
    let h = Home::new();
    h.write("data/kube-dc/local/manifests/app.yaml", super::DEPLOYMENT);
    h.run(&["secrets", "create", "app-config", "--from-literal=A=1"])
        .ok();
    let enabled = |h: &Home| {
        h.run(&["secrets", "get", "app-config", "-o", "json"])
            .ok()
            .json()["sync"]
            .clone()
    };
    for change in [&["--enabled", "off"][..], &["--target", "app-config-v2"]] {
        let mut args = vec!["secrets", "sync", "app-config"];
        args.extend_from_slice(change);
        // No terminal to ask on: refused, nothing changed.
        let r = h.run(&args).code(2);
        assert!(
            r.stderr.contains("Deployment/my-app"),
            "{change:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("no longer fills Secret app-config"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("--yes"), "{}", r.stderr);
        let s = enabled(&h);
        assert_eq!(s["enabled"], true, "{s}");
        assert!(
            s["targetSecretName"].is_null() || s["targetSecretName"] == "app-config",
            "{s}"
        );
    }
    h.run(&["secrets", "sync", "app-config", "--enabled", "off", "--yes"])
        .ok();
    assert_eq!(enabled(&h)["enabled"], false);
    // The workload still names the Secret; the listing says it is not filled.
    let r = h.run(&["secrets", "consumers", "app-config"]).ok();
    assert!(r.stdout.contains("my-app"), "{}", r.stdout);
    assert!(
        r.stderr.contains("sync of app-config is off"),
        "{}",
        r.stderr
    );
    // Already off: moving the target cuts nobody off, so nothing is asked.
    h.run(&["secrets", "sync", "app-config", "--target", "app-config-v2"])
        .ok();
    // A projection nobody uses is moved without a question.
    h.run(&["secrets", "create", "lonely", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "sync", "lonely", "--enabled", "off"])
        .ok();
}

/// The hint for a value that is not text, pasted into a shell as it is
/// printed, brings the value across. kubectl itself is not on the test
/// machine: a stand-in checks that it receives exactly the arguments kubectl
/// needs (the dot in the key escaped, or kubectl's JSONPath prints nothing)
/// and prints the Secret's base64 as kubectl does.
#[test]
fn the_binary_value_hint_works_when_pasted_into_a_shell() {
    let h = Home::new();
    // 0xff 0xfe 0x00 0x01: not UTF-8.
    h.write(
        "data/kube-dc/local/manifests/legacy.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: { name: legacy, namespace: local-default }\n\
         data: { keystore.jks: //4AAQ== }\n",
    );
    let r = h
        .run(&["secrets", "import", "ks", "--from", "legacy"])
        .code(2);
    let hint = r
        .stderr
        .lines()
        .find(|l| l.starts_with("hint:") && l.contains("kubectl"))
        .unwrap_or_else(|| panic!("no hint: {}", r.stderr));
    let command = hint
        .split("through a pipe: ")
        .nth(1)
        .and_then(|c| c.split(" (then").next())
        .unwrap_or_else(|| panic!("no command in {hint}"));
    let bin = h.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &h,
        "bin/kubectl",
        r#"[ "$*" = 'get secret legacy -n local-default -o jsonpath={.data.keystore\.jks}' ] || { echo "kubectl stand-in: unexpected arguments: $*" >&2; exit 1; }
printf %s '//4AAQ=='"#,
    );
    let kube_dc_dir = Path::new(BIN).parent().unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("set -e; {command}")])
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}:/usr/bin:/bin", bin.display(), kube_dc_dir.display()),
        )
        .env("HOME", h.path())
        .env("XDG_CONFIG_HOME", h.path().join("config"))
        .env("XDG_DATA_HOME", h.path().join("data"))
        .env("USER", "tester")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = h
        .run(&["secrets", "get", "ks", "--key", "keystore.jks"])
        .ok();
    assert_eq!(got.stdout, "//4AAQ==");
}

#[test]
fn set_on_a_secret_that_does_not_exist_points_to_create() {
    let h = Home::new();
    let r = h.run(&["secrets", "set", "nope", "A=1"]).code(3);
    assert!(
        r.stderr
            .contains("kube-dc secrets create nope --from-literal=KEY=VALUE"),
        "{}",
        r.stderr
    );
}

/// `scripts/demo.sh` runs the binary cargo built, wherever cargo put it
/// (CARGO_TARGET_DIR, build.target-dir), not `./target/release`. cargo
/// itself is a stand-in here (a release build would take minutes): it
/// answers as `cargo build --message-format=json` does, naming a wrapper
/// that logs each run and runs this build's kube-dc. The demo itself is
/// the real one, on a throwaway local context.
#[test]
fn the_demo_runs_the_binary_cargo_reports() {
    let h = Home::new();
    let log = h.path().join("runs.log");
    let elsewhere = h.path().join("elsewhere/release");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let wrapper = elsewhere.join("kube-dc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\nexec {BIN} \"$@\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = h.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &h,
        "bin/cargo",
        &format!(
            r#"[ "$1" = build ] || exit 1
printf '{{"reason":"compiler-artifact","target":{{"name":"kube-dc"}},"executable":"%s","fresh":true}}\n' '{}'
printf '{{"reason":"build-finished","success":true}}\n'"#,
            wrapper.display()
        ),
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = std::process::Command::new("bash")
        .arg(&demo)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", h.path())
        .env("XDG_CONFIG_HOME", h.path().join("config"))
        .env("XDG_DATA_HOME", h.path().join("data"))
        .env("USER", "tester")
        .env("CARGO_TARGET_DIR", h.path().join("elsewhere"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        runs.lines()
            .any(|l| l.starts_with("secrets create app-config")),
        "the demo ran cargo's binary: {runs:?}"
    );
    assert!(stdout.contains("secret/app-config"), "{stdout}");
}

/// `audit verify` names the same file line whether the file ends its lines
/// with LF or CRLF (saved on Windows, or by a spreadsheet).
#[test]
fn audit_verify_names_the_right_line_in_a_crlf_file() {
    let h = Home::new();
    h.run(&["secrets", "create", "a", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "create", "b", "--from-literal=A=1"])
        .ok();
    let csv = h.run(&["audit", "list", "--csv"]).ok().stdout;
    // The third line's actor edited.
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    assert!(lines.len() >= 4, "{csv}");
    lines[2] = lines[2].replacen(",tester,", ",mallory,", 1);
    for (name, end) in [("lf.csv", "\n"), ("crlf.csv", "\r\n")] {
        let f = h.write(name, lines.join(end) + end);
        let r = h.run(&["audit", "verify", &f]).code(10);
        assert!(
            r.stdout.contains("line 3: column actor differs"),
            "{name}: {}",
            r.stdout
        );
    }
}

/// A refused name says which character, and offers one that would do.
#[test]
fn a_refused_secret_name_names_the_character_and_a_fix() {
    let h = Home::new();
    let r = h.run(&["secrets", "create", "MyApp"]).code(2);
    assert!(
        r.stderr
            .contains("'M' (character 1) is not allowed; did you mean \"myapp\"?"),
        "{}",
        r.stderr
    );
}

/// Setting what a secret already holds writes no version that changes
/// nothing.
#[test]
fn set_of_the_values_a_secret_has_writes_nothing() {
    let h = Home::new();
    h.run(&[
        "secrets",
        "create",
        "s",
        "--from-literal=A=1",
        "--from-literal=B=2",
    ])
    .ok();
    let r = h.run(&["secrets", "set", "s", "A=1"]).ok();
    assert!(r.stderr.contains("unchanged"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    let j = h
        .run(&["secrets", "set", "s", "B=2", "-o", "json"])
        .ok()
        .json();
    assert_eq!(j["unchanged"], true, "{j}");
    assert_eq!(j["version"], 1, "{j}");
    assert_eq!(current_version(&h, "s"), 1);
    // A real change still writes.
    h.run(&["secrets", "set", "s", "A=2"]).ok();
    assert_eq!(current_version(&h, "s"), 2);
}

/// Kills a child still running when a wait for it fails.
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.kill();
        }
    }
}
