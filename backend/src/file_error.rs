//! A file or folder that could not be made or read: what was being done,
//! which path, and the I/O error.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
/// A file or folder that could not be made, read or secured, with what
/// it was for.
pub struct FileError {
    /// What the file is (`master key`, `data directory`).
    pub what: &'static str,
    /// Where it is.
    pub path: PathBuf,
    #[source]
    /// What the system said.
    pub source: std::io::Error,
}

impl FileError {
    /// The error of `what` at `path`.
    pub fn new(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError {
            what,
            path: path.into(),
            source,
        }
    }
}
