//! The blocking monitor: gevent's monitor thread
//! (`GEVENT_MONITOR_THREAD_ENABLE`, `max_blocking_time`) for greenrt.
//!
//! A cooperative runtime only works while every greenlet switches often. A
//! greenlet that computes for a long time, or calls a blocking function the
//! runtime does not know about, holds its hub: every other greenlet of that
//! thread, its timers and its I/O wait. The monitor is a native thread
//! (named `greenrt-monitor`) that notices this and says who did it.
//!
//! Start it with `GREENRT_MONITOR=1` (it then starts at the first hub
//! creation; `GREENRT_MAX_BLOCKING` sets the threshold in milliseconds,
//! default 100) or with [`start`]. It wakes every `max_blocking / 2` and,
//! for every hub of the process, compares the hub's switch count and its
//! count of waits in the poller with what it saw last time. A hub whose
//! counts have not moved for at least `max_blocking`, that is not waiting
//! in its poller (an idle hub is not blocked), and that has live greenlets
//! (someone to starve) or is running a spawned greenlet, is *blocked*. The
//! monitor prints **one** line per blocking episode to stderr, like gevent's
//! report:
//!
//! ```text
//! greenrt monitor: greenlet "spinner" (id 12, spawned at src/main.rs:10:5) has blocked the hub of
//! thread "main" (tid 4242) for at least 150 ms (max_blocking 100 ms); thread state: R (running);
//! stack: not captured (...)
//! ```
//!
//! (one line in reality). The greenlet is named as in failure reports
//! (`Greenlet-<id>` when unnamed, `main` for the thread's root greenlet).
//! The time is a lower bound: the time since the monitor first saw the
//! counts at their current values, so an episode is reported between
//! `max_blocking` and `max_blocking` plus one period after it began, and an
//! episode shorter than that may go unreported. The next report for the same
//! hub needs a switch or a wait in the poller first: one report per episode,
//! not one per tick.
//!
//! # The stack is not captured
//!
//! gevent prints the blocking greenlet's Python stack, which CPython can
//! read safely from another thread. A native stack cannot: reading it from
//! the monitor thread races with the running thread, and interrupting the
//! blocked thread with a signal to unwind itself would run the unwinder
//! (which allocates and takes locks) inside a signal handler, which is not
//! async-signal-safe. greenrt does neither. The report says so and gives
//! what the kernel knows safely instead: the thread's scheduler state and,
//! when sleeping, the kernel function it sleeps in
//! (`/proc/self/task/<tid>/stat` and `wchan`). To see the stack, attach a
//! debugger (`gdb -p PID`, `thread apply all bt`) or record with
//! `perf record -g -t TID`.
//!
//! # Cost
//!
//! Off (the default) it costs nothing: no thread, and hub creation checks
//! one configuration flag. The switch path is the same either way (the hub
//! always keeps three relaxed atomic stores per switch for observers); on,
//! the monitor thread reads a few atomics per hub twice per `max_blocking`.
//!
//! Reports are printed whatever `GREENRT_LOG` says: enabling the monitor is
//! asking for them. After `fork`, the child starts its own monitor at its
//! first hub creation if the parent's was running (threads do not survive
//! a fork), and ignores the hubs it inherited from the parent. A fork waits
//! (through `pthread_atfork`) while the monitor is in the middle of a pass,
//! so the child never inherits a lock the monitor held.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{self, LogLevel};
use crate::hub::{self, HubShared};

