//! The untyped heart of a greenlet: its state, its coroutine, and the
//! wake protocol every wait in the runtime uses.
//!
//! # The wake protocol
//!
//! A greenlet that is about to block takes a [`WakeHandle`] (the task plus
//! its current *park sequence number*), hands it to whatever will wake it
//! (a wait queue, a timer, the fd table), then parks. The first `wake` on a
//! handle whose sequence number still matches makes the task runnable and
//! records why; every later or stale `wake` is a no-op. When the task
//! resumes, its sequence number moves on, so handles left behind in other
//! queues can never wake it by accident: there are no spurious wakeups.
//!
//! Kill and Timeout are *interrupts*: they are recorded on the task and
//! delivered when its current park returns (its next switch point).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::{Coroutine, Yielder};

use crate::hub::wait::WaitQueue;
use crate::stack::GuardedStack;

/// The coroutine type behind every spawned greenlet.
pub(crate) type Co = Coroutine<(), (), (), GuardedStack>;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Spawned, not started yet.
    New,
    /// In the ready queue (or about to be).
    Runnable,
    /// Executing right now.
    Running,
    /// Blocked until a wake handle or interrupt wakes it.
    Parked,
    /// Finished, killed or failed.
    Dead,
}

/// Why a parked task was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeReason {
    /// Nothing recorded (yield, or an interrupt woke it).
    None,
    /// A wait queue or another greenlet notified it.
    Notified,
    /// Its deadline passed.
    TimedOut,
    /// The fd it waits on is ready.
    Io,
    /// The fd it waits on was closed by another greenlet.
    Closed,
    /// Nothing can ever wake it (only the root greenlet sees this).
    LoopExit,
    /// A signal handler interrupted the hub's wait while the task was
    /// parked in a signal-interruptible wait (see
    /// `Task::signal_interruptible`).
    Signal,
}

/// A request to stop what the task is doing, delivered at its next switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// `Greenlet::kill`: unwind with `GreenletExit`.
    Kill,
    /// A `Timeout` with this id fired.
    Timeout(u64),
}

/// How a finished task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still running (or not started).
    Pending,
    /// Returned a value.
    Returned,
    /// Unwound by a kill (`GreenletExit`), or killed before it started.
    Killed,
    /// Panicked with this message.
    Panicked(String),
    /// A `Timeout` nobody caught unwound it.
    TimedOut,
    /// No stack could be mapped when it was due to start; the message says
    /// what to change.
    NoStack(String),
}

/// What a parked greenlet waits on, for run info and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitingOn {
    /// Not waiting (running or runnable), or not recorded.
    Nothing,
    /// A timer only (`sleep`).
    Sleep,
    /// A wait queue of a primitive, named by its label (e.g. `"join"`).
    Queue(&'static str),
    /// An fd, with the directions wanted.
    Fd(i32, crate::sys::Interest),
    /// Another thread (thread pool, cross-thread handle).
    Thread,
}

impl std::fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitingOn::Nothing => f.write_str("-"),
            WaitingOn::Sleep => f.write_str("sleep"),
            WaitingOn::Queue(l) => f.write_str(l),
            WaitingOn::Fd(fd, i) => match (i.readable, i.writable) {
                (true, true) => write!(f, "fd {fd} (read/write)"),
                (true, false) => write!(f, "fd {fd} (read)"),
                _ => write!(f, "fd {fd} (write)"),
            },
            WaitingOn::Thread => f.write_str("another thread"),
        }
    }
}

