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
pub enum Role {
    User,
    Developer,
    ProjectManager,
    Admin,
}

impl Role {
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
pub enum Op {
    List,
    ReadMetadata,
    RevealValues,
    Write,
    Delete,
    Restore,
    Destroy,
}

impl Op {
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
