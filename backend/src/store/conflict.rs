//! Why a change was refused as conflicting with a secret's state: one
//! variant per situation, each with its own message, hint and wire
//! `reason`, and whether the same change can succeed if made again from a
//! fresh read (the CLI retries only those).

/// A change refused because of the secret's state (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Check-and-set: the caller expected another current version.
    #[error("check-and-set failed: the current version is {current}, not {expected}")]
    CasMismatch {
        /// The version the caller sent as `cas`.
        expected: u64,
        /// The secret's current version.
        current: u64,
    },
    /// Another change of the same secret landed while this one was being
    /// made.
    #[error("secret {name:?} changed while it was being {doing}")]
    ChangedMeanwhile {
        /// The secret.
        name: String,
        /// What was being done (`updated`, `deleted`).
        doing: &'static str,
    },
    /// The engine held versions the backend never recorded (a write cut
    /// off before it was recorded): they are now listed and audited.
    #[error(
        "secret {name:?} was at version {engine} in OpenBao, not {recorded} as the backend had \
         recorded: version(s) {adopted:?} reached OpenBao but were never recorded (a write cut \
         off, e.g. by an election). They are now listed and audited (secrets.reconcile)"
    )]
    Adopted {
        /// The secret.
        name: String,
        /// The engine's current version.
        engine: u64,
        /// The version the backend had recorded.
        recorded: u64,
        /// The versions now listed and audited.
        adopted: Vec<u64>,
    },
    /// The engine holds versions beyond the record that could not be
    /// listed just now.
    #[error(
        "OpenBao's {path} is at version {found}, not {recorded} as the backend recorded: a \
         change was made there that the backend did not record, and it could not be listed just \
         now. Nothing was changed"
    )]
    Unlisted {
        /// The engine's path of the secret.
        path: String,
        /// The engine's current version.
        found: u64,
        /// The version the backend recorded.
        recorded: u64,
    },
    /// A create over engine versions that no secret of this backend owns
    /// and that this backend did not write (another tool's).
    #[error(
        "OpenBao already holds {path} up to version {found}, which no secret of the backend owns \
         and which the backend did not write (another tool's secret, or a create of a backend \
         from before it marked its paths). Nothing was changed"
    )]
    Foreign {
        /// The engine's path.
        path: String,
        /// The engine's current version there.
        found: u64,
    },
    /// The name is taken by a live secret.
    #[error("secret {name:?} already exists")]
    Exists {
        /// The name.
        name: String,
    },
    /// The name is taken by a soft-deleted secret whose history is kept.
    #[error(
        "secret {name:?} was soft-deleted and its history is kept: restore it (kube-dc secrets \
         restore {name}) or destroy it first"
    )]
    SoftDeleted {
        /// The name.
        name: String,
    },
    /// A restore of a secret that is not deleted.
    #[error("secret {name:?} is not deleted; there is nothing to restore")]
    NotDeleted {
        /// The secret.
        name: String,
    },
    /// Another managed secret already projects into the Kubernetes Secret.
    #[error("Kubernetes Secret {target:?} is already the projection of managed secret {other:?}")]
    ProjectionTaken {
        /// The Kubernetes Secret.
        target: String,
        /// The managed secret that projects into it.
        other: String,
    },
}

impl Conflict {
    /// The machine-readable name of the situation, sent as the error
    /// body's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Conflict::CasMismatch { .. } => "cas-mismatch",
            Conflict::ChangedMeanwhile { .. } => "changed-meanwhile",
            Conflict::Adopted { .. } => "unrecorded-versions-adopted",
            Conflict::Unlisted { .. } => "unrecorded-versions",
            Conflict::Foreign { .. } => "foreign-engine-path",
            Conflict::Exists { .. } => "exists",
            Conflict::SoftDeleted { .. } => "soft-deleted",
            Conflict::NotDeleted { .. } => "not-deleted",
            Conflict::ProjectionTaken { .. } => "projection-taken",
        }
    }

    /// Whether the same change made again from a fresh read can succeed
    /// (sent as `retryable`): the secret moved under it, nothing about the
    /// change itself is wrong.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Conflict::CasMismatch { .. }
                | Conflict::ChangedMeanwhile { .. }
                | Conflict::Adopted { .. }
                | Conflict::Unlisted { .. }
        )
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Conflict::CasMismatch { current, .. } => format!(
                "read the secret again (it is at version {current}) and make the change on that"
            ),
            Conflict::ChangedMeanwhile { .. } => "try again".into(),
            Conflict::Adopted { .. } => "read the secret and write again".into(),
            Conflict::Unlisted { .. } => "write again shortly: the write that finds such versions \
                 lists and audits them (as the backend also does at start)"
                .into(),
            Conflict::Foreign { .. } => "look at it in OpenBao and delete it there (`bao kv \
                 metadata delete`), or choose another name"
                .into(),
            Conflict::Exists { name } => format!(
                "change it with `kube-dc secrets set {name}` or `put`, or choose another name"
            ),
            Conflict::SoftDeleted { .. } => {
                "`kube-dc secrets list --deleted` lists it with the other deleted secrets".into()
            }
            Conflict::NotDeleted { .. } => "it is live already".into(),
            Conflict::ProjectionTaken { .. } => {
                "choose another target (--sync-target / sync --target)".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each, so that a new variant is added here too.
    fn every() -> Vec<Conflict> {
        let name = || "s".to_string();
        vec![
            Conflict::CasMismatch {
                expected: 1,
                current: 2,
            },
            Conflict::ChangedMeanwhile {
                name: name(),
                doing: "written",
            },
            Conflict::Adopted {
                name: name(),
                engine: 3,
                recorded: 2,
                adopted: vec![3],
            },
            Conflict::Unlisted {
                path: "kv/data/s".into(),
                found: 3,
                recorded: 2,
            },
            Conflict::Foreign {
                path: "kv/data/s".into(),
                found: 1,
            },
            Conflict::Exists { name: name() },
            Conflict::SoftDeleted { name: name() },
            Conflict::NotDeleted { name: name() },
            Conflict::ProjectionTaken {
                target: "t".into(),
                other: "o".into(),
            },
        ]
    }

    #[test]
    fn every_reason_is_distinct_and_documented_in_the_openapi_file() {
        let spec = include_str!("../../openapi.yaml");
        let mut seen = std::collections::BTreeSet::new();
        for c in every() {
            assert!(seen.insert(c.reason()), "{} twice", c.reason());
            assert!(
                spec.contains(c.reason()),
                "{} is not in openapi.yaml",
                c.reason()
            );
            assert!(!c.hint().is_empty());
        }
    }
}
