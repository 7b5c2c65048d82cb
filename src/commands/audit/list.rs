//! `kube-dc audit list`: the events as a table or a document, a CSV
//! export, or an incremental export with a cursor (`cursor.rs`).

use std::path::PathBuf;

use clap::Args;
use clap::builder::TypedValueParser as _;
use comfy_table::{Cell, Color};
use serde_json::Value;

use super::filter::Filters;
use super::time::{When, parse_when, ts_text};
use crate::api::query;
use crate::commands::Session;
use crate::error::{CliError, Result};
use crate::output::sanitize;
use crate::output::{OutputFormat, Printer, Sink};
use kube_dc_api::event::{Outcome, Shown};

/// List audit events: the project's by default, the organization's with --org.
///
/// Every read, write, sync change, import and destroy is an event; no event
/// ever contains a secret value.
#[derive(Args, Debug)]
#[command(after_help = list_help())]
pub struct ListArgs {
    /// Only this service (secrets, org-admin, audit, certificates, kms, db-credentials, …).
    #[arg(long, value_name = "SERVICE", add = clap_complete::ArgValueCompleter::new(crate::completion::services))]
    pub service: Option<String>,
    /// Only events whose actor (username, email or subject) contains this.
    #[arg(long, value_name = "TEXT")]
    pub actor: Option<String>,
    /// Only this result (any case).
    #[arg(long, ignore_case = true, value_parser = clap::builder::PossibleValuesParser::new(["allowed", "denied", "error"]).map(|s| s.to_lowercase()))]
    pub result: Option<String>,
    /// Only the events of this request (the id every error message prints).
    /// Filtered by kube-dc among the events the server returns.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Only this action (e.g. secrets.value.read; see the list below).
    /// Filtered by kube-dc among the events the server returns.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only events about this resource (a secret's name, or the project or
    /// organization). Filtered by kube-dc among the events the server returns.
    #[arg(long, value_name = "NAME")]
    pub resource: Option<String>,
    /// Events at or after this time (30m, 1h, 7d, 2w, a date 2026-05-01, RFC 3339, epoch seconds).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Events at or before this time (same forms as --since).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// At most this many events (server default 500, maximum 5000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=kube_dc_api::AUDIT_MAX_LIMIT as i64))]
    pub limit: Option<u32>,
    /// Organization-wide (organization admins).
    #[arg(long)]
    pub org: bool,
    /// The organization (default: the context's, or KUBE_DC_ORG).
    #[arg(long, value_name = "NAME")]
    pub org_name: Option<String>,
    /// Export the organization's events as CSV, streamed (organization admins).
    #[arg(long)]
    pub csv: bool,
    /// Write to this file instead of stdout: atomically, mode 0600, never a truncated file.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// With --csv: export exactly the events after the last one the cursor
    /// FILE records (everything, or from --since, when FILE does not exist
    /// yet), then record the new last event there. On kube-dc's backend
    /// (its `after` extension): no event twice, none skipped, even while
    /// events arrive. Elsewhere: from the cursor's last time (inclusive),
    /// dropping the rows at that time the previous export held by request
    /// id — exact as long as the installation's times order its events and
    /// each has a request id.
    /// With --follow: continue after the last event the cursor FILE
    /// records (the same file works for both), and record each new one.
    #[arg(long, value_name = "FILE")]
    pub cursor: Option<PathBuf>,
    /// With --cursor: the cursor was written for this organization at
    /// another address of the same installation (`localhost` for
    /// `127.0.0.1`, a new host name after a move): continue from it here,
    /// and record the new address. Needed only for an installation without
    /// kube-dc's `after` extension; on kube-dc's backend the server itself
    /// checks that it holds the cursor's last event, so a new address is
    /// taken without it.
    #[arg(long, requires = "cursor")]
    pub cursor_rebind: bool,
    /// Keep printing events as they are appended, until Ctrl-C (kube-dc's
    /// live feed; elsewhere the query polled every --poll). From now, or
    /// --since, or --cursor. With --output-file the lines are appended.
    #[arg(short = 'f', long, conflicts_with_all = ["csv", "until", "limit"])]
    pub follow: bool,
    /// With --follow on an installation without the live feed: seconds
    /// between two queries.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, requires = "follow",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub poll: u64,
}

