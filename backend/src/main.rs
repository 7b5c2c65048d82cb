use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kube_dc_backend::authn::{Authenticator, OidcVerifier};
use kube_dc_backend::authz::Bindings;
use kube_dc_backend::{Backend, Config, rotation};

use kube_dc_backend::cli::{Cli, Command, ElevationMode, ServeArgs, StoreKind};
use kube_dc_backend::openbao::OpenBaoConfig;

/// mimalloc: under load the server's many short-lived allocations (request
/// and response buffers, JSON) cost a fifth of its CPU time in glibc's
/// allocator (measured with `perf` during B10).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Colour only for a person at a terminal: a log file or journald
    // gets plain text (and NO_COLOR turns it off anywhere).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBE_DC_BACKEND_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Serve(a) => runtime(a.workers()).and_then(|rt| rt.block_on(serve(*a))),
        Command::VerifyAudit {
            data_dir,
            database,
            master_key_file,
        } => verify(data_dir, database, master_key_file),
        Command::MigrateStore { from, to } => migrate_store(&from, &to),
        Command::AuditKey {
            data_dir,
            audit_key_file,
            rotate,
        } => audit_key(data_dir, audit_key_file, rotate),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-dc-backend: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's runtime: `workers` threads for requests (and for the
/// OpenBao client's calls, which run beside them).
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start {workers} worker thread(s): {e}"))
}

fn verify(
    data_dir: PathBuf,
    database: Option<String>,
    master_key_file: Option<PathBuf>,
) -> Result<(), String> {
    let mut config = Config::new(data_dir);
    config.database = database;
    config.master_key_file = master_key_file;
    config.master_key = std::env::var(kube_dc_backend::crypto::MASTER_KEY_ENV).ok();
    // Only the log is read: whichever engine holds the values.
    config.without_values = true;
    let b = Backend::open(
        config,
        Authenticator::Fixed(Default::default()),
        Bindings::default(),
    )
    .map_err(|e| e.to_string())?;
    // Each organization has its own chain.
    let mut broken = Vec::new();
    for org in b.store.audit_orgs().map_err(|e| e.to_string())? {
        match b.store.verify_audit(&org).map_err(|e| e.to_string())? {
            Ok(n) => println!("audit chain of {org:?} intact: {n} events"),
            Err((seq, why)) => broken.push(format!("organization {org:?}: event {seq}: {why}")),
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("audit chain broken: {}", broken.join("; ")))
    }
}

