//! ThreadPool: blocking closures on native threads while only the calling
//! greenlet waits.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use greenrt::threadpool::{default_pool, ThreadError, ThreadPool};
use greenrt::{spawn, Error};

/// A gate a pool job waits at until the test opens it: proves that a call
/// returned *before* the job could finish, without timing the call.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until opened (true) or `limit` passes (false).
    fn wait(&self, limit: Duration) -> bool {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap();
        let (g, _) = cv.wait_timeout_while(g, limit, |open| !*open).unwrap();
        *g
    }
}

/// How long a gated job waits before it gives up (a call that blocked on
/// the job shows up as a job that timed out at its gate).
const GATE_LIMIT: Duration = Duration::from_secs(20);

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Counts worker threads that have exited: a value stored in a worker's
/// thread-local is dropped only when that OS thread ends.
struct ThreadExit(Arc<AtomicUsize>);

impl Drop for ThreadExit {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static EXIT_WATCH: std::cell::RefCell<Option<ThreadExit>> = const { std::cell::RefCell::new(None) };
}

fn watch_thread_exit(counter: &Arc<AtomicUsize>) {
    EXIT_WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            *w = Some(ThreadExit(counter.clone()));
        }
    });
}

/// Sleeps cooperatively until `cond` holds, at most `limit`.
fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        greenrt::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn threadpool_apply_runs_on_other_thread() {
    let pool = ThreadPool::new(2);
    let (tid, name) = pool
        .apply(|| {
            let t = thread::current();
            (t.id(), t.name().map(str::to_string))
        })
        .unwrap();
    assert_ne!(tid, thread::current().id());
    assert_eq!(name.as_deref(), Some("greenrt-worker"));
}

#[test]
fn threadpool_apply_blocks_only_calling_greenlet() {
    let pool = ThreadPool::new(2);
    let ticks = Rc::new(Cell::new(0u32));
    let stop = Rc::new(Cell::new(false));
    let (t, s) = (ticks.clone(), stop.clone());
    let ticker = spawn(move || {
        while !s.get() {
            greenrt::sleep(Duration::from_millis(10));
            t.set(t.get() + 1);
        }
    });
    let switches = greenrt::hub::switch_count();
    let start = Instant::now();
    let caller = spawn(move || {
        pool.apply(|| {
            thread::sleep(Duration::from_millis(200));
            7
        })
    });
    let r = caller.get().unwrap();
    let took = start.elapsed();
    let ticked = ticks.get();
    stop.set(true);
    ticker.join().unwrap();
    assert_eq!(r, Ok(7));
    assert!(took >= Duration::from_millis(200), "{took:?}");
    // 200 ms of 10 ms sleeps: about 20 ticks while the worker slept.
    assert!(ticked >= 10, "the ticker was starved: {ticked} ticks");
    assert!(greenrt::hub::switch_count() - switches >= u64::from(ticked));
}

#[test]
fn threadpool_apply_from_root_waits_for_worker() {
    // The root greenlet with nothing else to run: the hub must wait for
    // the worker, not report "would block forever".
    let pool = ThreadPool::new(1);
    let r = pool.apply(|| {
        thread::sleep(Duration::from_millis(50));
        "done"
    });
    assert_eq!(r, Ok("done"));
}

#[test]
fn threadpool_panic_returns_error() {
    let pool = ThreadPool::new(1);
    let r: Result<(), ThreadError> = pool.apply(|| panic!("boom {}", 42));
    match r {
        Err(ThreadError::Panicked(m)) => assert!(m.contains("boom 42"), "{m}"),
        other => panic!("expected a panic error, got {other:?}"),
    }
    // The only worker survived its job's panic.
    assert_eq!(pool.threads(), 1);
    assert_eq!(pool.apply(|| 5), Ok(5));
    assert_eq!(pool.threads(), 1);
}

#[test]
fn threadpool_many_concurrent_applies() {
    let pool = ThreadPool::new(10);
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let gs: Vec<_> = (0..50u64)
        .map(|i| {
            let (pool, active, peak) = (pool.clone(), active.clone(), peak.clone());
            spawn(move || {
                pool.apply(move || {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(100));
                    active.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
            })
        })
        .collect();
    for (i, g) in gs.iter().enumerate() {
        assert_eq!(g.get().unwrap(), Ok(i as u64 * 2));
    }
    let took = start.elapsed();
    // Five waves of ten 100 ms jobs: about 0.5 s; serial would be 5 s.
    assert!(took >= Duration::from_millis(450), "more than 10 at once? {took:?}");
    assert!(took < Duration::from_secs(2), "applies did not overlap: {took:?}");
    assert_eq!(peak.load(Ordering::SeqCst), 10);
    assert_eq!(pool.threads(), 10);
}

#[test]
fn threads_start_lazily() {
    let pool = ThreadPool::new(8);
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.apply(|| 1), Ok(1));
    // Sequential jobs reuse the idle worker instead of starting more.
    assert_eq!(pool.apply(|| 2), Ok(2));
    assert_eq!(pool.apply(|| 3), Ok(3));
    assert_eq!(pool.threads(), 1);
}

