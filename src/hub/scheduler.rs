//! The scheduler: the per-thread event loop and the switch paths.
//!
//! Scheduling is FIFO. Fairness: after every 64 greenlet runs the hub polls
//! fds (without blocking) and fires due timers, so a greenlet that loops on
//! `yield_now` cannot starve I/O or timers; when nothing is runnable it
//! blocks in the poller until the next timer.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fd_waiters::*;
use super::remote::*;
use super::shared::*;
use super::task::next_id;
use super::task::{Interrupt, State, Task, WaitingOn, WakeHandle, WakeReason};
use super::timer::{TimerAction, TimerHandle, Timers};
use crate::config;
use crate::sys::waker::Waker;
use crate::sys::{self, Event, Poller};

/// Greenlet runs between two non-blocking polls of fds and timers.
const FAIRNESS_BATCH: u64 = 64;

/// What a park ended with: why the task was woken, and any interrupt that
/// must now be delivered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parked {
    pub reason: WakeReason,
    pub interrupt: Option<Interrupt>,
}

/// The per-thread event loop and scheduler.
pub(crate) struct Hub {
    pub(crate) root: Rc<Task>,
    pub(super) current: Cell<*const Task>,
    pub(super) ready: RefCell<VecDeque<Rc<Task>>>,
    pub(super) timers: RefCell<Timers>,
    pub(super) poller: RefCell<Box<dyn Poller>>,
    pub(super) events: RefCell<Vec<Event>>,
    pub(super) fds: RefCell<HashMap<RawFd, FdWaiters>>,
    /// fds to forget at the next safe point (see `forget_fd`).
    pub(super) deferred_forgets: DeferredForgets,
    pub(super) io_waiters: Cell<usize>,
    /// Tasks parked in a signal-interruptible wait (some may be stale).
    pub(super) signal_waiters: RefCell<Vec<WakeHandle>>,
    pub(super) remote: Arc<Remote>,
    pub(super) remote_waiters: RefCell<HashMap<u64, WakeHandle>>,
    /// The token of the next remote waker (`remote_waiters`' key).
    pub(super) next_token: Cell<u64>,
    pub(super) in_scheduler: Cell<bool>,
    pub(super) ticks: Cell<u64>,
    pub(super) switches: Cell<u64>,
    /// Greenlets that are spawned and not yet dead.
    pub(super) live: Cell<usize>,
    /// Every live spawned greenlet (for run info); `Task::registry_index`
    /// is each one's position.
    pub(super) registry: RefCell<Vec<Rc<Task>>>,
    pub(crate) shared: Arc<HubShared>,
}