/// Examples, then every audit action with what it records — from the
/// endpoint table, so the list cannot drift from what the backend writes.
fn list_help() -> String {
    let mut h = String::from(
        "\
Examples:
  # All secret events in this project in the last hour:
  kube-dc audit list --service secrets --since 1h

  # Org-wide view (org-admin only):
  kube-dc audit list --org --service secrets

  # CSV export for compliance review:
  kube-dc audit list --csv --output-file incident-2026-05-12.csv

  # Nightly: exactly the events since the last run, then check the chain:
  kube-dc audit list --csv --cursor audit.cursor --output-file audit-$(date +%F).csv
  kube-dc audit verify audit-2026-05-11.csv audit-2026-05-12.csv

  # A live feed for a SIEM or log shipper, resumable (Ctrl-C, restart):
  kube-dc audit list --org --follow -o ocsf --cursor feed.cursor >> audit.ocsf.jsonl

  # Denied requests by one person since a date, as JSON:
  kube-dc audit list --actor alice --result denied --since 2026-05-01T00:00:00Z -o json

Actions (service.object.verb; RESOURCE is the secret's name, or the
namespace, organization or project the request is about):
",
    );
    for (action, what) in kube_dc_api::endpoints::actions() {
        h.push_str(&format!("  {action:<28} {what}\n"));
    }
    h.push_str(
        "\nTimes: a duration back from now (30m, 1h, 7d, 2w), a date (2026-05-01, midnight
UTC), RFC 3339, or epoch seconds; shown in UTC with milliseconds.

Filters: --service, --actor, --result, --since, --until and --limit are the
server's (production has them). --request-id, --action and --resource are
applied by kube-dc to the events the server returns (the newest --limit,
default 500): raise --limit (up to 5000) or narrow --since to look further
back. They are refused with --csv, whose export is streamed as it is.

-o wide adds the REQUEST ID column; -o jsonl prints one event per line
(ts and body, oldest first), for log shippers; -o ocsf one OCSF 1.3.0 API
Activity event (class 6003) per line, for SIEMs (mapping in the README).
Role: project events: any project member; --org and --csv: organization admin.",
    );
    h
}

/// The server's time filters, refused when they cannot both hold.
fn time_bounds(a: &ListArgs) -> Result<(Option<When>, Option<When>)> {
    let since = a
        .since
        .as_deref()
        .map(|v| parse_when("--since", v))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| parse_when("--until", v))
        .transpose()?;
    if let (Some(s), Some(u)) = (&since, &until)
        && s.secs > u.secs
    {
        return Err(CliError::usage(format!(
            "--since {} is after --until {}: no event can match",
            a.since.as_deref().unwrap_or_default(),
            a.until.as_deref().unwrap_or_default()
        )));
    }
    Ok((since, until))
}

/// The filters asked for.
fn filters(a: &ListArgs) -> Filters<'_> {
    Filters {
        service: a.service.as_deref(),
        actor: a.actor.as_deref(),
        result: a.result.as_deref(),
        request_id: a.request_id.as_deref(),
        action: a.action.as_deref(),
        resource: a.resource.as_deref(),
    }
}

/// Whether an event passes the filters kube-dc applies itself.
fn keep(a: &ListArgs, body: &serde_json::Map<String, Value>) -> bool {
    filters(a).local(body)
}

