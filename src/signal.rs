//! Signal handlers that run in greenlets (gevent's `gevent.signal_handler`).
//!
//! [`handler`] hands one signal to greenrt: each time it arrives, the
//! callback runs in a **new greenlet** on the *signal hub*, where it may
//! block, sleep, take locks and talk to other greenlets like any other
//! greenlet. [`Handle::cancel`] removes it; when the last greenrt handler
//! for a signal goes, the disposition that was there before the first one
//! (a handler, `SIG_IGN` or `SIG_DFL`) is restored exactly.
//!
//! ```no_run
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! let stop = Arc::new(AtomicBool::new(false));
//! let s = stop.clone();
//! // Ctrl-C asks the server loop to finish instead of killing the process.
//! let h = greenrt::signal::handler(libc::SIGINT, move || s.store(true, Ordering::Relaxed)).unwrap();
//! while !stop.load(Ordering::Relaxed) {
//!     greenrt::sleep(std::time::Duration::from_millis(50)); // serve...
//! }
//! h.cancel(); // Ctrl-C kills again
//! ```
//!
//! # How it works
//!
//! The handler greenrt installs with `sigaction` (`SA_SIGINFO | SA_RESTART
//! | SA_ONSTACK`) is async-signal-safe: it adds one to the signal's pending
//! counter (a lock-free atomic) and writes one byte to a non-blocking,
//! close-on-exec self-pipe, with raw syscalls (never through the preload's
//! hooks) and `errno` saved and restored. One internal greenlet on the
//! signal hub, `greenrt-signal-watcher`, waits for the pipe, takes the
//! counters, and spawns one greenlet per delivery for each handler of that
//! signal. The counters, not the bytes, say what arrived, so a full pipe
//! loses nothing; like the kernel, greenrt does not merge deliveries that
//! it has seen (two `raise`s run each handler twice), but the kernel itself
//! merges a standard signal that arrives while the same one is pending.
//!
//! # Which hub runs the handlers
//!
//! The signal hub is the **main thread's hub** whenever it exists, as in
//! gevent and Python, where signal handlers run in the main thread. If the
//! main thread has no hub (its `main()` never used greenrt, as in Rust's
//! test harness, or it only waits for worker threads), the hub of the
//! thread that installs the first handler serves instead, and keeps
//! serving until the main thread creates its hub (the handlers then move
//! there) or its thread exits (the next hub to be created, or the next
//! call to [`handler`], takes over; signals that arrive meanwhile are
//! counted and delivered then). Handlers only run while the signal hub
//! runs its event loop, that is, while its thread waits cooperatively.
//!
//! The watcher waits on an fd, so while any handler is installed the signal
//! hub never reports "this operation would block forever"
//! ([`LoopExit`](crate::LoopExit)): a wait there that nothing else could end
//! waits for a signal instead. Once the last handler is cancelled the
//! watcher exits and that check works again.
//!
//! # Rules
//!
//! - Signals never handed to greenrt keep their dispositions: greenrt only
//!   touches the signals passed to [`handler`].
//! - `SIGKILL` and `SIGSTOP` cannot be caught (`EINVAL`), and the signals
//!   glibc reserves for itself (32 and 33) are refused by `sigaction`. The
//!   synchronous fault signals `SIGSEGV`, `SIGBUS`, `SIGILL` and `SIGFPE`
//!   are refused too (`InvalidInput`): their handler must act before it
//!   returns, or the faulting instruction runs again, forever.
//! - `SIGCHLD`: greenrt's handler does not reap anything (the disposition
//!   is a handler, never `SIG_IGN`, which would make the kernel discard
//!   exit statuses). A callback should `waitpid` the pids it knows, never
//!   `waitpid(-1)`, which would steal statuses other code waits for.
//! - `SIGINT`/`SIGTERM`: while a handler is installed the signal no longer
//!   ends the process; the callback decides (for example it sets a flag or
//!   kills the server greenlets). Cancel the handle to get the old
//!   behaviour back.
//! - If the program itself changes a signal's disposition after greenrt
//!   installed its handler, cancelling the last greenrt handler leaves the
//!   program's choice in place instead of restoring the older one.
//! - After `fork`, the child keeps the handlers: the child's main-thread
//!   hub (created lazily) gets its own pipe and watcher.