impl Hub {
    pub(super) fn new() -> io::Result<Hub> {
        let cfg = config::get();
        let mut poller = sys::new_poller(cfg.backend)?;
        let waker = Waker::new()?;
        poller.watch_waker(waker.fd())?;
        let root = Rc::new(Task::new(next_id(), true, Location::caller(), 0));
        let current = Cell::new(Rc::as_ptr(&root));
        let remote = Arc::new(Remote::new(waker));
        let shared = Arc::new(HubShared {
            switches: AtomicU64::new(0),
            running: AtomicU64::new(root.id),
            running_site: AtomicPtr::new(std::ptr::null_mut()),
            idle: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            root_id: root.id,
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() },
            thread_name: std::thread::current().name().unwrap_or("<unnamed>").to_string(),
            names: Mutex::new(HashMap::new()),
            remote: Arc::downgrade(&remote),
        });
        Ok(Hub {
            root,
            current,
            ready: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::default()),
            poller: RefCell::new(poller),
            events: RefCell::new(Vec::with_capacity(256)),
            fds: RefCell::new(HashMap::new()),
            deferred_forgets: DeferredForgets::new(),
            io_waiters: Cell::new(0),
            signal_waiters: RefCell::new(Vec::new()),
            remote,
            remote_waiters: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            in_scheduler: Cell::new(false),
            ticks: Cell::new(0),
            switches: Cell::new(0),
            live: Cell::new(0),
            registry: RefCell::new(Vec::new()),
            shared,
        })
    }

    // ===== tasks =====

    /// The running task (the root when no greenlet runs).
    #[inline(always)]
    pub(crate) fn current_task(&self) -> Rc<Task> {
        let p = self.current.get();
        // SAFETY: `current` always points at a live task: the root (owned by
        // the hub) or the task `run_task` is resuming, which it owns an Rc to
        // for the whole resume. Incrementing before from_raw keeps the count
        // balanced.
        unsafe {
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        }
    }

    /// The running task's id, without touching its reference count.
    pub(crate) fn current_id(&self) -> u64 {
        // SAFETY: see `current_task`.
        unsafe { (*self.current.get()).id }
    }

    /// Puts a task at the back of the ready queue.
    #[inline(always)]
    pub(crate) fn make_runnable(&self, t: Rc<Task>) {
        t.state.set(State::Runnable);
        self.ready.borrow_mut().push_back(t);
    }

    /// Registers a newly spawned task (not yet started).
    pub(crate) fn task_spawned(&self, t: &Rc<Task>) {
        self.live.set(self.live.get() + 1);
        self.shared.live.store(self.live.get(), Ordering::Relaxed);
        let mut reg = self.registry.borrow_mut();
        t.registry_index.set(reg.len());
        reg.push(t.clone());
    }

    /// Records that a spawned task is dead.
    pub(crate) fn task_died(&self, t: &Task) {
        let i = t.registry_index.replace(usize::MAX);
        let mut reg = self.registry.borrow_mut();
        if i >= reg.len() || reg[i].id != t.id {
            return; // not registered here (e.g. inherited across fork)
        }
        reg.swap_remove(i);
        if let Some(moved) = reg.get(i) {
            moved.registry_index.set(i);
        }
        drop(reg);
        self.live.set(self.live.get() - 1);
        self.shared.live.store(self.live.get(), Ordering::Relaxed);
        if t.name.borrow().is_some() {
            self.shared
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&t.id);
        }
    }

    /// Every live spawned greenlet of this hub, in no particular order.
    pub(crate) fn live_tasks(&self) -> Vec<Rc<Task>> {
        self.registry.borrow().clone()
    }

    /// True while the hub's own loop runs on the root stack (a blocking
    /// call made now, e.g. from a destructor run by the loop, must not park).
    pub(crate) fn in_scheduler_context(&self) -> bool {
        self.in_scheduler.get() && self.current_id() == self.root.id
    }

    /// Greenlets spawned on this hub and not yet dead.
    pub(crate) fn live_greenlets(&self) -> usize {
        self.live.get()
    }

    /// Switches performed on this hub.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.get()
    }

    /// The poller backend in use.
    pub(crate) fn backend_name(&self) -> &'static str {
        self.poller.borrow().name()
    }

    // ===== parking and switching =====

    /// See [`park`].
    pub(crate) fn park(&self, deadline: Option<Instant>, on: WaitingOn) -> Parked {
        let cur = self.current_task();
        if let Some(i) = cur.pending.take() {
            return Parked {
                reason: WakeReason::None,
                interrupt: Some(i),
            };
        }
        let timer = deadline.map(|d| {
            let h = WakeHandle {
                task: cur.clone(),
                seq: cur.seq.get(),
            };
            self.timers.borrow_mut().add(d, TimerAction::Wake(h))
        });
        cur.reason.set(WakeReason::None);
        cur.state.set(State::Parked);
        cur.waiting_on.set(on);
        if cur.signal_interruptible.get() {
            let mut w = self.signal_waiters.borrow_mut();
            w.retain(|h| !h.is_stale());
            w.push(WakeHandle {
                task: cur.clone(),
                seq: cur.seq.get(),
            });
        }
        self.switch_out(&cur);
        cur.waiting_on.set(WaitingOn::Nothing);
        if let Some(t) = timer {
            if !t.fired() {
                self.timers.borrow_mut().cancel(&t);
            }
        }
        Parked {
            reason: cur.reason.replace(WakeReason::None),
            interrupt: cur.pending.take(),
        }
    }

    /// Gives other runnable greenlets a turn, then continues (gevent's
    /// `sleep(0)`). Returns an interrupt that arrived meanwhile.
    #[inline(always)]
    pub(crate) fn yield_now(&self) -> Option<Interrupt> {
        let cur = self.current_task();
        if let Some(i) = cur.pending.take() {
            return Some(i);
        }
        self.make_runnable(cur.clone());
        self.switch_out(&cur);
        cur.reason.set(WakeReason::None);
        cur.pending.take()
    }

    /// Leaves the current task (already marked Parked or Runnable) and
    /// returns when it is resumed.
    #[inline(always)]
    fn switch_out(&self, cur: &Rc<Task>) {
        if cur.is_root {
            self.root_switch_out();
        } else {
            let y = cur.yielder.get();
            // SAFETY: the yielder pointer was stored by the coroutine body
            // of this very task when it started, and stays valid until the
            // coroutine returns; we are running on that coroutine now.
            unsafe { (*y).suspend(()) };
        }
        cur.seq.set(cur.seq.get().wrapping_add(1));
        cur.state.set(State::Running);
    }

    /// The root's way out: run the loop right here on its stack. Kept out
    /// of line so the greenlet-side switch path stays small enough to
    /// inline into the caller (every frame between a switch and the code
    /// that called it costs a mispredicted return).
    #[cold]
    #[inline(never)]
    fn root_switch_out(&self) {
        assert!(
            !self.in_scheduler.get(),
            "greenrt: a blocking call was made from the hub's own context"
        );
        self.run_scheduler();
    }

    /// Resumes one task until it parks, yields or finishes.
    #[inline(always)]
    fn run_task(&self, t: Rc<Task>) {
        self.run_deferred_forgets();
        // SAFETY: a task's coroutine slot is touched only here, by
        // `start_coroutine` (which runs only from here, before the first
        // resume) and by `Task::drop`; a task is never resumed while it is
        // already running (it is in the ready queue at most once, and the
        // running task cannot be popped), so this is the only live
        // reference to the slot for the whole resume.
        let slot = unsafe { &mut *t.co.get() };
        if slot.is_none() {
            match super::task_lifecycle::start_coroutine(&t) {
                Some(co) => *slot = Some(co),
                None => return,
            }
        }
        let Some(co) = slot.as_mut() else { return };
        self.current.set(Rc::as_ptr(&t));
        t.state.set(State::Running);
        let n = self.switches.get() + 1;
        self.switches.set(n);
        self.shared.switches.store(n, Ordering::Relaxed);
        self.shared.running.store(t.id, Ordering::Relaxed);
        self.shared
            .running_site
            .store(t.spawn_site as *const _ as *mut _, Ordering::Relaxed);
        let r = co.resume(());
        self.current.set(Rc::as_ptr(&self.root));
        self.shared.running.store(self.root.id, Ordering::Relaxed);
        self.shared.running_site.store(std::ptr::null_mut(), Ordering::Relaxed);
        if let corosensei::CoroutineResult::Return(()) = r {
            if let Some(co) = slot.take() {
                co.into_stack().release();
            }
        }
    }

    /// The event loop, run on the root stack while the root is blocked.
    /// Returns when the root is runnable again, or with `LoopExit` recorded
    /// on the root when nothing can ever wake anything.
    fn run_scheduler(&self) {
        self.in_scheduler.set(true);
        loop {
            loop {
                let next = self.ready.borrow_mut().pop_front();
                let Some(t) = next else { break };
                if t.is_root {
                    self.in_scheduler.set(false);
                    return;
                }
                self.run_task(t);
                let ticks = self.ticks.get() + 1;
                self.ticks.set(ticks);
                if ticks % FAIRNESS_BATCH == 0 {
                    self.poll_io(Some(Duration::ZERO));
                    self.fire_timers();
                }
            }
            if self.fire_timers() > 0 {
                continue;
            }
            let next = self.timers.borrow_mut().next_deadline();
            if next.is_none() && self.io_waiters.get() == 0 && !self.remote_can_wake() {
                self.root.reason.set(WakeReason::LoopExit);
                self.in_scheduler.set(false);
                return;
            }
            let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
            self.poll_io(timeout);
            self.fire_timers();
        }
    }

    /// Runs every expired timer action; returns how many fired.
    fn fire_timers(&self) -> usize {
        if self.timers.borrow().live() == 0 {
            return 0;
        }
        let now = Instant::now();
        let mut n = 0;
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            let Some(action) = action else { break };
            n += 1;
            match action {
                TimerAction::Wake(h) => {
                    h.wake(WakeReason::TimedOut);
                }
                TimerAction::Interrupt(task, i) => self.interrupt(&task, i),
                TimerAction::Start(task) => {
                    if task.state.get() == State::New {
                        self.make_runnable(task);
                    }
                }
            }
        }
        n
    }

    /// Wakes every task parked in a signal-interruptible wait with
    /// `WakeReason::Signal`.
    fn signal_interrupt(&self) {
        let waiters = std::mem::take(&mut *self.signal_waiters.borrow_mut());
        for h in waiters {
            h.wake(WakeReason::Signal);
        }
    }

    /// Delivers an interrupt: recorded now, acted on at the task's next
    /// switch point. A parked task is woken so that it sees it.
    pub(crate) fn interrupt(&self, task: &Rc<Task>, i: Interrupt) {
        match task.state.get() {
            State::Dead => {}
            State::Parked => {
                task.set_pending(i);
                WakeHandle {
                    task: task.clone(),
                    seq: task.seq.get(),
                }
                .wake(WakeReason::None);
            }
            _ => task.set_pending(i),
        }
    }

    /// Schedules a timer action.
    pub(crate) fn add_timer(&self, deadline: Instant, action: TimerAction) -> TimerHandle {
        self.timers.borrow_mut().add(deadline, action)
    }

    /// Cancels a timer (no-op if it fired).
    pub(crate) fn cancel_timer(&self, t: &TimerHandle) {
        self.timers.borrow_mut().cancel(t);
    }

    // ===== fds =====

    fn poll_io(&self, timeout: Option<Duration>) {
        self.run_deferred_forgets();
        let mut events = std::mem::take(&mut *self.events.borrow_mut());
        events.clear();
        let blocking = timeout != Some(Duration::ZERO);
        if blocking {
            self.shared.idle.store(true, Ordering::Relaxed);
            self.shared.polls.fetch_add(1, Ordering::Relaxed);
        }
        let r = self.poller.borrow_mut().wait(&mut events, timeout);
        if blocking {
            self.shared.idle.store(false, Ordering::Relaxed);
        }
        match r {
            Ok(()) => {}
            // A signal handler ran on this thread while the hub waited:
            // the waits that a handler interrupts (hooked poll, sleep, ...)
            // end, as the blocking calls would have.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.signal_interrupt(),
            // EBADF: the poller's fd (or, for poll(2), the waker) is not
            // open; EINVAL: its number is another kind of file now.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::EINVAL)) => self.rebuild_poller(&e),
            Err(e) => config::log(config::LogLevel::Error, format_args!("poller wait failed: {e}")),
        }
        // A signal handler may have closed fds during the wait.
        self.run_deferred_forgets();
        for ev in &events {
            if ev.fd == sys::WAKER_TOKEN {
                // Clear the wake before taking the messages (see mailbox.rs).
                self.remote.waker().drain();
                self.run_remote();
                continue;
            }
            self.dispatch_fd(*ev);
        }
        *self.events.borrow_mut() = events;
    }
}

