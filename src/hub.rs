//! The hub: one per OS thread, created lazily on first use, never shared.
//!
//! Like gevent's hub it owns the event loop (a poller, timers, a ready
//! queue) and every greenlet of its thread. Unlike gevent's it has no stack
//! of its own: the scheduler runs on the thread's own stack (the *root*
//! greenlet) whenever the root blocks, so a switch from one greenlet to
//! another is one suspend and one resume, and `main()` needs no setup call.
//!
//! Scheduling is FIFO. Fairness: after every 64 greenlet runs the hub polls
//! fds (without blocking) and fires due timers, so a greenlet that loops on
//! `yield_now` cannot starve I/O or timers; when nothing is runnable it
//! blocks in the poller until the next timer.
//!
//! Other threads reach a hub through a [`HubHandle`] (an eventfd plus a
//! queue), like libev's async watcher.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::config;
use crate::sys::waker::Waker;
use crate::sys::{self, Event, Interest, Poller};
use crate::task::{Interrupt, State, Task, WaitingOn, WakeHandle, WakeReason};
use crate::timer::{TimerAction, TimerHandle, Timers};

/// Greenlet runs between two non-blocking polls of fds and timers.
const FAIRNESS_BATCH: u64 = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh, process-unique greenlet id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What a park ended with: why the task was woken, and any interrupt that
/// must now be delivered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parked {
    pub reason: WakeReason,
    pub interrupt: Option<Interrupt>,
}

#[derive(Default)]
struct FdWaiters {
    readers: Vec<WakeHandle>,
    writers: Vec<WakeHandle>,
}

impl FdWaiters {
    fn interest(&self) -> Interest {
        Interest {
            readable: !self.readers.is_empty(),
            writable: !self.writers.is_empty(),
        }
    }
}

/// How a wait on an fd ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdWait {
    /// The fd is (probably) ready: retry the operation.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// Another greenlet closed the fd (or cancelled the wait).
    Closed,
    /// A kill or Timeout arrived.
    Interrupted(Interrupt),
    /// A signal handler interrupted the hub's wait (only for a task that
    /// is `signal_interruptible`).
    Signal,
}

enum Message {
    /// Run in a new greenlet.
    Spawn(Box<dyn FnOnce() + Send>),
    /// Wake the task registered under this token.
    Wake(u64),
}

/// The part of a hub other threads can touch.
struct Remote {
    queue: Mutex<Vec<Message>>,
    waker: Waker,
    closed: AtomicBool,
    next_token: AtomicU64,
}

impl Remote {
    fn post(&self, m: Message) -> Result<(), Message> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(m);
        }
        let was_empty = q.is_empty();
        q.push(m);
        drop(q);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }
}

/// The part of a hub that other threads may read: what the blocking
/// monitor and run info need. Updated with relaxed stores on every switch
/// (a few nanoseconds), read only by observers.
pub(crate) struct HubShared {
    /// Greenlet switches so far.
    pub(crate) switches: AtomicU64,
    /// Id of the greenlet running now (the root's id when none).
    pub(crate) running: AtomicU64,
    /// Spawn site of the greenlet running now (null for the root).
    pub(crate) running_site: AtomicPtr<Location<'static>>,
    /// True while the hub waits in its poller (idle, not blocked).
    pub(crate) idle: AtomicBool,
    /// Blocking waits in the poller so far: lets the monitor see that the
    /// loop ran between two samples even when no greenlet switched (the
    /// root sleeping while the others wait on fds).
    pub(crate) polls: AtomicU64,
    /// Greenlets spawned and not yet dead.
    pub(crate) live: AtomicUsize,
    /// Id of the thread's root greenlet.
    pub(crate) root_id: u64,
    /// Kernel thread id and name of the hub's thread.
    pub(crate) tid: i32,
    pub(crate) thread_name: String,
    /// Names given to live greenlets (only named ones are listed).
    pub(crate) names: Mutex<HashMap<u64, String>>,
    remote: Weak<Remote>,
}

impl HubShared {
    /// A handle to post work to this hub, while it is alive.
    pub(crate) fn handle(&self) -> Option<HubHandle> {
        let remote = self.remote.upgrade()?;
        if remote.closed.load(Ordering::Acquire) {
            return None;
        }
        Some(HubHandle { remote })
    }
}

