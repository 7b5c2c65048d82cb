//! A shell in a detached tmux terminal, for the completion tests and the
//! terminal view's: keys are sent as a user types them, the screen is read
//! back as the user sees it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// A local context with two secrets, and the PATH that finds `kube-dc`.
pub fn world() -> (Home, String) {
    let h = Home::new();
    h.run(&["secrets", "create", "app-config", "--from-literal=A=1"])
        .ok();
    h.run(&["secrets", "create", "db-creds"]).ok();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    (h, format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"))
}

pub fn need(tool: &str) {
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
pub struct Term {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Term {
    pub fn start(h: &Home, path: &str, shell: &str, prompt: &str) -> Self {
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
        until(15, &format!("the prompt {prompt:?}"), || {
            prompt
                .split('|')
                .any(|p| t.screen().contains(p))
                .then_some(())
        });
        t
    }

    /// A plain bash at its prompt (`bash$`).
    pub fn bash(h: &Home, path: &str) -> Self {
        let rc = h.write("bashrc", "PS1='bash$ '\n");
        Term::start(
            h,
            path,
            &format!("bash --noprofile --rcfile {rc} -i"),
            "bash$",
        )
    }

    /// A plain bash (prompt `bash$`) that has been told to run `line`.
    pub fn bash_running(h: &Home, path: &str, line: &str) -> Self {
        let t = Term::bash(h, path);
        t.run_line(line);
        t
    }

    /// Types `line` and Enter.
    pub fn run_line(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", line]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    /// A client attached from a pseudo terminal of its own (`script`),
    /// with focus reports on: the shell's pane has the focus as a user's
    /// would, and loses it while another window is selected. (A detached
    /// session reports every pane unfocused.)
    pub fn attach_focused(&self) -> Attached {
        need("script");
        self.tmux(&["set", "-g", "focus-events", "on"]);
        let attach = format!("tmux -S {} attach -t t", self.socket.display());
        let child = Command::new("script")
            .args(["-qfc", &attach, "/dev/null"])
            // Kept open and silent: the client reads no keys from it.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux)");
        let client = Attached(child);
        until(10, "the client attached", || {
            self.tmux(&["list-clients"])
                .contains("focused")
                .then_some(())
        });
        client
    }

    /// The screen of window `window` (`t:0`), selected or not.
    pub fn screen_of(&self, window: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", window])
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    #[track_caller]
    pub fn wait_for(&self, words: &[&str], what: &str) -> String {
        until_seen(15, &format!("{what}: {words:?}"), || {
            let s = self.screen();
            if words.iter().all(|w| s.contains(w)) {
                Ok(s)
            } else {
                Err(s)
            }
        })
    }

    /// Types `line`, presses Tab (twice: bash lists on the second), and
    /// waits for every expected candidate on the screen; then clears the line.
    pub fn complete(&self, line: &str, expect: &[&str]) -> String {
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

/// An attached client; detached when dropped.
pub struct Attached(Child);

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
