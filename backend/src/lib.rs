//! `kube-dc-backend`: a single-machine implementation of the Kube-DC Secrets
//! Manager HTTP API — router, encrypted store, authorization and audit —
//! usable as a standalone server or embedded in the `kube-dc` CLI.
//!
//! This file only names the modules and what the crate hands on; the
//! backend itself is `app` (its configuration and state) and `http::router`
//! (its requests).

#![warn(missing_docs)]

pub mod app;
pub mod audit_file;
pub mod audit_key;
pub mod authn;
pub mod authz;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod crypto;
pub mod dirs;
/// API errors and the facts a handler adds to its request's audit event.
pub mod error;
pub mod file_error;
pub mod http;
pub mod kube;
pub mod open_error;
pub mod openbao;
pub mod projects;
pub mod rotation;
pub mod store;

pub use app::{Acting, Backend, Config, DEFAULT_ELEVATION_TTL};
pub use dirs::private_dir;
pub use http::{OPENAPI, router};
pub use open_error::OpenError;