impl Hub {
    /// The program closed the hub's own fds behind the hooks' back (a
    /// close loop through raw system calls, which the preload's `close`,
    /// `close_range` and `closefrom` hooks would have refused): makes a new
    /// poller (and waker, if it is gone too) and registers again every fd
    /// that greenlets wait on, so that the waits go on.
    #[cold]
    fn rebuild_poller(&self, cause: &io::Error) {
        let renewed = self.remote.waker().renew_if_lost();
        let fresh = sys::new_poller(config::get().backend).and_then(|mut p| {
            p.watch_waker(self.remote.waker().fd())?;
            for (fd, w) in self.fds.borrow().iter() {
                p.set_interest(*fd, w.interest())?;
            }
            Ok(p)
        });
        match fresh {
            Ok(p) => {
                let mut old = std::mem::replace(&mut *self.poller.borrow_mut(), p);
                old.abandon();
                config::log(
                    config::LogLevel::Debug,
                    format_args!(
                        "the hub's poller fd was closed behind its back ({cause}); made a new one{}",
                        if matches!(renewed, Ok(true)) {
                            " and a new waker"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Err(e) => config::log(
                config::LogLevel::Error,
                format_args!("poller wait failed ({cause}) and no new poller could be made: {e}"),
            ),
        }
        // The fresh registrations report whatever is ready already
        // (epoll's ADD, poll's next call): no wake is lost.
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Drop pending messages (and the handles they hold) now.
        drop(self.remote.close());
    }
}
