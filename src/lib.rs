//! `kube-dc`: the command-line client of the Kube-DC Secrets Manager.

pub mod api;
pub mod atomic;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod completion;
pub mod config;
pub mod docs;
pub mod entry;
pub mod envfile;
pub mod error;
pub mod format;
pub mod input;
pub mod jsonpath;
pub mod listing;
pub mod mask;
pub mod net;
pub mod ops;
pub mod output;
pub mod redact;
pub mod session;
pub mod ui;

pub use entry::main;

#[cfg(test)]
mod structure_test;
