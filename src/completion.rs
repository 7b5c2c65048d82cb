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
use crate::session::Ctx;

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

/// The global flags as the environment sets them (KUBE_DC_CONTEXT, …):
/// the completer does not see the rest of the command line.
fn env_ctx() -> Option<Ctx> {
    #[derive(Parser)]
    struct Globals {
        #[command(flatten)]
        global: GlobalArgs,
    }
    let mut g = Globals::try_parse_from(["kube-dc"]).ok()?.global;
    g.timeout = "1s".into();
    Some(Ctx::new(g))
}

pub fn secret_names(current: &OsStr) -> Vec<CompletionCandidate> {
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
                let doc = client.list_secrets(&ns).await.ok()?;
                let list: crate::commands::secrets::list::Rows = doc.typed().ok()?;
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
