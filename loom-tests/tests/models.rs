//! Model tests of the runtime's cross-thread protocols with loom, which
//! runs each model under every interleaving of its threads (bounded by the
//! number of preemptions) and fails on a deadlock, a panic or a data race.
//!
//! Each protocol lives in a file of the runtime that uses nothing of the
//! crate; the files are included here as they are and built against
//! loom's primitives (`cfg(loom)`):
//!
//! - `src/hub/mailbox.rs`: the hub's remote queue (post, take, close) and
//!   the remote waker (`OnceSend`);
//! - `src/threadpool/crew.rs`: thread-pool workers, wakeups and shutdown;
//! - `src/signal/pending.rs`: the signal counters and the self-pipe.
//!
//! A lost wakeup shows up as a deadlock: the consumer waits for a wake
//! nobody will send. The `*_is_caught` tests run a deliberately wrong
//! order (in a child process) and expect loom to report the deadlock, so
//! the models are known to bite.
//!
//! Run with `make test-loom` (`RUSTFLAGS="--cfg loom"`); without the cfg
//! this file is empty.

#![cfg(loom)]

#[allow(dead_code)]
#[path = "../../src/hub/mailbox.rs"]
mod mailbox;

#[allow(dead_code)]
#[path = "../../src/threadpool/crew.rs"]
mod crew;

#[allow(dead_code)]
#[path = "../../src/signal/pending.rs"]
mod pending;

use std::collections::VecDeque;
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crew::{Crew, Next};
use mailbox::{Mailbox, OnceSend, Wake};
use pending::{Pending, SelfPipe};

/// A readiness flag with a condvar: the eventfd or self-pipe of the real
/// code (readable after a poke, cleared by a drain).
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Flag {
    fn raise(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn clear(&self) {
        *self.set.lock().unwrap() = false;
    }

    /// Blocks until raised (does not clear).
    fn wait(&self) {
        let mut s = self.set.lock().unwrap();
        while !*s {
            s = self.cv.wait(s).unwrap();
        }
    }
}

impl Wake for Flag {
    fn wake(&self) {
        self.raise();
    }
}

impl SelfPipe for Flag {
    fn poke(&self) {
        self.raise();
    }

    fn drain(&self) {
        self.clear();
    }
}

/// Runs the deliberately wrong model `name` in a child process (loom's
/// deadlock report unwinds through its own machinery and aborts, so it
/// cannot be caught in-process) and checks that loom reported it.
fn expect_caught(name: &str, wrong: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os("GREENRT_LOOM_CONTROL").is_some_and(|v| v == name) {
        model(wrong);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("GREENRT_LOOM_CONTROL", name)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loom found nothing wrong in {name}");
    assert!(
        err.contains("deadlock"),
        "{name}: expected loom to report a deadlock; stderr:\n{err}"
    );
}

/// A model with a preemption bound that keeps each under a few seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// The hub's loop over its mailbox, in the real order: wait for the wake,
/// clear it, then take (scheduler.rs `poll_io`).
fn hub_receives(mb: &Mailbox<u32, Flag>, want: usize) -> Vec<u32> {
    let mut got = Vec::new();
    while got.len() < want {
        mb.waker().wait();
        mb.waker().clear();
        got.extend(mb.take());
    }
    got
}

/// `n` threads, each posting its index once.
fn spawn_posters(mb: &Arc<Mailbox<u32, Flag>>, n: u32) -> Vec<thread::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let mb = mb.clone();
            thread::spawn(move || mb.post(i).unwrap())
        })
        .collect()
}

#[test]
fn mailbox_wakes_the_hub_for_every_message() {
    model(|| {
        let mb = Arc::new(Mailbox::new(Flag::default()));
        let posters = spawn_posters(&mb, 2);
        let mut got = hub_receives(&mb, 2);
        for p in posters {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, [0, 1]);
        assert!(mb.take().is_empty());
    });
}

#[test]
fn mailbox_take_before_clear_is_caught() {
    expect_caught("mailbox_take_before_clear_is_caught", || {
        let mb = Arc::new(Mailbox::new(Flag::default()));
        let posters = spawn_posters(&mb, 2);
        let mut got = 0;
        while got < 2 {
            mb.waker().wait();
            got += mb.take().len(); // wrong: a post landing here ...
            mb.waker().clear(); // ... has its wake cleared
        }
        for p in posters {
            p.join().unwrap();
        }
    });
}

#[test]
fn mailbox_close_accounts_for_every_post() {
    model(|| {
        let mb = Arc::new(Mailbox::new(Flag::default()));
        let poster = {
            let mb = mb.clone();
            thread::spawn(move || mb.post(7).is_ok())
        };
        let left = mb.close();
        let accepted = poster.join().unwrap();
        // Accepted before the close: handed back by it. Refused after.
        assert_eq!(left.len(), usize::from(accepted));
        assert!(mb.is_closed());
        assert_eq!(mb.post(8), Err(8));
    });
}

