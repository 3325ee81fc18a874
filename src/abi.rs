//! The runtime's ABI table: the versioned table of `extern "C"` entry
//! points ([`RuntimeV1`]) that the `LD_PRELOAD` library's hooks and its C
//! API (`include/greenrt.h`, implemented in `preload/src/c_api.rs`) call,
//! and that one copy of the runtime hands to another. (The public C API
//! is the preload's; this is the table between runtime copies.)
//!
//! # One runtime per process
//!
//! The preload library links its own copy of greenrt. A Rust program that
//! links greenrt and runs under the preload therefore holds two copies; two
//! hubs per thread would each think they own the thread. So the copies
//! agree on one: the first time a copy that is *not* the preload's creates a
//! hub, it looks up `greenrt_preload_register_runtime` with
//! `dlsym(RTLD_DEFAULT, ...)` and, if the preload is there, hands it
//! [`RUNTIME_V1`], its own table of entry points. From then on the hooks
//! and the C API use the program's runtime: its greenlets and the hooks'
//! waits share one hub per thread. Without a program copy, the preload uses
//! its own table.
//!
//! Every entry point is a plain `extern "C"` function: nothing unwinds
//! across it. A kill or Timeout that reaches a greenlet parked here comes
//! back as an error code (see [`RuntimeV1`]): `-EINTR` for a kill, which
//! stays pending so that every later blocking call also fails at once and
//! the next switch point in Rust code unwinds; `-ETIMEDOUT` for a Timeout
//! or a deadline, which the hook turns into the errno its call's contract
//! names (`EAGAIN` for a read, `ETIMEDOUT` for a connect).
//!
//! # Signals
//!
//! A hooked blocking call interrupted by a signal handler fails with
//! `EINTR` (or is restarted, with `SA_RESTART`, for the calls the kernel
//! restarts). A greenlet parked here sleeps in the hub's own poller wait,
//! which the handler interrupts instead. A hook that wants that
//! interruption turns it on with [`RuntimeV1::set_signal_interruptible`]
//! around its wait: when the hub's poller wait then fails with `EINTR`
//! (a handler ran on this thread), the wait ends with `-EINTR`. Telling
//! that from a kill is [`RuntimeV1::killed`]; whether the handler asked
//! for `SA_RESTART` is for the hook to decide (the runtime does not know
//! which signal it was).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::hub::task::Interrupt;
use crate::hub::GreenletExit;
use crate::hub::TimeoutUnwind;
use crate::hub::{self, FdWait};
use crate::sys::Interest;

/// `events` bit for readability in [`RuntimeV1::wait_fd`] (POLLIN).
pub const WAIT_READ: c_int = libc::POLLIN as c_int;
/// `events` bit for writability in [`RuntimeV1::wait_fd`] (POLLOUT).
pub const WAIT_WRITE: c_int = libc::POLLOUT as c_int;

