//! `kube-dc logout`: end logins — revoke, forget tokens, drop contexts.

use clap::Args;

use crate::auth::oidc::{self, Provider};
use crate::auth::{session_key, with_store};
use crate::commands::Session;
use crate::config::ConfigFile;
use crate::error::{CliError, Result};
use crate::output::{note, warn};

/// Log out: revoke the refresh token and delete the stored tokens.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc logout          # the current context's login
  kube-dc logout --all    # every login, and the contexts they created
  kube-dc logout --remove-contexts   # this login, and the contexts it created")]
pub struct LogoutArgs {
    /// Every login, and remove the contexts they created.
    #[arg(long)]
    pub all: bool,
    /// Also remove the contexts of the login that ends.
    #[arg(long)]
    pub remove_contexts: bool,
}

pub async fn logout(ctx: &Session, a: LogoutArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Table], "logout")?;
    let mut file = ConfigFile::load()?;
    let kind = file.store_kind();
    let sessions = sessions(ctx, &a, &file)?;
    if sessions.is_empty() {
        note("Not logged in anywhere.");
        return Ok(());
    }
    for (issuer, client_id) in &sessions {
        let key = session_key(issuer, client_id);
        let k = key.clone();
        let tokens = with_store(kind, move |s| s.load(&k)).await?;
        let revoked = match tokens.and_then(|t| t.refresh_token) {
            Some(rt) => revoke(ctx, issuer, client_id, &rt).await?,
            None => "no tokens were stored",
        };
        let k = key.clone();
        with_store(kind, move |s| s.delete(&k)).await?;
        note(&format!(
            "Logged out of {issuer} ({revoked}; stored tokens deleted)."
        ));
    }
    if a.all || a.remove_contexts {
        let before = file.contexts.len();
        file.contexts.retain(|c| match (&c.issuer, &c.client_id) {
            (Some(i), Some(cl)) => !sessions.contains(&(i.clone(), cl.clone())),
            _ => true,
        });
        if file
            .current_context
            .as_ref()
            .is_some_and(|cur| file.context(cur).is_none())
        {
            file.current_context = None;
        }
        file.save()?;
        note(&format!(
            "Removed {} context(s); the current context is now {}.",
            before - file.contexts.len(),
            file.current_context.as_deref().unwrap_or("local")
        ));
    }
    Ok(())
}

/// The logins to end, as (issuer, client id): every one (`--all`), or the
/// current context's.
fn sessions(ctx: &Session, a: &LogoutArgs, file: &ConfigFile) -> Result<Vec<(String, String)>> {
    let mut sessions: Vec<(String, String)> = Vec::new();
    if a.all {
        for c in &file.contexts {
            if let (Some(i), Some(cl)) = (&c.issuer, &c.client_id)
                && !sessions.contains(&(i.clone(), cl.clone()))
            {
                sessions.push((i.clone(), cl.clone()));
            }
        }
        return Ok(sessions);
    }
    let t = ctx.target()?;
    match (&t.issuer, &t.client_id) {
        (Some(i), Some(c)) => Ok(vec![(i.clone(), c.clone())]),
        _ if t.is_local() => Err(CliError::usage("the local context has no login to end")),
        _ => Err(CliError::usage(format!(
            "context {} has no login",
            t.context
        ))),
    }
}

/// Revokes a refresh token at its provider; what became of it. A provider
/// that cannot be reached or refuses is warned about: the stored tokens
/// are deleted all the same.
async fn revoke(
    ctx: &Session,
    issuer: &str,
    client_id: &str,
    rt: &crate::redact::Sensitive,
) -> Result<&'static str> {
    let http = oidc::http_client(
        ctx.global.ca_cert.as_deref(),
        ctx.global.insecure,
        ctx.timeout()?,
    )?;
    Ok(match Provider::discover(issuer, client_id, http).await {
        Ok(p) => match p.revoke(rt).await {
            Ok(true) => "refresh token revoked",
            Ok(false) => "the provider has no revocation endpoint",
            Err(e) => {
                warn(&format!("could not revoke the refresh token: {e}"));
                "revocation failed"
            }
        },
        Err(e) => {
            warn(&format!(
                "could not reach {issuer} to revoke the refresh token: {e}"
            ));
            "provider unreachable"
        }
    })
}
