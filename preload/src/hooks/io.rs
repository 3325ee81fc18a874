//! Hooks for plain fd I/O: `read`, `write`, `readv`, `writev`,
//! `__read_chk`, `pipe`, `pipe2`, `fcntl` (`fcntl64`) and `ioctl` (the
//! last two through `shim.c`, since stable Rust cannot define a variadic
//! function). `close` and `dup*` are the `fds` family.
//!
//! How a blocking call cooperates, and the rules kept, is in `coop.rs`;
//! these hooks pick the call (`recv`/`recvmsg` for sockets,
//! `preadv2`/`pwritev2` with `RWF_NOWAIT` for pipes and the like, a
//! level-triggered wait and the real call where neither works) and keep
//! the fd table true across `close`, `dup*`, `fcntl` and `ioctl`.

use std::ffi::{c_int, c_long, c_ulong, c_void};

use libc::{iovec, size_t, ssize_t};

use crate::coop::{
    self, coop_if, created_pair, hooked, iov_msghdr, socket_read_once, stale, tracking, transfer, CallFd, Cursor, Dir,
    Until, Waited,
};
use crate::errno::{errno, set_errno};
use crate::fdtable::{self, FdState, Kind};
use crate::hook;
use crate::real;
use crate::runtime;

/// The level-triggered fallback for fds without `RWF_NOWAIT` (FIFOs,
/// ttys, timerfd, ...): wait until ready, then make the real call.
///
/// The program's `O_NONBLOCK` is asked of the kernel first (the number may
/// name another file than the table thinks, or another process may have
/// set the flag): then the real call answers at once.
fn level_then(fd: c_int, st: &FdState, dir: Dir, real_call: impl FnOnce(c_int) -> ssize_t) -> ssize_t {
    if fdtable::user_nonblock_now(fd, st) {
        return real_call(fd);
    }
    let saved = errno();
    let mut call = CallFd::new(fd);
    let e = match call.park(dir, None, true, true) {
        Waited::Ready | Waited::Refused => {
            set_errno(saved);
            return real_call(call.get());
        }
        Waited::Expired | Waited::Timeout => libc::EAGAIN,
        Waited::Closed => libc::EBADF,
        Waited::Interrupted => libc::EINTR,
    };
    set_errno(e);
    -1
}

/// Cooperative `readv`/`writev` on a non-socket (pipe, eventfd, tty, ...).
fn nowait_rw(fd: c_int, st: &FdState, dir: Dir, iov: *const iovec, cnt: c_int) -> ssize_t {
    // SAFETY: (both closures) the caller's iovec array and fd, passed
    // through to the kernel, which validates them.
    let real_call = |fd| unsafe {
        match dir {
            Dir::Read => real::readv(fd, iov, cnt),
            Dir::Write => real::writev(fd, iov, cnt),
        }
    };
    if st.no_nowait {
        if dir == Dir::Write && st.kind == Kind::CharDev {
            // Terminal output: passes through (it blocks only on flow
            // control), sparing a readiness check per write.
            return real_call(fd);
        }
        return level_then(fd, st, dir, real_call);
    }
    let saved = errno();
    let until = if dir == Dir::Write { Until::All } else { Until::First };
    let mut cur = Cursor::new(iov, cnt.max(0) as usize);
    let r = transfer(
        fd,
        st,
        dir,
        None,
        until,
        &mut cur,
        |fd, c| {
            // Before any progress `rest` is the caller's array itself.
            let (p, n) = c.rest();
            // SAFETY: the caller's (or the cursor's) iovecs, validated by
            // the kernel.
            unsafe {
                match dir {
                    Dir::Read => real::preadv2(fd, p, n, -1, libc::RWF_NOWAIT),
                    Dir::Write => real::pwritev2(fd, p, n, -1, libc::RWF_NOWAIT),
                }
            }
        },
        |fd, c| {
            let (p, n) = c.rest();
            // SAFETY: as above.
            unsafe {
                match dir {
                    Dir::Read => real::readv(fd, p, n),
                    Dir::Write => real::writev(fd, p, n),
                }
            }
        },
    );
    if r == -1 && matches!(errno(), libc::EOPNOTSUPP | libc::ENOSYS) {
        // No RWF_NOWAIT for this fd (nothing was transferred).
        fdtable::set_no_nowait(fd);
        set_errno(saved);
        if dir == Dir::Write && st.kind == Kind::CharDev {
            return real_call(fd);
        }
        return level_then(fd, st, dir, real_call);
    }
    r
}

