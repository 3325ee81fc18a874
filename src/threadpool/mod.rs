//! A pool of native threads for blocking work (gevent's `ThreadPool`).
//!
//! Some work cannot cooperate: a CPU-bound computation, a library that
//! makes blocking calls the hub cannot see, `getaddrinfo`. A
//! [`ThreadPool`] runs such closures on plain OS threads while only the
//! greenlet that asked for the result waits; the rest of the hub keeps
//! running.
//!
//! ```
//! use std::time::Duration;
//! let pool = greenrt::threadpool::ThreadPool::new(2);
//! let ticker = greenrt::spawn(|| {
//!     let mut ticks = 0;
//!     for _ in 0..5 {
//!         greenrt::sleep(Duration::from_millis(10));
//!         ticks += 1;
//!     }
//!     ticks
//! });
//! // Blocks this greenlet only: the ticker keeps ticking meanwhile.
//! let v = pool.apply(|| { std::thread::sleep(Duration::from_millis(100)); 42 });
//! assert_eq!(v, Ok(42));
//! assert!(ticker.dead());
//! ```
//!
//! # How results come back
//!
//! Each job shares a slot with its [`ThreadResult`]. A greenlet that waits
//! registers a [`RemoteWaker`] in the slot (under the slot's lock) and
//! parks; the worker stores the result under the same lock, takes the
//! wakers out, and wakes them through the hub's cross-thread queue. The
//! lock makes the order of "register" and "submit" irrelevant: a waiter
//! that comes late finds the result already there and never parks. A
//! waker is good for one park only, so every park registers a fresh one;
//! a waiter that stops waiting (timeout, kill) takes its waker back out
//! and drops it, which clears its registration in the hub. While a waker
//! sits in a slot the hub knows a thread may still wake it, so waiting on
//! a job is never reported as "would block forever".
//!
//! # Workers
//!
//! Threads are started lazily, one per submitted job that finds no idle
//! worker, up to the pool's size; a worker idle for the pool's idle timeout
//! (5 s by default) exits. Worker threads run plain closures and never get
//! a hub: a closure must not use greenrt's cooperative API (waiting on a
//! [`ThreadResult`] from a worker panics, which comes back as
//! [`ThreadError::Panicked`]).
//!
//! A panic in a closure is caught on the worker and comes back as
//! [`ThreadError::Panicked`] with the panic message; the worker survives.
//! The process's panic hook still runs for it, so by default Rust prints
//! the usual `thread 'greenrt-worker' panicked at ...` line: the pool does
//! not replace a process-wide hook to silence it, and the line names the
//! worker thread and the source location, which is what a reader of the
//! log needs.

mod crew;

use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};

use crew::{Crew, Next};

use crate::config;
use crate::hub::deliver;
use crate::hub::task::{WaitingOn, WakeReason};
use crate::hub::{self, RemoteWaker};

/// How long a worker waits for a job before it exits, unless the pool was
/// built with [`ThreadPool::with_idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The name every worker thread carries.
const WORKER_NAME: &str = "greenrt-worker";

// ===== errors =====

/// Why a [`ThreadResult`] has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadError {
    /// The closure panicked on the worker; the panic message.
    Panicked(String),
    /// The `timeout` of [`ThreadResult::get_timeout`] passed first; the
    /// job keeps running and its result can still be fetched.
    TimedOut,
    /// Nothing could ever wake the caller (gevent's `LoopExit`). Waiting
    /// for a queued or running job never ends this way; it is here for
    /// completeness of the hub's contract.
    WouldBlockForever,
    /// The value was already taken by an earlier `get`.
    ValueTaken,
    /// The job was dropped without running; the reason (for example, no
    /// worker thread could be started).
    NotRun(String),
}

impl fmt::Display for ThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadError::Panicked(m) => write!(f, "thread-pool job panicked: {m}"),
            ThreadError::TimedOut => f.write_str("timed out"),
            ThreadError::WouldBlockForever => f.write_str(crate::error::LOOP_EXIT_MESSAGE),
            ThreadError::ValueTaken => f.write_str("the job's value was already taken by get()"),
            ThreadError::NotRun(m) => write!(f, "thread-pool job never ran: {m}"),
        }
    }
}

