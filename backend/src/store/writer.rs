//! One writer per store, with group commit.
//!
//! Every change runs on one dedicated thread that owns the store's write
//! connection. It takes all the jobs waiting in its queue, runs each in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction (a failing job is
//! rolled back alone), commits once — one fsync for the whole batch — and
//! only then answers each job. So no change and no audit event is
//! acknowledged before it is durable, and a burst of N requests costs one
//! commit, not N. Callers wait on a oneshot channel: async handlers without
//! holding a thread, blocking callers with `blocking_recv`.
//!
//! The writer never waits for the value engine: a job only records what
//! the engine is to do once its outcome is known ([`Ctx::on_undo`],
//! [`Ctx::after_commit`]), and its caller runs those steps, on its own
//! thread, before it answers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;

use super::Values;
use super::audit_cache::AuditCache;
use super::{Result, StoreError};
use std::cell::RefCell;

/// What a job may use besides the connection.
pub(super) struct Ctx {
    pub values: Arc<dyn Values>,
    /// Engine changes the running job made, to undo if it does not commit.
    undo: RefCell<Vec<Effect>>,
    /// Engine changes the running job asked for once it has committed.
    after: RefCell<Vec<Effect>>,
    /// The audit chain's heads and actor ids as this writer left them.
    pub audit: RefCell<AuditCache>,
}

/// A change to the value engine, run by the job's caller once the job's
/// outcome is known (never on the writer thread).
pub(super) type Effect = Box<dyn FnOnce() + Send>;

impl Ctx {
    pub fn new(values: Arc<dyn Values>) -> Self {
        Self {
            values,
            undo: RefCell::default(),
            after: RefCell::default(),
            audit: RefCell::default(),
        }
    }

    /// `f` undoes an engine change of this job if the job fails or its
    /// transaction does not commit.
    pub fn on_undo(&self, f: impl FnOnce() + Send + 'static) {
        self.undo.borrow_mut().push(Box::new(f));
    }

    /// `f` runs once this job's transaction (with its audit event) has
    /// committed: engine changes that cannot be undone (destroys).
    pub fn after_commit(&self, f: impl FnOnce() + Send + 'static) {
        self.after.borrow_mut().push(Box::new(f));
    }

    fn take(&self) -> (Vec<Effect>, Vec<Effect>) {
        (self.undo.take(), self.after.take())
    }
}

/// Runs a job's engine steps, undo steps newest first.
pub(super) fn run_effects(effects: Effects) {
    match effects {
        Effects::Undo(u) => u.into_iter().rev().for_each(|e| e()),
        Effects::After(a) => a.into_iter().for_each(|e| e()),
    }
}

/// The engine steps a job's outcome calls for.
pub(super) enum Effects {
    /// It failed, or its batch did not commit.
    Undo(Vec<Effect>),
    /// It committed.
    After(Vec<Effect>),
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        match self {
            Effects::Undo(v) | Effects::After(v) => v.is_empty(),
        }
    }
}

/// Sends the job's answer once its batch has committed (or not).
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// Runs the job inside the batch's transaction (or, given nothing, skips it
/// because the batch failed): whether it succeeded (else its savepoint is
/// rolled back) and how to answer it.
type Work = Box<dyn FnOnce(Option<(&Ctx, &Connection)>) -> (bool, Answer) + Send>;

struct Job {
    work: Work,
    /// Whether the commit must reach the disk before the answer (always,
    /// except for the events of reads that reveal nothing, on a backend
    /// configured to relax those).
    durable: bool,
}

/// Jobs at most in one transaction (a bound on one batch's latency).
const MAX_BATCH: usize = 512;

