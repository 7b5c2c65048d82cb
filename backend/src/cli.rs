//! The command line of `kube-dc-backend`, in the library so that its man
//! pages are generated from the same definitions as its parser.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Single-machine implementation of the Kube-DC Secrets Manager HTTP API.
#[derive(Parser)]
#[command(name = "kube-dc-backend", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API over HTTP.
    ///
    /// Prints one JSON line `{"ready":true,"url":"http://HOST:PORT"}` on
    /// stdout once it accepts connections; logs go to stderr. Stops cleanly
    /// on SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Check the audit log's hash chain in a data directory.
    VerifyAudit {
        /// The data directory to check.
        #[arg(long, env = "KUBE_DC_BACKEND_DATA_DIR")]
        data_dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ElevationMode {
    /// Org admins read values only inside an elevation window.
    Enforce,
    /// Org admins may read values at any time; reads inside a window are tagged with it.
    TagOnly,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "KUBE_DC_BACKEND_LISTEN")]
    pub listen: SocketAddr,
    /// Where the database and the master key live (created if missing, mode 0700).
    #[arg(long, env = "KUBE_DC_BACKEND_DATA_DIR")]
    pub data_dir: PathBuf,
    /// OIDC issuer whose tokens are accepted (its discovery document and JWKS are fetched from it).
    #[arg(long, env = "KUBE_DC_BACKEND_OIDC_ISSUER")]
    pub oidc_issuer: String,
    /// Required `aud` of access tokens.
    #[arg(long, default_value = "kube-dc", env = "KUBE_DC_BACKEND_AUDIENCE")]
    pub audience: String,
    /// YAML file mapping groups and users to project roles and org admins.
    #[arg(long, env = "KUBE_DC_BACKEND_BINDINGS")]
    pub bindings: PathBuf,
    /// Folder of Kubernetes manifests (multi-document YAML) modelling each project's
    /// Secrets and workloads; a document without a namespace takes its subfolder's name.
    #[arg(long, env = "KUBE_DC_BACKEND_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// Length of an org-admin elevation window, in seconds.
    #[arg(long, default_value_t = 900, env = "KUBE_DC_BACKEND_ELEVATION_TTL")]
    pub elevation_ttl: u64,
    /// Whether org admins need an elevation window to read values.
    #[arg(long, value_enum, default_value = "enforce")]
    pub elevation_mode: ElevationMode,
    /// How often to check for due password rotations, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub rotation_tick_ms: u64,
    /// CA certificate (PEM) to trust for the issuer, in addition to the system roots.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}
