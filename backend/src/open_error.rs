//! Why a backend could not open: typed, so that the CLI's embedded local
//! context can say what kind of failure it was and what to do about it.

use std::path::PathBuf;

use crate::crypto::KeyError;
use crate::file_error::FileError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
/// Why a backend could not open.
pub enum OpenError {
    /// A file or folder of the data directory could not be made or read.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The master key is not usable, or not safe to use.
    #[error(transparent)]
    MasterKey(#[from] KeyError),
    /// The store refused to open (another engine's directory, a broken
    /// audit log, a database error).
    #[error("the store in {}: {source}", path.display())]
    Store {
        /// The data directory.
        path: PathBuf,
        /// Why the store refused.
        #[source]
        source: StoreError,
    },
    /// The value engine (OpenBao) could not be set up or compared with the
    /// records.
    #[error("{0}")]
    Engine(String),
}

impl OpenError {
    /// A file error of `what` at `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OpenError::Io(FileError::new(what, path, source))
    }

    /// The file error under it, if it is one (its own or the master
    /// key's).
    pub fn file(&self) -> Option<&FileError> {
        match self {
            OpenError::Io(f) | OpenError::MasterKey(KeyError::Io(f)) => Some(f),
            _ => None,
        }
    }
}
