//! The CLI's integration tests, one runner: the built binaries over real
//! HTTP, against the embedded local context, the real backend, stubs that
//! pin the wire, a real OIDC provider, real shells and a real keyring. A
//! module per suite; filter with its path (`cargo test --test cli wire::`).

mod common;

mod audit_feed;
mod ci;
mod generated;
mod local;
mod login;
mod production;
mod remote;
mod shells;
mod term;
mod ui;
mod ui_pace;
mod watch;
mod wire;