/// The runtime entry points, version 1. All return `0` (or a count / id)
/// on success and a negative errno on failure; none unwinds.
#[repr(C)]
pub struct RuntimeV1 {
    /// Always 3 for this layout ([`RUNTIME_LAYOUT`]).
    pub version: u32,
    /// 1 if a blocking call made now should park the calling greenlet
    /// (DESIGN rule 1), 0 if it should pass straight to libc. `always`
    /// non-zero is `GREENRT_HOOKS=always`: cooperate on every thread that
    /// can have a hub.
    pub should_cooperate: unsafe extern "C" fn(always: c_int) -> c_int,
    /// Parks until `fd` is ready for `events` ([`WAIT_READ`] |
    /// [`WAIT_WRITE`]); edge-triggered: call only after the operation
    /// returned `EAGAIN`. `timeout_ns < 0` waits without limit. `0` ready,
    /// `-ETIMEDOUT`, `-EBADF` (closed by another greenlet), `-EINTR`
    /// (killed), or another `-errno` from the poller.
    pub wait_fd: unsafe extern "C" fn(fd: c_int, events: c_int, timeout_ns: i64) -> c_int,
    /// Like `wait_fd`, level-triggered (returns at once if ready now).
    pub wait_fd_level: unsafe extern "C" fn(fd: c_int, events: c_int, timeout_ns: i64) -> c_int,
    /// Wakes every greenlet waiting on `fd` with `-EBADF` and drops it from
    /// the poller; call before the fd is closed or replaced (dup2).
    pub cancel_wait: unsafe extern "C" fn(fd: c_int),
    /// Sleeps `ns` nanoseconds; `0`, or `-EINTR` (killed; `remaining_ns`,
    /// if not null, receives what was left).
    pub sleep_ns: unsafe extern "C" fn(ns: i64, remaining_ns: *mut i64) -> c_int,
    /// Lets other greenlets run once; `0` or `-EINTR`.
    pub yield_now: unsafe extern "C" fn() -> c_int,
    /// Runs `f(arg)` on the hub's thread pool, parking only the calling
    /// greenlet; returns when `f` has returned (even if a kill arrives
    /// meanwhile: `arg` may live on the caller's stack), then `0` or
    /// `-EINTR`.
    pub run_in_thread: unsafe extern "C" fn(f: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) -> c_int,
    /// Cooperative `waitpid`: the pid, `0` (WNOHANG, nothing ready) or a
    /// negative errno; `status` receives the wait status.
    pub waitpid: unsafe extern "C" fn(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t,
    /// Spawns `f(arg)` in a new greenlet (`stack_size` 0: the default);
    /// returns its id, or `0` with errno set.
    pub spawn: unsafe extern "C" fn(
        f: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
        arg: *mut c_void,
        stack_size: usize,
    ) -> u64,
    /// Waits for a greenlet spawned by `spawn` on this thread and releases
    /// its handle; `result` receives its return value. `0`, `-ETIMEDOUT`
    /// (handle kept), `-ESRCH` (unknown id), `-EDEADLK` (joining itself),
    /// `-ECANCELED` (it was killed; handle released), `-EINTR` (the caller
    /// was killed).
    pub join: unsafe extern "C" fn(id: u64, timeout_ns: i64, result: *mut *mut c_void) -> c_int,
    /// Kills a greenlet spawned by `spawn` and waits for it at most
    /// `timeout_ns` (`< 0`: without limit; `0`: do not wait). `0`,
    /// `-ETIMEDOUT`, `-ESRCH`.
    pub kill: unsafe extern "C" fn(id: u64, timeout_ns: i64) -> c_int,
    /// The running greenlet's id (the thread's root has one too).
    pub current: unsafe extern "C" fn() -> u64,
    /// 1 if the running greenlet has been killed (C code should return).
    pub killed: unsafe extern "C" fn() -> c_int,
    /// Switches this thread's hub has made (proof of cooperation).
    pub switch_count: unsafe extern "C" fn() -> u64,
    /// 1 if `fd` is one of the runtime's own (epoll fd, eventfd, signal
    /// pipe): the program never opened it, so `close`/`dup2` must treat it
    /// as not open.
    pub owns_fd: unsafe extern "C" fn(fd: c_int) -> c_int,
    /// Makes the calling greenlet's later waits in `wait_fd`,
    /// `wait_fd_level` and `sleep_ns` end with `-EINTR` when a signal
    /// handler interrupts the hub's poller wait (`on` non-zero), or not
    /// (`0`, the default). Returns the previous setting.
    pub set_signal_interruptible: unsafe extern "C" fn(on: c_int) -> c_int,
    /// Moves the runtime fd at `fd` elsewhere so that the program may
    /// `dup2` onto the number (see `sys::fds::relocate`): `0`, `-ENOENT`
    /// (not a runtime fd) or `-EBUSY` (one that cannot move now).
    pub relocate_fd: unsafe extern "C" fn(fd: c_int) -> c_int,
    /// The lowest runtime fd at or above `from`, or `-1`.
    pub next_owned_fd: unsafe extern "C" fn(from: c_int) -> c_int,
    /// Announces the program's `dup2`/`dup3` onto a number and waits until
    /// no runtime fd creation is in flight (they would race for fd
    /// numbers: `EBUSY`, or a replaced runtime fd; see `sys::fd_gate`).
    pub begin_program_change: unsafe extern "C" fn(),
    /// Ends what `begin_program_change` began.
    pub end_program_change: unsafe extern "C" fn(),
}

/// The layout version of [`RuntimeV1`] this copy implements; the preload
/// takes over only a table of the same layout.
pub const RUNTIME_LAYOUT: u32 = 3;

/// This copy's entry points.
pub static RUNTIME_V1: RuntimeV1 = RuntimeV1 {
    version: RUNTIME_LAYOUT,
    should_cooperate,
    wait_fd,
    wait_fd_level,
    cancel_wait,
    sleep_ns,
    yield_now,
    run_in_thread,
    waitpid,
    spawn,
    join,
    kill,
    current,
    killed,
    switch_count,
    owns_fd,
    set_signal_interruptible,
    relocate_fd,
    next_owned_fd,
    begin_program_change,
    end_program_change,
};

// ===== which copy runs the show =====

static IS_PRELOAD_COPY: AtomicBool = AtomicBool::new(false);

/// Called by the preload library's constructor: this copy of greenrt is the
/// preload's own, so it must not register itself with itself.
#[doc(hidden)]
pub fn mark_preload_copy() {
    IS_PRELOAD_COPY.store(true, Ordering::Relaxed);
}

#[linkme::distributed_slice(crate::hub::HUB_STARTED)]
static ON_HUB_STARTED: fn() = register_with_preload;

/// At the first hub creation of a copy that is not the preload's, hands
/// this copy's entry points to the preload if it is loaded.
fn register_with_preload() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if IS_PRELOAD_COPY.load(Ordering::Relaxed) {
        return;
    }
    ONCE.call_once(|| {
        let name = c"greenrt_preload_register_runtime";
        // SAFETY: dlsym with a NUL-terminated name; the result is either
        // null or the preload's registration function with this signature.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if !sym.is_null() {
            // SAFETY: the preload exports exactly this signature.
            let register: unsafe extern "C" fn(*const RuntimeV1) = unsafe { std::mem::transmute(sym) };
            // SAFETY: RUNTIME_V1 is a static that lives for the process.
            unsafe { register(&RUNTIME_V1) };
        }
    });
}

