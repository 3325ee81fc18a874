//! The program's signal handlers, as the cooperative path needs to know
//! them: which handler ran on this thread while a call was parked, and
//! whether the kernel would restart that call after it (signal(7)).
//!
//! A parked call sleeps in the hub's poller wait, which any handler that
//! runs on the thread interrupts. The kernel then either restarts the call
//! (the handler was installed with `SA_RESTART`, and the call is one the
//! kernel restarts) or ends it with `EINTR`. To decide the same way, the
//! hooks must know *which* handler ran. So every handler the program
//! installs (`sigaction`, `signal`, `sigset`, ... in `hooks/signal.rs`) is
//! installed through [`trampoline`]: it notes the delivery in a
//! thread-local record (lock-free, allocation-free: async-signal-safe),
//! then calls the program's handler with the same arguments. `sigaction`
//! queries report the program's own handler, never the trampoline.
//!
//! `SA_RESTART` itself is read from the kernel at the moment of the
//! decision (glibc's `siginterrupt` changes it without going through a
//! hook). The synchronous fault signals (`SIGSEGV`, `SIGBUS`, `SIGILL`,
//! `SIGFPE`, `SIGTRAP`, `SIGSYS`) are never wrapped: they are raised by the
//! faulting code itself and never interrupt a parked call.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// Signals 1..=64, indexed by number (0 unused).
const SIGNALS: usize = 65;

/// The program's handler for each wrapped signal (its address; 0: none),
/// and whether it takes `siginfo` (`SA_SIGINFO`), in the low bit of
/// `PROGRAM_SIGINFO`.
static PROGRAM: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
static PROGRAM_SIGINFO: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];

thread_local! {
    /// How many wrapped handlers have run on this thread.
    static RUNS: Cell<u64> = const { Cell::new(0) };
    /// For each signal, the value of `RUNS` when its handler last ran here.
    static LAST: [Cell<u64>; SIGNALS] = const { [const { Cell::new(0) }; SIGNALS] };
}

/// The process the table belongs to. A child made with `vfork` (CPython's
/// subprocess uses it) shares our memory until it execs, and resets its
/// handlers there: it must not touch the table, or the parent's handlers
/// would be forgotten. A `fork` child gets its own copy (and its pid here,
/// from the atfork handler).
static OWNER: AtomicI32 = AtomicI32::new(0);

fn getpid() -> i32 {
    // SAFETY: a raw getpid (glibc caches nothing that a vfork child would
    // share wrongly); no arguments.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

extern "C" fn after_fork_in_child() {
    OWNER.store(getpid(), Ordering::Relaxed);
}

/// Records this process as the table's owner and keeps it true across
/// `fork` (from the library's constructor).
pub fn init() {
    OWNER.store(getpid(), Ordering::Relaxed);
    // SAFETY: registers a plain extern "C" handler that only stores an
    // atomic; the library is never unloaded.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
}

/// True in a child made with `vfork` (it runs in our memory until it
/// execs): the signal hooks then pass everything straight through.
pub fn in_vfork_child() -> bool {
    let owner = OWNER.load(Ordering::Relaxed);
    owner != 0 && owner != getpid()
}

/// True for the signals never wrapped (see the module docs).
pub fn is_fault_signal(sig: c_int) -> bool {
    matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP | libc::SIGSYS
    )
}

/// True if a handler for `sig` should be installed through the
/// trampoline: a real function, for a signal it may wrap.
pub fn wraps(sig: c_int, handler: libc::sighandler_t) -> bool {
    (1..SIGNALS as c_int).contains(&sig)
        && !is_fault_signal(sig)
        // SIG_DFL, SIG_IGN, SIG_HOLD (2), SIG_ERR: no function lives there.
        && handler >= 4096
        && handler != libc::SIG_ERR
}

/// The trampoline's address, as `sigaction` stores a handler.
pub fn trampoline_address() -> libc::sighandler_t {
    trampoline as *const () as libc::sighandler_t
}

