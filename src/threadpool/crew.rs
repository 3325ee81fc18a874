//! The thread pool's crew: how many workers live, which are idle, who
//! wakes whom, and shutting down, under one mutex and one condvar. The
//! job queue itself is the caller's (a lock-free `Injector` in the pool, a
//! plain queue in the model tests); the crew only asks whether it is
//! empty.
//!
//! The rules, which `loom-tests/` model-checks (this very file, built
//! against loom's primitives under `cfg(loom)`):
//!
//! - a job is queued **before** [`Crew::submitted`] counts it, and a
//!   worker looks at the queue under the lock before it sleeps, so a job
//!   is never left queued while every worker sleeps: either the worker
//!   sees it, or the submitter finds the worker idle and wakes it;
//! - a submitter that wakes an idle worker claims it (`idle` → `wakeups`),
//!   so two submitters never both count on one sleeper;
//! - a new thread starts only when there are more jobs than workers and
//!   room under the limit;
//! - after [`Crew::shut_down`] workers finish every queued job, then exit.
//!
//! The file uses nothing of the crate, so the model tests include it as
//! it is.

#[cfg(loom)]
use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The counts, guarded by the crew's mutex.
#[derive(Default)]
struct Counts {
    /// Live worker threads.
    threads: usize,
    /// Jobs submitted and not finished (queued or running).
    pending: usize,
    /// Workers waiting on the condvar that no submitter has claimed yet.
    idle: usize,
    /// Wakeups a submitter has sent and no worker has consumed yet (a
    /// submitter that claims an idle worker moves it from `idle` here).
    wakeups: usize,
    /// The last handle is gone: drain the queue, then exit.
    shutdown: bool,
}

/// What a worker does next ([`Crew::next`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Take jobs from the queue.
    Work,
    /// Exit the thread (already uncounted).
    Exit,
}

/// The workers of one pool.
pub(crate) struct Crew {
    counts: Mutex<Counts>,
    cv: Condvar,
    max_threads: usize,
}

impl Crew {
    /// No workers yet; at most `max_threads` of them.
    pub(crate) fn new(max_threads: usize) -> Crew {
        Crew {
            counts: Mutex::new(Counts::default()),
            cv: Condvar::new(),
            max_threads,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        #[cfg(not(loom))]
        return self.counts.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(loom)]
        return self.counts.lock().unwrap();
    }

    /// The limit on worker threads.
    pub(crate) fn max_threads(&self) -> usize {
        self.max_threads
    }

    /// Live worker threads now.
    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    /// Counts a job the caller has just queued and makes sure a worker
    /// will take it: wakes (and claims) an idle worker, or returns true
    /// when the caller must start a new worker thread (already counted;
    /// call [`start_failed`](Self::start_failed) if that fails).
    pub(crate) fn submitted(&self) -> bool {
        let mut c = self.lock();
        c.pending += 1;
        if c.idle > 0 {
            c.idle -= 1;
            c.wakeups += 1;
            self.cv.notify_one();
            return false;
        }
        // With no idle worker, every worker runs a job or is between jobs
        // (it looks at the queue before it sleeps). As many workers as
        // jobs means one of them will take this job: a greenlet that
        // submits again right after its last result came back reuses that
        // worker instead of starting another.
        if c.pending <= c.threads || c.threads >= self.max_threads {
            return false;
        }
        c.threads += 1;
        true
    }

    /// A worker thread that [`submitted`](Self::submitted) asked for could
    /// not start. If no worker is left, nobody would ever run the queued
    /// jobs: `drop_one` is called, under the lock, until it returns false
    /// (it drops one queued job, which completes it as not run).
    pub(crate) fn start_failed(&self, mut drop_one: impl FnMut() -> bool) {
        let mut c = self.lock();
        c.threads -= 1;
        if c.threads == 0 {
            while drop_one() {
                c.pending -= 1;
            }
        }
    }

    /// A worker finished a job. Called before the job's waiter is woken,
    /// so that the waiter's next job finds this worker free instead of
    /// starting a thread.
    pub(crate) fn job_done(&self) {
        self.lock().pending -= 1;
    }

    /// A worker found the queue empty: sleeps until there is work, the
    /// pool shuts down, or it has been idle for `idle_timeout` (then it
    /// exits). `queue_is_empty` is asked under the lock.
    pub(crate) fn next(&self, queue_is_empty: impl Fn() -> bool, idle_timeout: Duration) -> Next {
        let mut c = self.lock();
        loop {
            if !queue_is_empty() {
                return Next::Work;
            }
            if c.shutdown {
                c.threads -= 1;
                return Next::Exit;
            }
            c.idle += 1;
            let (guard, res) = match self.cv.wait_timeout(c, idle_timeout) {
                Ok(r) => r,
                Err(e) => e.into_inner(),
            };
            c = guard;
            if c.wakeups > 0 {
                // Claimed by a submitter, which already took us out of
                // `idle`.
                c.wakeups -= 1;
                return Next::Work;
            }
            c.idle -= 1;
            if res.timed_out() && queue_is_empty() {
                c.threads -= 1;
                return Next::Exit;
            }
        }
    }

    /// The last handle is gone: every worker finishes the queued jobs and
    /// exits; none sleeps again.
    pub(crate) fn shut_down(&self) {
        let mut c = self.lock();
        c.shutdown = true;
        self.cv.notify_all();
    }
}
