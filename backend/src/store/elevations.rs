//! Organization admin elevation windows.

use super::db::{OptionalExtension, Row};
use super::{AuditRecord, Result, Store, StoreError};
use crate::clock::{add_ms, rfc3339};
use kube_dc_api::wire::Grant;
use rusqlite::params;
use std::time::Duration;

impl Store {
    #[allow(clippy::too_many_arguments)]
    /// Opens a window of `ttl` for `user` in a project, recorded with its
    /// audit event.
    pub fn elevate(
        &self,
        user: &str,
        org: &str,
        project: &str,
        reason: &str,
        ttl: Duration,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<Grant> {
        let (user, org, project, reason) = (
            user.to_owned(),
            org.to_owned(),
            project.to_owned(),
            reason.to_owned(),
        );
        self.write(audit, move |_, tx| {
            let (user, org, project, reason) =
                (user.as_str(), org.as_str(), project.as_str(), reason.as_str());
            // A new elevation replaces the caller's active one.
            tx.exec(
                "UPDATE elevations SET released_at = ?4
                 WHERE \"user\" = ?1 AND org = ?2 AND project = ?3 AND released_at IS NULL AND expires_at > ?4",
                params![user, org, project, now],
            )?;
            let id = format!("elv-{}", uuid::Uuid::new_v4().simple());
            let expires = add_ms(now, ttl);
            tx.exec(
                "INSERT INTO elevations (id, \"user\", org, project, reason, granted_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, user, org, project, reason, now, expires],
            )?;
            Ok(grant(&id, user, org, project, reason, now, expires, None))
        })
    }

    /// The user's open window in the project at `now`, if any.
    pub fn active_elevation(
        &self,
        user: &str,
        org: &str,
        project: &str,
        now: i64,
    ) -> Result<Option<Grant>> {
        self.read(|c| {
            Ok(c.row(
                &format!(
                    "{SELECT_GRANT} WHERE \"user\" = ?1 AND org = ?2 AND project = ?3
                  AND released_at IS NULL AND expires_at > ?4 ORDER BY granted_at DESC LIMIT 1"
                ),
                params![user, org, project, now],
                grant_from_row,
            )
            .optional()?)
        })
    }

    /// Closes the user's open window in the project and answers it,
    /// recorded with its audit event.
    pub fn release(
        &self,
        user: &str,
        org: &str,
        project: &str,
        now: i64,
        audit: Option<&AuditRecord>,
    ) -> Result<Grant> {
        let (user, org, project) = (user.to_owned(), org.to_owned(), project.to_owned());
        self.write(audit, move |_, tx| {
            let (user, org, project) = (user.as_str(), org.as_str(), project.as_str());
            let g = tx
                .row(
                    &format!(
                        "{SELECT_GRANT} WHERE \"user\" = ?1 AND org = ?2 AND project = ?3
                      AND released_at IS NULL AND expires_at > ?4 ORDER BY granted_at DESC LIMIT 1"
                    ),
                    params![user, org, project, now],
                    grant_from_row,
                )
                .optional()?;
            // Nothing to release is the request's failure: the job fails, so
            // its event is not committed as allowed (the audit layer records
            // the refusal instead).
            let Some(mut g) = g else {
                return Err(StoreError::NotFound(format!(
                    "no active elevation for project {project:?}"
                )));
            };
            tx.exec(
                "UPDATE elevations SET released_at = ?2 WHERE id = ?1",
                params![g.elevation_id, now],
            )?;
            g.released_at = Some(rfc3339(now));
            Ok(g)
        })
    }

    /// Every window open in the organization at `now`.
    pub fn active_elevations(&self, org: &str, now: i64) -> Result<Vec<Grant>> {
        self.read(|c| {
            Ok(c.query_map(
                &format!(
                    "{SELECT_GRANT} WHERE org = ?1 AND released_at IS NULL AND expires_at > ?2 ORDER BY granted_at"
                ),
                params![org, now],
                grant_from_row,
            )?)
        })
    }
}

const SELECT_GRANT: &str = "SELECT id, \"user\", org, project, reason, granted_at, expires_at, released_at FROM elevations";

#[allow(clippy::too_many_arguments)]
fn grant(
    id: &str,
    user: &str,
    org: &str,
    project: &str,
    reason: &str,
    granted: i64,
    expires: i64,
    released: Option<i64>,
) -> Grant {
    Grant {
        elevation_id: id.into(),
        user: user.into(),
        org: org.into(),
        project: project.into(),
        reason: reason.into(),
        granted_at: rfc3339(granted),
        expires_at: rfc3339(expires),
        ttl_seconds: ((expires - granted) / 1000).max(0),
        released_at: released.map(rfc3339),
    }
}

fn grant_from_row(r: &Row) -> super::db::Result<Grant> {
    Ok(grant(
        &r.get::<String>(0)?,
        &r.get::<String>(1)?,
        &r.get::<String>(2)?,
        &r.get::<String>(3)?,
        &r.get::<String>(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}