/// The running monitor thread.
struct Running {
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
    max_blocking: Duration,
    /// The fork generation it was started in: in a forked child the thread
    /// does not exist any more.
    generation: u64,
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

static MONITOR: Mutex<Option<Running>> = Mutex::new(None);

/// Held by the monitor thread while it looks at hubs (it takes the hub
/// registry's lock, a hub's names lock and stderr's lock meanwhile), and by
/// a forking thread from `pthread_atfork`'s prepare to its parent/child
/// handlers: a fork never copies those locks held by a thread that does not
/// exist in the child.
struct ForkLock(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; it is only
// used through pthread_mutex_lock/unlock on its fixed address.
unsafe impl Sync for ForkLock {}

static CHECKING: ForkLock = ForkLock(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

impl ForkLock {
    fn lock(&self) {
        // SAFETY: a statically initialised mutex at a fixed address.
        unsafe { libc::pthread_mutex_lock(self.0.get()) };
    }

    fn unlock(&self) {
        // SAFETY: only called by the thread that locked it (in a fork child,
        // the copy of the thread that locked it in prepare).
        unsafe { libc::pthread_mutex_unlock(self.0.get()) };
    }
}

extern "C" fn before_fork() {
    CHECKING.lock();
}

extern "C" fn after_fork() {
    CHECKING.unlock();
}

/// Fork generation + 1 in which `GREENRT_MONITOR=1` already started the
/// monitor (0: never), so that it starts once per process, not per hub.
static AUTO_STARTED: AtomicU64 = AtomicU64::new(0);

/// Starts the blocking monitor with threshold `max_blocking` (gevent's
/// `start_new_native_thread` monitor with `config.max_blocking_time`). If it
/// is running already, it is restarted with the new threshold.
///
/// Fails with `InvalidInput` for a threshold under 1 ms, or with the
/// thread-creation error.
pub fn start(max_blocking: Duration) -> io::Result<()> {
    start_with(max_blocking, true)
}

/// Stops the monitor thread and waits for it to exit; does nothing if it
/// is not running (gevent's `hub.periodic_monitoring_thread.kill()`).
pub fn stop() {
    let running = lock().take();
    if let Some(r) = running {
        finish(r);
    }
}

/// True while the monitor thread runs in this process.
pub fn is_running() -> bool {
    max_blocking().is_some()
}

/// The threshold of the running monitor, or `None` when it is off.
pub fn max_blocking() -> Option<Duration> {
    lock().as_ref().map(|r| r.max_blocking)
}

#[linkme::distributed_slice(crate::hub::HUB_STARTED)]
static ON_HUB_STARTED: fn() = on_hub_created;

/// Called by the hub at its creation: starts the monitor once per process
/// when `GREENRT_MONITOR=1`. Otherwise (the default) it only reads a flag.
fn on_hub_created() {
    let cfg = config::get();
    if !cfg.monitor {
        return;
    }
    let mark = hub::fork_generation() + 1;
    if AUTO_STARTED.swap(mark, Ordering::Relaxed) == mark {
        return;
    }
    if let Err(e) = start_with(cfg.max_blocking, false) {
        config::log(LogLevel::Error, format_args!("cannot start the blocking monitor: {e}"));
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Running>> {
    let mut g = MONITOR.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().is_some_and(|r| r.generation != hub::fork_generation()) {
        // Inherited across fork: the thread is gone and its handle (and the
        // stop signal it shared) are not ours to join or free.
        std::mem::forget(g.take());
    }
    g
}

fn start_with(max_blocking: Duration, replace: bool) -> io::Result<()> {
    if max_blocking < Duration::from_millis(1) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "greenrt: monitor max_blocking must be at least 1 ms",
        ));
    }
    let mut g = lock();
    if g.is_some() && !replace {
        return Ok(());
    }
    if let Some(old) = g.take() {
        finish(old);
    }
    static ATFORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers plain extern "C" functions; only once the monitor
    // is used, so a program that never starts it pays nothing at fork.
    ATFORK.call_once(|| unsafe {
        libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
    });
    let stop = Arc::new(StopSignal::default());
    let s2 = stop.clone();
    let thread = crate::hub::spawn_internal_thread("greenrt-monitor", move || run(&s2, max_blocking))?;
    *g = Some(Running {
        stop,
        thread,
        max_blocking,
        generation: hub::fork_generation(),
    });
    Ok(())
}

fn finish(r: Running) {
    *r.stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    r.stop.cv.notify_all();
    let _ = r.thread.join();
}

/// What the monitor last saw of one hub.
struct Track {
    switches: u64,
    polls: u64,
    /// When it first saw these counts.
    since: Instant,
    /// Whether this episode was reported.
    reported: bool,
}

fn run(stop: &StopSignal, max_blocking: Duration) {
    let period = (max_blocking / 2).max(Duration::from_millis(1));
    let mut tracks: HashMap<u64, Track> = HashMap::new();
    loop {
        let g = stop.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = stop
            .cv
            .wait_timeout_while(g, period, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        if *g {
            return;
        }
        drop(g);
        CHECKING.lock();
        check(&mut tracks, max_blocking);
        CHECKING.unlock();
    }
}

/// One pass over every hub.
fn check(tracks: &mut HashMap<u64, Track>, max_blocking: Duration) {
    let hubs = hub::all_hubs();
    tracks.retain(|root_id, _| hubs.iter().any(|h| h.root_id == *root_id));
    for h in &hubs {
        let switches = h.switches.load(Ordering::Relaxed);
        let polls = h.polls.load(Ordering::Relaxed);
        let idle = h.idle.load(Ordering::Relaxed);
        let now = Instant::now();
        let t = tracks.entry(h.root_id).or_insert(Track {
            switches,
            polls,
            since: now,
            reported: false,
        });
        if idle || t.switches != switches || t.polls != polls {
            *t = Track {
                switches,
                polls,
                since: now,
                reported: false,
            };
            continue;
        }
        let blocked = now.saturating_duration_since(t.since);
        if t.reported || blocked < max_blocking {
            continue;
        }
        let running = h.running.load(Ordering::Relaxed);
        if running == h.root_id && h.live.load(Ordering::Relaxed) == 0 {
            continue; // the root computes, but nobody waits for the hub
        }
        if let Some(line) = report(h, running, blocked, max_blocking) {
            // A switch while we looked: the snapshot may mix two
            // greenlets, and the episode is over anyway.
            if h.switches.load(Ordering::Relaxed) != switches {
                continue;
            }
            let _ = io::stderr().write_all(line.as_bytes());
        }
        t.reported = true;
    }
}

/// The report line, or `None` when the hub's thread is not in this process
/// (a hub inherited across fork).
fn report(h: &HubShared, running: u64, blocked: Duration, max_blocking: Duration) -> Option<String> {
    let state = thread_state(h.tid)?;
    let who = if running == h.root_id {
        format!("greenlet \"main\" (id {running}, the thread's root greenlet)")
    } else {
        let name = h
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&running)
            .cloned()
            .unwrap_or_else(|| format!("Greenlet-{running}"));
        let site = h.running_site.load(Ordering::Relaxed);
        // SAFETY: a non-null `running_site` is always a `&'static Location`
        // stored by the hub (`Task::spawn_site`), valid for the whole run.
        match unsafe { site.as_ref() } {
            Some(site) => format!("greenlet {name:?} (id {running}, spawned at {site})"),
            None => format!("greenlet {name:?} (id {running})"),
        }
    };
    Some(format!(
        "greenrt monitor: {who} has blocked the hub of thread {:?} (tid {}) for at least {} ms \
         (max_blocking {} ms); thread state: {state}; stack: not captured (a native stack cannot be \
         read safely from another thread; use gdb -p or perf record -g -t {})\n",
        h.thread_name,
        h.tid,
        blocked.as_millis(),
        max_blocking.as_millis(),
        h.tid,
    ))
}

/// The kernel's view of thread `tid` of this process, e.g. `R (running)`
/// or `S (sleeping in hrtimer_nanosleep)`; `None` if `/proc` shows that the
/// thread is not ours.
fn thread_state(tid: i32) -> Option<String> {
    let dir = format!("/proc/self/task/{tid}");
    let stat = match std::fs::read_to_string(format!("{dir}/stat")) {
        Ok(s) => s,
        Err(_) if std::path::Path::new("/proc/self/task").exists() => return None,
        Err(_) => return Some("unknown (no /proc)".to_string()),
    };
    // "tid (comm) S ...": comm may contain spaces and parentheses.
    let code = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
        .unwrap_or('?');
    let what = match code {
        'R' => "running",
        'S' => "sleeping",
        'D' => "uninterruptible sleep",
        'T' | 't' => "stopped",
        'Z' | 'X' => "exiting",
        _ => "unknown",
    };
    let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    let wchan = wchan.trim();
    Some(if code != 'R' && !wchan.is_empty() && wchan != "0" {
        format!("{code} ({what} in {wchan})")
    } else {
        format!("{code} ({what})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_state_of_self_and_stranger() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let s = thread_state(me).unwrap();
        assert!(s.starts_with("R (running)"), "{s}");
        // pid_max is at most 2^22: this tid cannot exist.
        assert_eq!(thread_state(i32::MAX), None);
    }

    #[test]
    fn rejects_sub_millisecond_threshold() {
        let e = start(Duration::from_micros(500)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
