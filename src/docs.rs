//! Everything generated from the clap definitions and committed: shell
//! completion scripts, man pages, and the CLI reference. A test
//! regenerates them in memory and fails when a committed file differs;
//! `cargo run -- generate-docs` rewrites them.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::env::Shells;

use crate::cli::Cli;

pub const REGENERATE: &str = "cargo run --quiet -- generate-docs";

/// The shells `kube-dc completion` knows, with their files under completions/.
pub const SHELLS: &[(&str, &str)] = &[
    ("bash", "kube-dc.bash"),
    ("zsh", "_kube-dc"),
    ("fish", "kube-dc.fish"),
    ("powershell", "kube-dc.ps1"),
    ("elvish", "kube-dc.elv"),
];

/// The registration script for `shell`: what `COMPLETE=shell kube-dc`
/// prints, calling back `kube-dc` (found on PATH) for candidates.
pub fn completion_script(shell: &str) -> Option<String> {
    let shells = Shells::builtins();
    let completer = shells.completer(shell)?;
    let mut buf = Vec::new();
    completer
        .write_registration("COMPLETE", "kube-dc", "kube-dc", "kube-dc", &mut buf)
        .ok()?;
    String::from_utf8(buf).ok()
}

fn command() -> clap::Command {
    let mut c = Cli::command().term_width(100).max_term_width(100);
    c.build();
    c
}

/// Visible commands, depth first: (full name like "kube-dc secrets create", command).
fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
    let name = if prefix.is_empty() {
        cmd.get_name().to_string()
    } else {
        format!("{prefix} {}", cmd.get_name())
    };
    out.push((name.clone(), cmd.clone()));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        walk(sub, &name, out);
    }
}

fn all_commands() -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    walk(&command(), "", &mut out);
    out
}

/// One man page per command: kube-dc.1, kube-dc-secrets.1, kube-dc-secrets-create.1, …
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    render_pages(
        all_commands(),
        concat!("kube-dc ", env!("CARGO_PKG_VERSION")),
        "kube-dc manual",
    )
}

/// The backend's pages, under backend/man: kube-dc-backend.1 and one per
/// subcommand (kube-dc-backend-serve.1, …).
#[cfg(feature = "local")]
pub fn backend_man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmds = Vec::new();
    walk(
        &<kube_dc_backend::cli::Cli as clap::CommandFactory>::command(),
        "",
        &mut cmds,
    );
    render_pages(
        cmds,
        concat!("kube-dc-backend ", env!("CARGO_PKG_VERSION")),
        "kube-dc-backend manual",
    )
}

fn render_pages(
    cmds: Vec<(String, clap::Command)>,
    source: &'static str,
    manual: &'static str,
) -> Vec<(String, Vec<u8>)> {
    cmds.into_iter()
        .map(|(name, cmd)| {
            let page = name.replace(' ', "-");
            let cmd = cmd
                .name(page.clone())
                .bin_name(name.clone())
                .display_name(page.clone());
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .date("")
                .source(source)
                .manual(manual)
                .render(&mut buf)
                .expect("rendering to memory cannot fail");
            (format!("{page}.1"), buf)
        })
        .collect()
}

/// Every command's `--help`, in one document.
pub fn cli_reference() -> String {
    let mut out = String::from(
        "# kube-dc command reference\n\nGenerated from the command definitions; do not edit by hand.\n",
    );
    for (name, mut cmd) in all_commands() {
        let help = cmd.render_long_help().to_string();
        out.push_str(&format!(
            "\n## {name}\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    }
    out
}

/// Every generated file, by path relative to the repository root.
pub fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, file) in SHELLS {
        let script = completion_script(shell).unwrap_or_default();
        files.push((PathBuf::from("completions").join(file), script.into_bytes()));
    }
    for (name, page) in man_pages() {
        files.push((PathBuf::from("man").join(name), page));
    }
    #[cfg(feature = "local")]
    for (name, page) in backend_man_pages() {
        files.push((PathBuf::from("backend/man").join(name), page));
    }
    files.push((
        PathBuf::from("docs/cli-reference.md"),
        cli_reference().into_bytes(),
    ));
    files
}
