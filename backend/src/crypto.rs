//! Encryption at rest: AES-256-GCM under a per-install master key.
//!
//! Each stored version is sealed with a fresh random 96-bit nonce; the
//! namespace, name and version are bound in as associated data, so a
//! ciphertext copied to another row does not decrypt.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::file_error::FileError;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

/// The variable that may hold the master key (base64) instead of its
/// file.
pub const MASTER_KEY_ENV: &str = "KUBE_DC_BACKEND_MASTER_KEY";
/// The master key's file in the data directory (owner-only).
pub const MASTER_KEY_FILE: &str = "master.key";

/// Why the master key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Its file could not be made or read.
    #[error(transparent)]
    Io(#[from] FileError),
    /// It is not 32 bytes of base64, or others can read it.
    #[error("{0}")]
    Unusable(String),
}

/// AES-256-GCM under the data directory's master key.
pub struct Cipher {
    aead: Aes256Gcm,
}

impl Cipher {
    /// A cipher for a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// Loads the master key: from `KUBE_DC_BACKEND_MASTER_KEY` (base64 of 32
    /// bytes) when set, else from `DIR/master.key`, creating that file
    /// (mode 0600) on first use. Creation is race-free across processes: the
    /// key is written to a private temporary file and hard-linked into place,
    /// which fails if another process got there first; then everyone reads
    /// the one file that won.
    pub fn load_or_create(dir: &Path, env_key: Option<&str>) -> Result<Self, KeyError> {
        if let Some(text) = env_key {
            let key = decode_key(text.trim())
                .map_err(|e| KeyError::Unusable(format!("{MASTER_KEY_ENV} is not usable: {e}")))?;
            return Ok(Self::new(&key));
        }
        let path = dir.join(MASTER_KEY_FILE);
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::fill(&mut key[..]);
            let text = Zeroizing::new(B64.encode(&key[..]));
            create_private_once(&path, text.as_bytes())?;
        }
        refuse_shared_key_file(&path)?;
        let text = Zeroizing::new(
            fs::read_to_string(&path)
                .map_err(|e| FileError::new("cannot read master key", &path, e))?,
        );
        let key = decode_key(text.trim()).map_err(|e| {
            KeyError::Unusable(format!("master key {} is not usable: {e}", path.display()))
        })?;
        Ok(Self::new(&key))
    }

    /// Loads the master key from `file` (base64 of 32 bytes, owner-only),
    /// which the operator made (`head -c 32 /dev/urandom | base64`) and
    /// gives every replica on one database.
    pub fn load_file(file: &Path) -> Result<Self, KeyError> {
        refuse_shared_key_file(file)?;
        let text = Zeroizing::new(
            fs::read_to_string(file)
                .map_err(|e| FileError::new("cannot read master key", file, e))?,
        );
        let key = decode_key(text.trim()).map_err(|e| {
            KeyError::Unusable(format!("master key {} is not usable: {e}", file.display()))
        })?;
        Ok(Self::new(&key))
    }

    /// Seals `plaintext` bound to `aad`: (nonce, ciphertext), a fresh random
    /// nonce each time.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> (Vec<u8>, Vec<u8>) {
        // A fresh random 96-bit nonce per version, from the OS-seeded CSPRNG.
        let mut bytes = [0u8; 12];
        rand::fill(&mut bytes);
        let nonce = Nonce::from(bytes);
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        (nonce.to_vec(), ct)
    }

    /// Opens what [`Cipher::seal`] sealed with the same `aad`; an error when
    /// it was altered or sealed for another place.
    pub fn open(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        let nonce =
            Nonce::try_from(nonce).map_err(|_| "stored nonce has the wrong length".to_string())?;
        self.aead
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                "stored value does not decrypt: wrong master key, or the data was altered".into()
            })
    }
}

/// A master key that others can read is no secret: refuse to use it.
fn refuse_shared_key_file(path: &Path) -> Result<(), KeyError> {
    refuse_shared("master key", path)
}

/// Refuses a key file (`what`) others may read.
pub(crate) fn refuse_shared(what: &str, path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| FileError::new("cannot read key file", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Unusable(format!(
            "{what} {} is readable by other users (mode {:o}); restrict it with \
             `chmod 600 {}` and start again (and consider the key exposed)",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// Creates `path` (mode 0600) holding `bytes`, unless it exists. Race-free
/// across processes: written to a private temporary file beside it and
/// hard-linked into place, which fails if another process got there
/// first; everyone then reads the one file that won.
pub(crate) fn create_private_once(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| FileError::new("cannot create", &tmp, e))?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    let linked = written
        .map_err(|e| FileError::new("cannot write", &tmp, e))
        .and_then(|()| {
            fs::hard_link(&tmp, path).map_err(|e| FileError::new("cannot create", path, e))
        });
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.source.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn decode_key(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let bytes = Zeroizing::new(
        B64.decode(text)
            .map_err(|_| "expected base64 of 32 bytes".to_string())?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(format!("expected 32 bytes, found {}", bytes.len()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        let c = Cipher::new(&[7u8; 32]);
        let (n, ct) = c.seal(b"pa$$word", b"ns\x00a\x001");
        assert!(!ct.windows(8).any(|w| w == b"pa$$word"));
        assert_eq!(c.open(&n, &ct, b"ns\x00a\x001").unwrap(), b"pa$$word");
        assert!(c.open(&n, &ct, b"ns\x00a\x002").is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = Cipher::load_or_create(dir.path(), None).unwrap();
        let b = Cipher::load_or_create(dir.path(), None).unwrap();
        let (n, ct) = a.seal(b"x", b"");
        assert_eq!(b.open(&n, &ct, b"").unwrap(), b"x");
        let mode = fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