#[test]
fn idle_workers_exit() {
    let pool = ThreadPool::with_idle_timeout(4, Duration::from_millis(100));
    let exited = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(HashSet::new()));
    let results: Vec<_> = (0..4)
        .map(|_| {
            let (exited, ids) = (exited.clone(), ids.clone());
            pool.spawn(move || {
                watch_thread_exit(&exited);
                ids.lock().unwrap().insert(thread::current().id());
                thread::sleep(Duration::from_millis(50));
            })
        })
        .collect();
    for r in &results {
        r.get().unwrap();
    }
    assert_eq!(ids.lock().unwrap().len(), 4);
    assert_eq!(pool.threads(), 4);
    assert_eq!(exited.load(Ordering::SeqCst), 0);
    // Idle for 100 ms, each worker exits: the OS threads really end.
    assert!(
        eventually(Duration::from_secs(3), || exited.load(Ordering::SeqCst) == 4),
        "only {} of 4 workers exited",
        exited.load(Ordering::SeqCst)
    );
    assert_eq!(pool.threads(), 0);
    // A new job starts a new worker.
    assert_eq!(pool.apply(|| 9), Ok(9));
    assert_eq!(pool.threads(), 1);
}

#[test]
fn kill_while_in_apply() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let finished = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let after_apply = Rc::new(Cell::new(false));
    let (f, d, a, gt) = (finished.clone(), dropped.clone(), after_apply.clone(), gate.clone());
    let g = spawn(move || {
        let _v = pool.apply(move || {
            let opened = gt.wait(GATE_LIMIT);
            f.store(true, Ordering::SeqCst);
            (opened, DropFlag(d))
        });
        a.set(true);
    });
    greenrt::sleep(Duration::from_millis(50));
    g.kill();
    // kill returned while the job still waits at its gate.
    assert!(!finished.load(Ordering::SeqCst), "kill waited for the job");
    assert!(g.dead());
    assert_eq!(g.exception(), Some(Error::Killed));
    assert!(!after_apply.get(), "the killed greenlet kept running");
    gate.open();
    // The job still runs to completion; its result is dropped.
    assert!(eventually(Duration::from_secs(30), || finished.load(Ordering::SeqCst)));
    assert!(eventually(Duration::from_secs(30), || dropped.load(Ordering::SeqCst)));
}

#[test]
fn timeout_while_in_apply_unwinds_caller() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let gt = gate.clone();
    let job = Arc::new(AtomicBool::new(false));
    let j = job.clone();
    let r = greenrt::with_timeout(Duration::from_millis(50), || {
        pool.apply(move || {
            gt.wait(GATE_LIMIT);
            j.store(true, Ordering::SeqCst);
        })
    });
    assert_eq!(r, Err(greenrt::Elapsed));
    assert!(!job.load(Ordering::SeqCst), "the Timeout waited for the job");
    gate.open();
}

#[test]
fn get_timeout_then_get_again() {
    // Each wait registers its own waker: the second wait must still be
    // woken after the first one timed out.
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let gt = gate.clone();
    let r = pool.spawn(move || {
        gt.wait(GATE_LIMIT);
        11
    });
    assert_eq!(r.get_timeout(Duration::from_millis(30)), Err(ThreadError::TimedOut));
    assert!(!r.ready());
    gate.open();
    assert_eq!(r.get(), Ok(11));
    assert_eq!(r.get(), Err(ThreadError::ValueTaken));
}

#[test]
fn two_greenlets_wait_for_one_result() {
    let pool = ThreadPool::new(1);
    let r = Rc::new(pool.spawn(|| {
        thread::sleep(Duration::from_millis(50));
        3
    }));
    let r2 = r.clone();
    let other = spawn(move || r2.get());
    let mine = r.get();
    let theirs = other.get().unwrap();
    // One takes the value, the other is told it was taken; neither hangs.
    let mut got = [mine, theirs];
    got.sort_by_key(|x| x.is_err());
    assert_eq!(got, [Ok(3), Err(ThreadError::ValueTaken)]);
}

#[test]
fn result_waited_for_on_another_thread() {
    let pool = ThreadPool::new(1);
    let r = pool.spawn(|| {
        thread::sleep(Duration::from_millis(30));
        thread::current().id()
    });
    let waiter = thread::spawn(move || r.get().unwrap());
    let worker = waiter.join().unwrap();
    assert_ne!(worker, thread::current().id());
}

#[test]
fn drop_lets_queued_jobs_finish() {
    let exited = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::with_idle_timeout(1, Duration::from_secs(60));
    let gate = Gate::default();
    let results: Vec<_> = (0..3)
        .map(|i| {
            let (exited, gate) = (exited.clone(), gate.clone());
            pool.spawn(move || {
                watch_thread_exit(&exited);
                // A drop that blocked until the jobs finished would leave
                // the gate shut: the job reports that.
                (i, gate.wait(GATE_LIMIT))
            })
        })
        .collect();
    drop(pool);
    gate.open();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.get(), Ok((i, true)), "drop blocked until the jobs finished");
    }
    // The worker does not wait out its 60 s idle timeout after shutdown.
    assert!(eventually(Duration::from_secs(30), || exited.load(Ordering::SeqCst) == 1));
}

#[test]
fn waiting_on_a_worker_panics_into_an_error() {
    let pool = ThreadPool::new(2);
    let p2 = pool.clone();
    let r = pool.apply(move || p2.apply(|| 1));
    match r {
        Err(ThreadError::Panicked(m)) => assert!(m.contains("no hub"), "{m}"),
        other => panic!("expected a panic error, got {other:?}"),
    }
}

#[test]
fn default_pool_is_per_thread() {
    let a = default_pool();
    assert_eq!(a, default_pool());
    assert_eq!(a.max_threads(), greenrt::config::get().threadpool_size);
    assert_eq!(a.apply(|| 4), Ok(4));
    let other = thread::spawn(|| {
        let b = default_pool();
        (b.apply(|| 5), b)
    })
    .join()
    .unwrap();
    assert_eq!(other.0, Ok(5));
    assert_ne!(a, other.1);
}
