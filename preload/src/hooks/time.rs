//! Hooks for the sleep family: `sleep`, `usleep`, `nanosleep` and
//! `clock_nanosleep`.
//!
//! Where the calling greenlet should cooperate (DESIGN rule 1), a sleep
//! parks only that greenlet on the hub's timer, for exactly the time asked
//! (rule 17: measured from the start of the call, never shorter):
//!
//! - **Relative sleeps** (`sleep`, `usleep`, `nanosleep`, and
//!   `clock_nanosleep` without `TIMER_ABSTIME` on `CLOCK_REALTIME` or
//!   `CLOCK_MONOTONIC`) use the hub's monotonic timer. That is what the
//!   kernel does too: a relative `CLOCK_REALTIME` sleep runs on the
//!   monotonic clock, so setting the wall clock does not change it.
//! - **Absolute `CLOCK_MONOTONIC`** sleeps become relative ones to the
//!   same clock (the hub's `Instant` is `CLOCK_MONOTONIC`); a time already
//!   past returns at once.
//! - **Absolute `CLOCK_REALTIME`** sleeps, and every **`CLOCK_BOOTTIME`**
//!   sleep, park on a one-shot `timerfd` on that clock, armed with the
//!   program's own `timespec`: the kernel moves an absolute
//!   `CLOCK_REALTIME` expiry when the wall clock is set, and counts
//!   suspended time on `CLOCK_BOOTTIME`, exactly as `clock_nanosleep`
//!   does. The timerfd lives for the call only.
//! - Other clocks (`CLOCK_TAI`, the CPU-time clocks, the alarm clocks) and
//!   invalid arguments pass straight to the real call, which sleeps or
//!   reports `EINVAL`/`EFAULT`/`ENOTSUP` itself.
//!
//! A zero-length sleep yields to the other greenlets once (the real call
//! returns at once too).
//!
//! # Return values and errno (rule 7)
//!
//! As the real calls: `nanosleep` and `usleep` return `0`, or `-1` with
//! `EINTR` (and `nanosleep` writes what was left to `rem`, if given);
//! `clock_nanosleep` returns `0` or the error number and never touches
//! errno (relative sleeps write what was left to `rem` on `EINTR`);
//! `sleep` returns `0`, or the whole seconds not slept (truncated, as
//! glibc's `sleep` does) with errno `EINTR`. On success errno keeps the
//! value it had when the call started, whatever the other greenlets did
//! meanwhile.
//!
//! # Signals (rule 16)
//!
//! None of these calls is restarted after a signal handler, with or
//! without `SA_RESTART`: they fail with `EINTR`. A parked sleep ends with
//! `EINTR` (and the remaining time) when a signal handler interrupts the
//! hub's wait, or the greenlet is killed (see `hooks/poll.rs`, "Signals"); a
//! stop and continue with no handler installed sleeps on.
//!
//! If the runtime's wait fails for any other reason, the call falls back
//! to the real sleep for the time that is left.

use std::ffi::{c_int, c_uint};
use std::time::{Duration, Instant};

use greenrt::abi::HookFd;
use greenrt::abi::WAIT_READ;
use libc::{clockid_t, timespec, useconds_t};

use crate::errno::{errno, set_errno};
use crate::hook::{self, park_interruptibly};
use crate::real;
use crate::runtime::rt;
use crate::user_mem;
use crate::wait::{duration_timespec, interrupted, timespec_duration};

/// How a cooperative sleep ended.
enum Slept {
    /// The whole time passed.
    Done,
    /// Interrupted with this much left.
    Interrupted(Duration),
    /// The runtime could not sleep; this much is left for the real call.
    Failed(Duration),
}

/// Parks the calling greenlet for `d` (a zero `d` yields once).
fn sleep_for(d: Duration) -> Slept {
    let start = Instant::now();
    let left = || d.saturating_sub(start.elapsed());
    loop {
        let chunk = left().as_nanos().min(i64::MAX as u128) as i64;
        // SAFETY: runtime entry point; a null `remaining` is allowed.
        let (r, since) = park_interruptibly(|| unsafe { (rt().sleep_ns)(chunk, std::ptr::null_mut()) });
        match r {
            0 if left().is_zero() => return Slept::Done,
            // Only sleeps longer than i64::MAX ns (292 years) come back
            // early: sleep the rest.
            0 => {}
            // Never restarted after a handler, whatever SA_RESTART says.
            e if e == -libc::EINTR && interrupted(since, false) => return Slept::Interrupted(left()),
            // A stop and continue: sleep the rest.
            e if e == -libc::EINTR => {}
            _ => return Slept::Failed(left()),
        }
    }
}

