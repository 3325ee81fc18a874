//! The C API exported by `libgreenrt_preload.so` (`include/greenrt.h`):
//! explicit greenlets from C, like libco and libgo.
//!
//! Every function is a thin wrapper over the serving runtime's table
//! ([`crate::runtime::rt`]): the program's own copy of greenrt if it
//! registered, else the preload's. The table's convention (a negative
//! errno) becomes the C convention here: `-1` (or a `0` handle) with
//! `errno` set. On success `errno` is left alone.
//!
//! Thread rules: a greenlet runs on the OS thread that spawned it, and a
//! handle is only meaningful on that thread (joining or killing it from
//! another thread fails with `ESRCH`).

use std::ffi::{c_int, c_long, c_void};

use crate::errno::set_errno;
use crate::runtime::rt;

/// A greenlet handle: non-zero, unique per process, valid on the thread
/// that spawned the greenlet until it has been joined.
pub type GreenrtT = u64;

/// The body of a greenlet: `f(arg)`, whose return value `greenrt_join`
/// hands back.
pub type GreenrtFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// `events` bit for [`greenrt_wait_fd`]: readable (`POLLIN`).
pub const GREENRT_READ: c_int = greenrt::abi::WAIT_READ;
/// `events` bit for [`greenrt_wait_fd`]: writable (`POLLOUT`).
pub const GREENRT_WRITE: c_int = greenrt::abi::WAIT_WRITE;

/// Milliseconds (negative: no limit) to the table's nanoseconds (negative:
/// no limit), saturating.
fn ms_to_ns(ms: c_long) -> i64 {
    if ms < 0 {
        -1
    } else {
        // c_long is i64 here, i32 on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let ms = i64::from(ms);
        ms.saturating_mul(1_000_000)
    }
}

/// The table's `0` / `-errno` to C's `0` / `-1` with errno.
fn c_ret(r: c_int) -> c_int {
    if r < 0 {
        set_errno(-r);
        -1
    } else {
        0
    }
}

/// Spawns `f(arg)` in a new greenlet on the calling thread, with the
/// default stack size (`GREENRT_STACK_SIZE`). It starts running the next
/// time the caller blocks, yields or joins. Returns its handle, or `0` with
/// errno set (`ENOMEM`, `EINVAL`).
///
/// # Safety
/// `f` must be safe to call with `arg` later on this thread.
#[no_mangle]
pub unsafe extern "C" fn greenrt_spawn(f: GreenrtFn, arg: *mut c_void) -> GreenrtT {
    // SAFETY: forwarded contract; the table's spawn sets errno on failure.
    unsafe { greenrt_spawn_ex(f, arg, 0) }
}

/// Like [`greenrt_spawn`] with an explicit stack size in bytes (`0`: the
/// default).
///
/// # Safety
/// `f` must be safe to call with `arg` later on this thread.
#[no_mangle]
pub unsafe extern "C" fn greenrt_spawn_ex(f: GreenrtFn, arg: *mut c_void, stack_size: usize) -> GreenrtT {
    // SAFETY: the caller guarantees `f(arg)` may run later on this thread;
    // the table's spawn sets errno itself when it returns 0.
    unsafe { (rt().spawn)(f, arg, stack_size) }
}

/// Waits at most `timeout_ms` (negative: without limit) for greenlet `g`
/// and releases its handle; `*result` (if `result` is not null) receives
/// what its function returned. `0`, or `-1` with errno: `ETIMEDOUT` (the
/// handle stays valid), `ESRCH` (unknown handle, already joined, or
/// spawned on another thread), `EDEADLK` (joining itself, or nothing could
/// ever finish it), `ECANCELED` (it was killed before it started, so it has
/// no result; handle released), `EINTR` (the caller itself was killed). A
/// greenlet that returns after a kill is joined normally.
///
/// # Safety
/// `result` must be null or point at writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn greenrt_join(g: GreenrtT, timeout_ms: c_long, result: *mut *mut c_void) -> c_int {
    // SAFETY: the caller guarantees `result` is null or writable.
    c_ret(unsafe { (rt().join)(g, ms_to_ns(timeout_ms), result) })
}

/// Kills greenlet `g`: it is woken at its next switch point, where a
/// blocking call fails with `EINTR` (and so does every later one), and
/// [`greenrt_killed`] returns 1. Waits at most `timeout_ms` for it to
/// finish (negative: without limit; `0`: do not wait). The handle stays
/// valid until joined (the join gives its return value, or fails with
/// `ECANCELED` if it was killed before it started). `0`, or `-1` with
/// errno: `ETIMEDOUT`, `ESRCH`.
#[no_mangle]
pub extern "C" fn greenrt_kill(g: GreenrtT, timeout_ms: c_long) -> c_int {
    // SAFETY: a table entry point; no preconditions.
    c_ret(unsafe { (rt().kill)(g, ms_to_ns(timeout_ms)) })
}

/// Sleeps `ms` milliseconds, letting other greenlets run. `0`, or `-1`
/// with errno `EINTR` (the caller was killed).
#[no_mangle]
pub extern "C" fn greenrt_sleep_ms(ms: c_long) -> c_int {
    greenrt_sleep_ns(ms_to_ns(ms.max(0)))
}

