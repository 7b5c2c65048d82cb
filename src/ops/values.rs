//! New versions made from existing ones: `set` (some keys changed),
//! `unset` (some keys removed), `rollback` (an older version's values),
//! `edit`'s write — each written with check-and-set on the version read.

use crate::api::{Client, Doc};
use crate::error::{CliError, ErrorKind, Result};
use kube_dc_api::wire::{Data, PutValuesRequest, PutValuesResponse};

/// How many times a write that lost a check-and-set race is made again
/// from a fresh read.
pub const TRIES: usize = 3;

/// What became of a change of a secret's values.
pub enum Outcome {
    /// A new version was written. `warning`: what to say of it (on stderr
    /// for a command, on the status line in `kube-dc ui`).
    Written {
        resp: PutValuesResponse,
        raw: Doc,
        warning: Option<String>,
    },
    /// The change leaves the values the current version already holds:
    /// nothing was sent.
    Unchanged { version: u64 },
    /// `--dry-run`: the write is in the plan.
    Planned,
}

/// A change of one secret's values.
pub struct Changed {
    pub name: String,
    pub namespace: String,
    pub outcome: Outcome,
    /// The current version it was written over had been destroyed (so
    /// the change started from no values at all).
    pub over_destroyed: Option<u64>,
}

impl Changed {
    /// What to say of it: `secret/NAME version N written (what)`, that
    /// nothing needed writing, or that the write is planned.
    pub fn summary(&self, what: &str) -> String {
        let name = &self.name;
        match &self.outcome {
            Outcome::Written { resp, .. } => {
                format!("secret/{name} version {} written ({what})", resp.version)
            }
            Outcome::Unchanged { version } => format!(
                "secret/{name} unchanged: version {version} already holds these values, nothing was written"
            ),
            Outcome::Planned => format!("secret/{name}: a new version ({what}) is planned"),
        }
    }

    pub fn warning(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Written { warning, .. } => warning.as_deref(),
            _ => None,
        }
    }

    /// The warning for a change made over a destroyed current version.
    pub fn over_destroyed_warning(&self) -> Option<String> {
        let (v, Outcome::Written { resp, .. }) = (self.over_destroyed?, &self.outcome) else {
            return None;
        };
        let name = &self.name;
        Some(format!(
            "version {v}, the current one, had been destroyed: version {} holds only the keys \
             given here; to start from an older version instead: `kube-dc secrets versions \
             {name}`, then `kube-dc secrets rollback {name} --to-version N`",
            resp.version
        ))
    }
}

/// `set`: these keys take these values, the others are kept.
pub async fn set(client: &Client, ns: &str, name: &str, changes: &Data) -> Result<Changed> {
    change(client, ns, name, |_, data| {
        data.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    })
    .await
}

/// `unset`: these keys are removed, the others kept. A key the secret does
/// not have, or removing every key, is refused before anything is written.
pub async fn unset(client: &Client, ns: &str, name: &str, keys: &[String]) -> Result<Changed> {
    change(client, ns, name, |_, data| {
        let missing: Vec<&str> = keys
            .iter()
            .filter(|k| !data.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let have: Vec<&str> = data.keys().map(String::as_str).collect();
            let have = if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            };
            return Err(CliError::new(
                ErrorKind::NotFound,
                format!(
                    "secret {name} has no key {}; its keys: {have}",
                    missing.join(", ")
                ),
            ));
        }
        data.retain(|k, _| !keys.contains(k));
        if data.is_empty() {
            return Err(CliError::usage(format!(
                "unsetting {} would leave secret {name} without any key",
                keys.join(", ")
            ))
            .hint(format!(
                "delete the secret instead: kube-dc secrets delete {name}"
            )));
        }
        Ok(())
    })
    .await
}

/// `rollback` (also `kube-dc ui`'s `b`): the old version's values read
/// (audited), then written over the current one with check-and-set.
pub async fn rollback(client: &Client, ns: &str, name: &str, to_version: u64) -> Result<Changed> {
    let (old, _) = client.get_secret(ns, name, true, Some(to_version)).await?;
    let old = old.value.ok_or_else(|| {
        CliError::new(
            ErrorKind::NotFound,
            format!("version {to_version} of {name} has no values to roll back to"),
        )
    })?;
    change(client, ns, name, |current, data| {
        if current == to_version {
            return Err(CliError::usage(format!(
                "version {to_version} is already the current version of {name}"
            )));
        }
        *data = old.data.clone();
        Ok(())
    })
    .await
}