/// A relative sleep with `nanosleep`'s contract: `0`, or `-1`/`EINTR` with
/// the remaining time in `rem` (if not null).
///
/// # Safety
/// `rem` is null or writable.
unsafe fn nanosleep_coop(d: Duration, rem: *mut timespec) -> c_int {
    let saved = errno();
    match sleep_for(d) {
        Slept::Done => {
            set_errno(saved);
            0
        }
        Slept::Interrupted(left) => {
            // A `rem` the kernel cannot write makes it EFAULT.
            if !rem.is_null() && user_mem::write(rem, &duration_timespec(left)).is_err() {
                set_errno(libc::EFAULT);
                return -1;
            }
            set_errno(libc::EINTR);
            -1
        }
        Slept::Failed(left) => {
            set_errno(saved);
            let ts = duration_timespec(left);
            // SAFETY: a local request; the caller's `rem`.
            unsafe { real::nanosleep(&ts, rem) }
        }
    }
}

/// The `nanosleep` hook.
///
/// # Safety
/// The libc contract of `nanosleep`.
pub unsafe fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::nanosleep(req, rem) };
    if req.is_null() {
        return real();
    }
    let coop = || {
        // A bad pointer, or a request the kernel refuses: its answer.
        let Some(d) = user_mem::read(req).ok().and_then(|ts| timespec_duration(&ts)) else {
            return real();
        };
        // SAFETY: `rem` is null or the program's; written through user_mem.
        unsafe { nanosleep_coop(d, rem) }
    };
    hook::route("nanosleep", coop, real)
}

/// The `usleep` hook.
///
/// # Safety
/// The libc contract of `usleep`.
pub unsafe fn usleep(us: useconds_t) -> c_int {
    // SAFETY: plain value argument.
    let real = || unsafe { real::usleep(us) };
    let d = Duration::from_micros(us as u64);
    // SAFETY: a null `rem`.
    hook::route("usleep", || unsafe { nanosleep_coop(d, std::ptr::null_mut()) }, real)
}

/// The `sleep` hook.
///
/// # Safety
/// The libc contract of `sleep`.
pub unsafe fn sleep(secs: c_uint) -> c_uint {
    // SAFETY: plain value argument.
    let real = || unsafe { real::sleep(secs) };
    let coop = || {
        let saved = errno();
        match sleep_for(Duration::from_secs(secs as u64)) {
            Slept::Done => {
                set_errno(saved);
                0
            }
            Slept::Interrupted(left) => {
                set_errno(libc::EINTR);
                left.as_secs() as c_uint
            }
            Slept::Failed(left) => {
                set_errno(saved);
                // Whole seconds for the real sleep, the fraction here
                // (it cannot take less than a second).
                let ts = duration_timespec(left);
                let mut rem = timespec { tv_sec: 0, tv_nsec: 0 };
                // SAFETY: local timespecs.
                if unsafe { real::nanosleep(&ts, &mut rem) } == 0 {
                    set_errno(saved);
                    0
                } else {
                    rem.tv_sec as c_uint
                }
            }
        }
    };
    hook::route("sleep", coop, real)
}

/// A one-shot timerfd for one sleep, out of the hub's poller and closed on
/// drop.
struct TimerFd(HookFd);

impl TimerFd {
    /// A timer on `clock` armed with the program's `req` (absolute or
    /// relative); `None` if the kernel refuses (the real call then runs).
    fn arm(clock: clockid_t, abs: bool, req: &timespec) -> Option<TimerFd> {
        let t = TimerFd(
            // SAFETY: plain syscall wrapper.
            HookFd::create(|| unsafe { libc::timerfd_create(clock, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) }).ok()?,
        );
        let its = libc::itimerspec {
            it_interval: timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: *req,
        };
        let flags = if abs { libc::TFD_TIMER_ABSTIME } else { 0 };
        let set = t.0.with(|fd| {
            // SAFETY: a valid itimerspec; a null old value is allowed.
            unsafe { libc::timerfd_settime(fd, flags, &its, std::ptr::null_mut()) }
        });
        if set != 0 {
            return None;
        }
        Some(t)
    }

