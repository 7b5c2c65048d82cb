//! One module per verb, each with its arguments beside its code.

pub mod audit;
pub mod context;
pub mod login;
pub mod logout;
pub mod orgs;
pub mod secrets;
pub mod ui;
pub mod version;

use crate::error::{CliError, Result};
pub use crate::session::Session;

/// Prints a dry run's plan: a document for `-o json|yaml|jsonpath`, else
/// each change (method, URL, audit action, body) and that nothing was sent.
pub fn print_plan(ctx: &Session, plan: &[crate::api::PlannedChange]) -> Result<()> {
    let p = &ctx.printer;
    if p.is_machine() {
        let doc = serde_json::json!({ "dryRun": true, "changes": plan });
        return p.print_doc(&doc);
    }
    let mut out = String::new();
    for c in plan {
        out.push_str(&format!(
            "dry run: {} {}  ({})\n",
            c.method, c.url, c.action
        ));
        if let Some(body) = &c.body {
            let text =
                serde_json::to_string_pretty(body).map_err(|e| CliError::other(e.to_string()))?;
            out.push_str(&text);
            out.push('\n');
        }
    }
    out.push_str(&match plan.len() {
        0 => "dry run: no change to make (nothing was sent)\n".to_string(),
        1 => "1 change planned (nothing was sent)\n".to_string(),
        n => format!("{n} changes planned (nothing was sent)\n"),
    });
    p.raw(out.as_bytes())
}

/// Asks "yes/no" on the terminal. Without a terminal it refuses, naming
/// `--yes` as the way for scripts. A dry run asks nothing: nothing is sent.
pub fn confirm(ctx: &Session, question: &str, yes_flag: bool) -> Result<()> {
    if yes_flag || ctx.printer.plan_only {
        return Ok(());
    }
    if !crate::output::stdin_is_terminal() || !crate::output::stderr_is_terminal() {
        return Err(
            CliError::usage(format!("{question} — refusing without confirmation"))
                .hint("pass --yes to confirm in scripts"),
        );
    }
    let answer = crate::output::ask(&format!("{question} [y/N]"))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("cancelled"))
    }
}