/// Records that the program's handler for `sig` is `handler` (taking
/// `siginfo` if `siginfo`); returns the previous record (handler, siginfo).
pub fn record(sig: c_int, handler: libc::sighandler_t, siginfo: bool) -> (libc::sighandler_t, bool) {
    let i = sig as usize;
    let prev_info = PROGRAM_SIGINFO[i].swap(siginfo as usize, Ordering::AcqRel) != 0;
    let prev = PROGRAM[i].swap(handler, Ordering::AcqRel);
    (prev, prev_info)
}

/// The program's handler for `sig` as last recorded (0: none).
pub fn program_handler(sig: c_int) -> (libc::sighandler_t, bool) {
    match PROGRAM.get(sig as usize) {
        Some(h) => (
            h.load(Ordering::Acquire),
            PROGRAM_SIGINFO[sig as usize].load(Ordering::Acquire) != 0,
        ),
        None => (0, false),
    }
}

/// Every wrapped handler runs through here: notes the delivery on this
/// thread, then calls the program's handler. Touches only atomics and
/// const-initialised thread-locals without destructors; errno is the
/// program's handler's business, as natively.
extern "C" fn trampoline(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let i = sig as usize;
    if i < SIGNALS {
        let _ = RUNS.try_with(|r| {
            let n = r.get() + 1;
            r.set(n);
            let _ = LAST.try_with(|l| l[i].set(n));
        });
    }
    let (h, siginfo) = program_handler(sig);
    if h == 0 || h == libc::SIG_DFL || h == libc::SIG_IGN {
        return;
    }
    if siginfo {
        // SAFETY: the program installed `h` with SA_SIGINFO: it takes these
        // three arguments, which the kernel passed us unchanged.
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed `h` as a plain one-argument handler.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// A point in this thread's handler history: take one when a call parks,
/// ask [`verdict`] when the park is interrupted.
#[derive(Clone, Copy, Debug)]
pub struct Mark(u64);

/// Now, in this thread's handler history.
pub fn mark() -> Mark {
    Mark(RUNS.try_with(|r| r.get()).unwrap_or(0))
}

/// What the kernel does with a call parked since `since` now that its
/// wait was interrupted: `Some(true)` ends it with `EINTR`, `Some(false)`
/// restarts it, `None` if no wrapped handler ran here since (a stop and
/// continue, or a handler installed behind the hooks' back: the caller
/// decides).
///
/// `restartable`: the call is one the kernel restarts after an
/// `SA_RESTART` handler (reads, writes, accept, connect, wait*; not the
/// poll, select, epoll_wait and sleep families, nor socket calls with a
/// timeout set). It ends with `EINTR` if any handler that ran lacks
/// `SA_RESTART` (as the kernel checks it now), or if it is not
/// restartable at all.
pub fn verdict(since: Mark, restartable: bool) -> Option<bool> {
    let mut any = false;
    let mut interrupts = false;
    let _ = LAST.try_with(|l| {
        for (sig, last) in l.iter().enumerate().skip(1) {
            if last.get() > since.0 {
                any = true;
                if !restartable || !restarts(sig as c_int) {
                    interrupts = true;
                }
            }
        }
    });
    any.then_some(interrupts)
}

/// True if `sig`'s disposition now has `SA_RESTART` (the kernel's view).
fn restarts(sig: c_int) -> bool {
    // SAFETY: an all-zero sigaction is a valid out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: queries the disposition only (null new action), through
    // the real libc function, never our hook.
    if unsafe { crate::real::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return false;
    }
    old.sa_flags & libc::SA_RESTART != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trampoline_records_and_calls_the_program_handler() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        extern "C" fn h(_: c_int) {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        let sig = libc::SIGURG;
        let m = mark();
        assert_eq!(verdict(m, true), None);
        record(sig, h as *const () as libc::sighandler_t, false);
        trampoline(sig, std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
        // SIGURG's disposition has no SA_RESTART here (it is SIG_DFL):
        // any call parked since `m` ends with EINTR.
        assert_eq!(verdict(m, true), Some(true));
        assert_eq!(verdict(mark(), true), None);
        record(sig, 0, false);
        assert!(wraps(libc::SIGUSR1, h as *const () as libc::sighandler_t));
        assert!(!wraps(libc::SIGSEGV, h as *const () as libc::sighandler_t));
        assert!(!wraps(libc::SIGUSR1, libc::SIG_IGN));
    }
}