/// Sleeps `ns` nanoseconds, letting other greenlets run. `0`, or `-1` with
/// errno `EINTR` (the caller was killed).
#[no_mangle]
pub extern "C" fn greenrt_sleep_ns(ns: i64) -> c_int {
    // SAFETY: a table entry point; a null `remaining_ns` is allowed.
    c_ret(unsafe { (rt().sleep_ns)(ns, std::ptr::null_mut()) })
}

/// Lets every other ready greenlet run once. `0`, or `-1` with errno
/// `EINTR` (the caller was killed).
#[no_mangle]
pub extern "C" fn greenrt_yield() -> c_int {
    // SAFETY: a table entry point; no preconditions.
    c_ret(unsafe { (rt().yield_now)() })
}

/// The running greenlet's handle (the thread's main flow has one too; it
/// cannot be joined).
#[no_mangle]
pub extern "C" fn greenrt_current() -> GreenrtT {
    // SAFETY: a table entry point; no preconditions.
    unsafe { (rt().current)() }
}

/// 1 if the running greenlet has been killed (it should clean up and
/// return), else 0.
#[no_mangle]
pub extern "C" fn greenrt_killed() -> c_int {
    // SAFETY: a table entry point; no preconditions.
    unsafe { (rt().killed)() }
}

/// Waits until `fd` is ready for `events` (`GREENRT_READ` |
/// `GREENRT_WRITE`), at most `timeout_ms` (negative: without limit).
/// Level-triggered: returns at once if the fd is ready now. `0`, or `-1`
/// with errno: `ETIMEDOUT`, `EBADF` (bad fd, or closed while waiting),
/// `EINTR` (the caller was killed), or the poller's error (`EPERM` for a
/// regular file).
#[no_mangle]
pub extern "C" fn greenrt_wait_fd(fd: c_int, events: c_int, timeout_ms: c_long) -> c_int {
    if fd < 0 {
        set_errno(libc::EBADF);
        return -1;
    }
    if events & (GREENRT_READ | GREENRT_WRITE) == 0 || events & !(GREENRT_READ | GREENRT_WRITE) != 0 {
        set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: a table entry point; any fd number is allowed.
    c_ret(unsafe { (rt().wait_fd_level)(fd, events, ms_to_ns(timeout_ms)) })
}

/// Switches the calling thread's hub has made so far: a counter that moves
/// only when greenlets really take turns (proof of cooperation).
#[no_mangle]
pub extern "C" fn greenrt_switch_count() -> u64 {
    // SAFETY: a table entry point; no preconditions.
    unsafe { (rt().switch_count)() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_convert() {
        assert_eq!(ms_to_ns(-1), -1);
        assert_eq!(ms_to_ns(0), 0);
        assert_eq!(ms_to_ns(250), 250_000_000);
        assert_eq!(ms_to_ns(c_long::MAX), i64::MAX);
    }

    #[test]
    fn errors_become_minus_one_and_errno() {
        set_errno(0);
        assert_eq!(c_ret(-libc::ETIMEDOUT), -1);
        assert_eq!(crate::errno::errno(), libc::ETIMEDOUT);
        set_errno(7);
        assert_eq!(c_ret(0), 0);
        assert_eq!(crate::errno::errno(), 7, "errno untouched on success");
    }

    unsafe extern "C" fn double(arg: *mut c_void) -> *mut c_void {
        greenrt_sleep_ms(5);
        (arg as usize * 2) as *mut c_void
    }

    #[test]
    fn spawn_join_kill() {
        // SAFETY: `double` takes any pointer-sized value.
        let g = unsafe { greenrt_spawn(double, 21 as *mut c_void) };
        assert_ne!(g, 0);
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: `out` is a valid pointer slot.
        assert_eq!(unsafe { greenrt_join(g, -1, &mut out) }, 0);
        assert_eq!(out as usize, 42);
        // SAFETY: null result is allowed.
        assert_eq!(unsafe { greenrt_join(g, -1, std::ptr::null_mut()) }, -1);
        assert_eq!(crate::errno::errno(), libc::ESRCH);

        // SAFETY: as above.
        let g = unsafe { greenrt_spawn(double, 1 as *mut c_void) };
        assert_eq!(greenrt_kill(g, -1), 0);
        // SAFETY: null result is allowed.
        assert_eq!(unsafe { greenrt_join(g, 0, std::ptr::null_mut()) }, -1);
        assert_eq!(crate::errno::errno(), libc::ECANCELED);
        assert!(greenrt_switch_count() > 0);
    }

    #[test]
    fn wait_fd_rejects_bad_arguments() {
        assert_eq!(greenrt_wait_fd(-1, GREENRT_READ, 0), -1);
        assert_eq!(crate::errno::errno(), libc::EBADF);
        assert_eq!(greenrt_wait_fd(0, 0, 0), -1);
        assert_eq!(crate::errno::errno(), libc::EINVAL);
    }
}
