//! Hooks for fd numbers: `close`, `close_range`, `closefrom`, `dup`,
//! `dup2` and `dup3`.
//!
//! Three jobs. The fd table and the hubs forget a number before it is
//! closed or replaced, and its waiters on this thread wake with `EBADF`
//! (rule 4). Calls parked on it in other threads keep its open file, as
//! blocked system calls do (`handover`).
//! And the runtime's own fds (see `greenrt::sys::fds`) stay out of the
//! program's way: a close of one of their numbers answers `EBADF`, as the
//! kernel does for a number the unhooked program never opened;
//! `close_range` and `closefrom` close around them; and when the program
//! asks for one of their numbers (`dup2`, `dup3`, or the lowest free
//! number from `dup` and `F_DUPFD`, in `io.rs`), the runtime moves its fd
//! away and the program gets the number, as it would without the runtime.

use std::ffi::{c_int, c_uint};

use crate::coop::tracking;
use crate::errno::{errno, set_errno};
use crate::fdtable::{self, Kind};
use crate::handover;
use crate::hook;
use crate::real;
use crate::runtime::{self, close_given_up, give_up_fd, owns_fd, rt};

/// Wakes this thread's greenlets waiting on `fd` (they get `EBADF`) and
/// drops it from the poller, before it is closed or replaced (rule 4).
fn cancel_waiters(fd: c_int) {
    if hook::bypassed() {
        return;
    }
    if let Some(st) = fdtable::peek(fd) {
        if st.kind == Kind::Passthrough {
            return;
        }
    }
    let saved = errno();
    hook::guarded(
        "close",
        // SAFETY: a runtime entry point; no preconditions.
        || unsafe { (rt().cancel_wait)(fd) },
        || (),
    );
    set_errno(saved);
}

/// True if `fd` is a runtime fd, so not open for the program: a number
/// the runtime is creating, moving or closing in another thread right now
/// is asked again once that change is over (`runtime::program_change`),
/// since it may be the program's a moment later.
fn owned_for_certain(fd: c_int) -> bool {
    owns_fd(fd) && runtime::program_change(|| owns_fd(fd))
}

/// The `close` hook: waiters wake with `EBADF` and the fd leaves the
/// poller before it is closed (rule 4).
///
/// # Safety
/// The libc contract of `close`.
pub unsafe fn close(fd: c_int) -> c_int {
    if owned_for_certain(fd) {
        // Not open as far as the program knows: answer as the kernel would.
        set_errno(libc::EBADF);
        return -1;
    }
    if fd >= 0 && tracking() {
        handover::give_away(fd);
        cancel_waiters(fd);
        fdtable::forget(fd);
    }
    // SAFETY: the caller's arguments.
    unsafe { real::close(fd) }
}

/// `CLOSE_RANGE_UNSHARE` and `CLOSE_RANGE_CLOEXEC` (linux/close_range.h).
const CLOSE_RANGE_UNSHARE: c_int = 1 << 1;
const CLOSE_RANGE_CLOEXEC: c_int = 1 << 2;

/// The `close_range` hook: the program's fds in `first..=last` are closed
/// (or marked close-on-exec) with the kernel's call on each stretch
/// between the runtime's fds, which stay open.
///
/// # Safety
/// The libc contract of `close_range`.
pub unsafe fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if first > last || flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 {
        // The kernel's EINVAL, from the kernel.
        // SAFETY: the caller's arguments.
        return unsafe { real::close_range(first, last, flags) };
    }
    if flags & CLOSE_RANGE_CLOEXEC == 0 && tracking() {
        let top = last.min(fdtable::LIMIT as c_uint - 1);
        for fd in first..=top.max(first) {
            let fd = fd as c_int;
            handover::give_away(fd);
            if fdtable::peek(fd).is_some() {
                cancel_waiters(fd);
                fdtable::forget(fd);
            }
        }
    }
    // The runtime's fds stay where they are while the stretches close.
    runtime::program_change(|| close_around_runtime_fds(first, last, flags))
}

