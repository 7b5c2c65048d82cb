//! The contract of the Kube-DC Secrets Manager HTTP API, shared by the
//! `kube-dc` CLI and `kube-dc-backend`: wire types, input rules and
//! defaults, the audit CSV columns, and the one table of endpoints that the
//! backend's router, its audit layer and the CLI's client are built from.

#![warn(missing_docs)]

pub mod audit;
pub mod checkpoint;
pub mod endpoints;
pub mod event;
pub mod roles;
pub mod validate;
pub mod wire;

pub use endpoints::{Endpoint, Origin, Permission, Route, Scope};
pub use roles::{Op, Role};

pub use audit::CSV_COLUMNS as AUDIT_CSV_COLUMNS;
pub use audit::{DEFAULT_LIMIT as AUDIT_DEFAULT_LIMIT, MAX_LIMIT as AUDIT_MAX_LIMIT};
pub use wire::DEFAULT_REFRESH_INTERVAL;
