//! One writer per store, with group commit.
//!
//! Every change runs on one dedicated thread that owns the store's write
//! connection. It takes all the jobs waiting in its queue, runs each in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction (a failing job is
//! rolled back alone), commits once — one fsync for the whole batch — and
//! only then answers each job. So no change and no audit event is
//! acknowledged before it is durable, and a burst of N requests costs one
//! commit, not N. A job that checks everything before its first change (a
//! read and its audit event, a value write) needs no savepoint (see
//! [`Isolation::ChecksFirst`]). Callers wait on a
//! channel for the answer: async handlers on a oneshot, without holding a
//! thread; blocking callers on a `std::sync::mpsc` one. A durable batch may
//! linger a moment for
//! the jobs of value-engine calls under way, to share their fsync (see
//! `linger`).
//!
//! The writer never waits for an external value engine: its calls are made
//! before the job (the write protocol, `protocol`), and a job only records
//! what the engine is to do once its outcome is known ([`JobCtx::on_undo`],
//! [`JobCtx::after_commit`]), which its caller runs, on its own thread, before
//! it answers. (The in-process engine is called inside the job: it only
//! seals in memory.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use super::db::{Connection, Dialect};

use super::Values;
use super::audit_cache::AuditCache;
use super::known::KnownLive;
use super::linger::{Arrivals, Durable, LINGER, gather};
use super::{Result, StoreError};
use std::cell::RefCell;

/// What a job may use besides the connection.
pub(super) struct JobCtx {
    pub values: Arc<dyn Values>,
    /// Engine changes the running job made, to undo if it does not commit.
    undo: RefCell<Vec<Effect>>,
    /// Engine changes the running job asked for once it has committed.
    after: RefCell<Vec<Effect>>,
    /// The audit chain's heads and actor ids as this writer left them.
    pub audit: RefCell<AuditCache>,
    /// Counts this writer's commits, for the change stream to wake on.
    pub commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// What this batch's value writes left of the secrets they wrote.
    pub known: RefCell<KnownLive>,
}

/// A change to the value engine, run by the job's caller once the job's
/// outcome is known (never on the writer thread).
pub(super) type Effect = Box<dyn FnOnce() + Send>;