impl std::error::Error for ThreadError {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks except an allocation
    // failure; the data is still consistent then.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ===== impl ThreadResult =====

/// What a job and the greenlets waiting for it share.
struct Slot<R> {
    result: Option<Result<R, ThreadError>>,
    /// Set once `get` has moved the value out.
    taken: bool,
    /// Parked waiters, each with an id so that it can take its own waker
    /// back.
    waiters: Vec<(u64, RemoteWaker)>,
}

type Shared<R> = Arc<Mutex<Slot<R>>>;

static NEXT_WAITER: AtomicU64 = AtomicU64::new(1);

/// Completes a job's slot: with the job's result, or, if the job is
/// dropped without running, with [`ThreadError::NotRun`], so that no
/// waiter is left parked forever.
struct Completer<R> {
    slot: Option<Shared<R>>,
    not_run: &'static str,
}

impl<R> Completer<R> {
    /// Stores the result and returns the waiters to wake.
    fn complete(mut self, r: Result<R, ThreadError>) -> Wakeups {
        match self.slot.take() {
            Some(slot) => store(&slot, r),
            None => Vec::new(),
        }
    }
}

impl<R> Drop for Completer<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let r = Err(ThreadError::NotRun(self.not_run.to_string()));
            for (_, w) in store(&slot, r) {
                w.wake();
            }
        }
    }
}

/// Waiters of a finished job, woken by the worker once it has counted
/// itself free again (see [`Inner::work`]).
type Wakeups = Vec<(u64, RemoteWaker)>;

fn store<R>(slot: &Shared<R>, r: Result<R, ThreadError>) -> Wakeups {
    let mut s = lock(slot);
    s.result = Some(r);
    std::mem::take(&mut s.waiters)
}

/// The pending result of a job submitted with [`ThreadPool::spawn`]
/// (gevent's `AsyncResult` as returned by `ThreadPool.spawn`).
///
/// Any greenlet may wait for it with [`get`](Self::get) or
/// [`get_timeout`](Self::get_timeout); only that greenlet blocks. It is
/// `Send`, so a greenlet on another thread's hub may wait for it too.
/// Dropping it does not cancel the job: the job still runs and its result
/// is dropped.
pub struct ThreadResult<R> {
    slot: Shared<R>,
}

impl<R> ThreadResult<R> {
    /// True once the job has finished (or failed), gevent's `ready()`.
    pub fn ready(&self) -> bool {
        let s = lock(&self.slot);
        s.result.is_some() || s.taken
    }

