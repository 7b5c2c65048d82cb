//! `kube-dc audit checkpoint`: saves a checkpoint the backend signs of the
//! organization's chain, after checking its key against the one pinned for
//! that installation (pinned on first use, like SSH's known hosts); and
//! the pinned keys `audit verify --checkpoint` checks with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::api::Call;
use crate::commands::Session;
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::checkpoint::{Checkpoint, CheckpointList, KeyDoc, PublicKey};
use kube_dc_api::endpoints::Route;

/// Save a signed checkpoint of the organization's audit chain (kube-dc's
/// backend; organization admins).
///
/// The backend signs its chain's newest event (sequence number, hash, how
/// many events) with its Ed25519 key. Keep the file where the backend's
/// operator cannot rewrite it; `kube-dc audit verify EXPORT… --checkpoint
/// FILE` then proves that the exports reach that event — rows cut from the
/// end of an export are found.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kube-dc audit checkpoint --output-file checkpoint.json
  kube-dc audit list --csv --output-file audit.csv
  kube-dc audit verify audit.csv --checkpoint checkpoint.json

  # The newest checkpoint the backend signed on its own (no new signature):
  kube-dc audit checkpoint --latest

The key: the first checkpoint from an installation pins its key (in
~/.config/kube-dc/audit-keys.json; a note says so). A later key that differs
is warned about and not trusted, as SSH does with a changed host key: a
checkpoint it signs fails `audit verify`. After a rotation the operator
announced, compare the fingerprint with the one `kube-dc-backend audit-key`
prints on the backend's machine and add --trust-new-key.
Role: organization admin.")]
pub struct CheckpointArgs {
    /// The organization (default: the context's, or KUBE_DC_ORG).
    #[arg(long, value_name = "NAME")]
    pub org_name: Option<String>,
    /// Write it to this file (atomically, mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// The newest checkpoint already signed, instead of signing one now.
    #[arg(long)]
    pub latest: bool,
    /// Pin the installation's current key, replacing the one pinned before.
    #[arg(long)]
    pub trust_new_key: bool,
}

pub async fn run(ctx: &Session, a: CheckpointArgs) -> Result<()> {
    ctx.printer
        .require(&[crate::output::OutputFormat::Json], "audit checkpoint")?;
    let target = ctx.target()?;
    let env_org = crate::config::env_org();
    let org = target.org(a.org_name.as_deref().or(env_org.as_deref()))?;
    target.project_scope_ignored("audit checkpoint", "signs the whole organization's chain");
    let server = pin_label(target);
    let client = ctx.client().await?;
    if ctx.printer.plan_only && !a.latest {
        // --dry-run: the signing request is planned, nothing pinned.
        client
            .change::<Checkpoint>(Call::new(Route::SignCheckpoint, &[&org]), None::<&()>)
            .await?;
        return Ok(());
    }
    let (doc, _) = client
        .call::<KeyDoc>(Call::new(Route::AuditKey, &[&org]), None::<&()>)
        .await
        .map_err(unsupported)?;
    let key = PublicKey::parse(&doc.public_key)
        .map_err(|e| CliError::other(format!("the backend's audit key: {e}")))?;
    let trusted = pin(&server, &key, a.trust_new_key, !ctx.printer.plan_only)?;
    let mut c = if a.latest {
        let (list, _) = client
            .call::<CheckpointList>(
                Call::new(Route::ListCheckpoints, &[&org]).query("?limit=1".into()),
                None::<&()>,
            )
            .await
            .map_err(unsupported)?;
        list.items.into_iter().next().ok_or_else(|| {
            CliError::new(
                ErrorKind::NotFound,
                format!("organization {org:?} has no checkpoint yet"),
            )
            .hint("leave out --latest to have one signed now")
        })?
    } else {
        match client
            .change::<Checkpoint>(Call::new(Route::SignCheckpoint, &[&org]), None::<&()>)
            .await
            .map_err(unsupported)?
        {
            Some((c, _)) => c,
            // --dry-run: the plan says what would be asked.
            None => return Ok(()),
        }
    };
    // What the backend signed must verify with the key it publishes — and
    // a retired key's checkpoint with that retired key.
    let signer = if c.key_id == key.id {
        key.clone()
    } else {
        retired_key(&doc, &c.key_id)?
    };
    c.verify(&signer).map_err(|e| {
        CliError::new(
            ErrorKind::Tampered,
            format!("the backend's checkpoint: {e}"),
        )
    })?;
    c.server = Some(server);
    let mut text = serde_json::to_vec_pretty(&c).map_err(|e| CliError::other(e.to_string()))?;
    text.push(b'\n');
    match &a.output_file {
        Some(p) => {
            crate::atomic::write(p, &text)?;
            crate::output::note(&format!(
                "checkpoint of {org}: event {} ({} events, hash {}), signed by {}{}; saved to {}",
                c.seq,
                c.events,
                c.hash,
                c.key_id,
                if trusted { "" } else { " (NOT the pinned key)" },
                p.display()
            ));
        }
        None => ctx.printer.raw(&text)?,
    }
    Ok(())
}