/// Every hub of the process, for the monitor and run info.
static HUBS: Mutex<Vec<Weak<HubShared>>> = Mutex::new(Vec::new());

/// The shared state of every live hub.
pub(crate) fn all_hubs() -> Vec<Arc<HubShared>> {
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|w| w.strong_count() > 0);
    hubs.iter().filter_map(Weak::upgrade).collect()
}

/// Incremented in the child after every fork; lets per-thread caches
/// (thread pools) notice they were inherited and start afresh.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many forks this process is away from its original ancestor.
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

thread_local! {
    /// Id of the greenlet that called fork, in the child (0 otherwise):
    /// it carries on as the child's main context, and the child exits
    /// when it returns (its parent's scheduler is not in the child).
    static FORKED_GREENLET: Cell<u64> = const { Cell::new(0) };
}

/// True if `id` is the greenlet that forked this (child) process.
pub(crate) fn is_forked_greenlet(id: u64) -> bool {
    FORKED_GREENLET.try_with(|f| f.get() == id).unwrap_or(false)
}

/// Gives the child of a fork a fresh hub: the parent's greenlets are left
/// behind (they never run here), its epoll fd and eventfd are closed in
/// the child only (no `epoll_ctl`, which would change the parent's set),
/// and the next use of the runtime creates a new hub and poller. Called by
/// `os::fork` and, through `pthread_atfork`, after any fork.
pub(crate) fn reset_after_fork() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    let Ok(p) = HUB.try_with(|h| h.replace(std::ptr::null())) else {
        return;
    };
    if p.is_null() || p == TORN_DOWN {
        return;
    }
    // SAFETY: `p` is the parent's hub of this thread, copied into the
    // child. Only this thread exists in the child; we close its fds and
    // leak the rest (its greenlets' stacks belong to the parent's story).
    let hub = unsafe { &*p };
    let old_current = hub.current_id();
    if old_current != hub.root.id {
        let _ = FORKED_GREENLET.try_with(|f| f.set(old_current));
    }
    hub.remote.closed.store(true, Ordering::Release);
    // The child's copy of the eventfd; the parent keeps its own.
    crate::sys::fds::disown(hub.remote.waker.fd());
    crate::sys::close_raw(hub.remote.waker.fd());
    let old = std::mem::replace(&mut *hub.poller.borrow_mut(), Box::new(sys::poll::Poll::new()));
    drop(old); // closes the child's copy of the epoll fd
}

extern "C" fn atfork_child() {
    reset_after_fork();
}

/// The per-thread event loop and scheduler.
pub(crate) struct Hub {
    pub(crate) root: Rc<Task>,
    current: Cell<*const Task>,
    ready: RefCell<VecDeque<Rc<Task>>>,
    timers: RefCell<Timers>,
    poller: RefCell<Box<dyn Poller>>,
    events: RefCell<Vec<Event>>,
    fds: RefCell<HashMap<RawFd, FdWaiters>>,
    io_waiters: Cell<usize>,
    /// Tasks parked in a signal-interruptible wait (some may be stale).
    signal_waiters: RefCell<Vec<WakeHandle>>,
    remote: Arc<Remote>,
    remote_waiters: RefCell<HashMap<u64, WakeHandle>>,
    in_scheduler: Cell<bool>,
    ticks: Cell<u64>,
    switches: Cell<u64>,
    /// Greenlets that are spawned and not yet dead.
    live: Cell<usize>,
    /// Every live spawned greenlet (for run info); `Task::registry_index`
    /// is each one's position.
    registry: RefCell<Vec<Rc<Task>>>,
    pub(crate) shared: Arc<HubShared>,
}

thread_local! {
    static HUB: Cell<*const Hub> = const { Cell::new(std::ptr::null()) };
    static HUB_OWNER: HubOwner = const { HubOwner };
}

/// Frees the hub when its thread exits.
struct HubOwner;

/// Marks a hub that has been torn down at thread exit.
const TORN_DOWN: *const Hub = 1 as *const Hub;

impl Drop for HubOwner {
    fn drop(&mut self) {
        let p = HUB.with(|h| h.replace(TORN_DOWN));
        if !p.is_null() && p != TORN_DOWN {
            // SAFETY: `p` came from Box::into_raw in `create` and is freed
            // exactly once, here; HUB no longer points at it.
            let hub = unsafe { Box::from_raw(p as *mut Hub) };
            hub.remote.closed.store(true, Ordering::Release);
            drop(hub);
        }
    }
}

