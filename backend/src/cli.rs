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
    /// What to do.
    pub command: Command,
}

#[derive(Subcommand)]
/// The backend's commands.
pub enum Command {
    /// Serve the API over HTTP.
    ///
    /// Prints one JSON line `{"ready":true,"url":"http://HOST:PORT"}` on
    /// stdout once it accepts connections; logs go to stderr. Stops cleanly
    /// on SIGINT or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Check the audit log's hash chain in a data directory (or in a
    /// PostgreSQL database, with --database).
    VerifyAudit {
        /// The data directory to check.
        #[arg(long, env = "KUBE_DC_BACKEND_DATA_DIR")]
        data_dir: PathBuf,
        /// The PostgreSQL database to check instead of the data directory's file.
        #[arg(long, env = "KUBE_DC_BACKEND_DATABASE", value_parser = database_url)]
        database: Option<String>,
        /// The master key's file, as for serve (with --database).
        #[arg(long, env = "KUBE_DC_BACKEND_MASTER_KEY_FILE")]
        master_key_file: Option<PathBuf>,
    },
    /// Move an installation's records, elevation windows and audit chains
    /// from a data directory's SQLite file to an empty PostgreSQL database,
    /// then check that every organization's chain arrived intact.
    ///
    /// Stop the backend first. Values sealed in the SQLite file move sealed:
    /// start the replicas with the source's master key (--master-key-file
    /// DIR/master.key). Values in OpenBao stay where they are.
    MigrateStore {
        /// The source: `sqlite:DIR` (a data directory).
        #[arg(long, value_parser = sqlite_source)]
        from: PathBuf,
        /// The destination: a `postgres://` URL of an empty database.
        #[arg(long, value_parser = database_url)]
        to: String,
    },
    /// Print the audit signing key's public half (JSON: key id, base64 key,
    /// retired keys), making the key if the data directory has none.
    ///
    /// Give the printed document (or its publicKey) to `kube-dc audit
    /// verify --key` on a machine the backend's operator does not control.
    /// With --rotate: the current key is retired (its public half stays
    /// published, so the checkpoints it signed still verify) and a new one
    /// signs from the next start of the backend on.
    AuditKey {
        /// The data directory whose key it is.
        #[arg(long, env = "KUBE_DC_BACKEND_DATA_DIR")]
        data_dir: PathBuf,
        /// The operator's key file (as for serve), instead of the data directory's.
        #[arg(
            long,
            env = "KUBE_DC_BACKEND_AUDIT_KEY_FILE",
            conflicts_with = "rotate"
        )]
        audit_key_file: Option<PathBuf>,
        /// Retire the data directory's key and make a new one (stop the backend first).
        #[arg(long)]
        rotate: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
/// Whether organization admins need an elevation window to read values.
pub enum ElevationMode {
    /// Org admins read values only inside an elevation window.
    Enforce,
    /// Org admins may read values at any time; reads inside a window are tagged with it.
    TagOnly,
}