fn retired_key(doc: &KeyDoc, id: &str) -> Result<PublicKey> {
    doc.retired
        .iter()
        .find(|k| k.key_id == id)
        .ok_or_else(|| {
            CliError::new(
                ErrorKind::Tampered,
                format!("the checkpoint names key {id}, which the backend does not publish"),
            )
        })
        .and_then(|k| {
            PublicKey::parse(&k.public_key).map_err(|e| CliError::other(format!("key {id}: {e}")))
        })
}

/// A 404/405 from a backend without checkpoints, said as such.
fn unsupported(e: CliError) -> CliError {
    if e.kind == ErrorKind::NotSupported {
        e.hint("signed checkpoints are an extension of kube-dc's own backend; this installation does not sign its audit chain")
    } else {
        e
    }
}

/// Which installation a pinned key belongs to: the server's URL, or the
/// local context's data directory.
pub fn pin_label(target: &crate::config::Target) -> String {
    match &target.backend {
        crate::config::Endpoint::Local { data_dir, .. } => format!("local:{}", data_dir.display()),
        crate::config::Endpoint::Remote { base_url } => base_url.clone(),
    }
}

/// One pinned key.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Pinned {
    pub key_id: String,
    pub public_key: String,
    pub pinned_at: String,
}

/// The pinned keys file.
pub fn pins_path() -> PathBuf {
    crate::config::config_dir().join("audit-keys.json")
}

pub fn read_pins(path: &Path) -> Result<BTreeMap<String, Pinned>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            CliError::usage(format!(
                "{} is not a list of pinned audit keys: {e}",
                path.display()
            ))
            .hint("move it aside; the next `kube-dc audit checkpoint` pins the keys again")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(CliError::other(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Pins `key` for `server` when none is (or when `replace`); says so, or
/// warns that it differs from the pinned one. Whether `key` is the pinned
/// one afterwards.
fn pin(server: &str, key: &PublicKey, replace: bool, save: bool) -> Result<bool> {
    let path = pins_path();
    let mut pins = read_pins(&path)?;
    match pins.get(server) {
        Some(p) if p.key_id == key.id => return Ok(true),
        _ if !save => return Ok(false),
        Some(p) if !replace => {
            crate::output::warn(&format!(
                "the audit key of {server} has CHANGED: pinned {} (since {}), now {}. A checkpoint it \
                 signs will not verify. If the operator rotated the key, compare the fingerprint with \
                 `kube-dc-backend audit-key` on the backend's machine and run again with --trust-new-key.",
                p.key_id, p.pinned_at, key.id
            ));
            return Ok(false);
        }
        Some(p) => crate::output::note(&format!(
            "replacing the pinned audit key of {server}: {} → {}",
            p.key_id, key.id
        )),
        None => crate::output::note(&format!(
            "pinned the audit key of {server} on first use: {} (in {})",
            key.id,
            path.display()
        )),
    }
    pins.insert(
        server.to_string(),
        Pinned {
            key_id: key.id.clone(),
            public_key: key.to_base64(),
            pinned_at: crate::clock::utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        },
    );
    let text = serde_json::to_vec_pretty(&pins).map_err(|e| CliError::other(e.to_string()))?;
    crate::atomic::write(&path, &text)?;
    Ok(true)
}