// ===== helpers =====

fn deadline(timeout_ns: i64) -> Option<Instant> {
    if timeout_ns < 0 {
        None
    } else {
        Instant::now().checked_add(Duration::from_nanos(timeout_ns as u64))
    }
}

fn events_interest(events: c_int) -> Interest {
    Interest {
        readable: events & WAIT_READ != 0,
        writable: events & WAIT_WRITE != 0,
    }
}

/// Keeps a kill pending after it was reported as `-EINTR`, so that it is
/// delivered again at the next switch point.
fn keep_kill_pending() {
    hub::with(|h| h.current_task().set_pending(Interrupt::Kill));
}

fn interrupt_errno(i: Interrupt) -> c_int {
    match i {
        Interrupt::Kill => {
            keep_kill_pending();
            -libc::EINTR
        }
        Interrupt::Timeout(_) => -libc::ETIMEDOUT,
    }
}

/// Runs Rust runtime code from a C entry point: a kill or Timeout that
/// unwinds it becomes an errno (a kill stays pending), any other panic is
/// reported and becomes `-EIO`.
fn c_path<T>(f: impl FnOnce() -> Result<T, c_int>) -> Result<T, c_int> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) if p.is::<GreenletExit>() => {
            keep_kill_pending();
            Err(-libc::EINTR)
        }
        Err(p) if p.is::<TimeoutUnwind>() => Err(-libc::ETIMEDOUT),
        Err(p) => {
            crate::config::log(
                crate::config::LogLevel::Error,
                format_args!("internal error in a hooked call: {}", crate::hub::payload_message(&*p)),
            );
            Err(-libc::EIO)
        }
    }
}

