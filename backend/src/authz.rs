//! Who may do what: the role table (in `kube_dc_api::roles`) applied to
//! the bindings file and the caller's token.
//!
//! Organization admins see metadata in every project of their org and read
//! values only inside an active elevation window, unless they also hold a
//! project role.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::authn::Identity;

pub use kube_dc_api::roles::{Op, Role};

/// The bindings file: who has which role where.
///
/// ```yaml
/// orgAdminGroup: org-admin        # members are admins of the org in their `org` claim
/// orgs:
///   acme: { adminGroups: [acme-admins], adminUsers: [carol] }
/// bindings:
///   - { group: acme-devs, namespace: acme-demo, role: developer }
///   - { user: alice, namespace: "acme-*", role: admin }
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bindings {
    #[serde(default = "default_org_admin_group")]
    /// The token group that makes its members admins of the token's
    /// organization.
    pub org_admin_group: String,
    #[serde(default)]
    /// Each organization's admins and projects.
    pub orgs: BTreeMap<String, OrgAdmins>,
    #[serde(default)]
    /// Project roles, by user or group and namespace.
    pub bindings: Vec<Binding>,
}

fn default_org_admin_group() -> String {
    "org-admin".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
/// An organization's admins and projects.
pub struct OrgAdmins {
    #[serde(default)]
    /// Groups whose members are its admins.
    pub admin_groups: Vec<String>,
    #[serde(default)]
    /// Users (username, subject or email) who are its admins.
    pub admin_users: Vec<String>,
    /// The organization's projects: project P's namespace is `ORG-P`.
    #[serde(default)]
    pub projects: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// One role given to a user or a group in a namespace (or namespaces).
pub struct Binding {
    #[serde(default)]
    /// The group it is given to (exactly one of `group` and `user`).
    pub group: Option<String>,
    #[serde(default)]
    /// The user it is given to (username, subject or email).
    pub user: Option<String>,
    /// A namespace, or a prefix ending in `*`.
    pub namespace: String,
    /// The role.
    pub role: Role,
}

impl Bindings {
    /// Reads a bindings file (YAML), refusing a binding that names both or
    /// neither of a group and a user.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read bindings file {}: {e}", path.display()))?;
        let b: Bindings = serde_norway::from_str(&text)
            .map_err(|e| format!("bindings file {} is not valid: {e}", path.display()))?;
        for (i, bind) in b.bindings.iter().enumerate() {
            if bind.group.is_some() == bind.user.is_some() {
                return Err(format!(
                    "bindings file {}: binding {} must name exactly one of group or user",
                    path.display(),
                    i + 1
                ));
            }
        }
        Ok(b)
    }

    fn user_matches(id: &Identity, user: &str) -> bool {
        user == id.username || user == id.subject || (!id.email.is_empty() && user == id.email)
    }

    /// The caller's highest project role in a namespace.
    pub fn project_role(&self, id: &Identity, ns: &str) -> Option<Role> {
        self.bindings
            .iter()
            .filter(|b| match b.namespace.strip_suffix('*') {
                Some(prefix) => ns.starts_with(prefix),
                None => b.namespace == ns,
            })
            .filter(|b| {
                b.group.as_ref().is_some_and(|g| id.groups.contains(g))
                    || b.user.as_ref().is_some_and(|u| Self::user_matches(id, u))
            })
            .map(|b| b.role)
            .max()
    }

    /// Whether the caller administers the organization (by the token's
    /// group or the file's admins).
    pub fn is_org_admin(&self, id: &Identity, org: &str) -> bool {
        if id.org.as_deref() == Some(org) && id.groups.contains(&self.org_admin_group) {
            return true;
        }
        self.orgs.get(org).is_some_and(|o| {
            o.admin_groups.iter().any(|g| id.groups.contains(g))
                || o.admin_users.iter().any(|u| Self::user_matches(id, u))
        })
    }
}

/// Why a caller may do what they asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// A project role bound to the caller.
    ProjectRole(Role),
    /// An org admin; `elevated` when inside an elevation window.
    OrgAdmin {
        /// Inside an elevation window.
        elevated: bool,
    },
}

#[derive(Clone, Debug)]
/// A refusal (403): what was refused and what to do about it.
pub struct Denied {
    /// What was refused.
    pub message: String,
    /// What to do about it, if anything can be done.
    pub hint: Option<String>,
}

