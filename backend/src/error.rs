use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kube_dc_api::event::{Fact, Facts};
use serde_json::{Value, json};

use crate::store::StoreError;

/// An API error: a status and a message safe to show and to audit (it never
/// contains a secret value).
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// What to do about it, if the message does not say.
    pub hint: Option<String>,
    /// Seconds after which the same request may succeed (a 503's
    /// `Retry-After`).
    pub retry_after: Option<u64>,
    /// The caller's role where it is known (a denial), for the audit event.
    pub role: Option<&'static str>,
    /// A conflict's machine-readable `reason`, and whether the change can
    /// succeed if made again from a fresh read (`retryable`).
    pub reason: Option<(&'static str, bool)>,
}

impl ApiError {
    /// An error of `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            hint: None,
            retry_after: None,
            role: None,
            reason: None,
        }
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    /// 403, with what the caller can do about it.
    pub fn forbidden(m: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            hint,
            ..Self::new(StatusCode::FORBIDDEN, m)
        }
    }
    /// 409.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    /// 413.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, m)
    }
    /// 500.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
}

/// The facts a handler adds to the audit event of its request.
#[derive(Clone, Debug, Default)]
pub struct AuditNote(pub Facts);

impl AuditNote {
    /// Adds `fact` (replacing one of its key).
    pub fn with(mut self, fact: Fact) -> Self {
        self.0.put(fact);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(h) = &self.hint {
            body["hint"] = Value::String(h.clone());
        }
        if let Some((reason, retryable)) = self.reason {
            body["reason"] = reason.into();
            body["retryable"] = retryable.into();
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        let mut note = AuditNote::default().with(Fact::Error(self.message));
        if let Some(r) = self.role {
            note = note.with(Fact::Role(r.into()));
        }
        resp.extensions_mut().insert(note);
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(c) => ApiError::from(c),
            StoreError::Unrecorded {
                path,
                found,
                recorded,
            } => ApiError::from(crate::store::Conflict::Unlisted {
                path,
                found,
                recorded,
            }),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Db(e) if e.is_contention() => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is busy; try again",
                )
            },
            StoreError::Db(e) => ApiError::internal(format!("storage error: {e}")),
            StoreError::Internal(m) => ApiError::internal(m),
            e @ StoreError::Stale => ApiError::conflict(e.to_string()),
            // Handlers that pass a key answer this themselves.
            e @ StoreError::Replayed(_) => ApiError::internal(e.to_string()),
            StoreError::Unavailable {
                message,
                retry_after,
            } => ApiError {
                hint: Some(if message.contains("the database cannot be reached") {
                    format!(
                        "the database did not answer; try again in {retry_after} s (a write \
                         retried with the same Idempotency-Key gets its first answer if it landed)"
                    )
                } else {
                    format!(
                        "the value engine (OpenBao) did not answer in time; try again in {retry_after} s"
                    )
                }),
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            },
        }
    }
}

/// A 409 with the conflict's message, hint, `reason` and `retryable`.
impl From<crate::store::Conflict> for ApiError {
    fn from(c: crate::store::Conflict) -> Self {
        ApiError {
            hint: Some(c.hint()),
            reason: Some((c.reason(), c.retryable())),
            ..ApiError::conflict(c.to_string())
        }
    }
}

/// Parses a JSON request body. Messages never echo a value from the body:
/// serde's "invalid type: string \"…\"" would, so those are reduced to the
/// position and what was expected.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let safe = if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
            let expected = msg
                .split_once(", expected ")
                .map(|(_, rest)| rest.split(" at line").next().unwrap_or(rest).to_string())
                .unwrap_or_else(|| "another type".into());
            format!(
                "wrong type at line {} column {}: expected {expected}",
                e.line(),
                e.column()
            )
        } else {
            msg
        };
        ApiError::bad_request(format!("malformed request body: {safe}"))
    })
}

/// Parses a query string strictly: unknown parameters are an error naming
/// the parameter.
pub fn parse_query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_dc_api::wire::PutValuesRequest;

    #[test]
    fn body_errors_do_not_echo_values() {
        let e = parse_json::<PutValuesRequest>(br#"{"data":{"K":123456789}}"#).unwrap_err();
        assert!(!e.message.contains("123456789"), "{}", e.message);
        assert!(e.message.contains("expected a string"), "{}", e.message);
        let e = parse_json::<PutValuesRequest>(br#"{"data":{},"cas":"s3cret"}"#).unwrap_err();
        assert!(!e.message.contains("s3cret"), "{}", e.message);
        let e = parse_json::<PutValuesRequest>(br#"{"data":{},"bogus":1}"#).unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
    }
}