    /// Waits cooperatively for the job and takes its value (gevent's
    /// `get()`). The value moves out on the first successful call; later
    /// calls return [`ThreadError::ValueTaken`]. Kill and Timeout unwind
    /// the waiting greenlet as usual; the job is not affected.
    ///
    /// # Panics
    ///
    /// On a thread-pool worker thread, which has no hub to wait with.
    pub fn get(&self) -> Result<R, ThreadError> {
        self.wait_until(None)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`
    /// (`Err(ThreadError::TimedOut)`; the job keeps running).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, ThreadError> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Takes the outcome if there is one. A value moves out once; an
    /// error stays for later callers to see too.
    fn take(s: &mut Slot<R>) -> Option<Result<R, ThreadError>> {
        match s.result.take() {
            Some(Ok(v)) => {
                s.taken = true;
                Some(Ok(v))
            }
            Some(Err(e)) => {
                s.result = Some(Err(e.clone()));
                Some(Err(e))
            }
            None => s.taken.then_some(Err(ThreadError::ValueTaken)),
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<R, ThreadError> {
        assert!(
            !IN_WORKER.with(|w| w.get()),
            "greenrt: waiting for a ThreadResult on a thread-pool worker \
             (workers run plain closures and have no hub)"
        );
        loop {
            let id = NEXT_WAITER.fetch_add(1, Ordering::Relaxed);
            {
                let mut s = lock(&self.slot);
                if let Some(r) = Self::take(&mut s) {
                    return r;
                }
                // One waker per park: its token only matches this park.
                s.waiters.push((id, hub::with(|h| h.remote_waker())));
            }
            let p = hub::park_on(deadline, WaitingOn::Thread);
            let mine = {
                let mut s = lock(&self.slot);
                let i = s.waiters.iter().position(|(w, _)| *w == id);
                i.map(|i| s.waiters.swap_remove(i).1)
            };
            // A waker we take back was never fired: dropping it posts one
            // stale wake to our own hub, which clears its registration and
            // wakes nothing (the park it belonged to is over).
            drop(mine);
            if let Some(i) = p.interrupt {
                deliver(i);
            }
            match p.reason {
                WakeReason::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let mut s = lock(&self.slot);
                    return Self::take(&mut s).unwrap_or(Err(ThreadError::TimedOut));
                }
                WakeReason::LoopExit => return Err(ThreadError::WouldBlockForever),
                _ => {}
            }
        }
    }
}

impl<R> fmt::Debug for ThreadResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThreadResult {{ ready: {} }}", self.ready())
    }
}

// ===== impl ThreadPool =====

/// Runs the closure, stores its outcome, returns the waiters to wake.
type Job = Box<dyn FnOnce() -> Wakeups + Send>;

struct Inner {
    // Jobs come only from outside the pool (greenlets on hub threads) and
    // never spawn sub-jobs, so per-worker Worker/Stealer deques would
    // always be empty: the Injector is the whole queue. Workers take one
    // job at a time (`steal`, not `steal_batch`), because jobs are
    // blocking calls of unknown length and a batch held by one blocked
    // worker would wait while its siblings sit idle.
    injector: Injector<Job>,
    crew: Crew,
    idle_timeout: Duration,
}

thread_local! {
    /// Set on worker threads, which must never create a hub.
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// This thread's default pool, with the fork generation it was made in.
    static DEFAULT_POOL: RefCell<Option<(u64, ThreadPool)>> = const { RefCell::new(None) };
}

impl Inner {
    fn pop(&self) -> Option<Job> {
        loop {
            match self.injector.steal() {
                Steal::Success(j) => return Some(j),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// Queues a job and makes sure a worker will take it.
    fn submit(self: &Arc<Self>, job: Job) {
        self.injector.push(job);
        if !self.crew.submitted() {
            return;
        }
        let me = self.clone();
        let started = crate::hub::spawn_internal_thread(WORKER_NAME, move || me.work());
        if let Err(e) = started {
            config::log(
                config::LogLevel::Error,
                format_args!("cannot start a thread-pool worker: {e}"),
            );
            // Dropping a job completes it with ThreadError::NotRun.
            self.crew.start_failed(|| self.pop().map(drop).is_some());
        }
    }

    /// A worker thread's body.
    fn work(&self) {
        IN_WORKER.with(|w| w.set(true));
        loop {
            while let Some(job) = self.pop() {
                // Jobs catch their own panics; this only keeps the worker
                // alive should one escape anyway.
                let wake = panic::catch_unwind(AssertUnwindSafe(job)).unwrap_or_default();
                // Count ourselves free before the waiter can run and submit
                // its next job, so that job finds us instead of a new thread.
                self.crew.job_done();
                for (_, w) in wake {
                    w.wake();
                }
            }
            if self.crew.next(|| self.injector.is_empty(), self.idle_timeout) == Next::Exit {
                return;
            }
        }
    }
}

/// Shuts the pool down when the last [`ThreadPool`] handle goes.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.crew.shut_down();
    }
}

/// A pool of up to `n` native threads that run blocking closures while
/// only the calling greenlet waits (gevent's `gevent.threadpool.ThreadPool`).
///
/// Cloning gives another handle to the same pool; the handle is `Send` and
/// `Sync`, and any thread's greenlets may submit to it. When the last
/// handle is dropped the pool shuts down without blocking the dropping
/// thread: workers finish the jobs already queued, then exit.
#[derive(Clone)]
pub struct ThreadPool {
    owner: Arc<Owner>,
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads, started lazily; idle
    /// workers exit after [`DEFAULT_IDLE_TIMEOUT`] (gevent's
    /// `ThreadPool(maxsize)`).
    ///
    /// # Panics
    ///
    /// If `max_threads` is 0.
    pub fn new(max_threads: usize) -> ThreadPool {
        ThreadPool::with_idle_timeout(max_threads, DEFAULT_IDLE_TIMEOUT)
    }

    /// Like [`new`](Self::new), with workers that exit after `idle` without
    /// a job.
    ///
    /// # Panics
    ///
    /// If `max_threads` is 0.
    pub fn with_idle_timeout(max_threads: usize, idle: Duration) -> ThreadPool {
        assert!(max_threads > 0, "greenrt: a ThreadPool needs at least one thread");
        ThreadPool {
            owner: Arc::new(Owner {
                inner: Arc::new(Inner {
                    injector: Injector::new(),
                    crew: Crew::new(max_threads),
                    idle_timeout: idle,
                }),
            }),
        }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.owner.inner
    }

    /// The most threads the pool runs at once (gevent's `maxsize`).
    pub fn max_threads(&self) -> usize {
        self.inner().crew.max_threads()
    }

    /// Worker threads alive now (gevent's `size`): 0 until the first job,
    /// and again once every worker has been idle for the idle timeout.
    pub fn threads(&self) -> usize {
        self.inner().crew.threads()
    }

    /// Queues `f` to run on a worker and returns at once with a handle to
    /// its result (gevent's `ThreadPool.spawn`). Callable from any thread;
    /// never blocks.
    pub fn spawn<R, F>(&self, f: F) -> ThreadResult<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot: Shared<R> = Arc::new(Mutex::new(Slot {
            result: None,
            taken: false,
            waiters: Vec::new(),
        }));
        let done = Completer {
            slot: Some(slot.clone()),
            not_run: "the job was dropped before a worker could run it \
                      (no worker thread could be started)",
        };
        self.inner().submit(Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f))
                .map_err(|p| ThreadError::Panicked(crate::hub::payload_message(&*p)));
            done.complete(r)
        }));
        ThreadResult { slot }
    }

    /// Runs `f` on a worker and returns its result, blocking only the
    /// calling greenlet (gevent's `ThreadPool.apply`). A panic in `f`
    /// comes back as [`ThreadError::Panicked`].
    ///
    /// If the caller is killed (or its Timeout fires) meanwhile, it unwinds
    /// at once; `f` still runs to completion on the worker and its result
    /// is dropped there.
    ///
    /// # Panics
    ///
    /// On a thread-pool worker thread (see [`ThreadResult::get`]).
    pub fn apply<R, F>(&self, f: F) -> Result<R, ThreadError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn(f).get()
    }
}

impl PartialEq for ThreadPool {
    /// Two handles are equal when they name the same pool.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.owner, &other.owner)
    }
}

impl Eq for ThreadPool {}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ThreadPool {{ threads: {}, max_threads: {} }}",
            self.threads(),
            self.max_threads()
        )
    }
}

/// This thread's default pool (gevent's `get_hub().threadpool`), created on
/// first use with `GREENRT_THREADPOOL_SIZE` threads. Each thread (each hub)
/// has its own; it shuts down when the thread exits. In the child of a
/// fork it is a new pool: the inherited one's workers do not exist there.
pub fn default_pool() -> ThreadPool {
    DEFAULT_POOL.with(|p| {
        let generation = hub::fork_generation();
        let mut p = p.borrow_mut();
        if let Some((g, pool)) = &*p {
            if *g == generation {
                return pool.clone();
            }
        }
        // Inherited across a fork: leak it rather than drop it, because
        // dropping takes its lock, which a parent's worker may have held
        // when the process forked.
        if let Some((_, old)) = p.take() {
            std::mem::forget(old);
        }
        let pool = ThreadPool::new(config::get().threadpool_size);
        *p = Some((generation, pool.clone()));
        pool
    })
}