#[cold]
fn create() -> *const Hub {
    let hub = Box::new(Hub::new().unwrap_or_else(|e| {
        eprintln!("greenrt: cannot create the hub: {e}");
        std::process::abort()
    }));
    crate::greenlet::install_panic_hook();
    crate::capi::register_with_preload();
    static ATFORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a plain extern "C" function as the child handler.
    ATFORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(atfork_child));
    });
    HUBS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&hub.shared));
    let p = Box::into_raw(hub) as *const Hub;
    HUB.with(|h| h.set(p));
    HUB_OWNER.with(|_| {});
    crate::overflow::on_hub_created();
    crate::monitor::on_hub_created();
    crate::signal::on_hub_created();
    // SAFETY: `p` is the hub just stored for this thread.
    let hub = unsafe { &*p };
    config::log(
        config::LogLevel::Debug,
        format_args!(
            "hub started on thread {:?} (tid {}), poller {}",
            hub.shared.thread_name,
            hub.shared.tid,
            hub.backend_name()
        ),
    );
    p
}

/// Runs `f` with this thread's hub, creating the hub on first use.
///
/// Panics if called while the thread is being torn down.
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut p = HUB.with(|h| h.get());
    if p.is_null() {
        p = create();
    }
    assert!(p != TORN_DOWN, "greenrt: hub used while its thread is exiting");
    // SAFETY: `p` points at the live hub of this thread (it is freed only by
    // HubOwner's destructor at thread exit, after which HUB is TORN_DOWN),
    // and Hub is !Sync so the reference cannot reach another thread.
    f(unsafe { &*p })
}

/// This thread's hub, for the hot switch paths where a closure call would
/// cost a frame. The reference must not be kept beyond the current call.
#[inline(always)]
pub(crate) fn get() -> &'static Hub {
    let mut p = HUB.with(|h| h.get());
    if p.is_null() {
        p = create();
    }
    assert!(p != TORN_DOWN, "greenrt: hub used while its thread is exiting");
    // SAFETY: as in `with`; callers use the reference only within the
    // current call, never across thread exit.
    unsafe { &*p }
}

thread_local! {
    /// Set on threads the runtime runs for itself (thread-pool workers, the
    /// monitor, the child reaper): blocking calls there are plain calls
    /// and never create a hub (DESIGN rule 5).
    static INTERNAL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one of the runtime's own.
pub(crate) fn mark_internal_thread() {
    INTERNAL_THREAD.with(|f| f.set(true));
}

/// True on the runtime's own threads (see [`mark_internal_thread`]).
pub(crate) fn is_internal_thread() -> bool {
    INTERNAL_THREAD.try_with(|f| f.get()).unwrap_or(true)
}

/// True unless this thread's hub was already torn down (thread exit).
pub(crate) fn can_create() -> bool {
    HUB.try_with(|h| h.get() != TORN_DOWN).unwrap_or(false)
}

/// Runs `f` with this thread's hub if one exists and is alive.
pub(crate) fn try_with_existing<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let p = HUB.try_with(|h| h.get()).ok()?;
    if p.is_null() || p == TORN_DOWN {
        return None;
    }
    // SAFETY: as in `with`.
    Some(f(unsafe { &*p }))
}

/// The running task of this thread's hub, for the stack overflow signal
/// handler: reads the const-initialised, Drop-free `HUB` thread-local
/// (no lazy init, no allocation, no destructor registration) and the hub's
/// `current` pointer. `None` when the thread has no live hub.
pub(crate) fn current_task_for_signal() -> Option<*const Task> {
    let p = HUB.try_with(|h| h.get()).ok()?;
    if p.is_null() || p == TORN_DOWN {
        return None;
    }
    // SAFETY: as in `with`: `p` is this thread's live hub; reading a Cell
    // of a pointer is a plain load.
    Some(unsafe { (*p).current.get() })
}

/// A wake handle for the current greenlet's next park.
pub(crate) fn wake_handle() -> WakeHandle {
    with(|h| {
        let task = h.current_task();
        let seq = task.seq.get();
        WakeHandle { task, seq }
    })
}

/// Parks the current greenlet until woken, `deadline` passes, or an
/// interrupt arrives.
pub(crate) fn park(deadline: Option<Instant>) -> Parked {
    with(|h| h.park(deadline, WaitingOn::Sleep))
}

