//! This thread's hub: created lazily on first use, reached through a
//! const-initialised thread-local, torn down at thread exit, and replaced
//! by a fresh one in the child of a fork.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::scheduler::*;
use super::shared::*;
use super::task::{Task, WaitingOn, WakeHandle};
use crate::config;
use crate::sys::{self};

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
    hub.remote.close_after_fork();
    hub.remote.waker().close_after_fork();
    let old = std::mem::replace(&mut *hub.poller.borrow_mut(), Box::new(sys::poll::Poll::new()));
    drop(old); // closes the child's copy of the epoll fd
}

extern "C" fn atfork_child() {
    reset_after_fork();
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
            drop(hub); // closes its mailbox (Hub's Drop)
        }
    }
}

#[cold]
fn create() -> *const Hub {
    let hub = Box::new(Hub::new().unwrap_or_else(|e| {
        eprintln!("greenrt: cannot create the hub: {e}");
        std::process::abort()
    }));
    super::task_lifecycle::install_panic_hook();
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
    super::observers::hub_started();
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
/// cost a frame (see [`get`]). Neither `Send` nor `Sync`: it stays on the
/// thread whose hub it names, and borrows from it end with the handle.
pub(crate) struct ThisHub {
    hub: std::ptr::NonNull<Hub>,
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl std::ops::Deref for ThisHub {
    type Target = Hub;

    #[inline(always)]
    fn deref(&self) -> &Hub {
        // SAFETY: `hub` is this thread's live hub (see `get`); the handle
        // cannot leave the thread, and the hub is freed only at thread
        // exit, after every frame that could hold the handle has returned.
        unsafe { self.hub.as_ref() }
    }
}

/// This thread's hub, created on first use, as a handle that cannot leave
/// the thread ([`with`] without the closure).
///
/// Panics if called while the thread is being torn down.
#[inline(always)]
pub(crate) fn get() -> ThisHub {
    let mut p = HUB.with(|h| h.get());
    if p.is_null() {
        p = create();
    }
    assert!(p != TORN_DOWN, "greenrt: hub used while its thread is exiting");
    ThisHub {
        // SAFETY: not null (checked, or just created) and not TORN_DOWN.
        hub: unsafe { std::ptr::NonNull::new_unchecked(p as *mut Hub) },
        _this_thread: std::marker::PhantomData,
    }
}

thread_local! {
    /// Set on threads the runtime runs for itself (thread-pool workers, the
    /// monitor, the child reaper): blocking calls there are plain calls
    /// and never create a hub (DESIGN rule 5).
    static INTERNAL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one of the runtime's own.
fn mark_internal_thread() {
    INTERNAL_THREAD.with(|f| f.set(true));
}

/// Starts one of the runtime's own threads (thread-pool worker, monitor,
/// reaper): marked internal (it never gets a hub, and the hooks pass its
/// calls straight through), and with **every signal blocked**, so a
/// process-directed signal lands on one of the program's threads, exactly
/// where it would without the runtime (a SIGCHLD read through a signalfd,
/// a signal taken with sigtimedwait). The mask is blocked around the
/// spawn itself, so the new thread starts blocked: no window in which a
/// signal could reach it. A signal arriving at the caller meanwhile stays
/// pending and is delivered when its mask comes back.
pub(crate) fn spawn_internal_thread<F, T>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: all-zero is a valid sigset_t, filled in below.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: fills a local set; swaps this thread's mask for it, keeping
    // the old one in a local (glibc leaves its own two signals unblocked).
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let r = std::thread::Builder::new().name(name.into()).spawn(move || {
        mark_internal_thread();
        f()
    });
    // SAFETY: restores this thread's own mask from the local copy.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
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