/// One greenlet (or the root context of a thread).
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) is_root: bool,
    pub(crate) name: RefCell<Option<String>>,
    pub(crate) state: Cell<State>,
    pub(crate) seq: Cell<u64>,
    pub(crate) reason: Cell<WakeReason>,
    pub(crate) pending: Cell<Option<Interrupt>>,
    /// Set while the task waits in a C-ABI call that a signal handler must
    /// interrupt (a hooked `poll`, `nanosleep`, ...): a park then ends with
    /// `WakeReason::Signal` when the hub's poller wait fails with `EINTR`.
    pub(crate) signal_interruptible: Cell<bool>,
    /// The coroutine, once the task has started.
    pub(crate) co: UnsafeCell<Option<Co>>,
    /// The greenlet's body until it starts: its stack is only mapped then,
    /// so spawned-but-not-started greenlets cost no mapping.
    pub(crate) body: Cell<Option<Box<dyn FnOnce()>>>,
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    pub(crate) outcome: RefCell<Outcome>,
    /// Greenlets blocked in `join` on this one.
    pub(crate) joiners: WaitQueue,
    /// Callbacks to run (each in a new greenlet) once this one is dead.
    pub(crate) links: RefCell<Vec<Box<dyn FnOnce()>>>,
    /// Where it was spawned, and by which greenlet.
    pub(crate) spawn_site: &'static Location<'static>,
    pub(crate) parent: u64,
    pub(crate) stack_size: usize,
    /// What it is parked on (for run info).
    pub(crate) waiting_on: Cell<WaitingOn>,
    /// Its guard page `[low, high)` once its stack is mapped (for overflow
    /// reports).
    pub(crate) guard: Cell<(usize, usize)>,
    /// Its index in the hub's registry of live greenlets.
    pub(crate) registry_index: Cell<usize>,
    /// When it was spawned.
    pub(crate) spawned_at: std::time::Instant,
}

impl Task {
    pub(crate) fn new(id: u64, is_root: bool, site: &'static Location<'static>, parent: u64) -> Task {
        Task {
            id,
            is_root,
            name: RefCell::new(None),
            state: Cell::new(if is_root { State::Running } else { State::New }),
            seq: Cell::new(0),
            reason: Cell::new(WakeReason::None),
            pending: Cell::new(None),
            signal_interruptible: Cell::new(false),
            co: UnsafeCell::new(None),
            body: Cell::new(None),
            yielder: Cell::new(std::ptr::null()),
            outcome: RefCell::new(Outcome::Pending),
            joiners: WaitQueue::labeled("join"),
            links: RefCell::new(Vec::new()),
            spawn_site: site,
            parent,
            stack_size: 0,
            waiting_on: Cell::new(WaitingOn::Nothing),
            guard: Cell::new((0, 0)),
            registry_index: Cell::new(usize::MAX),
            spawned_at: std::time::Instant::now(),
        }
    }

    /// The name used in reports: the given name, or `Greenlet-<id>`.
    pub(crate) fn display_name(&self) -> String {
        match &*self.name.borrow() {
            Some(n) => n.clone(),
            None if self.is_root => "main".to_string(),
            None => format!("Greenlet-{}", self.id),
        }
    }

    /// Records an interrupt; a kill is never replaced by a timeout.
    pub(crate) fn set_pending(&self, i: Interrupt) {
        if self.pending.get() != Some(Interrupt::Kill) {
            self.pending.set(Some(i));
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // A task is only dropped while suspended when its hub is torn down at
        // thread exit. Unwinding its stack then would run greenlet code with
        // no hub; leak the stack instead (documented in the README).
        if let Some(co) = self.co.get_mut().take() {
            if co.started() && !co.done() {
                std::mem::forget(co);
            }
        }
    }
}

/// A one-shot permission to wake a task from its current park.
#[derive(Clone)]
pub(crate) struct WakeHandle {
    pub(crate) task: Rc<Task>,
    pub(crate) seq: u64,
}

impl WakeHandle {
    /// True when this handle can no longer wake the task.
    pub(crate) fn is_stale(&self) -> bool {
        self.task.seq.get() != self.seq || self.task.state.get() != State::Parked
    }

    /// Wakes the task if the handle is current; returns whether it did.
    pub(crate) fn wake(&self, reason: WakeReason) -> bool {
        let t = &self.task;
        if t.seq.get() != self.seq || t.state.get() != State::Parked {
            return false;
        }
        t.reason.set(reason);
        crate::hub::with(|hub| hub.make_runnable(self.task.clone()));
        true
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh, process-unique greenlet id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}
