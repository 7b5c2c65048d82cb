//! Files that are either complete or absent (mode 0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};

/// Writes a file atomically. On Linux the data goes to an unnamed file
/// (`O_TMPFILE`, mode 0600) in the target's folder, linked into place only
/// by `finish`: interrupted at any point — even by SIGKILL — nothing is left
/// behind, neither under the name nor as a stray temporary file. Elsewhere a
/// private named temporary file beside the target is renamed into place.
pub struct AtomicFile {
    file: std::fs::File,
    /// The named temporary file, where no unnamed one can be made.
    named: Option<tempfile::NamedTempFile>,
    dir: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let cannot =
            |e: std::io::Error| CliError::usage(format!("cannot write in {}: {e}", dir.display()));
        #[cfg(target_os = "linux")]
        if let Ok(file) = unnamed_in(dir) {
            return Ok(Self {
                file,
                named: None,
                dir: dir.to_path_buf(),
                path: path.to_path_buf(),
            });
        }
        let named = tempfile::Builder::new()
            .prefix(".kube-dc-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(cannot)?;
        Ok(Self {
            file: named.reopen().map_err(cannot)?,
            named: Some(named),
            dir: dir.to_path_buf(),
            path: path.to_path_buf(),
        })
    }

    pub fn write_all(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(|e| CliError::other(format!("writing {}: {e}", self.path.display())))
    }

    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let failed =
            |e: std::io::Error| CliError::other(format!("cannot create {}: {e}", path.display()));
        self.file
            .sync_all()
            .map_err(|e| CliError::other(format!("writing {}: {e}", path.display())))?;
        match self.named {
            Some(named) => named.persist(&path).map(drop).map_err(|e| failed(e.error)),
            None => link_into_place(&self.file, &self.dir, &path).map_err(failed),
        }
    }
}

/// An unnamed file in `dir`, mode 0600.
#[cfg(target_os = "linux")]
fn unnamed_in(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
}

/// Gives an unnamed file its name: linked under a fresh temporary name (the
/// target may exist; `linkat` never replaces), then renamed over it.
#[cfg(target_os = "linux")]
fn link_into_place(file: &std::fs::File, dir: &Path, path: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let fd_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let tmp = dir.join(format!(".kube-dc-{}.part", uuid::Uuid::new_v4().simple()));
    let tmp_c = CString::new(tmp.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            fd_path.as_ptr(),
            libc::AT_FDCWD,
            tmp_c.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(not(target_os = "linux"))]
fn link_into_place(_: &std::fs::File, _: &Path, _: &Path) -> std::io::Result<()> {
    unreachable!("unnamed files are made on Linux only")
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
