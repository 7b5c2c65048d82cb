//! The command line: global flags and the command tree.

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCompleter;

use crate::commands::{audit, context, login, logout, orgs, secrets, ui};
pub use crate::config::GlobalArgs;
pub use crate::output::OutputFormat;

const AFTER_HELP: &str = "\
Contexts:
  Without login, commands run against the built-in `local` context: an
  encrypted store under your data directory, no cluster needed.

Environment:
  KUBE_DC_TOKEN     bearer token for remote contexts (CI); never a flag
  KUBE_DC_CLIENT_ID, KUBE_DC_CLIENT_SECRET
                    a service account (CI): each command signs itself in with
                    the client-credentials grant and renews its token; the
                    secret is never a flag and never stored
  KUBE_DC_ISSUER    its identity provider (else the context's, or
                    https://login.DOMAIN/realms/ORG from --domain)
  KUBE_DC_ORG       organization, when the context has none
  NO_COLOR          disable colours

Exit codes:
  0 ok, 1 other error, 2 usage or invalid input, 3 not found,
  4 permission denied, 5 authentication required or expired, 6 conflict,
  7 network error or timeout, 8 server error, 9 not supported by this installation,
  10 audit verify: the file was altered, 126 secrets run: the command cannot be run,
  127 secrets run: no such command, 128+N ended by signal N (after cleaning up)";

/// The command tree, with live value completion for the global flags that
/// name a context or a project.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
        .mut_arg("context", |a| {
            a.add(ArgValueCompleter::new(crate::completion::context_names))
        })
        .mut_arg("project", |a| {
            a.add(ArgValueCompleter::new(crate::completion::project_names))
        })
}

/// Command-line client of the Kube-DC Secrets Manager.
#[derive(Parser, Debug)]
#[command(name = "kube-dc", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, read, write, project and delete secrets.
    #[command(
        subcommand,
        after_help = "\
Examples:
  kube-dc secrets create app-config --from-literal=DATABASE_URL=postgres://...
  kube-dc secrets list
  kube-dc secrets get app-config --value
  kube-dc secrets delete app-config

Run `kube-dc secrets COMMAND --help` for each command's flags and the role it needs."
    )]
    Secrets(secrets::SecretsCommand),
    /// Query the audit stream.
    #[command(
        subcommand,
        after_help = "\
Examples:
  kube-dc audit list --service secrets --since 1h
  kube-dc audit list --org --service secrets
  kube-dc audit list --csv --output-file incident-2026-05-12.csv"
    )]
    Audit(audit::AuditCommand),
    /// Organization admin elevation windows.
    #[command(
        subcommand,
        after_help = "\
Examples:
  kube-dc orgs elevate payments --reason \"incident IR-2026-05-12\"
  kube-dc orgs status payments
  kube-dc orgs release payments
  kube-dc orgs elevations

Role: organization admin."
    )]
    Orgs(orgs::OrgsCommand),
    Ui(ui::UiArgs),
    Login(login::LoginArgs),
    Logout(logout::LogoutArgs),
    /// List contexts, or switch to one.
    Use(context::UseArgs),
    /// Show the configuration.
    #[command(subcommand)]
    Config(context::ConfigCommand),
    Whoami(context::WhoamiArgs),
    /// Show this client's version, and the server's when it is reachable.
    #[command(after_help = "\
Examples:
  kube-dc version
  kube-dc version -o json
  kube-dc --context example.com/acme/demo version")]
    Version,
    Completion(CompletionArgs),
    /// Regenerate completions/, man/ and docs/cli-reference.md (for developers).
    #[command(hide = true)]
    GenerateDocs,
}

/// Print the shell completion script for SHELL.
///
/// Completion is dynamic: besides commands and flags it offers the secret
/// names of the current context, context names and project names, asking
/// `kube-dc` itself (with a short deadline, silently when offline).
/// What `--dry-run` does to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DryRun {
    /// The command's changes are planned and printed, not sent.
    Plans,
    /// The command makes no change: it runs as usual, and says so.
    NoEffect,
    /// The command changes what a plan cannot show (a terminal session,
    /// the keyring, the config file, a child process): refused.
    Refused,
    /// The command shows what it would do in its own terms and does
    /// nothing else (`secrets inject` lists its references and whether
    /// each resolves, reading no value).
    Previews,
}

impl Command {
    /// What `--dry-run` does to this command.
    pub fn dry_run(&self) -> DryRun {
        use crate::commands::orgs::OrgsCommand as O;
        use crate::commands::secrets::SecretsCommand as S;
        match self {
            Command::Secrets(
                S::Create(_)
                | S::Put(_)
                | S::Set(_)
                | S::Unset(_)
                | S::Rollback(_)
                | S::Edit(_)
                | S::Sync(_)
                | S::Import(_)
                | S::Delete(_)
                | S::Restore(_)
                | S::DestroyVersion(_)
                | S::Apply(_),
            )
            | Command::Orgs(O::Elevate(_) | O::Release(_)) => DryRun::Plans,
            Command::Audit(crate::commands::audit::AuditCommand::Checkpoint(_)) => DryRun::Plans,
            Command::Secrets(S::Inject(_) | S::Migrate(_) | S::Export(_)) => DryRun::Previews,
            Command::Secrets(S::Run(_))
            | Command::Ui(_)
            | Command::Login(_)
            | Command::Logout(_)
            | Command::Use(_) => DryRun::Refused,
            Command::Secrets(
                S::List(_) | S::Get(_) | S::Versions(_) | S::Consumers(_) | S::Diff(_),
            )
            | Command::Orgs(O::Status(_) | O::Elevations(_))
            | Command::Audit(_)
            | Command::Config(_)
            | Command::Whoami(_)
            | Command::Version
            | Command::Completion(_)
            | Command::GenerateDocs => DryRun::NoEffect,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "\
Install:
  bash        echo 'source <(kube-dc completion bash)' >> ~/.bashrc
  zsh         kube-dc completion zsh > \"${fpath[1]}/_kube-dc\"   (then restart zsh)
  fish        kube-dc completion fish > ~/.config/fish/completions/kube-dc.fish
  powershell  kube-dc completion powershell | Out-String | Invoke-Expression   (add to $PROFILE)
  elvish      kube-dc completion elvish >> ~/.config/elvish/rc.elv

The same scripts are in the repository's completions/ folder.")]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_parser = ["bash", "zsh", "fish", "powershell", "elvish"])]
    pub shell: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