fn io_errno(e: std::io::Error) -> c_int {
    -e.raw_os_error().unwrap_or(libc::EIO)
}

// ===== entry points =====

unsafe extern "C" fn should_cooperate(always: c_int) -> c_int {
    if hub::is_internal_thread() {
        return 0;
    }
    let existing = hub::try_with_existing(|h| {
        if h.in_scheduler_context() {
            return 0;
        }
        if always != 0 || h.current_id() != h.root.id || h.live_greenlets() > 0 {
            1
        } else {
            0
        }
    });
    match existing {
        Some(v) => v,
        // The hub (and its fds) is made by the first wait that parks, not
        // here: a program whose calls never block has none.
        None if always != 0 && hub::can_create() => 1,
        None => 0,
    }
}

unsafe extern "C" fn wait_fd(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    let r = c_path(
        || match hub::with(|h| h.wait_fd(fd, events_interest(events), deadline(timeout_ns))) {
            Ok(FdWait::Ready) => Ok(()),
            Ok(FdWait::TimedOut) => Err(-libc::ETIMEDOUT),
            Ok(FdWait::Closed) => Err(-libc::EBADF),
            Ok(FdWait::Interrupted(i)) => Err(interrupt_errno(i)),
            Ok(FdWait::Signal) => Err(-libc::EINTR),
            Err(e) => Err(io_errno(e)),
        },
    );
    r.err().unwrap_or(0)
}

unsafe extern "C" fn wait_fd_level(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    match crate::sys::ready_now(fd, events_interest(events)) {
        Ok(true) => return 0,
        Ok(false) => {}
        Err(e) => return io_errno(e),
    }
    hub::with(|h| h.revalidate_fd(fd));
    wait_fd(fd, events, timeout_ns)
}

unsafe extern "C" fn cancel_wait(fd: c_int) {
    // Every hub's registration of the number is stale from now on.
    crate::sys::fd_epochs::end(fd);
    let _ = hub::try_with_existing(|h| h.forget_fd(fd));
}

unsafe extern "C" fn sleep_ns(ns: i64, remaining_ns: *mut i64) -> c_int {
    let end = Instant::now() + Duration::from_nanos(ns.max(0) as u64);
    let r = c_path(|| {
        if ns <= 0 {
            crate::hub::check(hub::with(|h| h.yield_now()));
            return Ok(());
        }
        loop {
            let p = hub::park(Some(end));
            crate::hub::check(p.interrupt);
            if p.reason == crate::hub::task::WakeReason::Signal {
                return Err(-libc::EINTR);
            }
            if Instant::now() >= end {
                return Ok(());
            }
        }
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            if !remaining_ns.is_null() {
                let left = end
                    .saturating_duration_since(Instant::now())
                    .as_nanos()
                    .min(i64::MAX as u128) as i64;
                // SAFETY: the caller passed a valid pointer or null.
                unsafe { *remaining_ns = left };
            }
            // A Timeout interrupting a sleep is an interruption too.
            if e == -libc::ETIMEDOUT {
                -libc::EINTR
            } else {
                e
            }
        }
    }
}

unsafe extern "C" fn yield_now() -> c_int {
    c_path(|| {
        crate::hub::check(hub::with(|h| h.yield_now()));
        Ok(())
    })
    .err()
    .unwrap_or(0)
}

/// A pointer handed to a worker thread; the caller waits until the job is
/// done, so whatever it points at outlives the job.
struct SendPtr(*mut c_void);
// SAFETY: the pointer is only used by the one worker that runs the job,
// while the greenlet that owns the pointee waits for that job to finish.
unsafe impl Send for SendPtr {}