pub(super) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(conn: Connection, ctx: Ctx) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kube-dc-store-writer".into())
            .spawn(move || serve(conn, ctx, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `f`; `reply` gets its result once the transaction it ran in
    /// has committed (or failed), with the engine steps that outcome calls
    /// for, which the caller runs. A `reply` dropped unsent means the
    /// writer stopped.
    pub fn submit<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Ctx, &Connection) -> Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T>, Effects) + Send + 'static,
    ) {
        let work: Work = Box::new(move |run| {
            // None: skipped, because its batch failed before it ran.
            let (out, (undo, after)) = match run {
                Some((ctx, conn)) => {
                    let out =
                        catch_unwind(AssertUnwindSafe(|| f(ctx, conn))).unwrap_or_else(|_| {
                            Err(StoreError::Internal("a store job panicked".into()))
                        });
                    (Some(out), ctx.take())
                }
                None => (None, Default::default()),
            };
            let ok = matches!(out, Some(Ok(_)));
            let answer: Answer = Box::new(move |batch_failed| {
                // A job's own error stands; a success stands only if the
                // batch committed.
                match (out, batch_failed) {
                    (Some(Err(e)), _) => reply(Err(e), Effects::Undo(undo)),
                    (Some(Ok(v)), None) => reply(Ok(v), Effects::After(after)),
                    (_, Some(e)) => reply(Err(not_saved(e)), Effects::Undo(undo)),
                    (None, None) => reply(Err(writer_gone()), Effects::Undo(undo)),
                }
            });
            (ok, answer)
        });
        if let Some(q) = &self.queue {
            // A send fails only if the writer thread is gone; the dropped
            // job's sender then closes the receiver, which reports it.
            let _ = q.send(Job { work, durable });
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered every job.
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn not_saved(e: &StoreError) -> StoreError {
    StoreError::Internal(format!("the change was not saved: {e}"))
}

/// A closed answer channel: the writer stopped.
pub(super) fn writer_gone() -> StoreError {
    StoreError::Internal("the store writer stopped".into())
}

/// One statement through the statement cache (parsed once).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn serve(conn: Connection, ctx: Ctx, rx: mpsc::Receiver<Job>) {
    let mut full_sync = true;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|j| j.durable);
        if durable != full_sync {
            let mode = if durable { "FULL" } else { "NORMAL" };
            if conn.pragma_update(None, "synchronous", mode).is_ok() {
                full_sync = durable;
            }
        }
        run_batch(&conn, &ctx, batch);
    }
}

fn run_batch(conn: &Connection, ctx: &Ctx, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = StoreError::Db(e);
        for job in batch {
            let (_, answer) = (job.work)(None);
            answer(Some(&e));
        }
        return;
    }
    // Holding the write lock: has another process committed since?
    match conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) {
        Ok(v) => ctx.audit.borrow_mut().start_batch(v),
        // Unknown: trust nothing kept.
        Err(_) => *ctx.audit.borrow_mut() = AuditCache::default(),
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut lost: Option<StoreError> = None;
    for job in batch {
        if lost.is_none()
            && let Err(e) = run(conn, "SAVEPOINT job")
        {
            lost = Some(StoreError::Db(e));
        }
        if lost.is_some() {
            // The transaction is gone: nothing more runs in this batch.
            answers.push((job.work)(None).1);
            continue;
        }
        let (ok, answer) = (job.work)(Some((ctx, conn)));
        answers.push(answer);
        let undo = if ok {
            run(conn, "RELEASE job")
        } else {
            run(conn, "ROLLBACK TO job").and_then(|_| run(conn, "RELEASE job"))
        };
        ctx.audit.borrow_mut().end_job(ok && undo.is_ok());
        if let Err(e) = undo {
            lost = Some(StoreError::Db(e));
        } else if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, disk full).
            lost = Some(StoreError::Internal(
                "the database rolled the transaction back".into(),
            ));
        }
    }
    let failed = match lost {
        Some(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Some(e)
        }
        None => conn.execute_batch("COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            StoreError::Db(e)
        }),
    };
    ctx.audit.borrow_mut().end_batch(failed.is_none());
    // Each caller runs the engine steps its job's outcome calls for.
    for answer in answers {
        answer(failed.as_ref());
    }
}
