//! Errors and the exit codes a script can branch on.

use std::fmt;

/// What went wrong, as far as a script needs to know. Each kind has its own
/// exit code (see [`ErrorKind::exit_code`] and the README's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Stdout was closed by the reader (`| head`): exit 0, silently.
    BrokenPipe,
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
    /// `audit verify`: the file was altered (rows that do not match their
    /// hashes, or rows missing from the chain).
    Tampered,
    /// `secrets run`: the command does not exist (127, as a shell says).
    NoSuchCommand,
    /// `secrets run`: the command exists but cannot be run (126).
    CannotExecute,
    /// Ended by signal N (SIGINT, SIGTERM, SIGHUP) after cleaning up:
    /// 128+N, as a shell reports a process the signal killed.
    Signalled(i32),
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
            ErrorKind::Tampered => 10,
            ErrorKind::NoSuchCommand => 127,
            ErrorKind::CannotExecute => 126,
            ErrorKind::Signalled(n) => 128 + n,
            // The reader went away (`kube-dc … | head`): not a failure.
            ErrorKind::BrokenPipe => 0,
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
    /// A conflict the server says can succeed if the change is made again
    /// from a fresh read (its body's `retryable`, an extension of
    /// kube-dc's backend); false when it does not say so.
    pub retryable: bool,
    /// What caused it, kept for `source()` chains.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
            retryable: false,
            source: None,
        }
    }
    /// Keeps `cause` as this error's source.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(cause));
        self
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
    /// The same error, its message led by what was being done (`reading
    /// secret db in acme-shop: …`).
    pub fn context(mut self, doing: &str) -> Self {
        self.message = format!("{doing}: {}", self.message);
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

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Writing to stdout failed: a closed pipe (`kube-dc … | head`) ends the
/// command quietly with success, anything else is an error.
/// A CSV writer's error: an I/O error as such (a closed pipe stays a
/// closed pipe), anything else named.
impl From<csv::Error> for CliError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => io.into(),
            other => CliError::other(format!("CSV: {other:?}")),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::new(ErrorKind::BrokenPipe, "the output was closed").with_source(e);
        }
        // The files kube-dc reads and writes name themselves where they
        // fail; what reaches here is the output (stdout, stderr).
        CliError::other(format!("writing the output: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_source_and_a_closed_pipe_is_its_own_kind() {
        let e = CliError::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe"));
        assert_eq!((e.kind, e.kind.exit_code()), (ErrorKind::BrokenPipe, 0));
        let e = CliError::from(std::io::Error::other("disk on fire"));
        assert_eq!(e.kind, ErrorKind::Other);
        let cause = std::error::Error::source(&e).expect("source kept");
        assert_eq!(cause.to_string(), "disk on fire");
    }
}