/// `kube-dc-backend audit-key`: the public half as JSON on stdout.
fn audit_key(data_dir: PathBuf, supplied: Option<PathBuf>, rotate: bool) -> Result<(), String> {
    use kube_dc_backend::audit_key::AuditKey;
    kube_dc_backend::private_dir(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let doc = if rotate {
        let (old, new) = AuditKey::rotate(&data_dir).map_err(|e| e.to_string())?;
        eprintln!(
            "retired {} (still published, for the checkpoints it signed); new key {} signs from the backend's next start",
            old.key_id, new.key_id
        );
        new
    } else {
        AuditKey::load_or_create(&data_dir, supplied.as_deref())
            .map_err(|e| e.to_string())?
            .doc()
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

async fn serve(a: ServeArgs) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bindings = Bindings::load(&a.bindings)?;
    let mut http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &a.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let cert =
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        http = http.add_root_certificate(cert);
    }
    let http = http.build().map_err(|e| format!("HTTP client: {e}"))?;
    let mut config = Config::new(&a.data_dir);
    config.manifests_dir = a.manifests.clone();
    config.elevation_ttl = Duration::from_secs(a.elevation_ttl);
    config.enforce_elevation = matches!(a.elevation_mode, ElevationMode::Enforce);
    config.master_key = std::env::var(kube_dc_backend::crypto::MASTER_KEY_ENV).ok();
    config.openbao = openbao_config(&a)?;
    config.audit_key_file = a.audit_key_file.clone();
    config.database = a.database.clone();
    config.master_key_file = a.master_key_file.clone();
    let auth = Authenticator::Oidc(Arc::new(OidcVerifier::new(
        &a.oidc_issuer,
        &a.audience,
        http,
    )));
    let backend = Backend::open(config, auth, bindings).map_err(|e| e.to_string())?;
    // A key that cannot sign stops the start, not the first checkpoint.
    let key = backend.audit_key().map_err(|e| e.to_string())?;
    tracing::info!("audit checkpoints signed with {}", key.public().id);
    let mirror = match &a.audit_file {
        Some(p) => Some(tokio::spawn(
            kube_dc_backend::audit_file::mirror(backend.clone(), p.clone())
                .await
                .map_err(|e| format!("--audit-file {}: {e}", p.display()))?,
        )),
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ticker = {
        let b = backend.clone();
        let every = Duration::from_millis(a.rotation_tick_ms.max(50));
        // One replica at a time runs due rotations; the lease outlives a
        // few missed ticks, then passes to the next replica that asks.
        let ttl = lease_ttl(every * 5);
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            loop {
                iv.tick().await;
                if holds(&b, "rotations", ttl).await {
                    rotation::run_due(&b).await;
                }
            }
        })
    };
    let checkpoints = (a.checkpoint_every > 0).then(|| {
        let b = backend.clone();
        let every = Duration::from_secs(a.checkpoint_every);
        let ttl = lease_ttl(every + Duration::from_secs(30));
        tokio::spawn(async move {
            let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                iv.tick().await;
                if !holds(&b, "checkpoints", ttl).await {
                    continue;
                }
                if let Err(e) = kube_dc_backend::http::sign_due_checkpoints(&b).await {
                    tracing::warn!("signing audit checkpoints: {e}");
                }
            }
        })
    });
    let app = kube_dc_backend::router(backend.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = shutdown_signal()?;
    println!(
        "{}",
        serde_json::json!({"ready": true, "url": format!("http://{addr}")})
    );
    tracing::info!(
        "listening on http://{addr} ({} request thread(s)), records in {}, values in {}",
        tokio::runtime::Handle::current().metrics().num_workers(),
        match &a.database {
            Some(url) => kube_dc_backend::app::redact_url(url),
            None => a.data_dir.display().to_string(),
        },
        match &a.store {
            StoreKind::Sqlite => "sqlite".to_string(),
            StoreKind::Openbao => format!("OpenBao at {}", a.openbao_addr.join(", ")),
        }
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    ticker.abort();
    for t in checkpoints.into_iter().chain(mirror) {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// `--store openbao`: its addresses and token (from `--openbao-token-file`,
/// else `BAO_TOKEN`, else `VAULT_TOKEN`).
fn openbao_config(a: &ServeArgs) -> Result<Option<OpenBaoConfig>, String> {
    if a.store != StoreKind::Openbao {
        if !a.openbao_addr.is_empty() {
            return Err(
                "--openbao-addr is given but --store is sqlite; add --store openbao".into(),
            );
        }
        return Ok(None);
    }
    let addrs: Vec<String> = a
        .openbao_addr
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if addrs.is_empty() {
        return Err(
            "--store openbao needs --openbao-addr URL (or KUBE_DC_BACKEND_OPENBAO_ADDR)".into(),
        );
    }
    for u in &addrs {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!(
                "--openbao-addr {u:?}: give a URL, e.g. http://127.0.0.1:8200"
            ));
        }
    }
    let token = match &a.openbao_token_file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("--openbao-token-file {}: {e}", p.display()))?
            .trim()
            .to_string(),
        None => std::env::var("BAO_TOKEN")
            .or_else(|_| std::env::var("VAULT_TOKEN"))
            .map_err(|_| {
                "--store openbao needs a token: --openbao-token-file FILE, or BAO_TOKEN / VAULT_TOKEN"
                    .to_string()
            })?,
    };
    if token.is_empty() {
        return Err("the OpenBao token is empty".into());
    }
    Ok(Some(OpenBaoConfig {
        addrs,
        token: zeroize::Zeroizing::new(token),
        ca_cert: a.openbao_ca_cert.clone(),
        failover: Duration::from_secs(a.openbao_failover.max(1)),
        mount_prefix: a.openbao_mount_prefix.clone(),
    }))
}

/// Registers the SIGTERM and SIGINT handlers at once (before the ready
/// line, so a signal right after it still stops the server cleanly); the
/// future ends at the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// A lease's length in milliseconds.
fn lease_ttl(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether this replica holds (or now takes) the lease for `work`; a
/// database that does not answer means no.
async fn holds(b: &Arc<Backend>, work: &'static str, ttl_ms: i64) -> bool {
    let (store, me) = (b.store.clone(), b.replica_id().to_owned());
    match tokio::task::spawn_blocking(move || store.lease(work, &me, ttl_ms)).await {
        Ok(Ok(held)) => held,
        Ok(Err(e)) => {
            tracing::warn!("the {work} lease: {e}");
            false
        }
        Err(_) => false,
    }
}

/// `kube-dc-backend migrate-store`: a data directory's SQLite file into an
/// empty PostgreSQL database, chains checked after the move.
fn migrate_store(from: &std::path::Path, to: &str) -> Result<(), String> {
    let key = std::env::var(kube_dc_backend::crypto::MASTER_KEY_ENV).ok();
    let cipher = kube_dc_backend::crypto::Cipher::load_or_create(from, key.as_deref())
        .map_err(|e| e.to_string())?;
    let report =
        kube_dc_backend::store::copy_to_postgres(from, to, cipher).map_err(|e| e.to_string())?;
    for (table, rows) in &report.tables {
        println!("{table}: {rows} row(s)");
    }
    for (org, events) in &report.chains {
        println!("audit chain of {org:?} intact after the move: {events} events");
    }
    eprintln!(
        "moved to {}; start every replica with --database and --master-key-file {}",
        kube_dc_backend::app::redact_url(to),
        from.join(kube_dc_backend::crypto::MASTER_KEY_FILE)
            .display()
    );
    Ok(())
}
