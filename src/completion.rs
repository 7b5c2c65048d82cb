//! Shell completion: clap_complete's dynamic engine. The shell asks the
//! binary (`COMPLETE=bash kube-dc -- …`) and gets verbs, flags, and live
//! values — secret names, contexts, projects — from the current context.
//!
//! Completers must never hang the shell or print into the prompt: each
//! lookup has a short deadline and any failure yields no candidates.

use std::ffi::OsStr;
use std::time::Duration;

use clap::Parser;
use clap_complete::CompletionCandidate;

use crate::config::{ConfigFile, GlobalArgs, LOCAL_CONTEXT};
use crate::session::Session;

/// How long a live lookup may take before the shell gets nothing.
const DEADLINE: Duration = Duration::from_millis(1500);

pub const SERVICES: &[&str] = &[
    "secrets",
    "org-admin",
    "audit",
    "certificates",
    "kms",
    "db-credentials",
];

fn starting_with(
    current: &OsStr,
    items: impl IntoIterator<Item = String>,
) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut v: Vec<String> = items
        .into_iter()
        .filter(|s| s.starts_with(prefix.as_ref()))
        .collect();
    v.sort();
    v.dedup();
    v.into_iter().map(CompletionCandidate::new).collect()
}

/// The global flags as the environment sets them (KUBE_DC_CONTEXT, …),
/// overridden by those on the command line being completed, so that
/// `kube-dc -p other secrets get <TAB>` offers `other`'s names.
fn env_ctx() -> Option<Session> {
    #[derive(Parser)]
    struct Globals {
        #[command(flatten)]
        global: GlobalArgs,
    }
    let mut g = Globals::try_parse_from(["kube-dc"]).ok()?.global;
    // The shell passes the line after `--` (`kube-dc -- kube-dc -p x …`).
    let line: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    apply_scope_flags(&mut g, &line);
    g.timeout = "1s".into();
    Some(Session::new(g, false))
}

/// Sets the scope flags (`-p`, `-n`, `--context`, `--server`, `--domain`)
/// that `words` carry, in any of their spellings; the last one wins, as
/// in a real run. Stops at `--`.
fn apply_scope_flags(g: &mut GlobalArgs, words: &[String]) {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "--" {
            break;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => match w
                .strip_prefix('-')
                .filter(|r| r.len() > 1 && !r.starts_with('-'))
            {
                // `-pother`: a short flag with its value attached.
                Some(r) => (&w[..2], Some(r[1..].to_string())),
                None => (w, None),
            },
        };
        match name {
            "-p" | "--project" => g.scope_source.project_explicit = true,
            "-n" | "--namespace" => g.scope_source.namespace_explicit = true,
            _ => {}
        }
        let slot = match name {
            "-p" | "--project" => &mut g.project,
            "-n" | "--namespace" => &mut g.namespace,
            "--context" => &mut g.context,
            "--server" => &mut g.server,
            "--domain" => &mut g.domain,
            _ => {
                i += 1;
                continue;
            }
        };
        let value = match inline {
            Some(v) => Some(v),
            None => {
                i += 1;
                words.get(i).cloned()
            }
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            *slot = Some(v);
        }
        i += 1;
    }
}

/// The project's live secrets (`get`, `set`, `delete`, …).
pub fn secret_names(current: &OsStr) -> Vec<CompletionCandidate> {
    names_of(current, false)
}

/// The project's soft-deleted secrets, the ones `restore` can bring back.
pub fn deleted_secret_names(current: &OsStr) -> Vec<CompletionCandidate> {
    names_of(current, true)
}

fn names_of(current: &OsStr, deleted: bool) -> Vec<CompletionCandidate> {
    let names = (|| {
        let ctx = env_ctx()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            tokio::time::timeout(DEADLINE, async {
                let ns = ctx.namespace().ok()?;
                let client = ctx.client().await.ok()?;
                let doc = if deleted {
                    client.list_deleted_secrets(&ns).await.ok()?
                } else {
                    client.list_secrets(&ns).await.ok()?
                };
                let list: crate::listing::Rows = doc.typed_long().ok()?;
                // An installation that ignored `deleted=true` answered with
                // the live ones: never offer those to `restore`.
                if deleted && !list.deleted {
                    return None;
                }
                Some(
                    list.items
                        .into_iter()
                        .map(|s| s.name.into_owned())
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .ok()
            .flatten()
        })
    })();
    starting_with(current, names.unwrap_or_default())
}

pub fn context_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let file = ConfigFile::load().unwrap_or_default();
    let names =
        std::iter::once(LOCAL_CONTEXT.to_string()).chain(file.contexts.into_iter().map(|c| c.name));
    starting_with(current, names)
}

pub fn project_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let file = ConfigFile::load().unwrap_or_default();
    let current_ctx = file
        .current_context
        .clone()
        .unwrap_or_else(|| LOCAL_CONTEXT.into());
    let projects: Vec<String> = if current_ctx == LOCAL_CONTEXT {
        vec![crate::config::LOCAL_PROJECT.into()]
    } else {
        let org = file.context(&current_ctx).map(|c| c.org.clone());
        file.contexts
            .iter()
            .filter(|c| Some(&c.org) == org.as_ref())
            .filter_map(|c| c.project.clone())
            .collect()
    };
    starting_with(current, projects)
}

pub fn services(current: &OsStr) -> Vec<CompletionCandidate> {
    starting_with(current, SERVICES.iter().map(|s| s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_flags_on_the_line_are_read_in_every_spelling() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        for line in [
            "kube-dc -p other secrets get",
            "kube-dc --project other secrets get",
            "kube-dc --project=other secrets get",
            "kube-dc -pother secrets get",
            "kube-dc secrets get -p other",
        ] {
            let mut g = GlobalArgs::default();
            apply_scope_flags(&mut g, &words(line));
            assert_eq!(g.project.as_deref(), Some("other"), "{line}");
        }
        let mut g = GlobalArgs::default();
        apply_scope_flags(
            &mut g,
            &words("kube-dc -n acme-x --context c secrets run -- -p no"),
        );
        assert_eq!(
            (g.namespace.as_deref(), g.context.as_deref(), g.project),
            (Some("acme-x"), Some("c"), None)
        );
    }
}
