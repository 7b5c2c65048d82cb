//! Signed audit checkpoints (**extension**): a statement, signed with the
//! backend's Ed25519 key, that an organization's hash chain had reached a
//! given event. A chain alone cannot show that its newest events were cut;
//! an export that must reach a checkpoint can.
//!
//! - What is signed is [`Checkpoint::message`]: a few lines of text naming
//!   the format, the organization, the event's sequence number and hash,
//!   how many events the chain held up to it, the time and the key id —
//!   never JSON, whose spelling could vary.
//! - A key is named by its id, `SHA256:` and the unpadded base64 of the
//!   SHA-256 of its 32 raw bytes (the form OpenSSH prints for its keys).
//! - Signatures are checked strictly (`verify_strict`: no malleable or
//!   small-order forms).
//!
//! The crate is `ed25519-dalek` (the dalek-cryptography project's, used by
//! RustCrypto's ecosystem and already linked by the JWT library).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `kind` of a checkpoint, and the first line of what is signed.
pub const KIND: &str = "kube-dc audit checkpoint v1";

/// The `kind` of a published key.
pub const KEY_KIND: &str = "kube-dc audit key v1";

/// One signed checkpoint of an organization's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// [`KIND`].
    pub kind: String,
    /// The organization whose chain it is.
    pub org: String,
    /// The sequence number of the chain's newest event then (the `seq` an
    /// audit listing shows).
    pub seq: i64,
    /// How many events the organization's chain held up to and including
    /// it.
    pub events: u64,
    /// That event's `hash`.
    pub hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The Ed25519 signature of [`Checkpoint::message`], base64.
    pub signature: String,
    /// Where it was fetched from (added by the CLI when it saves one; not
    /// signed: it only says which pinned key to check it with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        statement(
            &self.org,
            self.seq,
            self.events,
            &self.hash,
            &self.time,
            &self.key_id,
        )
    }

    /// Checks the signature with `key`. The error says what failed, in
    /// words: another key signed it, or its text was altered.
    pub fn verify(&self, key: &PublicKey) -> Result<(), String> {
        if self.kind != KIND {
            return Err(format!(
                "it is not a kube-dc audit checkpoint (kind {:?})",
                self.kind
            ));
        }
        if self.key_id != key.id {
            return Err(format!("it names the key {}, not {}", self.key_id, key.id));
        }
        let raw = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| "its signature is not base64".to_string())?;
        let sig = Signature::from_slice(&raw)
            .map_err(|_| "its signature is not an Ed25519 signature".to_string())?;
        key.key
            .verify_strict(&self.message(), &sig)
            .map_err(|_| {
                "its signature does not match its text: the checkpoint was altered, or signed by another key"
                    .to_string()
            })
    }
}

/// The text a checkpoint's signature covers.
pub fn statement(
    org: &str,
    seq: i64,
    events: u64,
    hash: &str,
    time: &str,
    key_id: &str,
) -> Vec<u8> {
    format!(
        "{KIND}\norg={org}\nseq={seq}\nevents={events}\nhash={hash}\ntime={time}\nkey={key_id}\n"
    )
    .into_bytes()
}

/// A verifying key and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The key.
    pub key: VerifyingKey,
    /// Its id ([`key_id`]).
    pub id: String,
}

impl PublicKey {
    /// The key of 32 raw bytes.
    pub fn from_raw(raw: &[u8]) -> Result<Self, String> {
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| format!("an Ed25519 public key has 32 bytes, not {}", raw.len()))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "the bytes are not an Ed25519 public key".to_string())?;
        Ok(Self {
            id: key_id(&bytes),
            key,
        })
    }

    /// A key as a user may hold one: the JSON the backend publishes
    /// ([`KeyDoc`]), a PEM `PUBLIC KEY` (what `openssl pkey -pubout`
    /// writes), or the base64 of the 32 raw bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.starts_with('{') {
            let doc: KeyDoc = serde_json::from_str(t)
                .map_err(|e| format!("not a kube-dc audit key document: {e}"))?;
            let k = Self::parse(&doc.public_key)?;
            if !doc.key_id.is_empty() && doc.key_id != k.id {
                return Err(format!(
                    "the document says key id {}, but its key's id is {}",
                    doc.key_id, k.id
                ));
            }
            return Ok(k);
        }
        if t.starts_with("-----BEGIN") {
            let key = VerifyingKey::from_public_key_pem(t)
                .map_err(|e| format!("not an Ed25519 PEM public key: {e}"))?;
            return Self::from_raw(key.as_bytes());
        }
        let raw = STANDARD
            .decode(t)
            .map_err(|_| "neither a key document, a PEM public key nor base64".to_string())?;
        Self::from_raw(&raw)
    }

    /// The base64 of its raw bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }
}

