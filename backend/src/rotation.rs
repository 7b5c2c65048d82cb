//! Scheduled rotation of `type=password` secrets.

use rand::Rng;

use crate::app::Backend;
use crate::store::AuditRecord;
use kube_dc_api::endpoints::ROTATE_ACTION;
use kube_dc_api::event::{AuditEvent, Outcome, Subject, SystemActor};
use kube_dc_api::wire::{Data, Rotation, Sensitive};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Symbols that survive shells, URLs in most positions, YAML and dotenv
/// without quoting surprises (no quotes, backslash, `$` or backtick).
const SYMBOLS: &[u8] = b"!#%&()*+,-./:;<=>?@[]^_{|}~";
const HEX: &[u8] = b"0123456789abcdef";

/// The key under which a generated password is stored.
pub const PASSWORD_KEY: &str = "password";

/// A new password from the thread-local CSPRNG (ChaCha, seeded from the OS),
/// each character drawn uniformly from the charset.
pub fn generate(r: &Rotation) -> Data {
    let set: Vec<u8> = match r.generator.charset.as_str() {
        "alnum" => ALNUM.to_vec(),
        "hex" => HEX.to_vec(),
        _ => [ALNUM, SYMBOLS].concat(),
    };
    let mut rng = rand::rng();
    let pw: String = (0..r.generator.length)
        .map(|_| set[rng.random_range(0..set.len())] as char)
        .collect();
    let mut d = Data::new();
    d.insert(PASSWORD_KEY.into(), Sensitive::new(pw));
    d
}

/// Rotates every secret that is due, auditing each rotation as the system.
pub async fn run_due(b: &Backend) {
    let now = b.now();
    if !b.store.may_have_due_rotations(now) {
        return;
    }
    let due = match b.db().due_rotations(now).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("rotation check failed: {e}");
            return;
        }
    };
    for (ns, name) in due {
        // Filed under the owning organization (a secret can only exist in
        // a namespace that had an owner when it was created).
        let (org, project) = match b.projects.owner(&ns) {
            Ok(o) => (o.org.clone(), o.project.clone().unwrap_or_default()),
            Err(_) => (String::new(), String::new()),
        };
        let about = Subject {
            service: "secrets".into(),
            action: ROTATE_ACTION.into(),
            resource: name.clone(),
            org,
            project: Some(project),
            namespace: Some(ns.clone()),
        };
        let event = AuditRecord {
            ts: now,
            event: AuditEvent::system(about, SystemActor::Rotation, Outcome::Allowed),
        };
        // The new version and its audit event commit together.
        let res = b
            .db()
            .rotate_if_due(ns.clone(), name.clone(), now, generate, event)
            .await;
        match res {
            Ok(Some(v)) => tracing::info!("rotated {ns}/{name} to version {v}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("rotation of {ns}/{name} failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_dc_api::wire::Generator;

    #[test]
    fn generator_honours_length_and_charset() {
        for (charset, allowed) in [
            ("alnum", ALNUM.to_vec()),
            ("hex", HEX.to_vec()),
            ("alnum-symbol", [ALNUM, SYMBOLS].concat()),
        ] {
            let r = Rotation {
                enabled: true,
                interval: "1h".into(),
                generator: Generator {
                    length: 64,
                    charset: charset.into(),
                },
            };
            let a = generate(&r);
            let b = generate(&r);
            let pw = a[PASSWORD_KEY].expose();
            assert_eq!(pw.len(), 64);
            assert!(pw.bytes().all(|c| allowed.contains(&c)), "{charset}");
            assert_ne!(pw, b[PASSWORD_KEY].expose());
        }
    }
}
