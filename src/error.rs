//! Errors and the exit codes a script can branch on.

use std::fmt;

/// What went wrong, as far as a script needs to know. Each kind has its own
/// exit code (see [`ErrorKind::exit_code`] and the README's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything not covered below.
    Other,
    /// Bad command line or bad input (also HTTP 400 and 413).
    Usage,
    /// HTTP 404.
    NotFound,
    /// HTTP 403.
    PermissionDenied,
    /// HTTP 401, or no credentials at all.
    AuthRequired,
    /// HTTP 409.
    Conflict,
    /// Could not reach the backend, or it did not answer in time.
    Network,
    /// HTTP 5xx.
    Server,
    /// The installation lacks a route this command needs.
    NotSupported,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::PermissionDenied => 4,
            ErrorKind::AuthRequired => 5,
            ErrorKind::Conflict => 6,
            ErrorKind::Network => 7,
            ErrorKind::Server => 8,
            ErrorKind::NotSupported => 9,
        }
    }

    pub fn from_status(status: u16) -> Self {
        match status {
            400 | 413 | 422 => ErrorKind::Usage,
            401 => ErrorKind::AuthRequired,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Other,
        }
    }
}

#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
    pub hints: Vec<String>,
    pub status: Option<u16>,
    pub request_id: Option<String>,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hints: Vec::new(),
            status: None,
            request_id: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.status, &self.request_id) {
            (Some(s), Some(id)) => write!(f, " (HTTP {s}, request id {id})"),
            (Some(s), None) => write!(f, " (HTTP {s})"),
            (None, Some(id)) => write!(f, " (request id {id})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for CliError {}

/// Writing to stdout failed: a closed pipe (`kube-dc … | head`) ends the
/// command quietly with success, anything else is an error.
impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::new(ErrorKind::Other, BROKEN_PIPE);
        }
        CliError::other(format!("I/O error: {e}"))
    }
}

pub const BROKEN_PIPE: &str = "\0broken pipe";

impl CliError {
    pub fn is_broken_pipe(&self) -> bool {
        self.message == BROKEN_PIPE
    }
}