/// `edit`'s write (also `kube-dc ui`'s `p`): exactly these values, with
/// check-and-set on the version that was opened. `again`: how to start
/// over when it changed meanwhile (`NAME` is replaced by the name).
pub async fn write_edited(
    client: &Client,
    ns: &str,
    name: &str,
    opened: u64,
    data: Data,
    again: &str,
) -> Result<Changed> {
    let req = PutValuesRequest {
        data,
        cas: Some(opened),
    };
    let sent = client
        .put_values(ns, name, &req)
        .await
        .map_err(|e| changed_meanwhile(e, name, opened, again))?;
    Ok(Changed {
        name: name.to_string(),
        namespace: ns.to_string(),
        outcome: match sent {
            Some((resp, raw)) => Outcome::Written {
                resp,
                raw,
                warning: None,
            },
            None => Outcome::Planned,
        },
        over_destroyed: None,
    })
}

/// A check-and-set conflict said as what it means for an edit; any other
/// error as it is.
fn changed_meanwhile(e: CliError, name: &str, version: u64, again: &str) -> CliError {
    if e.kind != ErrorKind::Conflict {
        return e;
    }
    CliError::new(
        ErrorKind::Conflict,
        format!(
            "secret {name} changed while you edited it (you opened version {version}): nothing was written"
        ),
    )
    .hint(again.replace("NAME", name))
}

/// Reads the current values, changes them with `apply` (given the version
/// read), and writes them with check-and-set on that version. If another
/// write lands in between, reads again and re-applies the change
/// ([`TRIES`] times), then fails with a conflict: no write is ever lost.
async fn change(
    client: &Client,
    ns: &str,
    name: &str,
    apply: impl Fn(u64, &mut Data) -> Result<()>,
) -> Result<Changed> {
    let done = |outcome, over_destroyed| Changed {
        name: name.to_string(),
        namespace: ns.to_string(),
        outcome,
        over_destroyed,
    };
    let mut tries = 0;
    loop {
        tries += 1;
        let (secret, _) = client.get_secret(ns, name, true, None).await?;
        // The version to write over is the current one, also when it has
        // no values to read (destroyed): check-and-set names it all the
        // same, or no write could ever follow a destroyed current version.
        let current = secret.openbao.as_ref().map_or(0, |o| o.current_version);
        let (read, mut data, over_destroyed) = match secret.value {
            Some(v) => (v.metadata.version, v.data, None),
            None => (current, Data::new(), (current > 0).then_some(current)),
        };
        let before = (over_destroyed.is_none() && read > 0).then(|| data.clone());
        apply(read, &mut data)?;
        // The same values again would be a version that changes nothing.
        if before.as_ref() == Some(&data) {
            return Ok(done(Outcome::Unchanged { version: read }, None));
        }
        let req = PutValuesRequest {
            data,
            cas: Some(read),
        };
        match client.put_values(ns, name, &req).await {
            Ok(None) => return Ok(done(Outcome::Planned, over_destroyed)),
            Ok(Some((resp, raw))) => {
                let warning = (resp.version != read + 1).then(|| {
                    format!(
                        "this installation wrote version {} without checking that version {read} \
                         (the one read) was still current: a write made in between may have been \
                         replaced; compare `kube-dc secrets versions {name}`",
                        resp.version
                    )
                });
                let outcome = Outcome::Written { resp, raw, warning };
                return Ok(done(outcome, over_destroyed));
            }
            // Only what the server says a fresh read can get past (the
            // secret moved under the change); a name taken, a projection
            // taken, or any conflict an installation does not explain, is
            // answered as it is.
            Err(e) if e.retryable && tries < TRIES => continue,
            Err(e) if e.retryable => {
                return Err(CliError::new(
                    ErrorKind::Conflict,
                    format!(
                        "secret {name} kept changing while this change was applied ({TRIES} tries): \
                         {}",
                        e.message
                    ),
                )
                .hint("nothing was written; run it again"));
            }
            Err(e) => return Err(e),
        }
    }
}
