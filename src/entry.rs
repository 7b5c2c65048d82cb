//! The process: parses the command line, refuses or notes `--dry-run`
//! where it cannot plan, runs the command, prints its plan or its error,
//! and returns the exit code.

use crate::cli::{self, Cli, Command};
use crate::commands::Session;
use crate::error::{CliError, ErrorKind};
use crate::{commands, config, docs, output};

/// Parses the command line, runs the command, prints any error, and returns
/// the process exit code.
pub fn main() -> i32 {
    // A shell asking for completions (COMPLETE=bash kube-dc -- …) is
    // answered here and the process exits; otherwise this is one env lookup.
    clap_complete::CompleteEnv::with_factory(cli::command)
        .completer("kube-dc")
        .complete();
    let (cli, command_name) = match parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ErrorKind::Usage.exit_code()
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    // The runtime is built only after parsing: `--help` and usage errors
    // never pay for it.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("cannot start: {e}"), &[]);
            return 1;
        }
    };
    let dry_run = cli.global.dry_run.then(|| cli.command.dry_run());
    let ctx = Session::new(cli.global.clone(), dry_run == Some(cli::DryRun::Plans));
    match dry_run {
        Some(cli::DryRun::Refused) => {
            let e = CliError::usage(format!(
                "`kube-dc {command_name}` does not take --dry-run: what it changes cannot be shown as a plan"
            ))
            .hint("leave out --dry-run");
            return report(&e);
        }
        Some(cli::DryRun::NoEffect) => output::note(&format!(
            "--dry-run has no effect: `kube-dc {command_name}` makes no change"
        )),
        _ => {}
    }
    let result = rt.block_on(run(&ctx, cli.command));
    let result = result.and_then(|code| match ctx.planned() {
        Some(plan) => commands::print_plan(&ctx, &plan).map(|()| code),
        None => Ok(code),
    });
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// The command line, and the command as typed without flags (`secrets
/// list`) for messages.
fn parse() -> Result<(Cli, String), clap::Error> {
    let m = cli::command().try_get_matches()?;
    let mut c = <Cli as clap::FromArgMatches>::from_arg_matches(&m)?;
    c.global.scope_source = config::ScopeSource::of(&m);
    let mut path = Vec::new();
    let mut at = &m;
    while let Some((name, sub)) = at.subcommand() {
        path.push(name.to_string());
        at = sub;
    }
    Ok((c, path.join(" ")))
}

/// Runs one command; its exit code when it succeeds (`secrets run`: the
/// child's).
async fn run(ctx: &Session, command: Command) -> crate::error::Result<i32> {
    match command {
        Command::Secrets(c) => commands::secrets::run(ctx, c).await,
        Command::Audit(c) => commands::audit::run(ctx, c).await.map(|()| 0),
        Command::Orgs(c) => commands::orgs::run(ctx, c).await.map(|()| 0),
        Command::Ui(a) => commands::ui::run(ctx, a).await.map(|()| 0),
        Command::Login(a) => commands::login::login(ctx, a).await.map(|()| 0),
        Command::Logout(a) => commands::logout::logout(ctx, a).await.map(|()| 0),
        Command::Use(a) => commands::context::use_context(ctx, a).await.map(|()| 0),
        Command::Config(c) => commands::context::config(ctx, c).await.map(|()| 0),
        Command::Whoami(a) => commands::context::whoami(ctx, a).await.map(|()| 0),
        Command::Version => commands::version::run(ctx).await.map(|()| 0),
        Command::Completion(a) => {
            let script = docs::completion_script(&a.shell).unwrap_or_default();
            ctx.printer.line(script.trim_end()).map(|()| 0)
        }
        Command::GenerateDocs => generate_docs().map(|()| 0),
    }
}

/// Writes every generated file under the current directory (the
/// repository root).
fn generate_docs() -> crate::error::Result<()> {
    for (path, content) in docs::generated_files() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::other(format!("{}: {e}", dir.display())))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| CliError::other(format!("{}: {e}", path.display())))?;
        output::note(&format!("wrote {}", path.display()));
    }
    Ok(())
}

fn report(e: &CliError) -> i32 {
    if e.kind == ErrorKind::BrokenPipe {
        return 0;
    }
    output::error(&e.to_string(), &e.hints);
    e.kind.exit_code()
}
