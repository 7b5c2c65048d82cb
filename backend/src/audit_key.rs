//! The backend's audit signing key (Ed25519, `ed25519-dalek`): made at
//! first start in the data directory (`audit-signing-key.pem`, PKCS#8,
//! mode 0600) or supplied by the operator (`--audit-key-file`, what
//! `openssl genpkey -algorithm ed25519` writes). It signs the checkpoints
//! of the organizations' chains; its public half is published.
//!
//! Rotation (`kube-dc-backend audit-key --rotate`): the current key's
//! public half is added to `audit-keys-retired.json` (published beside the
//! new key, so checkpoints it signed still verify) and a new key replaces
//! it. The secret half of a retired key is not kept.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::crypto::{KeyError, create_private_once, refuse_shared};
use crate::file_error::FileError;
use kube_dc_api::checkpoint::{KeyDoc, PublicKey};

/// The key file in a data directory.
pub const KEY_FILE: &str = "audit-signing-key.pem";
/// The retired keys' public halves in a data directory.
pub const RETIRED_FILE: &str = "audit-keys-retired.json";

/// The signing key, its public half and the retired keys.
pub struct AuditKey {
    key: SigningKey,
    public: PublicKey,
    retired: Vec<KeyDoc>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("key_id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// The key of `supplied` (a PKCS#8 PEM file the operator keeps), else
    /// the data directory's, made now if it has none.
    pub fn load_or_create(data_dir: &Path, supplied: Option<&Path>) -> Result<Self, KeyError> {
        let path = match supplied {
            Some(p) => p.to_path_buf(),
            None => {
                let p = data_dir.join(KEY_FILE);
                if !p.exists() {
                    create_private_once(&p, new_key_pem()?.as_bytes())?;
                }
                p
            }
        };
        refuse_shared("audit signing key", &path)?;
        let pem = zeroize::Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|e| FileError::new("cannot read audit signing key", &path, e))?,
        );
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            KeyError::Unusable(format!(
                "audit signing key {} is not an Ed25519 PKCS#8 PEM private key ({e}); make one with \
                 `openssl genpkey -algorithm ed25519 -out FILE`",
                path.display()
            ))
        })?;
        let public =
            PublicKey::from_raw(key.verifying_key().as_bytes()).map_err(KeyError::Unusable)?;
        Ok(Self {
            key,
            public,
            retired: read_retired(data_dir)?,
        })
    }

    /// Retires the data directory's key and makes a new one: (old, new).
    pub fn rotate(data_dir: &Path) -> Result<(KeyDoc, KeyDoc), KeyError> {
        let old = Self::load_or_create(data_dir, None)?;
        let mut retired = old.retired.clone();
        retired.push(KeyDoc::of(&old.public));
        let text =
            serde_json::to_vec_pretty(&retired).map_err(|e| KeyError::Unusable(e.to_string()))?;
        let list = data_dir.join(RETIRED_FILE);
        replace_private(&list, &text)?;
        replace_private(&data_dir.join(KEY_FILE), new_key_pem()?.as_bytes())?;
        let new = Self::load_or_create(data_dir, None)?;
        Ok((KeyDoc::of(&old.public), new.doc()))
    }

    /// The published document: this key, and the retired ones.
    pub fn doc(&self) -> KeyDoc {
        KeyDoc {
            retired: self.retired.clone(),
            ..KeyDoc::of(&self.public)
        }
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

impl crate::store::Sign for AuditKey {
    fn key_id(&self) -> &str {
        &self.public.id
    }

    fn sign(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(message).to_bytes())
    }
}

/// A new key, as PKCS#8 PEM.
fn new_key_pem() -> Result<zeroize::Zeroizing<String>, KeyError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::fill(&mut seed[..]);
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| KeyError::Unusable(format!("encoding a new audit signing key: {e}")))?;
    Ok(zeroize::Zeroizing::new(pem.to_string()))
}

fn read_retired(data_dir: &Path) -> Result<Vec<KeyDoc>, KeyError> {
    let path = data_dir.join(RETIRED_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            KeyError::Unusable(format!(
                "{} is not a list of retired keys: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FileError::new("cannot read", &path, e).into()),
    }
}

/// Replaces `path` with `bytes` (mode 0600), atomically.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp: PathBuf = path.with_extension(format!("new-{}", uuid::Uuid::new_v4().simple()));
    create_private_once(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FileError::new("cannot replace", path, e).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Sign as _;

    #[test]
    fn a_key_is_made_once_kept_owner_only_and_rotated_with_its_public_half_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = AuditKey::load_or_create(dir.path(), None).unwrap();
        let again = AuditKey::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.public(), again.public());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // What it signs verifies with its published key.
        let msg = b"statement";
        let sig = a.sign(msg);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        assert!(a.public().key.verify_strict(msg, &sig).is_ok());

        let (old, new) = AuditKey::rotate(dir.path()).unwrap();
        assert_eq!(old.key_id, a.public().id);
        assert_ne!(new.key_id, old.key_id);
        assert_eq!(new.retired, vec![old.clone()]);
        let b = AuditKey::load_or_create(dir.path(), None).unwrap();
        assert_eq!(b.doc(), new);

        // Readable by others: refused, naming the fix.
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = AuditKey::load_or_create(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn an_operator_key_that_is_not_ed25519_pkcs8_is_refused_with_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        create_private_once(
            &p,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = AuditKey::load_or_create(dir.path(), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(err.contains("openssl genpkey -algorithm ed25519"), "{err}");
    }
}
