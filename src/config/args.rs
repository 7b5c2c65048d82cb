//! The global flags, each with its `KUBE_DC_*` variable.

/// A role to act in on the local context (`--as`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActAs {
    User,
    Developer,
    ProjectManager,
    Admin,
    OrgAdmin,
}

/// The global flags (each with its `KUBE_DC_*` variable): what a command
/// runs against and how it prints.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Context to use instead of the current one.
    #[arg(long, global = true, env = "KUBE_DC_CONTEXT", value_name = "NAME")]
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
        value_name = "PROJECT"
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
        value_parser = crate::output::OutputParser,
        value_name = "FORMAT"
    )]
    pub output: Option<crate::output::OutputArg>,
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
    /// Local context only: act in this role, to try the permission table,
    /// its 403s and the elevation window (org-admin: organization admin
    /// only, values through `orgs elevate`). A real installation takes the
    /// role from your token.
    #[arg(
        long = "as",
        global = true,
        env = "KUBE_DC_AS",
        value_enum,
        value_name = "ROLE"
    )]
    pub act_as: Option<ActAs>,
    /// Print every change the command would send, as a plan (method, URL,
    /// audit action, body with values masked; a document with -o
    /// json|yaml), and send nothing. Reads the command needs to decide are
    /// made as usual. A command that changes nothing says --dry-run has no
    /// effect; ui, secrets run, login, logout and use refuse it.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// With --dry-run: show the values instead of masking them.
    #[arg(long, global = true, requires = "dry_run")]
    pub show_values: bool,
    /// Where -p and -n came from: the command line (explicit: a command
    /// that cannot honour them says so) or KUBE_DC_PROJECT /
    /// KUBE_DC_NAMESPACE (a default: ignored where it does not apply).
    #[arg(skip)]
    pub scope_source: ScopeSource,
}

/// Whether `-p`/`-n` (and `-o`) were typed on the command line or came
/// from their `KUBE_DC_*` variables (see [`GlobalArgs::scope_source`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeSource {
    pub project_explicit: bool,
    pub namespace_explicit: bool,
    /// `-o` was typed: a format the command cannot print is refused (from
    /// `KUBE_DC_OUTPUT`, it gives way to the command's default).
    pub output_explicit: bool,
}

impl ScopeSource {
    /// Read off the parsed command line.
    pub fn of(matches: &clap::ArgMatches) -> Self {
        let explicit = |id: &str| {
            // Global flags are propagated to the subcommand that was given
            // them; the source is the same at every level.
            let mut m = Some(matches);
            while let Some(here) = m {
                if here.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                    return true;
                }
                m = here.subcommand().map(|(_, sub)| sub);
            }
            false
        };
        Self {
            project_explicit: explicit("project"),
            namespace_explicit: explicit("namespace"),
            output_explicit: explicit("output"),
        }
    }
}
