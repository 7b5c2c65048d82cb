//! A file or folder that could not be made or read: what was being done,
//! which path, and the I/O error.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct FileError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    pub fn new(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError {
            what,
            path: path.into(),
            source,
        }
    }
}