/// The kernel's `close_range` on each stretch of `first..=last` between
/// the runtime's fds.
fn close_around_runtime_fds(first: c_uint, last: c_uint, mut flags: c_int) -> c_int {
    let mut from = first;
    loop {
        let next = runtime::lowest_runtime_fd(from.min(c_int::MAX as c_uint) as c_int)
            .map(|f| f as c_uint)
            .filter(|&f| f <= last);
        let end = match next {
            Some(f) => f.checked_sub(1),
            None => Some(last),
        };
        if let Some(end) = end.filter(|&e| e >= from) {
            // SAFETY: a valid range of the program's numbers.
            let r = unsafe { real::close_range(from, end, flags) };
            if r != 0 {
                return r;
            }
            // The table is unshared once, by the first stretch.
            flags &= !CLOSE_RANGE_UNSHARE;
        }
        match next {
            Some(f) if f < last => from = f + 1,
            _ => return 0,
        }
    }
}

/// The `closefrom` hook: `close_range(lowfd, ~0, 0)` around the runtime's
/// fds, or, where the kernel has no `close_range`, a close of every
/// program fd up to the fd limit.
///
/// # Safety
/// The libc contract of `closefrom`.
pub unsafe fn closefrom(lowfd: c_int) {
    let saved = errno();
    // SAFETY: a valid range.
    if unsafe { close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0) } == 0 {
        set_errno(saved);
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct.
    let top = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(c_int::MAX as u64) as c_int
    } else {
        fdtable::LIMIT as c_int
    };
    for fd in lowfd.max(0)..top {
        // SAFETY: closing a number; EBADF for the ones not open.
        unsafe { close(fd) };
    }
    set_errno(saved);
}

/// The `dup` hook: the copy shares the original's open file description,
/// at the lowest number the program would get without the runtime's fds.
///
/// # Safety
/// The libc contract of `dup`.
pub unsafe fn dup(fd: c_int) -> c_int {
    if owned_for_certain(fd) {
        set_errno(libc::EBADF);
        return -1;
    }
    // Apart from runtime fd creations, which hold the lowest free number
    // for an instant.
    // SAFETY: the caller's arguments.
    let r = runtime::program_change(|| unsafe { real::dup(fd) });
    if r < 0 {
        return r;
    }
    let r = runtime::lowest_for_program(0, r, false);
    if tracking() {
        fdtable::duplicated(fd, r);
    }
    r
}

/// `dup2`/`dup3` over `new`: cancel its waiters first (rule 4) unless the
/// call would fail without touching it.
fn before_replace(old: c_int, new: c_int) {
    if old != new && new >= 0 && tracking() && fdtable::get(old).is_some() {
        handover::give_away(new);
        cancel_waiters(new);
        fdtable::forget(new);
    }
}

/// Runs the program's `dup2`/`dup3` onto `new` (`call`): a runtime fd at
/// `old` is not open for the program (`EBADF`), one at `new` moves away
/// first (`EBUSY` only if it cannot move now, the kernel's answer for a
/// number being allocated).
///
/// All of it runs while no runtime fd is being created
/// (`runtime::program_change`): a creation allocates numbers, and a runtime fd
/// half made (open, not yet movable) cannot move.
fn replace(old: c_int, new: c_int, call: impl FnOnce() -> c_int) -> c_int {
    runtime::program_change(|| {
        if owns_fd(old) {
            set_errno(libc::EBADF);
            return -1;
        }
        let given_up = match give_up_fd(new) {
            Ok(g) => g,
            Err(e) => {
                set_errno(e);
                return -1;
            }
        };
        before_replace(old, new);
        let r = call();
        if r < 0 && given_up {
            let e = errno();
            close_given_up(new);
            set_errno(e);
        }
        r
    })
}

/// The `dup2` hook.
///
/// # Safety
/// The libc contract of `dup2`.
pub unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = replace(old, new, || unsafe { real::dup2(old, new) });
    if r >= 0 && old != new && tracking() {
        fdtable::duplicated(old, r);
    }
    r
}

/// The `dup3` hook.
///
/// # Safety
/// The libc contract of `dup3`.
pub unsafe fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = replace(old, new, || unsafe { real::dup3(old, new, flags) });
    if r >= 0 && tracking() {
        fdtable::duplicated(old, r);
    }
    r
}

crate::hook::forward_hooks! {
    fn close(fd: c_int) -> c_int => close_hook calls super::close;
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int => close_range_hook calls super::close_range;
    fn closefrom(lowfd: c_int) -> () => closefrom_hook calls super::closefrom;
    fn dup(fd: c_int) -> c_int => dup_hook calls super::dup;
    fn dup2(old: c_int, new: c_int) -> c_int => dup2_hook calls super::dup2;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => dup3_hook calls super::dup3;
}
