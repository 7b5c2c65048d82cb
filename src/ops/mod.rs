//! The verbs as operations: each one's requests and decisions, below the
//! CLI's commands (arguments and printing) and the terminal view (keys and
//! screen), which both call these and print nothing of their own here.
//!
//! An operation answers a typed outcome — a version written, a secret
//! deleted with the workloads that used it, a manifest created — and never
//! prints. Under `--dry-run` the client plans every change instead of
//! sending it (`api::Plan`), and an operation answers `Planned` where it
//! would have read the server's answer, after deciding every change it
//! would make: a dry run of `apply` with three manifests plans three.

pub mod apply;
pub mod migrate;
pub mod refs;
pub mod secret;
pub mod template;
pub mod values;
pub mod watch;

use crate::error::{CliError, Result};

/// The answer to a change, for a caller that never plans (the terminal
/// view refuses `--dry-run`, so its client sends every change).
pub fn sent<T>(answer: Option<T>) -> Result<T> {
    answer.ok_or_else(|| {
        CliError::other(
            "a change was planned instead of sent without --dry-run (a bug in kube-dc: please report it)",
        )
    })
}