#[derive(clap::Args)]
/// `kube-dc-backend serve`'s options.
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
    /// Where secret values live: sealed in the database (the data
    /// directory's SQLite file, or --database), or in OpenBao (a KV v2 mount
    /// `kv-<namespace>` per project). Metadata, elevation grants and the
    /// audit log stay in the database either way.
    #[arg(
        long,
        value_enum,
        default_value = "sqlite",
        env = "KUBE_DC_BACKEND_STORE"
    )]
    pub store: StoreKind,
    /// OpenBao address(es), comma-separated: the nodes of a Raft cluster are
    /// tried in turn when one does not answer or is not active.
    #[arg(long, value_delimiter = ',', env = "KUBE_DC_BACKEND_OPENBAO_ADDR")]
    pub openbao_addr: Vec<String>,
    /// File holding the OpenBao token (else BAO_TOKEN or VAULT_TOKEN).
    #[arg(long, env = "KUBE_DC_BACKEND_OPENBAO_TOKEN_FILE")]
    pub openbao_token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for OpenBao over https.
    #[arg(long, env = "KUBE_DC_BACKEND_OPENBAO_CA_CERT")]
    pub openbao_ca_cert: Option<PathBuf>,
    /// Prefix of each project's KV v2 mount (`<prefix><namespace>`).
    #[arg(
        long,
        default_value = "kv-",
        env = "KUBE_DC_BACKEND_OPENBAO_MOUNT_PREFIX"
    )]
    pub openbao_mount_prefix: String,
    /// How long a request to OpenBao waits for a usable node (a Raft
    /// election), in seconds.
    #[arg(long, default_value_t = 30, env = "KUBE_DC_BACKEND_OPENBAO_FAILOVER")]
    pub openbao_failover: u64,
    /// Threads that serve HTTP requests. Default: one less than the CPUs
    /// this process may use, and at least one — the store writer has a
    /// thread of its own, and on a small machine more request threads than
    /// that only take turns on the same cores.
    #[arg(long, env = "KUBE_DC_BACKEND_WORKERS")]
    pub workers: Option<std::num::NonZeroUsize>,
    /// Sign a checkpoint of each organization's audit chain this often (in
    /// seconds) when it has new events; 0: only on request.
    #[arg(long, default_value_t = 300, env = "KUBE_DC_BACKEND_CHECKPOINT_EVERY")]
    pub checkpoint_every: u64,
    /// The audit signing key (Ed25519, PKCS#8 PEM, owner-only), instead of
    /// the one made in the data directory.
    #[arg(long, env = "KUBE_DC_BACKEND_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Where the records, elevation windows and audit chains live: the data
    /// directory's SQLite file (the default), or a PostgreSQL server
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`) that several replicas of
    /// the backend share.
    #[arg(long, env = "KUBE_DC_BACKEND_DATABASE", value_parser = database_url)]
    pub database: Option<String>,
    /// The master key's file (base64 of 32 random bytes, owner-only) instead
    /// of the data directory's master.key: every replica on one database is
    /// given the same one.
    #[arg(long, env = "KUBE_DC_BACKEND_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Also append every committed audit event to this file as a JSON line
    /// (with its chain fields), for log shippers; reopened on SIGHUP (after
    /// logrotate moves it).
    #[arg(long, env = "KUBE_DC_BACKEND_AUDIT_FILE")]
    pub audit_file: Option<PathBuf>,
}

/// `--database`: a PostgreSQL URL.
fn database_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_owned())
    } else {
        Err(
            "expected a postgres:// URL (without --database the records live in the SQLite \
             file of --data-dir)"
                .into(),
        )
    }
}

/// `--from sqlite:DIR`.
fn sqlite_source(s: &str) -> Result<PathBuf, String> {
    match s.strip_prefix("sqlite:") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Err("expected sqlite:DIR, the data directory to move".into()),
    }
}

impl ServeArgs {
    /// `--workers`, or its default for this machine.
    pub fn workers(&self) -> usize {
        self.workers.map_or_else(default_workers, usize::from)
    }
}

/// One less than the CPUs this process may use (its cgroup's quota
/// included), and at least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_sub(1)
        .max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
/// Where values live.
pub enum StoreKind {
    /// Values sealed with the data directory's master key, in its SQLite file.
    Sqlite,
    /// Values in OpenBao's KV v2 (`--openbao-addr`).
    Openbao,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_a_cpu_to_the_store_writer_but_never_goes_below_one() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let want = if cpus > 1 { cpus - 1 } else { 1 };
        assert_eq!(default_workers(), want);
        let args = |extra: &[&str]| {
            let mut all = vec!["kube-dc-backend", "serve", "--data-dir", "d"];
            all.extend(["--oidc-issuer", "i", "--bindings", "b"]);
            all.extend(extra);
            match Cli::try_parse_from(all).unwrap().command {
                Command::Serve(a) => a.workers(),
                _ => unreachable!(),
            }
        };
        assert_eq!(args(&[]), want);
        assert_eq!(args(&["--workers", "3"]), 3);
    }
}