/// What decides whether a caller may perform an operation in a project.
pub struct Decision<'a> {
    /// The role bindings.
    pub bindings: &'a Bindings,
    /// The caller.
    pub id: &'a Identity,
    /// The project's organization.
    pub org: &'a str,
    /// The project.
    pub project: &'a str,
    /// The project's namespace.
    pub namespace: &'a str,
    /// Whether the caller has an active elevation for this project.
    pub elevated: bool,
    /// Whether value reads by org admins require elevation (false: "tag
    /// only" mode, reads are allowed and tagged when a window is open).
    pub enforce_elevation: bool,
}

impl Decision<'_> {
    /// Whether the caller may perform `op`: by project role, or as an
    /// organization admin (value reads inside an elevation window when it
    /// is enforced).
    pub fn check(&self, op: Op) -> Result<Access, Denied> {
        let role = self.bindings.project_role(self.id, self.namespace);
        if let Some(role) = role
            && role >= op.min_role()
        {
            return Ok(Access::ProjectRole(role));
        }
        let org_admin = self.bindings.is_org_admin(self.id, self.org);
        if org_admin {
            match op {
                Op::List | Op::ReadMetadata => {
                    return Ok(Access::OrgAdmin {
                        elevated: self.elevated,
                    });
                }
                Op::RevealValues if self.elevated || !self.enforce_elevation => {
                    return Ok(Access::OrgAdmin {
                        elevated: self.elevated,
                    });
                }
                Op::RevealValues => {
                    return Err(Denied {
                        message: format!(
                            "organization admins read values in project {:?} only inside an elevation window",
                            self.project
                        ),
                        hint: Some(format!(
                            "kube-dc orgs elevate {} --reason \"…\"",
                            self.project
                        )),
                    });
                }
                _ => {}
            }
        }
        let message = match role {
            Some(r) => format!(
                "role {} in project {:?} may not {} (needs {} or higher)",
                r.as_str(),
                self.project,
                op.describe(),
                op.min_role().as_str()
            ),
            None if org_admin => format!(
                "organization admins may not {} in project {:?} without a project role",
                op.describe(),
                self.project
            ),
            None => format!(
                "{} has no role in project {:?}",
                self.id.username, self.project
            ),
        };
        let hint = match role {
            Some(_) => Some(format!(
                "ask an admin of project {:?} to do it, or to give you the {} role",
                self.project,
                op.min_role().as_str()
            )),
            None => Some(format!(
                "ask an admin of project {:?} for a role there",
                self.project
            )),
        };
        Err(Denied { message, hint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, groups: &[&str], org: Option<&str>) -> Identity {
        Identity {
            subject: format!("sub-{user}"),
            username: user.into(),
            email: format!("{user}@example.com"),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            org: org.map(Into::into),
            namespaces: vec![],
        }
    }

    fn bindings() -> Bindings {
        serde_norway::from_str(
            r#"
orgs:
  my-org: { adminGroups: [my-admins] }
bindings:
  - { group: devs, namespace: acme-demo, role: developer }
  - { group: leads, namespace: acme-demo, role: project-manager }
  - { user: root, namespace: "acme-*", role: admin }
"#,
        )
        .unwrap()
    }

    #[test]
    fn highest_role_wins_and_globs_match() {
        let b = bindings();
        assert_eq!(
            b.project_role(&id("x", &["devs", "leads"], None), "acme-demo"),
            Some(Role::ProjectManager)
        );
        assert_eq!(
            b.project_role(&id("root", &[], None), "acme-other"),
            Some(Role::Admin)
        );
        assert_eq!(
            b.project_role(&id("x", &["devs"], None), "acme-other"),
            None
        );
    }

    #[test]
    fn org_admin_needs_elevation_for_values() {
        let b = bindings();
        let admin = id("oa", &["org-admin"], Some("acme"));
        let mut d = Decision {
            bindings: &b,
            id: &admin,
            org: "acme",
            project: "demo",
            namespace: "acme-demo",
            elevated: false,
            enforce_elevation: true,
        };
        assert!(d.check(Op::ReadMetadata).is_ok());
        let denied = d.check(Op::RevealValues).unwrap_err();
        assert!(denied.hint.unwrap().contains("orgs elevate demo"));
        assert!(d.check(Op::Write).is_err());
        d.elevated = true;
        assert_eq!(
            d.check(Op::RevealValues).unwrap(),
            Access::OrgAdmin { elevated: true }
        );
        d.elevated = false;
        d.enforce_elevation = false;
        assert!(d.check(Op::RevealValues).is_ok());
    }
}
