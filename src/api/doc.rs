//! A server answer as it came.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{CliError, ErrorKind, Result};

/// The server's answer as it came, every field kept (for `-o json|yaml`).
pub struct Doc {
    pub(super) body: Bytes,
    /// `METHOD path`, for errors.
    pub(super) request: String,
}

impl Doc {
    /// A document of `body`, as if answered to `request`.
    #[cfg(test)]
    pub fn of(request: &str, body: impl Into<Bytes>) -> Self {
        Doc {
            body: body.into(),
            request: request.into(),
        }
    }

    /// The answer as a JSON value (it parsed as JSON already).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The answer decoded straight from its bytes; `T` may borrow from it.
    pub fn typed<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T> {
        self.decoded(serde_json::from_slice(&self.body))
    }

    /// [`Doc::typed`] by a SIMD decoder (sonic-rs), which skips the fields
    /// `T` does not name several times faster: for long answers that hold
    /// no secret value (a list of 10,000 secrets is about 7 MB).
    pub fn typed_long<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T> {
        self.decoded(sonic_rs::from_slice(&self.body))
    }

    fn decoded<T>(&self, out: std::result::Result<T, impl std::fmt::Display>) -> Result<T> {
        out.map_err(|e| {
            let what = if serde_json::from_slice::<serde::de::IgnoredAny>(&self.body).is_ok() {
                "has an unexpected shape"
            } else {
                "is not JSON"
            };
            CliError::new(
                ErrorKind::Server,
                format!("{}: the server's answer {what}: {e}", self.request),
            )
        })
    }
}
