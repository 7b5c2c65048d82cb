//! Which organization and project own a namespace: known to the backend,
//! never guessed. Declared in the bindings file (`orgs.ORG.projects`: the
//! namespace of project P of org O is `O-P`) and by Namespace manifests
//! (`kube-dc.com/organization` and `kube-dc.com/project`, as labels or
//! annotations; a Namespace with an organization but no project belongs to
//! the organization and is not a project). A namespace claimed by two
//! owners is ambiguous and refused, as is one nobody declared.

use std::collections::BTreeMap;

use crate::authz::Bindings;
use crate::kube::ManifestNamespace;

#[derive(Clone, Debug, PartialEq, Eq)]
/// The organization and project that own a namespace.
pub struct Owner {
    /// The organization.
    pub org: String,
    /// None: a namespace of the organization that is not a project.
    pub project: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
/// Why a namespace's owner is not known.
pub enum OwnerError {
    /// No configuration claims it.
    Unknown,
    /// The owners that claim it.
    Ambiguous(Vec<Owner>),
}

impl OwnerError {
    /// The message for the caller, naming the namespace.
    pub fn message(&self, ns: &str) -> String {
        match self {
            OwnerError::Unknown => format!(
                "namespace {ns:?} is not a project this backend knows; an administrator declares \
                 it in the bindings file (orgs.ORG.projects) or as a Namespace manifest"
            ),
            OwnerError::Ambiguous(owners) => format!(
                "namespace {ns:?} is claimed by more than one owner ({}), so it is refused until \
                 an administrator resolves the configuration",
                owners
                    .iter()
                    .map(|o| format!(
                        "organization {} project {}",
                        o.org,
                        o.project.as_deref().unwrap_or("-")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[derive(Clone, Debug, Default)]
/// Which organization and project own each namespace, from the bindings
/// file and the Namespace manifests.
pub struct Projects {
    claims: BTreeMap<String, Vec<Owner>>,
}

impl Projects {
    /// The owners the bindings and the manifests declare.
    pub fn build(bindings: &Bindings, namespaces: &[ManifestNamespace]) -> Self {
        let mut p = Projects::default();
        for (org, o) in &bindings.orgs {
            for project in &o.projects {
                p.claim(
                    format!("{org}-{project}"),
                    Owner {
                        org: org.clone(),
                        project: Some(project.clone()),
                    },
                );
            }
        }
        for n in namespaces {
            if let Some(org) = &n.org {
                p.claim(
                    n.name.clone(),
                    Owner {
                        org: org.clone(),
                        project: n.project.clone(),
                    },
                );
            }
        }
        p
    }

    fn claim(&mut self, ns: String, owner: Owner) {
        let owners = self.claims.entry(ns).or_default();
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }

    /// The namespace's one owner.
    pub fn owner(&self, ns: &str) -> Result<&Owner, OwnerError> {
        match self.claims.get(ns).map(Vec::as_slice) {
            Some([one]) => Ok(one),
            Some(many) if !many.is_empty() => Err(OwnerError::Ambiguous(many.to_vec())),
            _ => Err(OwnerError::Unknown),
        }
    }

    /// The namespace of project `project` of `org`, when exactly one is.
    pub fn namespace_of(&self, org: &str, project: &str) -> Option<&str> {
        let mut found = self.claims.iter().filter(|(_, owners)| {
            owners
                .iter()
                .any(|o| o.org == org && o.project.as_deref() == Some(project))
        });
        let (ns, owners) = found.next()?;
        (owners.len() == 1 && found.next().is_none()).then_some(ns.as_str())
    }

    /// Every namespace that is ambiguous, for a warning at start.
    pub fn ambiguous(&self) -> impl Iterator<Item = &str> {
        self.claims
            .iter()
            .filter(|(_, o)| o.len() > 1)
            .map(|(ns, _)| ns.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_declared_never_guessed() {
        let b: Bindings = serde_norway::from_str(
            "orgs:\n  shalb: { projects: [x-y, demo] }\n  shalb-x: { projects: [y, z] }\n",
        )
        .unwrap();
        let ns = [ManifestNamespace {
            name: "sandbox".into(),
            org: Some("shalb".into()),
            project: None,
        }];
        let p = Projects::build(&b, &ns);
        assert_eq!(
            p.owner("shalb-demo").unwrap(),
            &Owner {
                org: "shalb".into(),
                project: Some("demo".into())
            }
        );
        assert_eq!(p.owner("shalb-x-z").unwrap().org, "shalb-x");
        // Claimed by shalb (project x-y) and shalb-x (project y).
        assert!(matches!(
            p.owner("shalb-x-y"),
            Err(OwnerError::Ambiguous(o)) if o.len() == 2
        ));
        assert_eq!(p.ambiguous().collect::<Vec<_>>(), ["shalb-x-y"]);
        assert_eq!(p.namespace_of("shalb", "x-y"), None);
        assert_eq!(p.namespace_of("shalb", "demo"), Some("shalb-demo"));
        // Not declared: unknown, whatever its name looks like.
        assert_eq!(p.owner("shalb-other"), Err(OwnerError::Unknown));
        assert_eq!(p.owner("sandbox").unwrap().project, None);
    }
}