/// The id of a key: `SHA256:` and the unpadded base64 of the SHA-256 of
/// its raw bytes.
pub fn key_id(raw: &[u8; 32]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(raw)))
}

/// A published key: what `GET /api/audit/key` answers and
/// `kube-dc-backend audit-key` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyDoc {
    /// [`KEY_KIND`].
    #[serde(default)]
    pub kind: String,
    /// Always `Ed25519`.
    #[serde(default)]
    pub algorithm: String,
    /// Its id.
    #[serde(default)]
    pub key_id: String,
    /// Its 32 raw bytes, base64.
    pub public_key: String,
    /// Keys this backend signed with before a rotation, oldest first:
    /// checkpoints they signed still verify with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<KeyDoc>,
}

impl KeyDoc {
    /// The document of `key`.
    pub fn of(key: &PublicKey) -> Self {
        Self {
            kind: KEY_KIND.into(),
            algorithm: "Ed25519".into(),
            key_id: key.id.clone(),
            public_key: key.to_base64(),
            retired: Vec::new(),
        }
    }
}

/// A checkpoint list's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointList {
    /// Newest first.
    pub items: Vec<Checkpoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &ed25519_dalek::SigningKey) -> (Checkpoint, PublicKey) {
        use ed25519_dalek::Signer as _;
        let public = PublicKey::from_raw(key.verifying_key().as_bytes()).unwrap();
        let mut c = Checkpoint {
            kind: KIND.into(),
            org: "acme".into(),
            seq: 42,
            events: 17,
            hash: "ab".repeat(32),
            time: "2026-12-07T10:00:00.000Z".into(),
            key_id: public.id.clone(),
            signature: String::new(),
            server: None,
        };
        c.signature = STANDARD.encode(key.sign(&c.message()).to_bytes());
        (c, public)
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_with_no_other() {
        let a = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let b = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let (c, ka) = signed(&a);
        let (_, kb) = signed(&b);
        assert_eq!(c.verify(&ka), Ok(()));
        assert!(c.verify(&kb).unwrap_err().contains("names the key"));
        // Every signed field is covered.
        for alter in [
            |c: &mut Checkpoint| c.seq += 1,
            |c: &mut Checkpoint| c.events -= 1,
            |c: &mut Checkpoint| c.hash.replace_range(0..1, "c"),
            |c: &mut Checkpoint| c.org.push('x'),
            |c: &mut Checkpoint| c.time.replace_range(0..1, "3"),
        ] {
            let mut x = c.clone();
            alter(&mut x);
            assert!(x.verify(&ka).unwrap_err().contains("altered"), "{x:?}");
        }
        // The server it came from is not signed: it only picks a pinned key.
        let mut x = c.clone();
        x.server = Some("https://elsewhere".into());
        assert_eq!(x.verify(&ka), Ok(()));
    }

    #[test]
    fn a_key_is_read_from_its_document_pem_or_base64_and_named_as_openssh_would() {
        let k = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let public = PublicKey::from_raw(k.verifying_key().as_bytes()).unwrap();
        assert!(public.id.starts_with("SHA256:") && !public.id.ends_with('='));
        let doc = serde_json::to_string(&KeyDoc::of(&public)).unwrap();
        assert_eq!(PublicKey::parse(&doc).unwrap(), public);
        assert_eq!(PublicKey::parse(&public.to_base64()).unwrap(), public);
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let pem = k
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        assert_eq!(PublicKey::parse(&pem).unwrap(), public);
        assert!(PublicKey::parse("bm90IGEga2V5").is_err());
        let mut lying: KeyDoc = serde_json::from_str(&doc).unwrap();
        lying.key_id = "SHA256:other".into();
        let err = PublicKey::parse(&serde_json::to_string(&lying).unwrap()).unwrap_err();
        assert!(err.contains("SHA256:other"), "{err}");
    }
}