use std::collections::{btree_map, BTreeMap};
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, Weak};

use libc::c_int;

use crate::config::{self, LogLevel};
use crate::hub::{self, HubShared};
use crate::sys::{syscall, Interest};

/// Signals 1..=64 on Linux.
const NSIG: usize = 65;

/// The watcher greenlet's name, as shown in run info.
const WATCHER_NAME: &str = "greenrt-signal-watcher";

/// Deliveries seen by the async-signal handler and not yet dispatched.
static PENDING: [AtomicU32; NSIG] = [const { AtomicU32::new(0) }; NSIG];

/// Write end of the self-pipe (-1 until the first handler is installed).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Handle ids and watcher generations.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The async-signal handler: counts the delivery and wakes the watcher.
/// Only lock-free atomics and raw `write(2)`; `errno` is preserved.
extern "C" fn on_signal(signum: c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, always
    // valid; saving and restoring it keeps the interrupted code's errno.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(p) = PENDING.get(signum as usize) {
        p.fetch_add(1, Ordering::AcqRel);
    }
    poke();
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// `on_signal` as `sigaction` stores it.
fn handler_address() -> libc::sighandler_t {
    on_signal as *const () as libc::sighandler_t
}

/// Writes one byte to the self-pipe (errors ignored: a full pipe is
/// already readable, which is all the watcher needs). Async-signal-safe.
fn poke() {
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let b = 0u8;
        // SAFETY: a raw write(2) of one byte from a valid local buffer; a
        // raw syscall so that no libc hook (the preload's) runs in a
        // signal handler.
        unsafe { libc::syscall(libc::SYS_write, fd, &b as *const u8, 1usize) };
    }
}

/// Empties the (non-blocking) read end of the self-pipe.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: a raw read(2) into a valid local buffer of its length.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
        if n > 0 {
            continue;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return; // EAGAIN (empty), or an error nothing can fix here
    }
}

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

// ===== names =====

const NAMES: &[(&str, c_int)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// The conventional name of a signal (`"SIGUSR2"`), if it has one.
pub fn name(signum: c_int) -> Option<&'static str> {
    NAMES.iter().find(|(_, n)| *n == signum).map(|(s, _)| *s)
}

/// A signal by name or number: `"SIGUSR2"`, `"USR2"` (any case), or
/// `"12"`. Only says which signal is meant; [`handler`] decides whether
/// greenrt can handle it.
pub fn from_name(s: &str) -> Option<c_int> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().filter(|n| (1..NSIG as c_int).contains(n));
    }
    let up = t.to_ascii_uppercase();
    let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    NAMES.iter().find(|(s, _)| *s == full).map(|(_, n)| *n)
}

/// `SIGUSR2`, or `signal 40` for one without a name.
fn display(signum: c_int) -> String {
    match name(signum) {
        Some(n) => n.to_string(),
        None => format!("signal {signum}"),
    }
}

