//! Audit queries (organization and project) and chain verification.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::support::{ApiResult, Authorized, Shared};
use crate::clock::rfc3339;
use crate::error::{ApiError, parse_query};
use crate::store::AuditFilter;
use kube_dc_api::{AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    service: Option<String>,
    actor: Option<String>,
    result: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    /// Extension: only events after the event with this hash (exclusive),
    /// for exact incremental exports: the `hash` of the last event a
    /// previous export held.
    after: Option<String>,
}

impl AuditQuery {
    /// The `after` hash, taken out (resolved separately).
    pub(crate) fn take_after(&mut self) -> Result<Option<String>, ApiError> {
        match self.after.take() {
            None => Ok(None),
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(h)),
            Some(h) => Err(ApiError::bad_request(format!(
                "after: {h:?} is not an event's hash (64 hex digits, the `hash` of the last event exported)"
            ))),
        }
    }
}

/// The sequence number of the event of `org` whose hash is `hash`, for
/// `after=`; 400 when there is none.
pub(crate) async fn resolve_after(b: &Shared, org: &str, hash: String) -> Result<i64, ApiError> {
    let (o, h) = (org.to_string(), hash.clone());
    b.db()
        .call(move |s| s.audit_seq_of(&o, &h))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "after: organization {org:?} has no event with hash {hash}; a cursor from another \
                 organization or installation?"
            ))
        })
}

pub fn parse_time_param(name: &str, v: &str) -> Result<i64, ApiError> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        let secs: i64 = v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name}: {v:?} is out of range")))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: {v:?} is out of range")));
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: {v:?} is neither epoch seconds nor an RFC 3339 time (e.g. 2026-05-12T08:00:00Z)"
            ))
        })
}

pub(crate) fn audit_filter(
    org: &str,
    project: Option<String>,
    q: AuditQuery,
    csv: bool,
) -> Result<(AuditFilter, Value), ApiError> {
    if let Some(r) = &q.result
        && !matches!(r.as_str(), "allowed" | "denied" | "error")
    {
        return Err(ApiError::bad_request(format!(
            "result: {r:?} is not one of allowed, denied, error"
        )));
    }
    let limit = match &q.limit {
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: {l:?} must be a whole number from 1 to {AUDIT_MAX_LIMIT}"
                    ))
                })?,
        ),
        None if csv => None,
        None => Some(AUDIT_DEFAULT_LIMIT),
    };
    let since_ms = q
        .since
        .as_deref()
        .map(|v| parse_time_param("since", v))
        .transpose()?;
    let until_ms = q
        .until
        .as_deref()
        .map(|v| parse_time_param("until", v))
        .transpose()?;
    // Resolved to a sequence number by the caller (`resolve_after`).
    let after_seq = None;
    let echo = json!({
        "org": org, "project": project, "service": q.service, "actor": q.actor,
        "result": q.result, "since": q.since, "until": q.until, "limit": limit,
    });
    Ok((
        AuditFilter {
            org: org.to_string(),
            project,
            service: q.service,
            actor: q.actor.filter(|a| !a.is_empty()),
            result: q.result,
            since_ms,
            until_ms,
            limit,
            after_seq,
        },
        echo,
    ))
}

async fn audit_query(b: Shared, f: AuditFilter, echo: Value) -> ApiResult {
    let limit = f.limit.unwrap_or(AUDIT_DEFAULT_LIMIT);
    let rows = b.db().query_audit(f).await?;
    // `{"events": [{"ts", "body"}…], "query", "returned", "limit"}`, each
    // body spliced from the stored event rather than parsed and re-encoded.
    let mut out = Vec::with_capacity(64 + rows.iter().map(|r| r.text.len() + 200).sum::<usize>());
    out.extend_from_slice(b"{\"events\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ts\":");
        serde_json::to_writer(&mut out, &rfc3339(r.ts)).expect("JSON to memory");
        out.extend_from_slice(b",\"body\":");
        r.write_body_json(&mut out)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"query\":");
    serde_json::to_writer(&mut out, &echo).expect("JSON to memory");
    out.extend_from_slice(format!(",\"returned\":{},\"limit\":{limit}}}", rows.len()).as_bytes());
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

pub(crate) async fn audit_org(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let mut q: AuditQuery = parse_query(q.as_deref())?;
    let after = q.take_after()?;
    let (mut f, echo) = audit_filter(&org, None, q, false)?;
    if let Some(h) = after {
        f.after_seq = Some(resolve_after(&b, &org, h).await?);
    }
    audit_query(b, f, echo).await
}

pub(crate) async fn audit_project(
    State(b): State<Shared>,
    _checked: Authorized,
    Path((org, project)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let mut q: AuditQuery = parse_query(q.as_deref())?;
    let after = q.take_after()?;
    let (mut f, echo) = audit_filter(&org, Some(project), q, false)?;
    if let Some(h) = after {
        f.after_seq = Some(resolve_after(&b, &org, h).await?);
    }
    audit_query(b, f, echo).await
}

pub(crate) async fn audit_verify(
    State(b): State<Shared>,
    _checked: Authorized,
    Path(org): Path<String>,
) -> ApiResult {
    let res = b.db().verify_audit(org).await?;
    Ok(Json(match res {
        Ok(n) => json!({"ok": true, "events": n}),
        Err((seq, why)) => {
            json!({"ok": false, "brokenAt": seq, "error": format!("event {seq}: {why}")})
        }
    })
    .into_response())
}