    /// Time left before the timer fires.
    fn left(&self) -> Duration {
        // SAFETY: an all-zero itimerspec is a valid value.
        let mut cur: libc::itimerspec = unsafe { std::mem::zeroed() };
        // SAFETY: our timerfd, a local out-parameter.
        if self.0.with(|fd| unsafe { libc::timerfd_gettime(fd, &mut cur) }) != 0 {
            return Duration::ZERO;
        }
        timespec_duration(&cur.it_value).unwrap_or_default()
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        // SAFETY: runtime entry point; no pointers.
        unsafe { (rt().cancel_wait)(self.0.number()) };
        // Dropping the HookFd closes it.
    }
}

/// The cooperative `clock_nanosleep` for a supported clock and a valid
/// request `d` (as a duration) / `req` (as given). `Err(left)` when the
/// runtime could not sleep: the caller makes the real call, for `left`
/// (relative sleeps already partly slept) or for `req` (`None`).
///
/// # Safety
/// `rem` is null or writable.
unsafe fn clock_nanosleep_coop(
    clock: clockid_t,
    abs: bool,
    req: &timespec,
    d: Duration,
    rem: *mut timespec,
) -> Result<c_int, Option<Duration>> {
    let stopped_early = |left: Duration| {
        // A `rem` the kernel cannot write makes it EFAULT.
        if !abs && !rem.is_null() && user_mem::write(rem, &duration_timespec(left)).is_err() {
            return Ok(libc::EFAULT);
        }
        Ok(libc::EINTR)
    };
    let relative = match (clock, abs) {
        (libc::CLOCK_BOOTTIME, _) | (libc::CLOCK_REALTIME, true) => None,
        (_, false) => Some(d),
        (_, true) => {
            // Absolute on CLOCK_MONOTONIC, the hub's own clock.
            let mut now = timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a local out-parameter.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
            let now = timespec_duration(&now).unwrap_or_default();
            Some(d.saturating_sub(now))
        }
    };
    // A zero timespec would disarm a timerfd; it is "now" (absolute: long
    // past) either way.
    let relative = relative.or(d.is_zero().then_some(Duration::ZERO));
    if let Some(rel) = relative {
        return match sleep_for(rel) {
            Slept::Done => Ok(0),
            Slept::Interrupted(left) => stopped_early(left),
            Slept::Failed(left) if !abs => Err(Some(left)),
            Slept::Failed(_) => Err(None),
        };
    }
    let t = TimerFd::arm(clock, abs, req).ok_or(None)?;
    loop {
        let n = t.0.number();
        // SAFETY: runtime entry point; no pointers.
        let (r, since) = park_interruptibly(|| unsafe { (rt().wait_fd_level)(n, WAIT_READ, -1) });
        return match r {
            0 => Ok(0),
            // The program took the number (`HookFd`): wait on the new one.
            e if e == -libc::EBADF && t.0.number() != n => continue,
            e if e == -libc::EINTR && interrupted(since, false) => stopped_early(t.left()),
            e if e == -libc::EINTR => continue,
            _ if abs => Err(None),
            _ => Err(Some(t.left())),
        };
    }
}

/// The `clock_nanosleep` hook.
///
/// # Safety
/// The libc contract of `clock_nanosleep`.
pub unsafe fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    if req.is_null()
        || !matches!(
            clock,
            libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
        )
    {
        return real();
    }
    let abs = flags & libc::TIMER_ABSTIME != 0;
    let coop = || {
        // A bad pointer, or a request the kernel refuses: its answer.
        let Ok(req_v) = user_mem::read(req) else {
            return real();
        };
        let Some(d) = timespec_duration(&req_v) else {
            return real();
        };
        let saved = errno();
        // SAFETY: `rem` is null or writable, per the contract.
        let r = match unsafe { clock_nanosleep_coop(clock, abs, &req_v, d, rem) } {
            Ok(r) => r,
            // The runtime could not sleep: the real call, for what is
            // left of a relative sleep (an absolute request means the
            // same thing now).
            Err(Some(left)) => {
                let ts = duration_timespec(left);
                // SAFETY: a local request; the program's `rem`.
                unsafe { real::clock_nanosleep(clock, 0, &ts, rem) }
            }
            Err(None) => real(),
        };
        // clock_nanosleep reports through its return value only.
        set_errno(saved);
        r
    };
    hook::route("clock_nanosleep", coop, real)
}

crate::hook::forward_hooks! {
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int => greenrt_nanosleep calls super::nanosleep;
    fn usleep(us: useconds_t) -> c_int => greenrt_usleep calls super::usleep;
    fn sleep(secs: c_uint) -> c_uint => greenrt_sleep calls super::sleep;
    fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int => greenrt_clock_nanosleep calls super::clock_nanosleep;
}
