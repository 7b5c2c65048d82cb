//! `kube-dc use`, `kube-dc config view`, `kube-dc whoami`.

use clap::{Args, Subcommand};
use comfy_table::Cell;
use serde_json::{Value, json};

use crate::auth::oidc::peek_claims;
use crate::commands::Session;
use crate::config::{ConfigFile, LOCAL_CONTEXT, config_path};
use crate::error::{CliError, Result};
use crate::output::sanitize;

/// List contexts, or switch to one.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc use                          # list; * marks the current one
  kube-dc use example.com/acme/demo    # switch
  kube-dc use local                    # back to the built-in local context")]
pub struct UseArgs {
    /// The context to switch to.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::context_names))]
    pub context: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Show the config file (contexts and settings; it never holds tokens).
    #[command(
        visible_alias = "show",
        after_help = "\
Examples:
  kube-dc config view
  kube-dc config show -o json"
    )]
    View,
}

/// Who you are in the current context: user, email, organization, groups,
/// projects and when the token expires (never the token itself).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc whoami
  kube-dc whoami -o json")]
pub struct WhoamiArgs {}

pub async fn use_context(ctx: &Session, a: UseArgs) -> Result<()> {
    let mut file = ConfigFile::load()?;
    let current = file
        .current_context
        .clone()
        .unwrap_or_else(|| LOCAL_CONTEXT.into());
    let Some(name) = a.context else {
        let p = &ctx.printer;
        if p.is_machine() {
            let items: Vec<Value> = std::iter::once(json!({"name": LOCAL_CONTEXT, "current": current == LOCAL_CONTEXT}))
                .chain(file.contexts.iter().map(|c| {
                    json!({"name": c.name, "server": c.server, "org": c.org, "project": c.project, "current": c.name == current})
                }))
                .collect();
            return p.print_doc(&json!({"items": items}));
        }
        let mut t = p.table(&["CURRENT", "NAME", "SERVER", "ORG", "PROJECT"]);
        let mark = |n: &str| if n == current { "*" } else { "" };
        t.add_row(vec![
            Cell::new(mark(LOCAL_CONTEXT)),
            Cell::new(LOCAL_CONTEXT),
            Cell::new("(built in)"),
            Cell::new("local"),
            Cell::new("default"),
        ]);
        for c in &file.contexts {
            t.add_row(vec![
                Cell::new(mark(&c.name)),
                Cell::new(sanitize(&c.name)),
                Cell::new(sanitize(&c.server)),
                Cell::new(sanitize(&c.org)),
                Cell::new(sanitize(c.project.as_deref().unwrap_or("-"))),
            ]);
        }
        return p.print_table(&t);
    };
    // The Go CLI's short form, ORG/PROJECT, names the one context of any
    // domain that ends with it.
    let name = if name == LOCAL_CONTEXT || file.context(&name).is_some() {
        name
    } else {
        let suffix = format!("/{name}");
        let matching: Vec<&str> = file
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| n.ends_with(&suffix))
            .collect();
        match matching.as_slice() {
            [one] => one.to_string(),
            _ => {
                let known: Vec<&str> = std::iter::once(LOCAL_CONTEXT)
                    .chain(file.contexts.iter().map(|c| c.name.as_str()))
                    .collect();
                let what = if matching.is_empty() {
                    format!("no context named {name:?}")
                } else {
                    format!("{name:?} matches several contexts: {}", matching.join(", "))
                };
                return Err(
                    CliError::usage(what).hint(format!("known contexts: {}", known.join(", ")))
                );
            }
        }
    };
    file.current_context = (name != LOCAL_CONTEXT).then(|| name.clone());
    file.save()?;
    ctx.printer.line(&format!("Switched to context {name}."))
}

pub async fn config(ctx: &Session, c: ConfigCommand) -> Result<()> {
    match c {
        ConfigCommand::View => {
            let file = ConfigFile::load()?;
            let p = &ctx.printer;
            if p.is_machine() {
                return p.print_doc(
                    &serde_json::to_value(&file).map_err(|e| CliError::other(e.to_string()))?,
                );
            }
            crate::output::note(&format!("# {}", config_path().display()));
            let text =
                serde_norway::to_string(&file).map_err(|e| CliError::other(e.to_string()))?;
            p.line(text.trim_end())
        }
    }
}

pub async fn whoami(ctx: &Session, _a: WhoamiArgs) -> Result<()> {
    let target = ctx.target()?;
    let p = &ctx.printer;
    if let crate::config::Endpoint::Local { user, .. } = &target.backend {
        let v = json!({"context": LOCAL_CONTEXT, "user": user, "org": "local", "projects": ["default"], "role": "admin"});
        if p.is_machine() {
            return p.print_doc(&v);
        }
        return p.line(&format!(
            "{user} on the local context (admin of organization local, project default)"
        ));
    }
    // Whatever the other commands would authenticate with: KUBE_DC_TOKEN,
    // a service account from the environment, or the login's tokens.
    let credential = crate::auth::credential(target, ctx.timeout()?)
        .await?
        .ok_or_else(|| {
            CliError::new(crate::error::ErrorKind::AuthRequired, "not logged in").hint(format!(
                "run `{}`, or in CI set KUBE_DC_CLIENT_ID and KUBE_DC_CLIENT_SECRET",
                crate::auth::login_command(target)
            ))
        })?;
    let token = credential.bearer().await?;
    let c = peek_claims(token.expose()).unwrap_or(Value::Null);
    let v = identity(target, &c, credential.source());
    if p.is_machine() {
        return p.print_doc(&v);
    }
    let exp = c.get("exp").and_then(Value::as_i64);
    let mut t = p.table(&[]);
    for (label, key) in [
        ("Context", "context"),
        ("User", "user"),
        ("Email", "email"),
        ("Organization", "org"),
        ("Groups", "groups"),
        ("Projects", "projects"),
        ("Token expires", "expiresAt"),
        ("Signed in by", "credential"),
    ] {
        let mut val = sanitize(&cell_text(&v[key]));
        if key == "expiresAt"
            && let Some(e) = exp
        {
            let left = e - crate::auth::now();
            val = if left > 0 {
                format!("{val} (in {}m {}s)", left / 60, left % 60)
            } else {
                format!("{val} (expired)")
            };
        }
        t.add_row(vec![Cell::new(format!("{label}:")), Cell::new(val)]);
    }
    p.print_table(&t)
}

/// Who the token says the caller is (`whoami -o json`'s document).
fn identity(target: &crate::config::Target, c: &Value, credential: String) -> Value {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(String::from);
    let list = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let org = s("org").or_else(|| target.org.clone()).unwrap_or_default();
    let projects: Vec<String> = list("namespaces")
        .iter()
        .map(|n| n.strip_prefix(&format!("{org}-")).unwrap_or(n).to_string())
        .collect();
    let expires = c
        .get("exp")
        .and_then(Value::as_i64)
        .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    json!({
        "context": target.context,
        "user": s("preferred_username").or(s("sub")),
        "email": s("email"),
        "org": org,
        "groups": list("groups"),
        "projects": projects,
        "expiresAt": expires,
        "credential": credential,
    })
}

/// A field of that document as a table cell: lists joined, none as `-`.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "-".into(),
        other => other
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| other.to_string()),
    }
}