impl JobCtx {
    pub fn new(values: Arc<dyn Values>) -> Self {
        Self {
            values,
            undo: RefCell::default(),
            after: RefCell::default(),
            audit: RefCell::default(),
            commits: Arc::new(tokio::sync::watch::Sender::new(0)),
            known: RefCell::default(),
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
type Work = Box<dyn FnOnce(Option<(&JobCtx, &Connection)>) -> (bool, Answer) + Send>;

/// How a job's changes are kept apart from the rest of its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isolation {
    /// In its own savepoint: if the job fails, its changes are rolled back
    /// and the batch goes on.
    Savepoint,
    /// For a job that checks everything that can refuse it before its
    /// first change: reads, whose one change is their audit event, last
    /// (value reads, and the events of other requests), and value writes.
    /// No savepoint, which on SQLite would copy every page the job touches
    /// into a statement journal (3.6% of the backend's CPU on a value read,
    /// in `perf`), and on PostgreSQL costs two statements and a
    /// subtransaction per job. Such a job that fails has changed nothing
    /// (checked: if it has after all, that change cannot be undone alone,
    /// so the whole batch is rolled back and no job in it is acknowledged).
    ChecksFirst,
}

/// A query a job will make first, with its parameters: a batch's writer
/// on PostgreSQL reads them all ahead in one round trip
/// (`Connection::prefetch`).
pub(super) type Prefetch = (&'static str, Vec<rusqlite::types::Value>);

/// How the writer runs a job.
pub(super) struct Shape {
    pub isolation: Isolation,
    /// Its first query, to read ahead.
    pub prefetch: Option<Prefetch>,
    /// It keeps `JobCtx::known` up to date (a value write); before any
    /// other job, the writer forgets it.
    pub keeps_known: bool,
}

impl Shape {
    /// A change, in its own savepoint.
    pub const CHANGE: Shape = Shape {
        isolation: Isolation::Savepoint,
        prefetch: None,
        keeps_known: false,
    };

    /// A job that checks everything before its first change (a read whose
    /// one change is its audit event).
    pub const READ: Shape = Shape {
        isolation: Isolation::ChecksFirst,
        prefetch: None,
        keeps_known: false,
    };
}

struct Job {
    work: Work,
    shape: Shape,
    /// Whether the commit must reach the disk before the answer (always,
    /// except for the events of reads that reveal nothing, on a backend
    /// configured to relax those).
    durable: bool,
}

impl Durable for Job {
    fn durable(&self) -> bool {
        self.durable
    }
}

/// Jobs at most in one transaction (a bound on one batch's latency).
const MAX_BATCH: usize = 512;

pub(super) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    arrivals: Arc<Arrivals>,
}

impl Writer {
    pub fn start(conn: Connection, ctx: JobCtx) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let arrivals = Arc::new(Arrivals::default());
        let counted = arrivals.clone();
        let thread = std::thread::Builder::new()
            .name("kube-dc-store-writer".into())
            .spawn(move || serve(conn, ctx, rx, &counted))
            .map_err(|e| StoreError::Internal(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
            arrivals,
        })
    }

    /// The count of engine calls under way that this writer's batches wait
    /// for.
    pub fn arrivals(&self) -> &Arc<Arrivals> {
        &self.arrivals
    }

    /// Queues `f`; `reply` gets its result once the transaction it ran in
    /// has committed (or failed), with the engine steps that outcome calls
    /// for, which the caller runs. A `reply` dropped unsent means the
    /// writer stopped.
    pub fn submit<T: Send + 'static>(
        &self,
        durable: bool,
        shape: Shape,
        f: impl FnOnce(&JobCtx, &Connection) -> Result<T> + Send + 'static,
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
            let _ = q.send(Job {
                work,
                shape,
                durable,
            });
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
    match e {
        // The database is away: the caller may try again (503).
        StoreError::Unavailable {
            message,
            retry_after,
        } => StoreError::Unavailable {
            message: format!("the change was not saved: {message}"),
            retry_after: *retry_after,
        },
        e => StoreError::Internal(format!("the change was not saved: {e}")),
    }
}

/// A closed answer channel: the writer stopped.
pub(super) fn writer_gone() -> StoreError {
    StoreError::Internal("the store writer stopped".into())
}

/// One statement through the statement cache (parsed once).
fn run(conn: &Connection, sql: &str) -> super::db::Result<usize> {
    conn.execute(sql, ())
}

/// The advisory lock every replica's write transaction takes first on
/// PostgreSQL: writes from all replicas commit one transaction at a time,
/// as SQLite's write lock makes them on one machine. Version numbers,
/// check-and-set and each organization's chain head are then decided by
/// one writer at a time, in the transaction that records them.
const WRITE_LOCK: i64 = 0x6b75_6265_6463_0002;

fn serve(mut conn: Connection, ctx: JobCtx, rx: mpsc::Receiver<Job>, arrivals: &Arrivals) {
    let mut full_sync = true;
    while let Ok(first) = rx.recv() {
        let batch = gather(&rx, first, arrivals, LINGER, MAX_BATCH);
        let durable = batch.iter().any(|j| j.durable);
        if durable != full_sync && conn.dialect() == Dialect::Sqlite {
            let mode = if durable { "FULL" } else { "NORMAL" };
            if conn.pragma_update("synchronous", mode).is_ok() {
                full_sync = durable;
            }
        }
        if let Err(e) = conn.reconnect_if_closed() {
            let e = StoreError::from(e);
            for job in batch {
                let (_, answer) = (job.work)(None);
                answer(Some(&e));
            }
            continue;
        }
        run_batch(&conn, &ctx, batch);
    }
}

/// The batch's count in `write_epoch`, read once the batch counted itself.
const EPOCH_SQL: &str = "SELECT n FROM write_epoch";

/// Starts a batch's transaction holding the write lock, and reads ahead
/// what its jobs said they would read first (`ahead`). On PostgreSQL, in
/// one round trip, it also counts the batch in `write_epoch`: the count it
/// answers, one more than this writer's last commit, says no other replica
/// has written since, and what the writer keeps of the audit chains
/// (`audit_cache`) still holds.
fn begin(conn: &Connection, ahead: Vec<Prefetch>) -> super::db::Result<Option<i64>> {
    match conn.dialect() {
        Dialect::Sqlite => conn.execute_batch("BEGIN IMMEDIATE").map(|()| None),
        Dialect::Postgres => {
            // Held, and sent with the reads ahead (or the count's read).
            conn.control_later("BEGIN")?;
            conn.control_later(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?;
            conn.exec_later("UPDATE write_epoch SET n = n + 1", ())?;
            if !ahead.is_empty() {
                let mut all = Vec::with_capacity(ahead.len() + 1);
                all.push((EPOCH_SQL, Vec::new()));
                all.extend(ahead);
                conn.prefetch(&all)?;
            }
            conn.query_row(EPOCH_SQL, (), |r| r.get(0)).map(Some)
        }
    }
}

fn run_batch(conn: &Connection, ctx: &JobCtx, mut batch: Vec<Job>) {
    let ahead: Vec<Prefetch> = batch
        .iter_mut()
        .filter_map(|j| j.shape.prefetch.take())
        .collect();
    let epoch = match begin(conn, ahead) {
        Ok(epoch) => epoch,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let e = StoreError::from(e);
            for job in batch {
                let (_, answer) = (job.work)(None);
                answer(Some(&e));
            }
            return;
        }
    };
    // Holding the write lock: has another process committed since? On
    // SQLite `data_version` says; on PostgreSQL the epoch before this
    // batch's.
    let seen = match (epoch, conn.sqlite()) {
        (Some(n), _) => Some(n - 1),
        (None, Some(c)) => c
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .ok(),
        (None, None) => None,
    };
    match seen {
        Some(v) => ctx.audit.borrow_mut().start_batch(v),
        // Unknown: trust nothing kept.
        None => *ctx.audit.borrow_mut() = AuditCache::default(),
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut lost: Option<StoreError> = None;
    for job in batch {
        let savepoint = job.shape.isolation == Isolation::Savepoint;
        if !job.shape.keeps_known {
            ctx.known.borrow_mut().forget();
        }
        if lost.is_none()
            && savepoint
            && let Err(e) = conn.control_later("SAVEPOINT job")
        {
            lost = Some(StoreError::from(e));
        }
        if lost.is_some() {
            // The transaction is gone: nothing more runs in this batch.
            answers.push((job.work)(None).1);
            continue;
        }
        let changes = conn.total_changes();
        let (ok, answer) = (job.work)(Some((ctx, conn)));
        answers.push(answer);
        let undo = match (savepoint, ok) {
            (true, true) => conn
                .control_later("RELEASE job")
                .map(|()| 0)
                .map_err(StoreError::from),
            (true, false) => run(conn, "ROLLBACK TO job")
                .and_then(|_| run(conn, "RELEASE job"))
                .map_err(StoreError::from),
            (false, _) if ok || conn.total_changes() == changes => Ok(0),
            (false, _) => Err(StoreError::Internal(
                "a job that was to change nothing but its audit event failed after \
                 changing the database; the batch was rolled back"
                    .into(),
            )),
        };
        ctx.audit.borrow_mut().end_job(ok && undo.is_ok());
        ctx.known.borrow_mut().end_job(ok && undo.is_ok());
        if let Err(e) = undo {
            lost = Some(e);
        } else if conn.transaction_lost() {
            // SQLite rolled the whole transaction back (I/O error, disk
            // full), or a statement of a job without a savepoint failed on
            // PostgreSQL: nothing of the batch can commit.
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
            StoreError::from(e)
        }),
    };
    ctx.audit.borrow_mut().end_batch(failed.is_none());
    ctx.known.borrow_mut().forget();
    if let (Some(n), None) = (epoch, &failed) {
        // This commit is the epoch the next batch will find before its own.
        ctx.audit.borrow_mut().committed_at(n);
    }
    if failed.is_none() {
        ctx.commits.send_modify(|n| *n += 1);
    }
    // Each caller runs the engine steps its job's outcome calls for.
    for answer in answers {
        answer(failed.as_ref());
    }
}

/// Holds `writer` with a job that waits until the answer is sent to (or
/// dropped): the jobs queued meanwhile run as one batch.
#[cfg(test)]
pub(super) fn hold(writer: &Writer) -> mpsc::Sender<()> {
    let (go, wait) = mpsc::channel::<()>();
    let (held, holding) = mpsc::channel::<()>();
    writer.submit(
        true,
        Shape::CHANGE,
        move |_, _| {
            held.send(()).unwrap();
            let _ = wait.recv();
            Ok(())
        },
        |_, _| {},
    );
    holding.recv().unwrap();
    go
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::values::NoValues;

    type Step = (Isolation, i64, bool);

    /// Runs `steps` as one batch behind a job that holds the writer until
    /// they are all queued; each step inserts its number into `t`, then
    /// fails or not. Each step's outcome (`Err` text) and the rows left.
    fn one_batch(steps: &[Step]) -> (Vec<std::result::Result<(), String>>, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::Sqlite(rusqlite::Connection::open(&path).unwrap());
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER)")
            .unwrap();
        let writer = Writer::start(conn, JobCtx::new(Arc::new(NoValues))).unwrap();
        let go = hold(&writer);
        let mut answers = Vec::new();
        for &(isolation, x, fail) in steps {
            let (tx, rx) = mpsc::channel();
            writer.submit(
                true,
                Shape {
                    isolation,
                    ..Shape::CHANGE
                },
                move |_, c| {
                    if x > 0 {
                        c.execute("INSERT INTO t VALUES (?1)", [x])?;
                    }
                    if fail {
                        return Err(StoreError::Internal(format!("step {x} failed")));
                    }
                    Ok(())
                },
                move |r, _| tx.send(r.map_err(|e| e.to_string())).unwrap(),
            );
            answers.push(rx);
        }
        go.send(()).unwrap();
        let outcomes = answers.iter().map(|rx| rx.recv().unwrap()).collect();
        drop(writer);
        let rows = Connection::Sqlite(rusqlite::Connection::open(&path).unwrap())
            .query_map("SELECT x FROM t ORDER BY x", (), |r| r.get(0))
            .unwrap();
        (outcomes, rows)
    }

