//! One change at a time per secret on an external engine (step 1 of the
//! write protocol), across every replica on one PostgreSQL database.
//!
//! Within a process a change waits for its secret's in-process mutex
//! (`Store::engine_turns`). On PostgreSQL it then also holds a session
//! advisory lock keyed by the secret for as long as it talks to the engine
//! and records the outcome, on a session of a small pool kept for that:
//! two replicas never write one secret's versions to OpenBao at once. The
//! lock is released by a thread of the pool (a turn may end on an async
//! thread, where the driver must not block); a session that dies releases
//! its locks with it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::Result;
use super::conn::{Slots, Source};
use super::db::Connection;

/// Turn sessions one replica holds at most: more changes at once wait for
/// one (they would take turns on the engine's connections anyway).
const MAX_TURN_SESSIONS: usize = 8;

/// The first key of the two-part advisory lock a secret's turn takes
/// (`'kd'`); the second is a hash of its namespace and name.
const TURN_CLASS: i32 = 0x6b64;

/// Sessions for turns, and the thread that ends them.
pub(super) struct TurnPool {
    source: Source,
    idle: Mutex<Vec<Connection>>,
    open: Slots,
    release: Mutex<mpsc::Sender<(Connection, i32)>>,
}

/// A turn held on PostgreSQL; released when dropped.
pub(super) struct SharedTurn {
    pool: Arc<TurnPool>,
    held: Option<(Connection, i32)>,
}

impl Drop for SharedTurn {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            let sent = self
                .pool
                .release
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(held);
            if sent.is_err() {
                // No releaser: the session closes, and its lock with it.
                self.pool.returned(None);
            }
        }
    }
}

impl TurnPool {
    pub(super) fn new(source: Source) -> Arc<Self> {
        let (tx, rx) = mpsc::channel::<(Connection, i32)>();
        let pool = Arc::new(TurnPool {
            source,
            idle: Mutex::default(),
            open: Slots::default(),
            release: Mutex::new(tx),
        });
        let weak = Arc::downgrade(&pool);
        let _ = std::thread::Builder::new()
            .name("kube-dc-store-turns".into())
            .spawn(move || {
                while let Ok((conn, key)) = rx.recv() {
                    let Some(pool) = weak.upgrade() else { return };
                    let unlocked = conn
                        .query_row(
                            "SELECT pg_advisory_unlock(?1, ?2)",
                            [TURN_CLASS, key],
                            |_| Ok(()),
                        )
                        .is_ok();
                    pool.returned(unlocked.then_some(conn));
                }
            });
        pool
    }

    /// A session back (or lost), and its place free.
    fn returned(&self, conn: Option<Connection>) {
        if let Some(c) = conn {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
        self.open.release();
    }

    /// Waits for the turn of secret `ns/name` (blocking).
    pub(super) fn take(self: &Arc<Self>, ns: &str, name: &str) -> Result<SharedTurn> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ns, name).hash(&mut h);
        let key = h.finish() as i32;
        self.open.acquire(MAX_TURN_SESSIONS);
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let locked = idle
            .map_or_else(|| self.source.reader(), Ok)
            .and_then(|conn| {
                conn.query_row("SELECT pg_advisory_lock(?1, ?2)", [TURN_CLASS, key], |_| {
                    Ok(())
                })?;
                Ok(conn)
            });
        match locked {
            Ok(conn) => Ok(SharedTurn {
                pool: self.clone(),
                held: Some((conn, key)),
            }),
            Err(e) => {
                self.returned(None);
                Err(e)
            }
        }
    }
}