#[test]
fn remote_waker_posts_exactly_once_by_send_or_by_drop() {
    for send in [true, false] {
        model(move || {
            let mb = Arc::new(Mailbox::new(Flag::default()));
            let waker = OnceSend::new(mb.clone(), 42u32);
            let worker = thread::spawn(move || {
                if send {
                    waker.send();
                } else {
                    drop(waker); // a worker that panicked
                }
            });
            assert_eq!(hub_receives(&mb, 1), [42]);
            worker.join().unwrap();
            assert!(mb.take().is_empty(), "posted twice");
        });
    }
}

/// A pool of the crew plus a plain queue of job ids; `done` counts run
/// jobs and wakes the waiter.
struct Pool {
    crew: Crew,
    queue: Mutex<VecDeque<u32>>,
    done: Mutex<usize>,
    done_cv: Condvar,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
    started: AtomicUsize,
}

impl Pool {
    fn new(max_threads: usize) -> Arc<Pool> {
        Arc::new(Pool {
            crew: Crew::new(max_threads),
            queue: Mutex::new(VecDeque::new()),
            done: Mutex::new(0),
            done_cv: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
        })
    }

    /// `Inner::submit`: queue, then count; start a worker if told to.
    fn submit(pool: &Arc<Pool>, job: u32) {
        pool.queue.lock().unwrap().push_back(job);
        if pool.crew.submitted() {
            pool.started.fetch_add(1, Ordering::Relaxed);
            let me = pool.clone();
            let h = thread::spawn(move || me.work());
            pool.workers.lock().unwrap().push(h);
        }
    }

    /// `Inner::work`.
    fn work(&self) {
        loop {
            loop {
                let job = self.queue.lock().unwrap().pop_front();
                if job.is_none() {
                    break;
                }
                self.crew.job_done();
                *self.done.lock().unwrap() += 1;
                self.done_cv.notify_all();
            }
            let empty = || self.queue.lock().unwrap().is_empty();
            if self.crew.next(empty, Duration::from_secs(10)) == Next::Exit {
                return;
            }
        }
    }

    fn wait_done(&self, n: usize) {
        let mut d = self.done.lock().unwrap();
        while *d < n {
            d = self.done_cv.wait(d).unwrap();
        }
    }

    fn join_workers(&self) {
        let hs = std::mem::take(&mut *self.workers.lock().unwrap());
        for h in hs {
            h.join().unwrap();
        }
    }
}

#[test]
fn threadpool_runs_every_job_without_a_lost_wakeup() {
    model(|| {
        let pool = Pool::new(2);
        let other = {
            let pool = pool.clone();
            thread::spawn(move || Pool::submit(&pool, 1))
        };
        Pool::submit(&pool, 2);
        other.join().unwrap();
        // Deadlocks if a job sits queued while every worker sleeps.
        pool.wait_done(2);
        assert!(pool.started.load(Ordering::Relaxed) <= 2);
        pool.crew.shut_down();
        pool.join_workers();
        assert_eq!(pool.crew.threads(), 0);
    });
}

#[test]
fn threadpool_shutdown_drains_the_queue_then_every_worker_exits() {
    model(|| {
        let pool = Pool::new(1);
        Pool::submit(&pool, 1);
        let late = {
            let pool = pool.clone();
            thread::spawn(move || Pool::submit(&pool, 2))
        };
        late.join().unwrap();
        pool.crew.shut_down();
        // Joining deadlocks if a worker sleeps after the shutdown.
        pool.join_workers();
        assert_eq!(*pool.done.lock().unwrap(), 2, "a queued job was dropped");
        assert_eq!(pool.crew.threads(), 0);
    });
}

#[test]
fn signal_deliveries_are_never_lost() {
    model(|| {
        let pending = Arc::new(Pending::new());
        let pipe = Arc::new(Flag::default());
        let handlers: Vec<_> = [10, 10]
            .into_iter()
            .map(|sig| {
                let (pending, pipe) = (pending.clone(), pipe.clone());
                thread::spawn(move || pending.record(sig, &*pipe))
            })
            .collect();
        // The watcher: collect (drain, then take), then wait for the pipe.
        let mut seen = 0;
        loop {
            seen += pending.collect(&*pipe, [10]).iter().map(|&(_, n)| n).sum::<u32>();
            if seen == 2 {
                break;
            }
            pipe.wait();
        }
        for h in handlers {
            h.join().unwrap();
        }
        assert!(pending.collect(&*pipe, [10]).is_empty());
    });
}

/// A pipe whose drain comes after the take (the wrong order), to show
/// the signal model catches a lost delivery.
struct LateDrain<'a> {
    pipe: &'a Flag,
}

impl SelfPipe for LateDrain<'_> {
    fn poke(&self) {
        self.pipe.raise();
    }

    fn drain(&self) {}
}

#[test]
fn signal_take_before_drain_is_caught() {
    expect_caught("signal_take_before_drain_is_caught", || {
        let pending = Arc::new(Pending::new());
        let pipe = Arc::new(Flag::default());
        let handler = {
            let (pending, pipe) = (pending.clone(), pipe.clone());
            thread::spawn(move || pending.record(10, &*pipe))
        };
        let mut seen = 0;
        while seen < 1 {
            seen += pending.collect(&LateDrain { pipe: &pipe }, [10]).len();
            pipe.clear(); // wrong: after the take
            if seen < 1 {
                pipe.wait();
            }
        }
        handler.join().unwrap();
    });
}