/// Whether greenrt can hand `signum` to greenlets (see the module docs).
pub(crate) fn check_signum(signum: c_int) -> io::Result<()> {
    if !(1..NSIG as c_int).contains(&signum) || signum == libc::SIGKILL || signum == libc::SIGSTOP {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE].contains(&signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "greenrt::signal: {} is a synchronous fault signal; a handler that runs later in a \
                 greenlet cannot fix the faulting instruction",
                display(signum)
            ),
        ));
    }
    // SAFETY: returns glibc's first usable real-time signal; no preconditions.
    let rtmin = unsafe { libc::__libc_current_sigrtmin() };
    if signum > libc::SIGSYS && signum < rtmin {
        // Reserved by the C library for its threads (cancellation, setxid).
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

// ===== the registry =====

type Callback = Arc<dyn Fn() + Send + Sync>;

struct Installed {
    id: u64,
    f: Callback,
    site: &'static Location<'static>,
}

struct SigState {
    /// The disposition before greenrt's first handler for this signal.
    prev: kernel::Disposition,
    handlers: Vec<Installed>,
}

/// Deliveries of one signal to dispatch, and the handlers they run.
struct Due {
    sig: c_int,
    times: u32,
    handlers: Vec<(Callback, &'static Location<'static>)>,
}

struct Pipe {
    read: RawFd,
    pid: i32,
}

struct Watcher {
    gen: u64,
    pid: i32,
    hub: Weak<HubShared>,
}

impl Watcher {
    /// Its hub, if it can still run (same process, hub alive).
    fn hub(&self) -> Option<Arc<HubShared>> {
        if self.pid != getpid() {
            return None;
        }
        self.hub.upgrade().filter(|s| s.handle().is_some())
    }
}

struct Registry {
    sigs: BTreeMap<c_int, SigState>,
    pipe: Option<Pipe>,
    watcher: Option<Watcher>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    sigs: BTreeMap::new(),
    pipe: None,
    watcher: None,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The main thread's hub, if it exists and runs.
fn main_hub() -> Option<Arc<HubShared>> {
    let pid = getpid();
    hub::all_hubs()
        .into_iter()
        .find(|s| s.tid == pid && s.handle().is_some())
}

/// Where the watcher should run.
enum Target {
    Hub(Arc<HubShared>),
    /// Nothing better: this thread's hub, which does not exist yet.
    NeedOwnHub,
}

impl Registry {
    /// The read end of this process's self-pipe, created on first use
    /// (and again in the child of a fork, which must not share it).
    fn ensure_pipe(&mut self) -> io::Result<RawFd> {
        let pid = getpid();
        if let Some(p) = &self.pipe {
            if p.pid == pid {
                return Ok(p.read);
            }
        }
        let mut fds = [0 as c_int; 2];
        syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
        fds[0] = crate::sys::fds::own_high(fds[0])?;
        fds[1] = crate::sys::fds::own_high(fds[1])?;
        WAKE_FD.store(fds[1], Ordering::Release);
        if let Some(old) = self.pipe.replace(Pipe { read: fds[0], pid }) {
            // The parent's pipe, inherited: close our copy of its read end.
            // Its write end is left open on purpose: a handler running on
            // another thread may have loaded that fd number already, and it
            // must not write into whatever file would reuse the number.
            crate::sys::fds::disown(old.read);
            crate::sys::close_raw(old.read);
        }
        Ok(fds[0])
    }

    fn target(&self) -> Target {
        if let Some(m) = main_hub() {
            return Target::Hub(m);
        }
        if let Some(h) = self.watcher.as_ref().and_then(Watcher::hub) {
            return Target::Hub(h);
        }
        match hub::try_with_existing(|h| h.shared.clone()) {
            Some(s) => Target::Hub(s),
            None => Target::NeedOwnHub,
        }
    }

    /// Makes sure a watcher runs on the right hub (see the module docs).
    /// `Ok(false)` when this thread needs a hub first (create it without
    /// holding the registry lock, then call again).
    fn ensure_watcher(&mut self) -> io::Result<bool> {
        let read_fd = self.ensure_pipe()?;
        let target = match self.target() {
            Target::Hub(t) => t,
            Target::NeedOwnHub => return Ok(false),
        };
        let current = self.watcher.as_ref().and_then(Watcher::hub);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &target)) {
            return Ok(true);
        }
        let gen = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let here = hub::try_with_existing(|h| Arc::ptr_eq(&h.shared, &target)).unwrap_or(false);
        if here {
            crate::greenlet::Builder::new()
                .name(WATCHER_NAME)
                .spawn(move || watch(gen, read_fd))?;
        } else {
            let gone = || io::Error::other("greenrt::signal: the signal hub's thread has exited");
            let handle = target.handle().ok_or_else(gone)?;
            handle
                .spawn(move || {
                    crate::greenlet::current().set_name(WATCHER_NAME);
                    watch(gen, read_fd)
                })
                .map_err(|_| gone())?;
        }
        self.watcher = Some(Watcher {
            gen,
            pid: getpid(),
            hub: Arc::downgrade(&target),
        });
        if let Some(handle) = current.and_then(|old| old.handle()) {
            // Wake the old watcher on its own hub: it sees that it is
            // retired and exits. (A byte in the shared pipe would not do:
            // the new watcher may drain it first, and epoll then reports
            // nothing to the old one.)
            let _ = handle.spawn(move || crate::io::cancel_wait(read_fd));
        }
        Ok(true)
    }

    fn is_current(&self, gen: u64) -> bool {
        self.watcher.as_ref().is_some_and(|w| w.gen == gen && w.pid == getpid())
    }

    /// Takes the pending counters of every handled signal, with the
    /// handlers to run for each.
    fn take_pending(&self) -> Vec<Due> {
        let mut out = Vec::new();
        for (&sig, st) in &self.sigs {
            let times = PENDING[sig as usize].swap(0, Ordering::AcqRel);
            if times > 0 {
                out.push(Due {
                    sig,
                    times,
                    handlers: st.handlers.iter().map(|e| (e.f.clone(), e.site)).collect(),
                });
            }
        }
        out
    }
}

