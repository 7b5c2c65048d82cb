//! `audit verify --checkpoint`: the checkpoint's signature against the
//! pinned (or given) key, then whether the verified files reach its event.

use std::path::Path;

use crate::error::{CliError, ErrorKind, Result};
use crate::output::Printer;
use kube_dc_api::audit::ExportCheck;
use kube_dc_api::checkpoint::{Checkpoint, PublicKey};

/// The checkpoint in `file`, its signature checked with `key` (a file or
/// the key itself) or the key pinned for the installation it came from.
pub fn load(p: &Printer, file: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::usage(format!("cannot read the checkpoint {shown}: {e}")))?;
    let c: Checkpoint = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!("{shown} is not a kube-dc audit checkpoint: {e}"))
            .hint("give the file `kube-dc audit checkpoint --output-file` wrote")
    })?;
    let (key, whose) = match key {
        Some(k) => {
            let text = match std::fs::read_to_string(k) {
                Ok(t) => t,
                Err(_) if !Path::new(k).exists() => k.to_string(),
                Err(e) => return Err(CliError::usage(format!("cannot read --key {k}: {e}"))),
            };
            let key =
                PublicKey::parse(&text).map_err(|e| CliError::usage(format!("--key {k}: {e}")))?;
            (key, "the key given with --key".to_string())
        }
        None => pinned(&c, &shown.to_string())?,
    };
    if c.key_id != key.id {
        return Err(CliError::new(
            ErrorKind::Tampered,
            format!(
                "the checkpoint {shown} is signed by key {}, not by {whose}, {}: refused",
                c.key_id, key.id
            ),
        )
        .hint(
            "if the backend's key was rotated, get its new key from its operator (`kube-dc-backend \
             audit-key`) and give it with --key, or pin it with `kube-dc audit checkpoint --trust-new-key`",
        ));
    }
    c.verify(&key)
        .map_err(|e| CliError::new(ErrorKind::Tampered, format!("the checkpoint {shown}: {e}")))?;
    p.line(&format!(
        "checkpoint {shown}: signature valid ({}); organization {}, event {} ({} events), hash {}, signed {}",
        key.id, c.org, c.seq, c.events, c.hash, c.time
    ))?;
    Ok(c)
}

/// The key pinned for the installation the checkpoint names.
fn pinned(c: &Checkpoint, shown: &str) -> Result<(PublicKey, String)> {
    let Some(server) = &c.server else {
        return Err(CliError::usage(format!(
            "the checkpoint {shown} does not say which installation it came from"
        ))
        .hint("give the backend's public key with --key"));
    };
    let path = super::checkpoint::pins_path();
    let pins = super::checkpoint::read_pins(&path)?;
    let pin = pins.get(server).ok_or_else(|| {
        CliError::usage(format!(
            "no audit key is pinned for {server} (in {})",
            path.display()
        ))
        .hint("give the backend's public key with --key, or run `kube-dc audit checkpoint` against it once")
    })?;
    let key = PublicKey::parse(&pin.public_key)
        .map_err(|e| CliError::usage(format!("{}: the key of {server}: {e}", path.display())))?;
    Ok((key, format!("the key pinned for {server}")))
}

/// Whether the files (oldest first) hold the checkpoint's event; with
/// one unbroken chain from the organization's first event, also exactly as
/// many events up to it. The error names what is missing.
pub fn reached(
    p: &Printer,
    c: &Checkpoint,
    files: &[(String, ExportCheck)],
    continuous: bool,
) -> Result<Option<CliError>> {
    if let Some((name, org)) = files
        .iter()
        .find_map(|(n, f)| f.org.as_ref().filter(|o| **o != c.org).map(|o| (n, o)))
    {
        return Ok(Some(CliError::new(
            ErrorKind::Tampered,
            format!(
                "{name} holds organization {org:?}'s events; the checkpoint is of {:?}",
                c.org
            ),
        )));
    }
    let from_genesis = files.first().is_some_and(|(_, f)| f.from_genesis);
    let exact = continuous && from_genesis && files.iter().all(|(_, f)| f.gaps.is_empty());
    let mut before = 0usize;
    for (name, f) in files {
        if let Some((line, upto)) = f.reached {
            let count = before + upto;
            if exact && count as u64 != c.events {
                return Ok(Some(CliError::new(
                    ErrorKind::Tampered,
                    format!(
                        "{name}:{line} is the checkpoint's event, but the files hold {count} events up to it, \
                         not the {} the checkpoint counts",
                        c.events
                    ),
                )));
            }
            p.line(&format!(
                "reaches the checkpoint: {name} line {line} is event {} (hash {}){}",
                c.seq,
                c.hash,
                if exact {
                    format!(", number {count} of the organization's events, as signed")
                } else {
                    String::new()
                }
            ))?;
            return Ok(None);
        }
        before += f.rows;
    }
    let (last_name, last) = files
        .iter()
        .rev()
        .find(|(_, f)| f.last_line.is_some())
        .map_or(("(no rows)".to_string(), None), |(n, f)| {
            (n.clone(), f.last_line.zip(f.last_hash.clone()))
        });
    let missing = if exact {
        format!(
            "{} event(s) are missing after it",
            c.events.saturating_sub(before as u64)
        )
    } else {
        "events are missing from the end".to_string()
    };
    let end = match last {
        Some((line, hash)) => format!("they end at {last_name} line {line} (hash {hash})"),
        None => "they hold no events".to_string(),
    };
    let msg = format!(
        "the files do not reach the checkpoint's event {} (hash {}): {end}; {missing} — rows were cut \
         from the end, or the export is older than the checkpoint",
        c.seq, c.hash
    );
    p.line(&format!("MISSING ROWS: {msg}"))?;
    Ok(Some(CliError::new(ErrorKind::Tampered, msg).hint(
        "export again (`kube-dc audit list --csv`) and verify the new file with the same checkpoint",
    )))
}
