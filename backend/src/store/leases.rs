//! Work that one replica at a time must do (scheduled rotations, the
//! start-up reconciliation with OpenBao, periodic checkpoints) runs under a
//! lease: a row naming its holder until a time. A holder renews it each
//! time it does the work; when it dies, the lease runs out and the next
//! replica to ask takes it over. Times are the database server's, so the
//! replicas' clocks need not agree.
//!
//! On SQLite there is one machine and no lease: every process may do the
//! work, as before (each step of it is a transaction that finds what is
//! still to do).

use super::db::{Dialect, OptionalExtension};
use super::{Result, Store};

/// The database server's time in epoch milliseconds.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl Store {
    /// Whether this replica (`holder`) holds the lease `name` for the next
    /// `ttl_ms`: taken if free or run out, renewed if already held.
    pub fn lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(true);
        }
        self.read(|c| {
            let held: Option<String> = c
                .query_row(
                    &format!(
                        "INSERT INTO leases (name, holder, expires) VALUES (?1, ?2, {NOW_MS} + ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                             expires = excluded.expires
                         WHERE leases.holder = excluded.holder OR leases.expires < {NOW_MS}
                         RETURNING holder"
                    ),
                    rusqlite::params![name, holder, ttl_ms],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(held.as_deref() == Some(holder))
        })
    }

    /// Gives the lease up now, if `holder` holds it (the work is done).
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(());
        }
        self.read(|c| {
            c.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                rusqlite::params![name, holder],
            )?;
            Ok(())
        })
    }

    /// Whether the database answers (for `/readyz`).
    pub fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", (), |_| Ok(()))?))
    }
}
