//! Connections: where the store's database is, the settings every SQLite
//! connection shares, and the pool of read connections.

use super::db::{Connection, Pg};
use super::{Result, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

/// Read sessions one replica holds open on a PostgreSQL server at most
/// (besides its writer's): reads beyond them wait for one, so N replicas
/// need `N × (MAX_PG_READERS + 1)` of the server's `max_connections`.
pub(super) const MAX_PG_READERS: usize = 16;

/// A count of open read sessions that waits at its bound.
#[derive(Default)]
pub(super) struct Slots {
    open: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Slots {
    /// Waits until fewer than `max` are open, and counts one more.
    pub(super) fn acquire(&self, max: usize) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while *open >= max {
            open = self.freed.wait(open).unwrap_or_else(|p| p.into_inner());
        }
        *open += 1;
    }

    /// One fewer open; a waiter goes on.
    pub(super) fn release(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.freed.notify_one();
    }

    /// [`Slots::acquire`], released when the guard is dropped.
    fn take(&self, max: usize) -> SlotGuard<'_> {
        self.acquire(max);
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Where the store's database is.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server (its URL holds the password: never shown).
    Postgres(String),
}

impl Source {
    /// A new connection for reads.
    pub(super) fn reader(&self) -> Result<Connection> {
        match self {
            Source::Sqlite(path) => {
                let c = connect(path)?;
                c.pragma_update(None, "query_only", "ON")?;
                Ok(Connection::Sqlite(c))
            }
            Source::Postgres(url) => pg_connect(url),
        }
    }
}

/// A PostgreSQL session; a server that cannot be reached is a 503
/// (`StoreError::from`).
pub(super) fn pg_connect(url: &str) -> Result<Connection> {
    Pg::connect(url)
        .map(|pg| Connection::Postgres(Box::new(pg)))
        .map_err(StoreError::from)
}

impl Store {
    /// A read on a pooled connection.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _slot = matches!(self.source, Source::Postgres(_))
            .then(|| self.reader_slots.take(MAX_PG_READERS));
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.source.reader()?,
        };
        let out = f(&conn);
        // A PostgreSQL session that lost its server is not kept.
        let broken = matches!(&conn, Connection::Postgres(pg) if pg.is_closed());
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_IDLE_READERS && !broken {
            pool.push(conn);
        }
        out
    }

    /// Moves everything from the WAL into the main file and truncates the
    /// WAL, so erased pages are not kept in the log either (SQLite; a
    /// PostgreSQL server vacuums on its own).
    pub fn checkpoint(&self) -> Result<()> {
        self.read(|c| {
            if let Some(c) = c.sqlite() {
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            }
            Ok(())
        })
    }
}

/// A connection to the store's file with the settings every connection
/// shares. No connection checkpoints on close: closing must not write (a
/// read command leaves the files as it found them); the writer checkpoints
/// as it commits.
pub(super) fn connect(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}
