//! The project roles of the Secrets Manager and what each may do:
//!
//! | Role            | List | Read metadata | Reveal values | Write | Delete | Destroy |
//! |-----------------|------|---------------|---------------|-------|--------|---------|
//! | user            | yes  | yes           | no            | no    | no     | no      |
//! | developer       | yes  | yes           | yes           | yes   | soft   | no      |
//! | project-manager | yes  | yes           | yes           | yes   | yes    | no      |
//! | admin           | yes  | yes           | yes           | yes   | yes    | yes     |

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
/// A project role, as a binding grants it.
pub enum Role {
    /// Lists secrets and reads their metadata.
    User,
    /// Also reveals and writes values, and deletes (softly: the history
    /// is kept).
    Developer,
    /// As a developer here; the role table lists its delete as full where
    /// a developer's is soft.
    ProjectManager,
    /// Also restores soft-deleted secrets, and destroys secrets and
    /// versions irreversibly.
    Admin,
}

impl Role {
    /// The role's name in bindings and tokens (`project-manager`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Developer => "developer",
            Role::ProjectManager => "project-manager",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// An operation on a project's secrets, as the role table allows it.
pub enum Op {
    /// List the project's secrets.
    List,
    /// Read a secret's metadata, versions and consumers.
    ReadMetadata,
    /// Read a secret's values (an audited value read).
    RevealValues,
    /// Create a secret, write values, change sync or rotation.
    Write,
    /// Delete a secret (soft: its history is kept).
    Delete,
    /// Restore a soft-deleted secret.
    Restore,
    /// Destroy a secret, or a version, irreversibly.
    Destroy,
}

impl Op {
    /// What the operation is, for a denial's message.
    pub fn describe(self) -> &'static str {
        match self {
            Op::List => "list secrets",
            Op::ReadMetadata => "read secret metadata",
            Op::RevealValues => "reveal secret values",
            Op::Write => "write secrets",
            Op::Delete => "delete secrets",
            Op::Restore => "restore deleted secrets",
            Op::Destroy => "destroy secret values",
        }
    }

    /// The least project role that may do this.
    pub fn min_role(self) -> Role {
        match self {
            Op::List | Op::ReadMetadata => Role::User,
            Op::RevealValues | Op::Write | Op::Delete => Role::Developer,
            Op::Restore | Op::Destroy => Role::Admin,
        }
    }
}
