//! Timed waits on the hub that a signal may end, shared by the waiting
//! hooks (`hooks/poll.rs`, `hooks/time.rs`, `hooks/process.rs`): the
//! [`Deadline`] of a call, `timespec` conversions, and the check of
//! whether a signal interrupts the call (signal(7)); the interruptible
//! park itself is `hook::park_interruptibly`, shared with `coop::park`.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use libc::timespec;

use crate::handlers::{self, Mark};
use crate::runtime::rt;

/// When a cooperative wait gives up: `None` waits without limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// A deadline `d` from now (`None`: never).
    pub(crate) fn after(d: Option<Duration>) -> Deadline {
        Deadline(d.and_then(|d| Instant::now().checked_add(d)))
    }

    /// True when a deadline exists and has passed.
    pub(crate) fn passed(&self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// The time left (`None`: no limit; zero once passed).
    pub(crate) fn left(&self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The time left in nanoseconds for the runtime (`-1`: no limit).
    pub(crate) fn left_ns(&self) -> i64 {
        match self.left() {
            None => -1,
            Some(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        }
    }

    /// The time left in whole milliseconds, rounded up (`-1`: no limit),
    /// for a real call's `int` timeout.
    pub(crate) fn left_ms(&self) -> c_int {
        match self.left() {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(c_int::MAX as u128) as c_int,
        }
    }

    /// The time left as a `timespec` (`None`: no limit).
    pub(crate) fn left_timespec(&self) -> Option<timespec> {
        self.left().map(duration_timespec)
    }
}

/// `d` as a `timespec` (saturating).
pub(crate) fn duration_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// A valid `timespec` as a `Duration`; `None` if the kernel would refuse
/// it with `EINVAL` (negative, or `tv_nsec` outside `0..1e9`).
pub(crate) fn timespec_duration(ts: &timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1_000_000_000 {
        None
    } else {
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
}

/// After a park that began at `since` ended with `-EINTR`: true if the
/// real call would fail with `EINTR` now, false if it would still be
/// waiting (signal(7)).
///
/// A kill always interrupts. Otherwise a signal handler ran on this
/// thread: the program's handlers are known (`handlers`), and the call
/// ends if one that ran lacks `SA_RESTART`, or if it is not
/// `restartable` at all (the poll, select, epoll_wait and sleep families,
/// which the kernel never restarts after a handler). If none of the
/// program's handlers ran, the interruption was a stop and continue
/// (`SIGSTOP`/`SIGCONT`), after which the real call goes on waiting, or a
/// handler installed behind the hooks' back (a raw `rt_sigaction`): then
/// the call ends if some such handler exists that would end it.
pub(crate) fn interrupted(since: Mark, restartable: bool) -> bool {
    // SAFETY: runtime entry point; no pointers.
    if unsafe { (rt().killed)() } != 0 {
        return true;
    }
    if let Some(ends) = handlers::verdict(since, restartable) {
        return ends;
    }
    (1..=libc::SIGRTMAX())
        .filter(|&s| !handlers::is_fault_signal(s))
        .any(|sig| {
            // SAFETY: an all-zero sigaction is a valid out-parameter.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: queries the disposition only (null new action), through
            // the real function (the kernel's view, trampoline included).
            if unsafe { crate::real::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
                return false;
            }
            let unknown = old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != handlers::trampoline_address();
            unknown && (!restartable || old.sa_flags & libc::SA_RESTART == 0)
        })
}

/// Closes an fd the hooks own with a raw syscall (never through a hook).
pub(crate) fn close_raw(fd: c_int) {
    // SAFETY: closing an fd this module created and nobody else knows.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}
