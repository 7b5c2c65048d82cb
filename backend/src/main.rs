use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kube_dc_backend::authn::{Authenticator, OidcVerifier};
use kube_dc_backend::authz::Bindings;
use kube_dc_backend::{Backend, Config, rotation};

use kube_dc_backend::cli::{Cli, Command, ElevationMode, ServeArgs};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBE_DC_BACKEND_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let res = match cli.command {
        Command::Serve(a) => rt.block_on(serve(a)),
        Command::VerifyAudit { data_dir } => verify(data_dir),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-dc-backend: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verify(data_dir: PathBuf) -> Result<(), String> {
    let b = Backend::open(
        Config::new(data_dir),
        Authenticator::Fixed(Default::default()),
        Bindings::default(),
    )?;
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
    let auth = Authenticator::Oidc(Arc::new(OidcVerifier::new(
        &a.oidc_issuer,
        &a.audience,
        http,
    )));
    let backend = Backend::open(config, auth, bindings)?;

    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ticker = {
        let b = backend.clone();
        let every = Duration::from_millis(a.rotation_tick_ms.max(50));
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            loop {
                iv.tick().await;
                rotation::run_due(&b).await;
            }
        })
    };
    let app = backend
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = shutdown_signal()?;
    println!(
        "{}",
        serde_json::json!({"ready": true, "url": format!("http://{addr}")})
    );
    tracing::info!(
        "listening on http://{addr}, data in {}",
        a.data_dir.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    ticker.abort();
    tracing::info!("stopped");
    Ok(())
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
