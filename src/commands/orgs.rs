//! `kube-dc orgs …`: organization admin elevation windows.

use clap::{Args, Subcommand};
use comfy_table::Cell;

use crate::commands::Session;
use crate::error::{CliError, Result};
use crate::output::sanitize;

#[derive(Subcommand, Debug)]
pub enum OrgsCommand {
    Elevate(ElevateArgs),
    Release(ProjectArgs),
    Status(ProjectArgs),
    Elevations(OrgArgs),
}

/// Active elevation windows in the organization.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc orgs elevations
  kube-dc orgs elevations --org acme -o json

Role: organization admin.")]
pub struct OrgArgs {
    /// The organization (default: the context's, or KUBE_DC_ORG).
    #[arg(long, value_name = "NAME")]
    pub org: Option<String>,
}

/// Open a 15-minute, audited window to read values in a project.
///
/// Organization admins see metadata in every project of the org, but read
/// values only inside such a window (unless they also hold a project role).
/// The reason is stored on every value-read event in the window. Elevating
/// again replaces the window; it cannot be extended.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc orgs elevate payments --reason \"incident IR-2026-05-12\"
  kube-dc secrets get db-creds -p payments --value
  kube-dc orgs release payments

Role: organization admin.")]
pub struct ElevateArgs {
    /// The project to elevate into (default: the one -p/-n or the context names).
    // Its own id: `project` is the global -p's, which clap would merge.
    #[arg(id = "project_arg", value_name = "PROJECT", add = clap_complete::ArgValueCompleter::new(crate::completion::project_names))]
    pub project: Option<String>,
    /// Why (an incident or ticket number); required, and audited.
    #[arg(long, required = true)]
    pub reason: String,
    #[command(flatten)]
    pub org: OrgArgs,
}

/// A project's elevation window: `release` closes yours early, `status` shows it.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc orgs status payments
  kube-dc orgs release payments

Role: organization admin.")]
pub struct ProjectArgs {
    /// The project (default: the one -p/-n or the context names).
    // Its own id: `project` is the global -p's, which clap would merge.
    #[arg(id = "project_arg", value_name = "PROJECT", add = clap_complete::ArgValueCompleter::new(crate::completion::project_names))]
    pub project: Option<String>,
    #[command(flatten)]
    pub org: OrgArgs,
}

fn org(ctx: &Session, a: &OrgArgs) -> Result<String> {
    let env = crate::config::env_org();
    ctx.target()?.org(a.org.as_deref().or(env.as_deref()))
}

/// The project a window is about: the argument, else the one -p/-n (or
/// the context) names. An argument that a typed -p/-n contradicts is
/// refused; one from the environment is a default the argument overrides.
fn project(ctx: &Session, arg: Option<&str>, org: &str) -> Result<String> {
    let target = ctx.target()?;
    let scoped =
        target.scope_explicit && (target.project_flag.is_some() || target.namespace_flag.is_some());
    let p = match arg {
        Some(p) if scoped => {
            let flagged = target.project_in(org)?;
            if flagged != p {
                return Err(CliError::usage(format!(
                    "project {p} and -p/-n (project {flagged}) disagree"
                ))
                .hint("give the project once"));
            }
            p.to_string()
        }
        Some(p) => p.to_string(),
        None => target.project_in(org)?,
    };
    kube_dc_api::validate::check_name("project", &p).map_err(CliError::usage)?;
    Ok(p)
}

pub async fn run(ctx: &Session, cmd: OrgsCommand) -> Result<()> {
    use crate::output::OutputFormat::{Json, Table, Yaml};
    ctx.printer.require(&[Table, Json, Yaml], "orgs")?;
    match cmd {
        OrgsCommand::Elevate(a) => elevate(ctx, a).await,
        OrgsCommand::Release(a) => release(ctx, a).await,
        OrgsCommand::Status(a) => status(ctx, a).await,
        OrgsCommand::Elevations(a) => elevations(ctx, a).await,
    }
}

/// Opens an elevation window (audited).
async fn elevate(ctx: &Session, a: ElevateArgs) -> Result<()> {
    let p = &ctx.printer;
    if a.reason.trim().is_empty() {
        return Err(CliError::usage("--reason is empty").hint("give an incident or ticket number"));
    }
    let org = org(ctx, &a.org)?;
    let project = project(ctx, a.project.as_deref(), &org)?;
    let client = ctx.client().await?;
    let Some((g, raw)) = client.elevate(&org, &project, &a.reason).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "elevated into {}/{} until {} (id {})",
        sanitize(&g.org),
        sanitize(&g.project),
        sanitize(&g.expires_at),
        sanitize(&g.elevation_id)
    ))
}

/// Closes the caller's window early.
async fn release(ctx: &Session, a: ProjectArgs) -> Result<()> {
    let p = &ctx.printer;
    let org = org(ctx, &a.org)?;
    let project = project(ctx, a.project.as_deref(), &org)?;
    let Some((g, raw)) = ctx.client().await?.release(&org, &project).await? else {
        return Ok(()); // --dry-run: planned
    };
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    p.line(&format!(
        "released {}/{} (id {})",
        sanitize(&g.org),
        sanitize(&g.project),
        sanitize(&g.elevation_id)
    ))
}

/// The caller's window in a project.
async fn status(ctx: &Session, a: ProjectArgs) -> Result<()> {
    let p = &ctx.printer;
    let org = org(ctx, &a.org)?;
    let project = project(ctx, a.project.as_deref(), &org)?;
    let (s, raw) = ctx.client().await?.elevation_status(&org, &project).await?;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    match s.grant.filter(|_| s.active) {
        Some(g) => p.line(&format!(
            "active until {} (reason: {}; id {})",
            sanitize(&g.expires_at),
            sanitize(&g.reason),
            sanitize(&g.elevation_id)
        )),
        None => p.line(&format!("no active elevation for {org}/{project}")),
    }
}

/// Every active window of the organization.
async fn elevations(ctx: &Session, a: OrgArgs) -> Result<()> {
    let p = &ctx.printer;
    ctx.target()?.project_scope_ignored(
            "orgs elevations",
            "lists the whole organization's windows (`kube-dc orgs status PROJECT` shows one project's)",
        );
    let org = org(ctx, &a)?;
    let (list, raw) = ctx.client().await?.elevations(&org).await?;
    if p.is_machine() {
        return p.print_doc(&raw.value());
    }
    if list.items.is_empty() {
        crate::output::note(&format!("no active elevations in {org}"));
        return Ok(());
    }
    let mut t = p.table(&["PROJECT", "USER", "REASON", "EXPIRES", "ID"]);
    for g in &list.items {
        t.add_row(vec![
            Cell::new(sanitize(&g.project)),
            Cell::new(sanitize(&g.user)),
            Cell::new(sanitize(&g.reason)),
            Cell::new(sanitize(&g.expires_at)),
            Cell::new(sanitize(&g.elevation_id)),
        ]);
    }
    p.print_table(&t)
}