// ===== the watcher greenlet =====

/// Clears the watcher record if its greenlet ends abnormally (it is never
/// killed by greenrt, but its end must not leave handlers without one),
/// and drops the pipe from its hub's poller.
struct WatchExit {
    gen: u64,
    read_fd: RawFd,
}

impl Drop for WatchExit {
    fn drop(&mut self) {
        let mut reg = registry();
        if reg.is_current(self.gen) {
            reg.watcher = None;
        }
        drop(reg);
        crate::io::cancel_wait(self.read_fd);
        // A wakeup this watcher consumed may belong to its successor.
        poke();
    }
}

fn watch(gen: u64, read_fd: RawFd) {
    let _exit = WatchExit { gen, read_fd };
    loop {
        // Drain before taking the counters: a signal that arrives after the
        // drain leaves a byte that wakes the wait below.
        drain(read_fd);
        let batch = {
            let mut reg = registry();
            if !reg.is_current(gen) {
                return; // retired: another hub watches now
            }
            if reg.sigs.is_empty() {
                reg.watcher = None; // decided under the lock `handler` takes
                return;
            }
            reg.take_pending()
        };
        for due in batch {
            for _ in 0..due.times {
                for (f, site) in &due.handlers {
                    run_callback(due.sig, f.clone(), site);
                }
            }
        }
        if let Err(e) = crate::io::wait(read_fd, Interest::READ, None) {
            // EBADF: someone called `cancel_wait` on the pipe; wait again.
            config::log(
                LogLevel::Debug,
                format_args!("signal watcher: wait on the pipe failed: {e}"),
            );
        }
    }
}

fn run_callback(sig: c_int, f: Callback, site: &Location<'_>) {
    let name = format!("{} handler (installed at {site})", display(sig));
    if let Err(e) = crate::greenlet::Builder::new().name(name).spawn(move || f()) {
        config::log(
            LogLevel::Error,
            format_args!("cannot start the {} handler installed at {site}: {e}", display(sig)),
        );
    }
}

// ===== the public API =====

/// A greenrt signal handler, returned by [`handler`] (gevent's
/// `signal_handler` object).
///
/// Dropping it does **not** cancel the handler, so `let _ =
/// signal::handler(...)` installs one for the life of the process; call
/// [`cancel`](Handle::cancel) to remove it. It is `Send` and `Sync`:
/// any thread may cancel it.
#[derive(Debug)]
pub struct Handle {
    signum: c_int,
    id: u64,
}

impl Handle {
    /// The signal this handler is for.
    pub fn signum(&self) -> c_int {
        self.signum
    }