    #[test]
    fn a_failing_job_in_a_savepoint_is_rolled_back_alone() {
        let (out, rows) = one_batch(&[
            (Isolation::Savepoint, 1, false),
            (Isolation::Savepoint, 2, true),
            (Isolation::ChecksFirst, 3, false),
        ]);
        assert_eq!(out[0], Ok(()));
        assert_eq!(out[1], Err("step 2 failed".into()));
        assert_eq!(out[2], Ok(()));
        assert_eq!(rows, [1, 3]);
    }

    #[test]
    fn an_append_job_that_fails_having_changed_nothing_leaves_the_batch_alone() {
        let (out, rows) = one_batch(&[
            (Isolation::Savepoint, 1, false),
            (Isolation::ChecksFirst, 0, true),
            (Isolation::ChecksFirst, 3, false),
        ]);
        assert_eq!(out[0], Ok(()));
        assert_eq!(out[1], Err("step 0 failed".into()));
        assert_eq!(out[2], Ok(()));
        assert_eq!(rows, [1, 3]);
    }

    #[test]
    fn an_append_job_that_fails_after_a_change_rolls_the_whole_batch_back() {
        let (out, rows) = one_batch(&[
            (Isolation::Savepoint, 1, false),
            (Isolation::ChecksFirst, 2, true),
            (Isolation::Savepoint, 3, false),
        ]);
        // Its own error stands; the others were not saved, and say so.
        assert_eq!(out[1], Err("step 2 failed".into()));
        for o in [&out[0], &out[2]] {
            let e = o.as_ref().unwrap_err();
            assert!(
                e.starts_with("the change was not saved: a job that was to change nothing"),
                "{e}"
            );
        }
        assert_eq!(rows, Vec::<i64>::new());
    }
}
