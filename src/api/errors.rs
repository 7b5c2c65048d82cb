//! What a non-2xx answer means to the user: an error naming the status and
//! request id, with the API's message (or a proxy page's, sanitised).

use http::{Method, StatusCode};
use serde_json::Value;

use crate::error::{CliError, ErrorKind};

/// Turns a non-2xx answer into an error naming the status and request id.
/// The body is JSON `{"error": …}` from the API, or anything at all from a
/// proxy in between.
pub(super) fn api_error(
    status: u16,
    request_id: Option<String>,
    ctype: &str,
    body: &[u8],
    extension: bool,
    method: &Method,
    path: &str,
) -> CliError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let api_message = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(crate::output::sanitize);
    let hint = json
        .as_ref()
        .and_then(|v| v.get("hint"))
        .and_then(Value::as_str)
        .map(crate::output::sanitize);
    if extension && (status == 405 || (status == 404 && api_message.is_none())) {
        let route = path.split('?').next().unwrap_or(path);
        let mut e = CliError::new(
            ErrorKind::NotSupported,
            format!(
                "{method} {route} is not supported by this installation (it is an extension of kube-dc's own backend)"
            ),
        );
        e.status = Some(status);
        e.request_id = request_id;
        return e;
    }
    let message = api_message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error");
        if first.is_empty() || ctype.starts_with("text/html") {
            format!("the server answered {status} {reason}")
        } else {
            let mut short: String = crate::output::sanitize(first).chars().take(200).collect();
            if first.chars().count() > 200 {
                short.push('…');
            }
            format!("the server answered {status} {reason}: {short}")
        }
    });
    let mut e = CliError::new(ErrorKind::from_status(status), message);
    e.status = Some(status);
    e.request_id = request_id;
    e.retryable = status == 409
        && json
            .as_ref()
            .and_then(|v| v.get("retryable"))
            .and_then(Value::as_bool)
            == Some(true);
    // A 401 the server explains (a token for another audience) is not
    // mended by logging in again: only an unexplained one hints at login.
    let explained = hint.is_some();
    if let Some(h) = hint {
        e = e.hint(h);
    }
    if status == 401 && !explained {
        e = e.hint(
            "log in with `kube-dc login --domain DOMAIN --org ORG`, or set KUBE_DC_TOKEN for CI",
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_from_proxies_and_missing_extensions() {
        let e = api_error(
            502,
            None,
            "text/html",
            b"<html>Bad gateway</html>",
            false,
            &Method::GET,
            "/api/x",
        );
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.message, "the server answered 502 Bad Gateway");
        let e = api_error(
            404,
            Some("r1".into()),
            "text/plain",
            b"404 page not found\n",
            true,
            &Method::GET,
            "/api/secrets/ns/x/versions",
        );
        assert_eq!(e.kind, ErrorKind::NotSupported);
        let e = api_error(
            404,
            None,
            "application/json",
            br#"{"error":"secret \"x\" not found"}"#,
            true,
            &Method::GET,
            "/p",
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "secret \"x\" not found");
        let e = api_error(
            403,
            None,
            "application/json",
            b"{\"error\":\"no\\u001b[31m\",\"hint\":\"kube-dc orgs elevate p\"}",
            false,
            &Method::GET,
            "/p",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(!e.message.contains('\u{1b}'));
        assert_eq!(e.hints, ["kube-dc orgs elevate p"]);
    }
}