unsafe extern "C" fn run_in_thread(f: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) -> c_int {
    let p = SendPtr(arg);
    let job = crate::threadpool::default_pool().spawn(move || {
        let p = p;
        // SAFETY: the caller guarantees `f` may be called with `arg` on
        // another thread, and keeps `arg` alive until we return.
        unsafe { f(p.0) }
    });
    let mut killed = false;
    loop {
        match c_path(|| job.get().map_err(|_| -libc::EIO)) {
            Ok(()) => break,
            Err(e) if e == -libc::EINTR || e == -libc::ETIMEDOUT => {
                // The job may still use `arg`: wait until it is done.
                killed |= e == -libc::EINTR;
                hub::with(|h| h.current_task().pending.take());
                continue;
            }
            Err(e) => return e,
        }
    }
    if killed {
        keep_kill_pending();
        -libc::EINTR
    } else {
        0
    }
}

unsafe extern "C" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    match c_path(|| crate::os::waitpid(pid, options).map_err(io_errno)) {
        Ok((p, st)) => {
            if !status.is_null() && p > 0 {
                // SAFETY: the caller passed a valid pointer or null.
                unsafe { *status = st };
            }
            p
        }
        Err(e) => e,
    }
}

thread_local! {
    /// Greenlets spawned through the C API on this thread, by id, until
    /// joined.
    static HANDLES: RefCell<HashMap<u64, Greenlet<usize>>> = RefCell::new(HashMap::new());
}

unsafe extern "C" fn spawn(
    f: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
    stack_size: usize,
) -> u64 {
    let arg = arg as usize;
    let mut b = crate::Builder::new();
    if stack_size != 0 {
        b = b.stack_size(stack_size);
    }
    // SAFETY: the caller guarantees `f(arg)` is safe to call on this
    // thread, later, in a greenlet.
    match b.spawn(move || unsafe { f(arg as *mut c_void) } as usize) {
        Ok(g) => {
            let id = g.id();
            HANDLES.with(|h| h.borrow_mut().insert(id, g));
            id
        }
        Err(e) => {
            // SAFETY: errno is thread-local; setting it is always fine.
            unsafe { *libc::__errno_location() = e.raw_os_error().unwrap_or(libc::ENOMEM) };
            0
        }
    }
}

unsafe extern "C" fn join(id: u64, timeout_ns: i64, result: *mut *mut c_void) -> c_int {
    let Some(g) = HANDLES.with(|h| h.borrow().get(&id).cloned()) else {
        return -libc::ESRCH;
    };
    if g.id() == hub::with(|h| h.current_id()) {
        return -libc::EDEADLK;
    }
    let r = c_path(|| match g.join_until(deadline(timeout_ns)) {
        Ok(()) => Ok(()),
        Err(crate::Error::TimedOut) => Err(-libc::ETIMEDOUT),
        Err(crate::Error::WouldBlockForever) => Err(-libc::EDEADLK),
        Err(_) => Err(-libc::EIO),
    });
    if let Err(e) = r {
        return e;
    }
    HANDLES.with(|h| h.borrow_mut().remove(&id));
    match g.get() {
        Ok(v) => {
            if !result.is_null() {
                // SAFETY: the caller passed a valid pointer or null.
                unsafe { *result = v as *mut c_void };
            }
            0
        }
        Err(_) => -libc::ECANCELED,
    }
}

unsafe extern "C" fn kill(id: u64, timeout_ns: i64) -> c_int {
    let Some(g) = HANDLES.with(|h| h.borrow().get(&id).cloned()) else {
        return -libc::ESRCH;
    };
    if id == hub::with(|h| h.current_id()) {
        // The caller itself: nothing may unwind through C frames, so the
        // kill stays pending (`killed()` is 1, every later blocking call
        // fails with EINTR) and the greenlet ends by returning. It cannot
        // wait for its own end.
        keep_kill_pending();
        return 0;
    }
    g.kill_async();
    if timeout_ns == 0 {
        return 0;
    }
    c_path(|| match g.join_until(deadline(timeout_ns)) {
        Ok(()) => Ok(()),
        Err(crate::Error::TimedOut) => Err(-libc::ETIMEDOUT),
        Err(_) => Err(-libc::EIO),
    })
    .err()
    .unwrap_or(0)
}

unsafe extern "C" fn current() -> u64 {
    hub::with(|h| h.current_id())
}