/// Cooperative `readv` (`read` passes one entry).
///
/// # Safety
/// The libc contract of `readv`.
unsafe fn readv_coop(fd: c_int, st: FdState, iov: *const iovec, cnt: c_int) -> ssize_t {
    if st.kind == Kind::Socket {
        return socket_read_once(
            fd,
            &st,
            |fd| {
                let mut m = iov_msghdr(iov, cnt);
                // SAFETY: a msghdr of ours around the caller's iovecs,
                // which the kernel validates.
                let r = unsafe { real::recvmsg(fd, &mut m, libc::MSG_DONTWAIT) };
                // A readv of zero bytes returns 0 at once (the socket layer
                // answers before the protocol, which would wait for data).
                // SAFETY: EAGAIN means the kernel accepted the iovecs.
                if r < 0 && errno() == libc::EAGAIN && unsafe { coop::iov_total(iov, cnt as usize) } == 0 {
                    return 0;
                }
                r
            },
            // SAFETY: the caller's arguments.
            |fd| unsafe { real::readv(fd, iov, cnt) },
        );
    }
    nowait_rw(fd, &st, Dir::Read, iov, cnt)
}

/// Cooperative `writev` (`write` passes one entry).
///
/// # Safety
/// The libc contract of `writev`.
unsafe fn writev_coop(fd: c_int, st: FdState, iov: *const iovec, cnt: c_int) -> ssize_t {
    if st.kind == Kind::Socket {
        // SAFETY: the caller's arguments.
        let r = unsafe { crate::coop::send_iov(fd, &st, iov, cnt, 0) };
        // SAFETY: the caller's arguments.
        return stale(fd, r, || unsafe { real::writev(fd, iov, cnt) });
    }
    nowait_rw(fd, &st, Dir::Write, iov, cnt)
}

/// Whether an iovec count is one `readv`/`writev` accept (others pass
/// through so the kernel reports `EINVAL`).
fn iov_count_ok(cnt: c_int) -> bool {
    (0..=libc::UIO_MAXIOV).contains(&cnt)
}

/// The `read` hook.
///
/// # Safety
/// The libc contract of `read`.
pub unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    hooked(
        "read",
        coop_if(n != 0, fd),
        |st| {
            if st.kind == Kind::Socket {
                // SAFETY: the caller's arguments.
                return unsafe { read_socket(fd, st, buf, n) };
            }
            let v = iovec {
                iov_base: buf,
                iov_len: n,
            };
            // SAFETY: the caller's buffer as one iovec.
            unsafe { readv_coop(fd, st, &v, 1) }
        },
        // SAFETY: the caller's arguments.
        || unsafe { real::read(fd, buf, n) },
    )
}

/// `read` on a socket: `recv` with `MSG_DONTWAIT`.
unsafe fn read_socket(fd: c_int, st: FdState, buf: *mut c_void, n: size_t) -> ssize_t {
    socket_read_once(
        fd,
        &st,
        // SAFETY: the caller's buffer; the kernel validates it.
        |fd| unsafe { real::recv(fd, buf, n, libc::MSG_DONTWAIT) },
        // SAFETY: as above.
        |fd| unsafe { real::read(fd, buf, n) },
    )
}

/// The `write` hook.
///
/// # Safety
/// The libc contract of `write`.
pub unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    hooked(
        "write",
        coop_if(n != 0, fd),
        |st| {
            let v = iovec {
                iov_base: buf as *mut c_void,
                iov_len: n,
            };
            // SAFETY: the caller's buffer as one iovec.
            unsafe { writev_coop(fd, st, &v, 1) }
        },
        // SAFETY: the caller's arguments.
        || unsafe { real::write(fd, buf, n) },
    )
}

/// The `readv` hook.
///
/// # Safety
/// The libc contract of `readv`.
pub unsafe fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    hooked(
        "readv",
        coop_if(cnt > 0 && iov_count_ok(cnt), fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { readv_coop(fd, st, iov, cnt) },
        // SAFETY: the caller's arguments.
        || unsafe { real::readv(fd, iov, cnt) },
    )
}