pub(super) async fn run(ctx: &Session, a: ListArgs) -> Result<()> {
    check_flags(ctx, &a)?;
    let (since, until) = time_bounds(&a)?;
    let q = query(&[
        ("service", a.service.clone()),
        ("actor", a.actor.clone()),
        ("result", a.result.clone()),
        ("since", since.as_ref().map(|s| s.wire.clone())),
        ("until", until.map(|s| s.wire)),
        ("limit", a.limit.map(|l| l.to_string())),
    ]);
    let target = ctx.target()?;
    let env_org = crate::config::env_org();
    let org = target.org(a.org_name.as_deref().or(env_org.as_deref()))?;
    let project = if a.org || a.csv {
        None
    } else {
        Some(target.project_in(&org)?)
    };
    let client = ctx.client().await?;
    if a.follow {
        let job = super::follow::Follow {
            ctx,
            client: &client,
            org: &org,
            server: target.server_label(),
            project: project.as_deref(),
            filters: filters(&a),
            cursor: a.cursor.as_deref(),
            rebind: a.cursor_rebind,
            output_file: a.output_file.as_deref(),
            since: since.map(|s| s.wire),
            poll: std::time::Duration::from_secs(a.poll),
        };
        return super::follow::follow(job).await;
    }
    if let Some(cursor) = &a.cursor {
        check_cursor_flags(&a)?;
        let job = super::cursor::Export {
            ctx,
            client: &client,
            org: &org,
            base: &q,
            cursor_path: cursor,
            file: a.output_file.as_deref(),
            rebind: a.cursor_rebind,
        };
        return super::cursor::export(job, a.since.is_some()).await;
    }
    if a.csv {
        return super::export::export_csv(ctx, &client, &org, &q, a.output_file.as_deref()).await;
    }
    let (mut resp, raw) = client.audit(&org, project.as_deref(), &q).await?;
    resp.events.retain(|e| keep(&a, &e.body));
    let p = &ctx.printer;
    let out = match p.format() {
        OutputFormat::Jsonl | OutputFormat::Ocsf => jsonl(&a, &raw.value(), p.format())?,
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::JsonPath => {
            p.render_doc(&document(&a, raw.value(), resp.events.len()))?
        }
        OutputFormat::Csv => csv_rows(&resp.events)?,
        _ if a.output_file.is_some() => {
            return Err(CliError::usage(
                "--output-file needs a file format: -o json, -o jsonl, -o yaml, -o csv, or --csv",
            ));
        }
        _ => return print_table(p, &resp.events),
    };
    Sink::of(a.output_file.as_deref()).write(&out)?;
    if let Some(path) = &a.output_file {
        crate::output::note(&format!(
            "wrote {} events to {}",
            resp.events.len(),
            path.display()
        ));
    }
    Ok(())
}

/// Refuses flags that cannot work together before any request; says when
/// a project does not narrow an organization-wide listing.
fn check_flags(ctx: &Session, a: &ListArgs) -> Result<()> {
    use OutputFormat::{Csv, Json, Jsonl, Ocsf, Table, Wide, Yaml};
    let p = &ctx.printer;
    let target = ctx.target()?;
    // The CSV export and --org are organization-wide: a project typed
    // with them is said not to narrow them; one from the environment is a
    // default that does not apply here.
    if a.csv {
        target.project_scope_ignored(
            "audit list --csv",
            "exports the whole organization's events (use `-o csv` without --csv for one project's)",
        );
    } else if a.org {
        target.project_scope_ignored(
            "audit list --org",
            "lists the whole organization's events (leave out --org for one project's)",
        );
    }
    if a.csv && p.explicit() && !matches!(p.format(), Table | Csv) {
        return Err(CliError::usage("--csv exports CSV; leave out -o"));
    }
    if a.follow {
        p.require(&[Table, Wide, Json, Jsonl, Ocsf], "audit list --follow")?;
    } else {
        p.require(&[Table, Wide, Json, Jsonl, Ocsf, Yaml, Csv], "audit list")?;
    }
    if a.cursor.is_some() && !(a.csv || a.follow) {
        return Err(CliError::usage(
            "--cursor needs --csv (an incremental export) or --follow (a resumable feed)",
        ));
    }
    if a.csv
        && let Some(flag) = [
            ("--request-id", &a.request_id),
            ("--action", &a.action),
            ("--resource", &a.resource),
        ]
        .iter()
        .find_map(|(f, v)| v.is_some().then_some(*f))
    {
        return Err(CliError::usage(format!(
            "{flag} is applied by kube-dc, not by the server, so it cannot filter the streamed --csv export"
        ))
        .hint("use `-o csv` (without --csv) for filtered events, or filter the exported file"));
    }
    Ok(())
}

/// An incremental export holds every event: no filter combines with it.
fn check_cursor_flags(a: &ListArgs) -> Result<()> {
    let Some(flag) = [
        ("--service", a.service.is_some()),
        ("--actor", a.actor.is_some()),
        ("--result", a.result.is_some()),
        ("--until", a.until.is_some()),
        ("--limit", a.limit.is_some()),
    ]
    .iter()
    .find_map(|(f, on)| on.then_some(*f)) else {
        return Ok(());
    };
    Err(CliError::usage(format!(
        "{flag} cannot be combined with --cursor: an incremental export holds every event, \
         so that consecutive files continue one hash chain"
    ))
    .hint("filter the exported files instead"))
}