unsafe extern "C" fn killed() -> c_int {
    hub::with(|h| (h.current_task().pending.get() == Some(Interrupt::Kill)) as c_int)
}

unsafe extern "C" fn owns_fd(fd: c_int) -> c_int {
    owns_fd_here(fd) as c_int
}

/// True if `fd` is one of this copy's runtime fds (see `RuntimeV1::owns_fd`).
pub fn owns_fd_here(fd: c_int) -> bool {
    crate::sys::fds::owns(fd)
}

unsafe extern "C" fn relocate_fd(fd: c_int) -> c_int {
    relocate_fd_here(fd)
}

/// This copy's `RuntimeV1::relocate_fd`.
pub fn relocate_fd_here(fd: c_int) -> c_int {
    match crate::sys::fds::relocate(fd) {
        Ok(()) => 0,
        Err(crate::sys::fds::RelocateError::NotOwned) => -libc::ENOENT,
        Err(crate::sys::fds::RelocateError::Busy) => -libc::EBUSY,
    }
}

unsafe extern "C" fn begin_program_change() {
    begin_program_change_here();
}

unsafe extern "C" fn end_program_change() {
    end_program_change_here();
}

/// This copy's `RuntimeV1::begin_program_change`.
pub fn begin_program_change_here() {
    crate::sys::fd_gate::begin_program_change();
}

/// This copy's `RuntimeV1::end_program_change`.
pub fn end_program_change_here() {
    crate::sys::fd_gate::end_program_change();
}

unsafe extern "C" fn next_owned_fd(from: c_int) -> c_int {
    next_owned_fd_here(from)
}

/// This copy's `RuntimeV1::next_owned_fd`.
pub fn next_owned_fd_here(from: c_int) -> c_int {
    crate::sys::fds::next_owned(from).unwrap_or(-1)
}

/// A close-on-exec duplicate of the program's `fd` for the runtime's own
/// use, above the program's range and registered, so that the program
/// neither sees nor closes it: its number, or `-errno`. Release it with
/// [`release_private_fd`].
pub fn private_dup(fd: c_int) -> c_int {
    crate::sys::fds::dup_owned(fd).unwrap_or_else(|e| -e.raw_os_error().unwrap_or(libc::EMFILE))
}

/// Unregisters and closes an fd from [`private_dup`].
pub fn release_private_fd(fd: c_int) {
    crate::sys::fds::close_owned(fd);
}

/// An fd a hook holds for the length of one call (a temporary epoll fd,
/// a pidfd, a timerfd): moved above the program's range at once, and
/// moved again if the program asks for its number (see
/// [`RuntimeV1::relocate_fd`]), like the hubs' own fds. Closed on drop.
pub struct HookFd(crate::sys::fds::RuntimeFd);

impl HookFd {
    /// Creates the fd with `create` (an fd, or `-1` with errno set), apart
    /// from the program's `dup2`/`dup3` (see `sys::fd_gate`): the fd, or
    /// the errno.
    pub fn create(create: impl FnOnce() -> c_int) -> Result<HookFd, c_int> {
        crate::sys::fds::RuntimeFd::create(|| match create() {
            fd if fd < 0 => Err(std::io::Error::last_os_error()),
            fd => Ok(fd),
        })
        .map(HookFd)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))
    }

    /// Runs `f` with the fd's number, which stays the fd's until `f`
    /// returns: for system calls on it.
    pub fn with<R>(&self, f: impl FnOnce(c_int) -> R) -> R {
        self.0.with(f)
    }

    /// The fd's number now, to wait on in the hub: a wait that a move
    /// ends (`-EBADF`, or a wake) is made again with the new number.
    pub fn number(&self) -> c_int {
        self.0.with(|fd| fd)
    }
}

unsafe extern "C" fn switch_count() -> u64 {
    hub::switch_count()
}

unsafe extern "C" fn set_signal_interruptible(on: c_int) -> c_int {
    hub::with(|h| h.current_task().signal_interruptible.replace(on != 0)) as c_int
}