/// The `writev` hook.
///
/// # Safety
/// The libc contract of `writev`.
pub unsafe fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    hooked(
        "writev",
        coop_if(cnt > 0 && iov_count_ok(cnt), fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { writev_coop(fd, st, iov, cnt) },
        // SAFETY: the caller's arguments.
        || unsafe { real::writev(fd, iov, cnt) },
    )
}

/// The `__read_chk` hook (`read` under `_FORTIFY_SOURCE`).
///
/// # Safety
/// The libc contract of `__read_chk`.
pub unsafe fn read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t {
    if n > buflen {
        // The real one reports the overflow and aborts.
        // SAFETY: the caller's arguments.
        return unsafe { real::__read_chk(fd, buf, n, buflen) };
    }
    // SAFETY: the caller's arguments; the buffer is large enough.
    unsafe { read(fd, buf, n) }
}

/// The `pipe` hook: records both ends as fresh pipes.
///
/// # Safety
/// The libc contract of `pipe`.
pub unsafe fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::pipe(fds) };
    if r == 0 && tracking() {
        // SAFETY: the kernel filled both entries.
        unsafe { created_pair(fds, Kind::Pipe, false) };
    }
    r
}

/// The `pipe2` hook.
///
/// # Safety
/// The libc contract of `pipe2`.
pub unsafe fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::pipe2(fds, flags) };
    if r == 0 && tracking() {
        // SAFETY: the kernel filled both entries.
        unsafe { created_pair(fds, Kind::Pipe, flags & libc::O_NONBLOCK != 0) };
    }
    r
}

/// The Rust side of shim.c's `fcntl`/`fcntl64`: `F_GETFL` shows only the
/// flags the program set, `F_SETFL` records its `O_NONBLOCK`, `F_DUPFD*`
/// record the duplicate.
///
/// # Safety
/// The libc contract of `fcntl` for `cmd`.
#[no_mangle]
pub unsafe extern "C" fn greenrt_preload_fcntl(fd: c_int, cmd: c_int, arg: c_long, is64: c_int) -> c_int {
    // SAFETY: the caller's arguments, to the function it called.
    let real_call = || unsafe {
        if is64 != 0 {
            real::fcntl64(fd, cmd, arg)
        } else {
            real::fcntl(fd, cmd, arg)
        }
    };
    hook::contained("fcntl", || fcntl_recorded(fd, cmd, arg, real_call()), real_call)
}

/// What `fcntl` returns to the program, and the fd table's record of it,
/// given the real call's result `r`.
fn fcntl_recorded(fd: c_int, cmd: c_int, arg: c_long, r: c_int) -> c_int {
    if r < 0 || !tracking() {
        return r;
    }
    match cmd {
        libc::F_GETFL => fdtable::visible_flags(fd, r),
        libc::F_SETFL => {
            fdtable::set_user_nonblock(fd, arg as c_int & libc::O_NONBLOCK != 0);
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // The number the program would get without the runtime's fds.
            let r = runtime::lowest_for_program(arg as c_int, r, cmd == libc::F_DUPFD_CLOEXEC);
            fdtable::duplicated(fd, r);
            r
        }
        _ => r,
    }
}

/// The Rust side of shim.c's `ioctl`: `FIONBIO` records the program's
/// non-blocking mode.
///
/// # Safety
/// The libc contract of `ioctl` for `request`.
#[no_mangle]
pub unsafe extern "C" fn greenrt_preload_ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    // SAFETY: the caller's arguments.
    let real_call = || unsafe { real::ioctl(fd, request, arg) };
    hook::contained(
        "ioctl",
        || {
            let r = real_call();
            if r == 0 && request == libc::FIONBIO as c_ulong && tracking() && !arg.is_null() {
                // SAFETY: the kernel read an int from `arg` successfully.
                let on = unsafe { *(arg as *const c_int) } != 0;
                fdtable::set_user_nonblock(fd, on);
            }
            r
        },
        real_call,
    )
}

crate::hook::forward_hooks! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => read_hook calls super::read;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => write_hook calls super::write;
    fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t => readv_hook calls super::readv;
    fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t => writev_hook calls super::writev;
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t => read_chk_hook calls super::read_chk;
    fn pipe(fds: *mut c_int) -> c_int => pipe_hook calls super::pipe;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int => pipe2_hook calls super::pipe2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iov_counts() {
        assert!(iov_count_ok(1) && iov_count_ok(1024));
        assert!(!iov_count_ok(-1) && !iov_count_ok(1025));
    }
}