/// Like [`park`], recording what the greenlet waits on for run info.
pub(crate) fn park_on(deadline: Option<Instant>, on: WaitingOn) -> Parked {
    with(|h| h.park(deadline, on))
}

/// The current greenlet's task.
pub(crate) fn current_task() -> Rc<Task> {
    with(|h| h.current_task())
}

impl Hub {
    fn new() -> io::Result<Hub> {
        let cfg = config::get();
        let mut poller = sys::new_poller(cfg.backend)?;
        let waker = Waker::new()?;
        poller.set_interest(waker.fd(), Interest::READ)?;
        let root = Rc::new(Task::new(next_id(), true, Location::caller(), 0));
        let current = Cell::new(Rc::as_ptr(&root));
        let remote = Arc::new(Remote {
            queue: Mutex::new(Vec::new()),
            waker,
            closed: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
        });
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
            io_waiters: Cell::new(0),
            signal_waiters: RefCell::new(Vec::new()),
            remote,
            remote_waiters: RefCell::new(HashMap::new()),
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
        // SAFETY: a task's coroutine slot is touched only here, by
        // `start_coroutine` (which runs only from here, before the first
        // resume) and by `Task::drop`; a task is never resumed while it is
        // already running (it is in the ready queue at most once, and the
        // running task cannot be popped), so this is the only live
        // reference to the slot for the whole resume.
        let slot = unsafe { &mut *t.co.get() };
        if slot.is_none() {
            match crate::greenlet::start_coroutine(&t) {
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

    /// True while another thread could still post to this hub.
    fn remote_can_wake(&self) -> bool {
        Arc::strong_count(&self.remote) > 1 || !self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

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
            Err(e) => config::log(config::LogLevel::Error, format_args!("poller wait failed: {e}")),
        }
        let waker_fd = self.remote.waker.fd();
        for ev in &events {
            if ev.fd == waker_fd {
                self.remote.waker.drain();
                self.run_remote();
                continue;
            }
            self.dispatch_fd(*ev);
        }
        *self.events.borrow_mut() = events;
    }

    fn dispatch_fd(&self, ev: Event) {
        let mut woken = Vec::new();
        {
            let mut fds = self.fds.borrow_mut();
            let Some(w) = fds.get_mut(&ev.fd) else { return };
            if ev.readable {
                woken.append(&mut w.readers);
            }
            if ev.writable {
                woken.append(&mut w.writers);
            }
            let interest = w.interest();
            if interest.is_empty() {
                fds.remove(&ev.fd);
            }
            let _ = self.poller.borrow_mut().set_interest(ev.fd, interest);
        }
        for h in woken {
            h.wake(WakeReason::Io);
        }
    }

    /// Parks the current greenlet until `fd` is ready for `interest`.
    pub(crate) fn wait_fd(&self, fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<FdWait> {
        let h = {
            let task = self.current_task();
            let seq = task.seq.get();
            WakeHandle { task, seq }
        };
        {
            let mut fds = self.fds.borrow_mut();
            let w = fds.entry(fd).or_default();
            w.readers.retain(|x| !x.is_stale());
            w.writers.retain(|x| !x.is_stale());
            if interest.readable {
                w.readers.push(h.clone());
            }
            if interest.writable {
                w.writers.push(h.clone());
            }
            let want = w.interest();
            if let Err(e) = self.poller.borrow_mut().set_interest(fd, want) {
                w.readers.retain(|x| !Rc::ptr_eq(&x.task, &h.task));
                w.writers.retain(|x| !Rc::ptr_eq(&x.task, &h.task));
                if w.interest().is_empty() {
                    fds.remove(&fd);
                }
                return Err(e);
            }
        }
        self.io_waiters.set(self.io_waiters.get() + 1);
        let p = self.park(deadline, WaitingOn::Fd(fd, interest));
        self.io_waiters.set(self.io_waiters.get() - 1);
        if !matches!(p.reason, WakeReason::Io | WakeReason::Closed) {
            let mut fds = self.fds.borrow_mut();
            if let Some(w) = fds.get_mut(&fd) {
                w.readers.retain(|x| !(Rc::ptr_eq(&x.task, &h.task) && x.seq == h.seq));
                w.writers.retain(|x| !(Rc::ptr_eq(&x.task, &h.task) && x.seq == h.seq));
                let want = w.interest();
                if want.is_empty() {
                    fds.remove(&fd);
                }
                let _ = self.poller.borrow_mut().set_interest(fd, want);
            }
        }
        Ok(match (p.interrupt, p.reason) {
            (Some(i), _) => FdWait::Interrupted(i),
            (None, WakeReason::Io) => FdWait::Ready,
            (None, WakeReason::Closed) => FdWait::Closed,
            (None, WakeReason::Signal) => FdWait::Signal,
            _ => FdWait::TimedOut,
        })
    }

    /// Makes the next wait on `fd` re-register it with the poller (see
    /// `Poller::revalidate`).
    pub(crate) fn revalidate_fd(&self, fd: RawFd) {
        self.poller.borrow_mut().revalidate(fd);
    }

    /// Wakes every greenlet waiting on `fd` with "closed" and drops the fd
    /// from the poller; call before closing it.
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        let w = self.fds.borrow_mut().remove(&fd);
        self.poller.borrow_mut().forget(fd);
        if let Some(w) = w {
            for h in w.readers.into_iter().chain(w.writers) {
                h.wake(WakeReason::Closed);
            }
        }
    }

    // ===== cross-thread =====

    fn run_remote(&self) {
        let msgs = std::mem::take(&mut *self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()));
        for m in msgs {
            match m {
                Message::Spawn(f) => {
                    crate::greenlet::spawn(f);
                }
                Message::Wake(token) => {
                    let h = self.remote_waiters.borrow_mut().remove(&token);
                    if let Some(h) = h {
                        h.wake(WakeReason::Notified);
                    }
                }
            }
        }
    }

    /// A `Send` handle to this hub.
    pub(crate) fn handle(&self) -> HubHandle {
        HubHandle {
            remote: self.remote.clone(),
        }
    }

    /// A `Send` waker for the current greenlet's next park.
    pub(crate) fn remote_waker(&self) -> RemoteWaker {
        let token = self.remote.next_token.fetch_add(1, Ordering::Relaxed);
        let task = self.current_task();
        let seq = task.seq.get();
        self.remote_waiters.borrow_mut().insert(token, WakeHandle { task, seq });
        RemoteWaker {
            remote: Some(self.remote.clone()),
            token,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.remote.closed.store(true, Ordering::Release);
        // Drop pending messages (and the handles they hold) now.
        self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A thread-safe handle to one hub: other threads use it to spawn
/// greenlets there, like gevent's `hub.loop.async_()` plus
/// `run_callback_threadsafe`.
///
/// While any handle exists, the hub does not consider itself stuck
/// ("would block forever"), because the handle's owner may still post work.
#[derive(Clone)]
pub struct HubHandle {
    remote: Arc<Remote>,
}

/// The hub a [`HubHandle`] points at has exited with its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubGone;

impl std::fmt::Display for HubGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target hub's thread has exited")
    }
}

impl std::error::Error for HubGone {}

impl HubHandle {
    /// A handle to the calling thread's hub.
    pub fn current() -> HubHandle {
        with(|h| h.handle())
    }

    /// Runs `f` in a new greenlet on the target hub. Callable from any
    /// thread.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) -> Result<(), HubGone> {
        self.remote.post(Message::Spawn(Box::new(f))).map_err(|_| HubGone)
    }
}

/// Wakes one parked greenlet from any thread. It wakes its greenlet when
/// `wake` is called or, failing that, when it is dropped, so a worker that
/// panics still releases its waiter.
pub(crate) struct RemoteWaker {
    remote: Option<Arc<Remote>>,
    token: u64,
}

impl RemoteWaker {
    /// Wakes the greenlet (if it still waits for this).
    pub(crate) fn wake(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if let Some(r) = self.remote.take() {
            let _ = r.post(Message::Wake(self.token));
        }
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Number of greenlet switches this thread's hub has performed: a
/// test-visible proof of cooperation.
pub fn switch_count() -> u64 {
    with(|h| h.switches())
}

/// The poller backend this thread's hub uses (`"epoll"` or `"poll"`).
pub fn backend() -> &'static str {
    with(|h| h.backend_name())
}

/// Greenlets spawned on this thread's hub that have not finished yet.
pub fn live_greenlets() -> usize {
    with(|h| h.live_greenlets())
}
