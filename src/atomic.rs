//! Files that are either complete or absent: written to a private
//! temporary file beside the target (mode 0600), synced, then renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};

/// Writes a file atomically: into a private temporary file beside it (mode
/// 0600), synced, then renamed over the name. Dropped before `finish`, the
/// temporary file is removed and the name is untouched.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".kube-dc-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| CliError::usage(format!("cannot write in {}: {e}", dir.display())))?;
        Ok(Self {
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn write_all(&mut self, b: &[u8]) -> Result<()> {
        self.tmp
            .write_all(b)
            .map_err(|e| CliError::other(format!("writing {}: {e}", self.path.display())))
    }

    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| CliError::other(format!("writing {}: {e}", path.display())))?;
        self.tmp.persist(&path).map_err(|e| {
            CliError::other(format!("cannot create {}: {}", path.display(), e.error))
        })?;
        Ok(())
    }
}

/// Creates a directory and its missing parents owner-only (0700), whatever
/// the umask.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CliError::other(format!("cannot create {}: {e}", dir.display())))
}

/// Writes `bytes` to `path` atomically, mode 0600, creating its folder.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.finish()
}