/// `-o jsonl`: each event as the server sent it (`ts`, `body` with every
/// field, known or not), oldest first as a log is read.
fn jsonl(a: &ListArgs, raw: &Value, format: OutputFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let events = raw.get("events").and_then(Value::as_array);
    for e in events.into_iter().flatten().rev() {
        let kept = e
            .get("body")
            .and_then(Value::as_object)
            .is_some_and(|b| keep(a, b));
        if !kept {
            continue;
        }
        let line = match (format, e.get("ts").and_then(Value::as_str), e.get("body")) {
            (OutputFormat::Ocsf, Some(ts), Some(Value::Object(body))) => {
                super::ocsf::event(ts, body)
            }
            _ => e.clone(),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| CliError::other(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// `-o json|yaml|jsonpath`: the raw answer, so fields this client does
/// not know are kept; the events kube-dc's own filters drop are taken out
/// and `returned` says how many are left.
fn document(a: &ListArgs, mut v: Value, kept: usize) -> Value {
    let local_filters = a.request_id.is_some() || a.action.is_some() || a.resource.is_some();
    if local_filters {
        if let Some(Value::Array(events)) = v.get_mut("events") {
            events.retain(|e| {
                e.get("body")
                    .and_then(Value::as_object)
                    .is_some_and(|b| keep(a, b))
            });
        }
        v["returned"] = kept.into();
    }
    v
}

/// `-o csv`: the export's columns, one row per event.
fn csv_rows(events: &[kube_dc_api::wire::ListedEvent]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = csv::Writer::from_writer(&mut out);
    let cols = kube_dc_api::AUDIT_CSV_COLUMNS;
    w.write_record(cols)?;
    for e in events {
        let row: Vec<String> = cols
            .iter()
            .map(|&c| match c {
                "ts" => ts_text(e),
                "event" => hashed_event(&e.body),
                c => kube_dc_api::audit::csv_cell(&cell(&e.body, c)).into_owned(),
            })
            .collect();
        w.write_record(&row)?;
    }
    w.flush()?;
    drop(w);
    Ok(out)
}

/// The table (`-o wide` adds the request id); the result coloured.
fn print_table(p: &Printer, events: &[kube_dc_api::wire::ListedEvent]) -> Result<()> {
    if events.is_empty() {
        crate::output::note("no events match");
        return Ok(());
    }
    let wide = p.format() == OutputFormat::Wide;
    let mut head = vec![
        "TIME",
        "SERVICE",
        "ACTION",
        "RESULT",
        "ACTOR",
        "RESOURCE",
        "ELEVATION",
    ];
    if wide {
        head.push("REQUEST ID");
    }
    let mut t = p.table(&head);
    for e in events {
        let shown = Shown::of(&e.body);
        let color = match shown.outcome() {
            Some(Outcome::Allowed) => Color::Green,
            Some(Outcome::Denied) => Color::Red,
            _ => Color::Yellow,
        };
        let mut row = vec![
            Cell::new(sanitize(&ts_text(e))),
            Cell::new(sanitize(&shown.service)),
            Cell::new(sanitize(&shown.action)),
            p.colored(&sanitize(&shown.result), color),
            Cell::new(sanitize(&shown.actor)),
            Cell::new(sanitize(&shown.resource)),
            Cell::new(sanitize(&shown.elevation_id)),
        ];
        if wide {
            row.push(Cell::new(sanitize(&shown.request_id)));
        }
        t.add_row(row);
    }
    p.print_table(&t)
}

fn cell(body: &serde_json::Map<String, Value>, k: &str) -> String {
    kube_dc_api::audit::field_text(body, k)
}

/// The event as the backend hashed it: the listed event without the chain
/// fields the listing adds (field order is canonical, so it re-serialises
/// to the same text).
fn hashed_event(body: &serde_json::Map<String, Value>) -> String {
    let mut b = body.clone();
    for k in ["seq", "prev_hash", "hash"] {
        b.remove(k);
    }
    serde_json::to_string(&b).unwrap_or_default()
}
