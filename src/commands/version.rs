//! `kube-dc version`: this client's version, and the server's.

use serde_json::{Value, json};

use crate::commands::Session;
use crate::error::Result;

pub async fn run(ctx: &Session) -> Result<()> {
    let client_version = env!("CARGO_PKG_VERSION");
    // The server is asked without credentials being required: a missing
    // login or an unreachable server is reported, not an error.
    let server = match ctx.client().await {
        Ok(c) => match c.server_version().await {
            Ok(v) => json!({"version": v, "context": ctx.target()?.context}),
            Err(e) => json!({"error": e.message, "context": ctx.target()?.context}),
        },
        Err(e) => json!({"error": e.message}),
    };
    let p = &ctx.printer;
    let doc = json!({"client": {"version": client_version}, "server": server});
    if p.is_machine() {
        return p.print_doc(&doc);
    }
    p.line(&format!("client: kube-dc {client_version}"))?;
    let line = match (&server["version"], &server["error"]) {
        (Value::String(v), _) => format!("server: {v}"),
        (Value::Null, _) if server.get("version").is_some() => {
            "server: reachable, version not reported".to_string()
        }
        (_, Value::String(e)) => format!("server: not reachable ({e})"),
        _ => "server: unknown".to_string(),
    };
    p.line(&crate::output::sanitize(&line))
}