    /// True until [`cancel`](Self::cancel) is called.
    pub fn is_active(&self) -> bool {
        registry()
            .sigs
            .get(&self.signum)
            .is_some_and(|st| st.handlers.iter().any(|e| e.id == self.id))
    }

    /// Removes this handler (gevent's `cancel()`); idempotent. Deliveries
    /// not yet dispatched no longer run it. When it was the last greenrt
    /// handler for its signal, the disposition from before the first one
    /// is restored exactly (unless the program has installed its own
    /// since), and when it was the last of all, the watcher greenlet exits.
    pub fn cancel(&self) {
        let mut reg = registry();
        let Some(st) = reg.sigs.get_mut(&self.signum) else {
            return;
        };
        let before = st.handlers.len();
        st.handlers.retain(|e| e.id != self.id);
        if st.handlers.len() == before || !st.handlers.is_empty() {
            return;
        }
        let Some(st) = reg.sigs.remove(&self.signum) else {
            return;
        };
        // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask,
        // no flags) and only serves as the out-parameter.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a query of a valid signal into a valid out-parameter.
        let queried = unsafe { libc::sigaction(self.signum, std::ptr::null(), &mut now) } == 0;
        if queried && now.sa_sigaction == handler_address() {
            if let Err(e) = kernel::set(self.signum, &st.prev) {
                config::log(
                    LogLevel::Error,
                    format_args!("cannot restore the disposition of {}: {e}", display(self.signum)),
                );
            }
        }
        // Deliveries counted before the restore have no handler left.
        PENDING[self.signum as usize].store(0, Ordering::Release);
        if reg.sigs.is_empty() {
            poke(); // the watcher wakes and exits
        }
    }
}

/// Runs `f` in a new greenlet on the signal hub each time `signum`
/// arrives (gevent's `gevent.signal_handler(signum, handler)`).
///
/// The signal hub is the main thread's hub, or while the main thread has
/// none, the hub of the thread that installed the first handler (see the
/// [module docs](self)). Several handlers for one signal all run, in
/// the order they were installed. Callable from any thread.
///
/// Errors: `EINVAL` for `SIGKILL`, `SIGSTOP`, numbers outside 1..=64 and
/// the C library's reserved signals; `InvalidInput` for the fault
/// signals `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`; the `sigaction` or
/// `pipe2` error otherwise.
#[track_caller]
pub fn handler<F>(signum: c_int, f: F) -> io::Result<Handle>
where
    F: Fn() + Send + Sync + 'static,
{
    check_signum(signum)?;
    let site = Location::caller();
    let mut reg = registry();
    while !reg.ensure_watcher()? {
        // No hub anywhere to run the watcher: this thread's becomes the
        // signal hub. Creating it calls `on_hub_created`, which takes the
        // registry lock, so it must not be held here.
        drop(reg);
        hub::with(|_| ());
        reg = registry();
    }
    // If this fails, a watcher started just now finds no signal to watch
    // on its first look and exits.
    let st = match reg.sigs.entry(signum) {
        btree_map::Entry::Occupied(o) => o.into_mut(),
        btree_map::Entry::Vacant(v) => {
            let prev = install(signum)?;
            PENDING[signum as usize].store(0, Ordering::Release);
            v.insert(SigState {
                prev,
                handlers: Vec::new(),
            })
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    st.handlers.push(Installed {
        id,
        f: Arc::new(f),
        site,
    });
    Ok(Handle { signum, id })
}

/// Installs `on_signal` for `signum`; returns the disposition it replaced.
fn install(signum: c_int) -> io::Result<kernel::Disposition> {
    let prev = kernel::get(signum)?;
    // SAFETY: all-zero is a valid `sigaction`; the fields are set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler_address();
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: initialises the mask in place.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // Through the C library, which supplies the return trampoline
    // (SA_RESTORER) a handler needs.
    syscall!(sigaction(signum, &sa, std::ptr::null_mut()))?;
    Ok(prev)
}

/// Saving and restoring a disposition bit for bit. The C library's
/// `sigaction` adds its SA_RESTORER flag to every disposition it
/// installs, even `SIG_DFL`, so a disposition saved and put back through
/// it would differ from the original in that flag; the kernel's
/// `rt_sigaction` gives back exactly what was there.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod kernel {
    use std::io;

    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub(super) struct Disposition {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }

    fn rt_sigaction(sig: libc::c_int, new: *const Disposition, old: *mut Disposition) -> io::Result<()> {
        // SAFETY: rt_sigaction with pointers that are null or point at a
        // valid `Disposition`, whose layout matches the kernel's struct on
        // this architecture, and the kernel's sigset size (8 bytes).
        let r = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8usize) };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(super) fn get(sig: libc::c_int) -> io::Result<Disposition> {
        let mut d = Disposition {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        rt_sigaction(sig, std::ptr::null(), &mut d)?;
        Ok(d)
    }

    pub(super) fn set(sig: libc::c_int, d: &Disposition) -> io::Result<()> {
        rt_sigaction(sig, d, std::ptr::null_mut())
    }
}

/// Elsewhere, through the C library (its SA_RESTORER bit may be added).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod kernel {
    use std::io;

    pub(super) type Disposition = libc::sigaction;

    pub(super) fn get(sig: libc::c_int) -> io::Result<Disposition> {
        // SAFETY: all-zero is a valid out-parameter.
        let mut d: Disposition = unsafe { std::mem::zeroed() };
        crate::sys::syscall!(sigaction(sig, std::ptr::null(), &mut d))?;
        Ok(d)
    }

    pub(super) fn set(sig: libc::c_int, d: &Disposition) -> io::Result<()> {
        crate::sys::syscall!(sigaction(sig, d, std::ptr::null_mut())).map(|_| ())
    }
}

