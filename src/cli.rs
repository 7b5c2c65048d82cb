//! The command line: global flags and the command tree.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{audit, context, login, orgs, secrets};

const AFTER_HELP: &str = "\
Contexts:
  Without login, commands run against the built-in `local` context: an
  encrypted store under your data directory, no cluster needed.

Environment:
  KUBE_DC_TOKEN     bearer token for remote contexts (CI); never a flag
  KUBE_DC_ORG       organization, when the context has none
  NO_COLOR          disable colours

Exit codes:
  0 ok, 1 other error, 2 usage or invalid input, 3 not found,
  4 permission denied, 5 authentication required or expired, 6 conflict,
  7 network error or timeout, 8 server error, 9 not supported by this installation";

/// Command-line client of the Kube-DC Secrets Manager.
#[derive(Parser, Debug)]
#[command(name = "kube-dc", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Context to use instead of the current one.
    #[arg(long, global = true, env = "KUBE_DC_CONTEXT", value_name = "NAME",
          add = clap_complete::ArgValueCompleter::new(crate::completion::context_names))]
    pub context: Option<String>,
    /// Backend base URL, overriding the context (tests, non-standard installs).
    #[arg(long, global = true, env = "KUBE_DC_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Kube-DC domain; the backend is https://backend.DOMAIN.
    #[arg(long, global = true, env = "KUBE_DC_DOMAIN", value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Project to work in (default: the context's project).
    #[arg(
        short = 'p',
        long,
        global = true,
        env = "KUBE_DC_PROJECT",
        value_name = "PROJECT",
        add = clap_complete::ArgValueCompleter::new(crate::completion::project_names)
    )]
    pub project: Option<String>,
    /// Backing namespace (`<org>-<project>`), for kubectl habits; overrides --project.
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "KUBE_DC_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        global = true,
        env = "KUBE_DC_OUTPUT",
        value_enum,
        ignore_case = true,
        value_name = "FORMAT"
    )]
    pub output: Option<OutputFormat>,
    /// Do not colour output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Trace HTTP requests on stderr (tokens and values are never shown).
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// Request timeout, e.g. 30s, 2m.
    #[arg(
        long,
        global = true,
        env = "KUBE_DC_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub timeout: String,
    /// Extra CA certificate (PEM) to trust for the backend.
    #[arg(long, global = true, env = "KUBE_DC_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Skip TLS certificate verification (dangerous; for test installations).
    #[arg(long, global = true, env = "KUBE_DC_INSECURE")]
    pub insecure: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    Json,
    #[value(alias = "yml")]
    Yaml,
    Csv,
    /// dotenv lines (`secrets get --value`), readable by --from-env-file.
    Env,
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
    Login(login::LoginArgs),
    Logout(login::LogoutArgs),
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
