//! Where requests go: contexts, XDG paths, `KUBE_DC_*` environment.

mod args;
pub use args::{ActAs, GlobalArgs, ScopeSource};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

pub const LOCAL_CONTEXT: &str = "local";
pub const LOCAL_ORG: &str = "local";
pub const LOCAL_PROJECT: &str = "default";

/// The config file: contexts and non-secret settings only. Tokens live in
/// the OS keyring, never here.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Where login keeps tokens: the OS keyring unless the user opted in
    /// to a file (`kube-dc login --token-store file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<StoreKind>,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Context {
    pub name: String,
    /// Backend base URL, e.g. https://backend.example.com
    pub server: String,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

pub fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("kube-dc")
}

pub fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("kube-dc")
}

pub fn config_path() -> PathBuf {
    std::env::var_os("KUBE_DC_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir().join("config.yaml"))
}

/// The organization from `KUBE_DC_ORG`, when set and not empty.
pub fn env_org() -> Option<String> {
    std::env::var("KUBE_DC_ORG").ok().filter(|s| !s.is_empty())
}

/// The bearer token from `KUBE_DC_TOKEN` (CI), if set.
pub fn token_from_env() -> Option<crate::redact::Sensitive> {
    std::env::var("KUBE_DC_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(crate::redact::Sensitive::new)
}

impl ConfigFile {
    pub fn load() -> Result<Self> {
        let path = config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_norway::from_str(&text).map_err(|e| {
                CliError::usage(format!("config file {} is not valid: {e}", path.display()))
                    .hint("fix or remove the file; it holds only contexts, no credentials")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::other(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// Writes the file atomically (temporary file, then rename), mode 0600.
    pub fn save(&self) -> Result<()> {
        let text = serde_norway::to_string(self).map_err(|e| CliError::other(e.to_string()))?;
        crate::atomic::write(&config_path(), text.as_bytes())
    }

    pub fn store_kind(&self) -> StoreKind {
        match std::env::var("KUBE_DC_TOKEN_STORE").ok().as_deref() {
            Some("file") => StoreKind::File,
            Some("keyring") => StoreKind::Keyring,
            _ => self.token_store.unwrap_or(StoreKind::Keyring),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// The embedded backend over a data directory.
    Local {
        data_dir: PathBuf,
        user: String,
        /// `--as ROLE`.
        act_as: Option<ActAs>,
    },
    /// A backend reached over HTTP(S).
    Remote { base_url: String },
}

/// A resolved place to send requests to.
#[derive(Clone, Debug)]
pub struct Target {
    pub context: String,
    pub backend: Endpoint,
    pub org: Option<String>,
    pub project: Option<String>,
    /// The project `-p` (or KUBE_DC_PROJECT) named, if any.
    pub project_flag: Option<String>,
    pub namespace_flag: Option<String>,
    /// Whether the one of them in force was typed on the command line
    /// (false: a default from the environment).
    pub scope_explicit: bool,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    pub domain: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub token_store: StoreKind,
}

impl Target {
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Endpoint::Local { .. })
    }

    /// Which installation this is: the server's URL, or `local`.
    pub fn server_label(&self) -> String {
        match &self.backend {
            Endpoint::Remote { base_url } => base_url.clone(),
            Endpoint::Local { .. } => LOCAL_CONTEXT.to_string(),
        }
    }

    pub fn org(&self, flag: Option<&str>) -> Result<String> {
        let org = flag
            .map(str::to_string)
            .or_else(|| self.org.clone())
            .ok_or_else(|| {
                CliError::usage("no organization: this context has none")
                    .hint("set KUBE_DC_ORG, or pass --org-name / --org where the command has it")
            })?;
        kube_dc_api::validate::check_name("organization", &org).map_err(CliError::usage)?;
        Ok(org)
    }

    /// The project: the one `-n` names (its backing namespace is
    /// `<org>-<project>`), else `-p`, else the context's.
    pub fn project(&self) -> Result<String> {
        self.project_in(&self.org(None)?)
    }

    /// [`Target::project`] for organization `org` (a command may name
    /// another organization than the context's).
    pub fn project_in(&self, org: &str) -> Result<String> {
        if let Some(ns) = &self.namespace_flag {
            return ns
                .strip_prefix(org)
                .and_then(|p| p.strip_prefix('-'))
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "namespace {ns:?} is not a project of organization {org:?} (a project's namespace is {org}-PROJECT)"
                    ))
                    .hint("pass the project with -p PROJECT, or the organization with --org-name/--org")
                });
        }
        self.project.clone().ok_or_else(|| {
            CliError::usage("no project: this context has none")
                .hint("pass --project NAME (or set KUBE_DC_PROJECT)")
        })
    }

    /// For a command that is organization-wide (`what` says so, e.g.
    /// "exports the whole organization's events"): a project typed on the
    /// command line is reported as not narrowing it, on stderr, and the
    /// command goes on; one from the environment or the context is a
    /// default that does not apply, and is ignored silently.
    pub fn project_scope_ignored(&self, command: &str, what: &str) {
        if !self.scope_explicit {
            return;
        }
        let flag = match (&self.project_flag, &self.namespace_flag) {
            (_, Some(n)) => format!("--namespace {n}"),
            (Some(p), None) => format!("--project {p}"),
            (None, None) => return,
        };
        crate::output::warn(&format!("{command} {what}: {flag} does not narrow it"));
    }

    /// The backing namespace: `-n`, else `<org>-<project>`.
    pub fn namespace(&self) -> Result<String> {
        if let Some(ns) = &self.namespace_flag {
            return Ok(ns.clone());
        }
        let org = self.org(None)?;
        let project = self.project()?;
        Ok(format!("{org}-{project}"))
    }
}

/// Normalises a bare domain: strips `http(s)://` and a trailing `/`, and
/// rejects anything path-like.
pub fn normalize_domain(domain: &str) -> Result<String> {
    let d = domain
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if d.is_empty()
        || d.contains('/')
        || d.contains('?')
        || d.contains('#')
        || d.contains(char::is_whitespace)
    {
        return Err(CliError::usage(format!(
            "invalid domain {domain:?}: give a bare host name such as example.com"
        )));
    }
    Ok(d.to_string())
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "local-user".into())
}

/// Where a command goes: the context (flag, current, or `local`), then the
/// flags and the environment over it.
pub fn resolve(g: &GlobalArgs) -> Result<Target> {
    let file = ConfigFile::load()?;
    let name = g
        .context
        .clone()
        .or_else(|| file.current_context.clone())
        .unwrap_or_else(|| LOCAL_CONTEXT.to_string());
    let env_org = std::env::var("KUBE_DC_ORG").ok().filter(|s| !s.is_empty());
    let mut target = if name == LOCAL_CONTEXT && g.server.is_none() && g.domain.is_none() {
        local_target(g, name, &file)
    } else {
        remote_target(g, name, &file)?
    };
    if let (Some(role), false) = (g.act_as, target.is_local()) {
        return Err(CliError::usage(format!(
            "--as {} works on the local context only: a real installation takes your role from your token",
            clap::ValueEnum::to_possible_value(&role)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ))
        .hint("leave out --as (and KUBE_DC_AS), or use --context local"));
    }
    if env_org.is_some() {
        target.org = env_org;
    }
    scope(g, &mut target)?;
    if g.ca_cert.is_some() {
        target.ca_cert = g.ca_cert.clone();
    }
    target.insecure |= g.insecure;
    Ok(target)
}

/// The built-in context: the embedded backend in the data directory.
fn local_target(g: &GlobalArgs, name: String, file: &ConfigFile) -> Target {
    Target {
        context: name,
        backend: Endpoint::Local {
            data_dir: std::env::var_os("KUBE_DC_LOCAL_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir().join(LOCAL_CONTEXT)),
            user: local_user(),
            act_as: g.act_as,
        },
        org: Some(LOCAL_ORG.into()),
        project: Some(LOCAL_PROJECT.into()),
        project_flag: None,
        namespace_flag: None,
        scope_explicit: false,
        ca_cert: None,
        insecure: false,
        domain: None,
        issuer: None,
        client_id: None,
        token_store: file.store_kind(),
    }
}

/// A named context, or `--server`/`--domain` without one.
fn remote_target(g: &GlobalArgs, name: String, file: &ConfigFile) -> Result<Target> {
    let ctx = file.context(&name).cloned();
    if ctx.is_none() && name != LOCAL_CONTEXT {
        let known: Vec<&str> = file.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(CliError::usage(format!("no context named {name:?}")).hint(
            if known.is_empty() {
                "log in first (kube-dc login --domain D --org O), or use --server URL".to_string()
            } else {
                format!("known contexts: local, {}", known.join(", "))
            },
        ));
    }
    let base_url = match (&g.server, &g.domain, &ctx) {
        (Some(url), _, _) => url.trim_end_matches('/').to_string(),
        (None, Some(d), _) => format!("https://backend.{}", normalize_domain(d)?),
        (None, None, Some(c)) => c.server.trim_end_matches('/').to_string(),
        (None, None, None) => unreachable!("local handled above"),
    };
    let ctx = ctx.as_ref();
    Ok(Target {
        context: name,
        backend: Endpoint::Remote { base_url },
        org: ctx.map(|c| c.org.clone()),
        project: ctx.and_then(|c| c.project.clone()),
        project_flag: None,
        namespace_flag: None,
        scope_explicit: false,
        ca_cert: ctx.and_then(|c| c.ca_cert.clone()),
        insecure: ctx.is_some_and(|c| c.insecure),
        domain: ctx
            .and_then(|c| c.domain.clone())
            .or_else(|| g.domain.clone()),
        issuer: ctx.and_then(|c| c.issuer.clone()),
        client_id: ctx.and_then(|c| c.client_id.clone()),
        token_store: file.store_kind(),
    })
}

/// `-p` and `-n`: a flag typed on the command line beats the other one's
/// default from the environment (KUBE_DC_PROJECT, KUBE_DC_NAMESPACE);
/// typed together they must name the same project.
fn scope(g: &GlobalArgs, target: &mut Target) -> Result<()> {
    let src = g.scope_source;
    let project = g
        .project
        .as_ref()
        .filter(|_| src.project_explicit || !src.namespace_explicit);
    let namespace = g
        .namespace
        .as_ref()
        .filter(|_| src.namespace_explicit || !src.project_explicit);
    target.scope_explicit = match (project, namespace) {
        (_, Some(_)) => src.namespace_explicit,
        (Some(_), None) => src.project_explicit,
        (None, None) => false,
    };
    if let Some(p) = project {
        kube_dc_api::validate::check_name("project", p).map_err(CliError::usage)?;
        target.project = Some(p.clone());
        target.project_flag = Some(p.clone());
    }
    if let Some(ns) = namespace {
        kube_dc_api::validate::check_name("namespace", ns).map_err(CliError::usage)?;
        target.namespace_flag = Some(ns.clone());
        if let (Some(p), Some(org)) = (project, &target.org)
            && *ns != format!("{org}-{p}")
        {
            return Err(CliError::usage(format!(
                "--namespace {ns} and --project {p} name different projects (project {p}'s namespace is {org}-{p})"
            ))
            .hint("give one of them"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            normalize_domain("https://example.com/").unwrap(),
            "example.com"
        );
        assert_eq!(normalize_domain("kube-dc.cloud").unwrap(), "kube-dc.cloud");
        assert!(normalize_domain("example.com/path").is_err());
        assert!(normalize_domain("").is_err());
    }
}

/// Where login keeps tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The OS keyring (Secret Service, Keychain, Credential Manager).
    Keyring,
    /// A 0600 file beside the config: only when you choose it.
    File,
}
