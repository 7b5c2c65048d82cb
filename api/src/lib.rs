//! The contract of the Kube-DC Secrets Manager HTTP API, shared by the
//! `kube-dc` CLI and `kube-dc-backend`: wire types, input rules and
//! defaults, the audit CSV columns, and the one table of endpoints that the
//! backend's router, its audit layer and the CLI's client are built from.

pub mod audit;
pub mod endpoints;
pub mod event;
pub mod roles;
pub mod validate;
pub mod wire;

pub use endpoints::{Endpoint, Origin, Permission, Route, Scope};
pub use roles::{Op, Role};

pub use audit::CSV_COLUMNS as AUDIT_CSV_COLUMNS;

/// Server-side default of `sync.refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: &str = "1h";
/// Server default and maximum of an audit query's `limit`.
pub const AUDIT_DEFAULT_LIMIT: usize = 500;
pub const AUDIT_MAX_LIMIT: usize = 5000;
