//! Group commit's delay: a durable batch of the store's writer lingers a
//! moment before it commits while calls to an external value engine are
//! under way ([`Arrivals`]). Each such call is followed by its caller's job
//! (a value read's audit event, a write's version), which then shares the
//! batch's fsync rather than pays for one of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A queued job, as far as lingering is concerned.
pub(super) trait Durable {
    /// Whether its commit must reach the disk before it is answered.
    fn durable(&self) -> bool;
}

/// How long a durable batch waits for the jobs of engine calls under way
/// before it commits (group commit's delay).
#[derive(Clone, Copy, Debug)]
pub(super) struct Linger {
    /// The longest a batch waits. Every durable commit is an fsync, whose
    /// cost is mostly per call (the disk's flush, waking its callers), so
    /// fewer, larger batches cost less CPU per request; a job waits at
    /// most this much longer, and only while engine calls are under way.
    pub max: Duration,
    /// A batch waits only while the engine is answering: if no engine
    /// call has answered for this long, those under way are slow (a hung
    /// node), and the batch commits without them.
    pub gap: Duration,
}

/// On B10 (value reads through OpenBao, 64 connections, 2 cores) a fixed
/// wait of 1, 2 and 4 ms took the writer from 50 µs of CPU per read to
/// 31–34, 28–29 and 21–23 µs; under that load calls finish every few
/// hundred µs, and each takes longer than 2 ms.
pub(super) const LINGER: Linger = Linger {
    max: Duration::from_millis(2),
    gap: Duration::from_millis(1),
};

/// Calls to an external value engine under way whose callers will then
/// queue a job (a value read's audit event, a write's version): what a
/// durable batch waits for, while the engine answers. Each is counted by
/// the [`Arriving`] held for the call. The SQLite engine makes no such
/// calls (its reads and writes are in the writer's jobs), so its batches
/// never wait.
#[derive(Debug)]
pub struct Arrivals {
    under_way: AtomicUsize,
    /// When a call last answered, in µs since `epoch`, plus one (0: none
    /// has yet).
    last_done: AtomicU64,
    epoch: Instant,
    /// The thread that waits (the writer's), woken when the last call
    /// under way finishes. Jobs coming in meanwhile do not wake it.
    waiter: std::sync::OnceLock<std::thread::Thread>,
}

impl Default for Arrivals {
    fn default() -> Self {
        Self {
            under_way: AtomicUsize::new(0),
            last_done: AtomicU64::new(0),
            epoch: Instant::now(),
            waiter: std::sync::OnceLock::new(),
        }
    }
}

impl Arrivals {
    /// Counts one engine call until the returned guard is dropped.
    pub fn arriving(self: &Arc<Self>) -> Arriving {
        self.under_way.fetch_add(1, Ordering::Relaxed);
        Arriving(self.clone())
    }

    /// µs since `epoch`, plus one (never 0).
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// How long a batch may still wait for calls under way: none if there
    /// are none, or none has answered for `gap`.
    fn worth_waiting(&self, gap: Duration) -> Option<Duration> {
        if self.under_way.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let last = self.last_done.load(Ordering::Relaxed);
        if last == 0 {
            return None;
        }
        let idle = self.now().saturating_sub(last);
        gap.checked_sub(Duration::from_micros(idle))
    }
}

/// One engine call under way (see [`Arrivals`]).
#[derive(Debug)]
pub struct Arriving(Arc<Arrivals>);

impl Arriving {
    /// The call has answered: the engine is answering. (A call that failed
    /// — a hung node's timeout — is only dropped: it does not keep batches
    /// waiting for others.)
    pub fn answered(self) {
        let a = &self.0;
        a.last_done.fetch_max(a.now(), Ordering::Relaxed);
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        let a = &self.0;
        if a.under_way.fetch_sub(1, Ordering::Relaxed) == 1
            && let Some(t) = a.waiter.get()
        {
            t.unpark();
        }
    }
}

/// The batch that starts with `first`: every job already queued and, for a
/// durable batch, those that come while engine calls are under way and the
/// engine is answering (at most `linger.max` in all). With no engine call
/// under way, or none answered of late, nothing waits. It sleeps rather
/// than waking for each job that comes: the last call under way to finish
/// wakes it, or its time is up.
pub(super) fn gather<J: Durable>(
    rx: &mpsc::Receiver<J>,
    first: J,
    arrivals: &Arrivals,
    linger: Linger,
    max_batch: usize,
) -> Vec<J> {
    let start = Instant::now();
    let mut batch = vec![first];
    arrivals.waiter.get_or_init(std::thread::current);
    loop {
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return batch,
            }
        }
        let left = linger.max.saturating_sub(start.elapsed());
        let wait = match arrivals.worth_waiting(linger.gap) {
            Some(w) if batch.len() < max_batch && batch.iter().any(J::durable) => w.min(left),
            _ => return batch,
        };
        if wait.is_zero() {
            return batch;
        }
        // Then look again: what came, and whether calls still finish.
        std::thread::park_timeout(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job is whether it is durable.
    impl Durable for bool {
        fn durable(&self) -> bool {
            *self
        }
    }

    fn job(durable: bool) -> bool {
        durable
    }

    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn a_durable_batch_waits_for_the_job_of_an_engine_call_under_way() {
        let arrivals = Arc::new(Arrivals::default());
        // The engine is answering: one call has, another is under way.
        arrivals.arriving().answered();
        let call = arrivals.arriving();
        let (tx, rx) = mpsc::channel();
        let caller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // A job comes, then the last call under way answers.
            tx.send(job(true)).unwrap();
            call.answered();
        });
        let linger = Linger {
            max: LONG,
            gap: LONG,
        };
        let batch = gather(&rx, job(true), &arrivals, linger, 512);
        caller.join().unwrap();
        assert_eq!(batch.len(), 2);
    }

    /// `gather` with `calls` under way, just after one answered or failed,
    /// with a long linger: how many jobs, and whether it came back well
    /// before the linger's end.
    fn gather_alone(durable: bool, calls: usize, answering: bool) -> (usize, bool) {
        let arrivals = Arc::new(Arrivals::default());
        let held: Vec<_> = (0..calls).map(|_| arrivals.arriving()).collect();
        // One call just ended: answered, or failed (a hung node's timeout).
        let ended = arrivals.arriving();
        if answering {
            ended.answered();
        } else {
            drop(ended);
        }
        let (_tx, rx) = mpsc::channel();
        let start = Instant::now();
        let linger = Linger {
            max: LONG,
            gap: LONG,
        };
        let batch = gather(&rx, job(durable), &arrivals, linger, 512);
        drop(held);
        (batch.len(), start.elapsed() < LONG / 2)
    }

    #[test]
    fn a_batch_does_not_wait_for_a_silent_engine_nor_when_nothing_is_under_way() {
        // A call under way, and none has answered (one just failed: a hung
        // node's timeout): no wait.
        assert_eq!(gather_alone(true, 1, false), (1, true));
        // No call under way: no wait, however recently one answered.
        assert_eq!(gather_alone(true, 0, true), (1, true));
        // A batch that needs no fsync has nothing to share.
        assert_eq!(gather_alone(false, 1, true), (1, true));
    }
}