#[linkme::distributed_slice(crate::hub::HUB_STARTED)]
static ON_HUB_STARTED: fn() = on_hub_created;

/// Called by the hub right after it is created (on its thread): installs
/// the `GREENRT_RUN_INFO_SIGNAL` handler once per process, and moves the
/// signal watcher to this hub when it should run here (this is the main
/// thread's hub, or the old signal hub has exited).
fn on_hub_created() {
    if let Some(sig) = config::get().run_info_signal {
        static RUN_INFO: Once = Once::new();
        RUN_INFO.call_once(|| {
            if let Err(e) = handler(sig, crate::run_info::print_run_info) {
                eprintln!(
                    "greenrt: cannot install the GREENRT_RUN_INFO_SIGNAL handler for {}: {e}",
                    display(sig)
                );
            }
        });
    }
    let mut reg = registry();
    if reg.sigs.is_empty() {
        return;
    }
    if let Err(e) = reg.ensure_watcher() {
        config::log(LogLevel::Error, format_args!("cannot start the signal watcher: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(from_name("SIGUSR2"), Some(libc::SIGUSR2));
        assert_eq!(from_name("usr1"), Some(libc::SIGUSR1));
        assert_eq!(from_name(" 15 "), Some(libc::SIGTERM));
        assert_eq!(from_name("64"), Some(64));
        assert_eq!(from_name("65"), None);
        assert_eq!(from_name("0"), None);
        assert_eq!(from_name("SIGFOO"), None);
        assert_eq!(from_name(""), None);
        assert_eq!(name(libc::SIGCHLD), Some("SIGCHLD"));
        assert_eq!(display(40), "signal 40");
    }

    #[test]
    fn uncatchable_and_fault_signals_refused() {
        for s in [libc::SIGKILL, libc::SIGSTOP, 0, 65, -1, 32, 33] {
            assert_eq!(check_signum(s).unwrap_err().raw_os_error(), Some(libc::EINVAL), "{s}");
        }
        for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
            assert_eq!(check_signum(s).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{s}");
        }
        for s in [libc::SIGINT, libc::SIGCHLD, libc::SIGUSR2, 34, 64] {
            assert!(check_signum(s).is_ok(), "{s}");
        }
    }
}
