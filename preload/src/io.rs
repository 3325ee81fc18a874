//! Hooks for plain fd I/O: `read`, `write`, `readv`, `writev`,
//! `__read_chk`, `pipe`, `pipe2`, `close`, `dup`, `dup2`, `dup3`, `fcntl`
//! (`fcntl64`) and `ioctl` (the last three through `shim.c`), and the
//! cooperative machinery the socket hooks in `net.rs` share.
//!
//! # How a blocking call cooperates
//!
//! A hooked call takes the cooperative path only when the runtime says
//! another greenlet could run (rule 1, [`coop`]), the fd is a socket, pipe
//! or other pollable kind (rule 15), and the program did not set
//! `O_NONBLOCK` (rule 2). Everything else goes straight to libc. On the
//! cooperative path the call is made **non-blocking for this call only**,
//! never by changing the program's file flags:
//!
//! - sockets: the same call with `MSG_DONTWAIT` (`read` becomes `recv`,
//!   `readv` becomes `recvmsg`: the same operation for a socket);
//! - pipes, eventfds and the like: `preadv2`/`pwritev2` with `RWF_NOWAIT`
//!   at the current position. Where the kernel does not support that for
//!   the fd (FIFOs, ttys, timerfd, inotify: `EOPNOTSUPP`, remembered in
//!   the fd table) the hook waits for readiness (level-triggered) and then
//!   makes the real blocking call;
//! - `connect` and `accept` have no per-call flag: `O_NONBLOCK` is set for
//!   the call and restored at once, and `F_GETFL` hides it meanwhile
//!   (`fdtable::temp_nonblock`), so the program and the children it execs
//!   see exactly the flags it set.
//!
//! When the call would block (`EAGAIN`), the hook re-checks that the
//! program's flag is still clear (for fds whose description may be shared),
//! parks the greenlet on the fd (edge-triggered, [`park`]) for at most the
//! socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` (rule 3; no other limit, rule 17),
//! and retries. Results and errno are the real call's (rule 7): errno is
//! saved on entry and restored on success, so a switch never leaks one.
//!
//! - wait timed out (socket timeout, or a greenrt `Timeout`): `EAGAIN`
//!   (`connect`: `EINPROGRESS` for its `SO_SNDTIMEO`, like the kernel;
//!   `ETIMEDOUT` for a `Timeout`);
//! - the fd was closed by another greenlet (rule 4): `EBADF`;
//! - the greenlet was killed: `EINTR`;
//! - the poller refuses the fd (`EPERM`, rule 15) or fails: the fd is
//!   marked pass-through (for `EPERM`) and the real blocking call is made.
//!
//! A blocking write or send sends every byte (rule 14): partial writes are
//! continued until done; a timeout, kill, close or error after some bytes
//! returns the count sent, as the kernel does.
//!
//! Signals (rule 16): the non-blocking calls made here never sleep, so a
//! signal cannot interrupt them; a real `EINTR` from any underlying call
//! is returned as is. A signal that arrives while the greenlet is parked
//! runs its handler, but the park goes on (the hub cannot tell which
//! signal it was nor whether its handler has `SA_RESTART`): the call
//! behaves as with `SA_RESTART`. Where the hook passes straight through
//! (rule 1), the kernel's behaviour is unchanged.
//!
//! # Known limits
//!
//! - `close`/`dup2` wake the waiters of the **calling thread's** hub only
//!   (`RuntimeV1::cancel_wait` reaches one hub). A greenlet of another
//!   thread parked on the fd is not woken; Linux itself keeps such a
//!   blocked read waiting on the old file, which a cooperative wait on an
//!   fd number cannot reproduce.
//! - Without `RWF_NOWAIT` (FIFOs, ttys, timerfd, inotify) the hook waits
//!   for readiness and then makes the real call: if another reader or
//!   writer takes the readiness first, that call blocks the thread (with
//!   the kernel's semantics). Terminal writes pass straight through.
//! - `connect` and `accept` set `O_NONBLOCK` on the open file description
//!   for the length of one non-blocking syscall; another *process* sharing
//!   the description could see it in that window (this process's
//!   `F_GETFL` hides it).
//! - fds at or above `fdtable::LIMIT` are classified on every call.
//! - An fd closed behind the hooks' back (glibc's internal `close`) keeps
//!   a stale table entry until its number is reused by a hooked call; a
//!   socket call failing with `ENOTSOCK` or a poller refusal repairs it.
//! - `recvmmsg`: an error after some messages returns their count but is
//!   not kept for the next call (the kernel stores it in `sk_err`).

use std::ffi::{c_int, c_long, c_ulong, c_void};
use std::time::{Duration, Instant};

use greenrt::capi::{WAIT_READ, WAIT_WRITE};
use libc::{iovec, size_t, ssize_t};

use crate::config::{self, Hooks};
use crate::fdtable::{self, FdState, Kind, Timeo};
use crate::hook::{self, errno, set_errno};
use crate::real;
use crate::runtime::rt;

/// Which way a call moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Waits for readability.
    Read,
    /// Waits for writability.
    Write,
}

/// The fd's state if a blocking call on it should cooperate now: the
/// runtime says so (rule 1), the fd is of a kind that can be waited on
/// (rule 15), and the program did not make it non-blocking (rule 2).
#[inline]
pub(crate) fn coop(fd: c_int) -> Option<FdState> {
    if fd < 0 || !hook::should_cooperate() {
        return None;
    }
    let st = fdtable::get(fd)?;
    if st.kind.cooperates() && !st.user_nonblock {
        Some(st)
    } else {
        None
    }
}

/// [`coop`]'s answer when `eligible` (the call's arguments allow the
/// cooperative path at all), else `None`.
#[inline]
pub(crate) fn coop_if(eligible: bool, fd: c_int) -> Option<FdState> {
    if eligible {
        coop(fd)
    } else {
        None
    }
}

/// The shape every blocking hook shares: given a cooperating fd's state,
/// `coop_call` runs under [`hook::guarded`] (with `real_call` as its
/// fallback after a panic); without one, the real call is made.
#[inline]
pub(crate) fn hooked<R>(
    name: &str,
    st: Option<FdState>,
    coop_call: impl FnOnce(FdState) -> R,
    real_call: impl Fn() -> R,
) -> R {
    match st {
        Some(st) => hook::guarded(name, || coop_call(st), &real_call),
        None => real_call(),
    }
}

/// Reclassifies an fd whose socket call failed with `ENOTSOCK` (its entry
/// was stale) and makes the real call instead.
pub(crate) fn stale(fd: c_int, r: ssize_t, real_call: impl FnOnce() -> ssize_t) -> ssize_t {
    if r < 0 && errno() == libc::ENOTSOCK {
        fdtable::reclassify(fd);
        return real_call();
    }
    r
}

/// Whether bookkeeping hooks (close, dup, fcntl, setsockopt, ...) should
/// record what they see.
#[inline]
pub(crate) fn tracking() -> bool {
    config::hooks() != Hooks::Off
}

/// A deadline `ns` from now (`0`: none).
pub(crate) fn deadline_after(ns: u64) -> Option<Instant> {
    if ns == 0 {
        None
    } else {
        Instant::now().checked_add(Duration::from_nanos(ns))
    }
}

/// How a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The fd is ready: retry.
    Ready,
    /// The call's own deadline (socket timeout) passed.
    Expired,
    /// A greenrt `Timeout` fired in the greenlet.
    Timeout,
    /// Another greenlet closed the fd.
    Closed,
    /// The greenlet was killed.
    Killed,
    /// The poller cannot wait for this fd: make the real blocking call.
    Refused,
}

/// Parks the calling greenlet until `fd` is ready for `dir` or `deadline`
/// passes; edge-triggered (call only after `EAGAIN`) unless `level`.
pub(crate) fn park(fd: c_int, dir: Dir, deadline: Option<Instant>, level: bool) -> Waited {
    let ns = match deadline {
        None => -1,
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .as_nanos()
            .min(i64::MAX as u128) as i64,
    };
    let ev = match dir {
        Dir::Read => WAIT_READ,
        Dir::Write => WAIT_WRITE,
    };
    let rt = rt();
    let wait = if level { rt.wait_fd_level } else { rt.wait_fd };
    // SAFETY: a runtime entry point; no preconditions beyond a valid fd
    // number, which it checks itself.
    let r = hook::unguarded(|| unsafe { wait(fd, ev, ns) });
    match -r {
        0 => Waited::Ready,
        libc::ETIMEDOUT => {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                Waited::Expired
            } else {
                Waited::Timeout
            }
        }
        libc::EBADF => Waited::Closed,
        libc::EINTR => Waited::Killed,
        libc::EPERM => {
            fdtable::set_passthrough(fd);
            Waited::Refused
        }
        _ => Waited::Refused,
    }
}

/// A position in an iovec array the kernel has already accepted (so its
/// entries are readable): where a partial transfer goes on.
pub(crate) struct Cursor {
    iov: *const iovec,
    cnt: usize,
    idx: usize,
    off: usize,
    head: iovec,
}

impl Cursor {
    /// The start of `iov[..cnt]`.
    pub(crate) fn new(iov: *const iovec, cnt: usize) -> Cursor {
        Cursor {
            iov,
            cnt,
            idx: 0,
            off: 0,
            head: iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
        }
    }

    fn entry(&self, i: usize) -> iovec {
        // SAFETY: `i < cnt`, and the kernel accepted the array (see above).
        unsafe { *self.iov.add(i) }
    }

    /// The remaining data as an iovec array: the caller's own entries, or
    /// one entry of ours for a partly transferred one.
    pub(crate) fn rest(&mut self) -> (*const iovec, c_int) {
        if self.off == 0 {
            // SAFETY: idx <= cnt: a pointer within or one past the array.
            (unsafe { self.iov.add(self.idx) }, (self.cnt - self.idx) as c_int)
        } else {
            let e = self.entry(self.idx);
            self.head = iovec {
                // SAFETY: off < iov_len: within the caller's buffer.
                iov_base: unsafe { (e.iov_base as *mut u8).add(self.off) } as *mut c_void,
                iov_len: e.iov_len - self.off,
            };
            (&self.head, 1)
        }
    }

    /// Moves past `n` transferred bytes.
    pub(crate) fn advance(&mut self, mut n: usize) {
        while self.idx < self.cnt {
            let left = self.entry(self.idx).iov_len - self.off;
            if n < left {
                self.off += n;
                return;
            }
            n -= left;
            self.idx += 1;
            self.off = 0;
        }
    }

    /// True once every byte was transferred.
    pub(crate) fn done(&mut self) -> bool {
        while self.idx < self.cnt && self.entry(self.idx).iov_len == self.off {
            self.idx += 1;
            self.off = 0;
        }
        self.idx >= self.cnt
    }
}

/// How [`transfer`] treats a successful partial call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// Return the first result (reads).
    First,
    /// Go on until every byte moved (writes, `MSG_WAITALL`); `0` ends it.
    All,
}

/// The cooperative loop every blocking transfer shares.
///
/// `try_op(rest, cnt)` makes the call without blocking (returns `-1` with
/// `EAGAIN` when it would block); `blocking(rest, cnt)` is the real
/// blocking call, made if the poller cannot wait for the fd. For
/// `Until::First` calls the iovec arguments are meaningless (`cursor` may
/// be empty).
#[allow(clippy::too_many_arguments)]
pub(crate) fn transfer(
    fd: c_int,
    st: &FdState,
    dir: Dir,
    timeo: Option<Timeo>,
    until: Until,
    cursor: &mut Cursor,
    mut try_op: impl FnMut(&mut Cursor) -> ssize_t,
    mut blocking: impl FnMut(&mut Cursor) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut done: usize = 0;
    let mut deadline: Option<Option<Instant>> = None;
    // After some bytes moved, an error or interruption returns the count.
    let finish = |done: usize, e: c_int| -> ssize_t {
        if done > 0 {
            set_errno(saved);
            done as ssize_t
        } else {
            set_errno(e);
            -1
        }
    };
    loop {
        let r = try_op(cursor);
        if r >= 0 {
            if until == Until::First {
                set_errno(saved);
                return r;
            }
            done += r as usize;
            cursor.advance(r as usize);
            if r == 0 || cursor.done() {
                set_errno(saved);
                return done as ssize_t;
            }
            continue;
        }
        let e = errno();
        if e != libc::EAGAIN {
            return finish(done, e);
        }
        if done == 0 && fdtable::user_nonblock_now(fd, st) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let dl = *deadline.get_or_insert_with(|| timeo.and_then(|t| deadline_after(fdtable::timeout(fd, st, t))));
        match park(fd, dir, dl, false) {
            Waited::Ready => continue,
            Waited::Expired | Waited::Timeout => return finish(done, libc::EAGAIN),
            Waited::Closed => return finish(done, libc::EBADF),
            Waited::Killed => return finish(done, libc::EINTR),
            Waited::Refused => {
                set_errno(saved);
                let r = blocking(cursor);
                if r < 0 {
                    return finish(done, errno());
                }
                set_errno(saved);
                return (done + r as usize) as ssize_t;
            }
        }
    }
}

/// A msghdr of ours over `iov[..cnt]` (no address, no ancillary data).
pub(crate) fn iov_msghdr(iov: *const iovec, cnt: c_int) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov as *mut iovec;
    m.msg_iovlen = cnt as _;
    m
}

/// A socket read whose first result is the answer (`read`/`readv` on a
/// socket, `accept`): [`transfer`] with `try_op` (non-blocking), and the
/// real blocking call `blocking` where the poller refuses the fd or the
/// socket call fails with `ENOTSOCK` ([`stale`]).
pub(crate) fn socket_read_once(
    fd: c_int,
    st: &FdState,
    mut try_op: impl FnMut() -> ssize_t,
    blocking: impl Fn() -> ssize_t,
) -> ssize_t {
    let mut cur = Cursor::new(std::ptr::null(), 0);
    let r = transfer(
        fd,
        st,
        Dir::Read,
        Some(Timeo::Rcv),
        Until::First,
        &mut cur,
        |_| try_op(),
        |_| blocking(),
    );
    stale(fd, r, blocking)
}

/// The level-triggered fallback for fds without `RWF_NOWAIT` (FIFOs,
/// ttys, timerfd, ...): wait until ready, then make the real call.
fn level_then(fd: c_int, dir: Dir, real_call: impl FnOnce() -> ssize_t) -> ssize_t {
    let saved = errno();
    let e = match park(fd, dir, None, true) {
        Waited::Ready | Waited::Refused => {
            set_errno(saved);
            return real_call();
        }
        Waited::Expired | Waited::Timeout => libc::EAGAIN,
        Waited::Closed => libc::EBADF,
        Waited::Killed => libc::EINTR,
    };
    set_errno(e);
    -1
}

/// Cooperative `readv`/`writev` on a non-socket (pipe, eventfd, tty, ...).
fn nowait_rw(fd: c_int, st: &FdState, dir: Dir, iov: *const iovec, cnt: c_int) -> ssize_t {
    // SAFETY (both closures): the caller's iovec array and fd, passed
    // through to the kernel, which validates them.
    let real_call = || unsafe {
        match dir {
            Dir::Read => real::readv(fd, iov, cnt),
            Dir::Write => real::writev(fd, iov, cnt),
        }
    };
    if st.no_nowait {
        if dir == Dir::Write && st.kind == Kind::CharDev {
            // Terminal output: passes through (it blocks only on flow
            // control), sparing a readiness check per write.
            return real_call();
        }
        return level_then(fd, dir, real_call);
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
        |c| {
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
        |c| {
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
            return real_call();
        }
        return level_then(fd, dir, real_call);
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
            || {
                let mut m = iov_msghdr(iov, cnt);
                // SAFETY: a msghdr of ours around the caller's iovecs,
                // which the kernel validates.
                unsafe { real::recvmsg(fd, &mut m, libc::MSG_DONTWAIT) }
            },
            // SAFETY: the caller's arguments.
            || unsafe { real::readv(fd, iov, cnt) },
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
        let r = unsafe { crate::net::send_iov(fd, &st, iov, cnt, 0) };
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
        || unsafe { real::recv(fd, buf, n, libc::MSG_DONTWAIT) },
        // SAFETY: as above.
        || unsafe { real::read(fd, buf, n) },
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

/// Records the two fds at `fds` as created with `kind`.
///
/// # Safety
/// `fds` points at two fds the kernel just filled in.
pub(crate) unsafe fn created_pair(fds: *const c_int, kind: Kind, nonblock: bool) {
    // SAFETY: see above.
    let (a, b) = unsafe { (*fds, *fds.add(1)) };
    fdtable::created(a, kind, nonblock);
    fdtable::created(b, kind, nonblock);
}

/// Wakes this thread's greenlets waiting on `fd` (they get `EBADF`) and
/// drops it from the poller, before it is closed or replaced (rule 4).
pub(crate) fn cancel_waiters(fd: c_int) {
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

/// The `close` hook: waiters wake with `EBADF` and the fd leaves the
/// poller before it is closed (rule 4).
///
/// # Safety
/// The libc contract of `close`.
pub unsafe fn close(fd: c_int) -> c_int {
    if runtime_owns(fd) {
        // Not open as far as the program knows: answer as the kernel would.
        hook::set_errno(libc::EBADF);
        return -1;
    }
    if fd >= 0 && tracking() {
        cancel_waiters(fd);
        fdtable::forget(fd);
    }
    // SAFETY: the caller's arguments.
    unsafe { real::close(fd) }
}

/// The `dup` hook: the copy shares the original's open file description.
///
/// # Safety
/// The libc contract of `dup`.
pub unsafe fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::dup(fd) };
    if r >= 0 && tracking() {
        fdtable::duplicated(fd, r);
    }
    r
}

/// `dup2`/`dup3` over `new`: cancel its waiters first (rule 4) unless the
/// call would fail without touching it.
fn before_replace(old: c_int, new: c_int) {
    if old != new && new >= 0 && tracking() && fdtable::get(old).is_some() {
        cancel_waiters(new);
        fdtable::forget(new);
    }
}

/// True if `fd` is one of the runtime's own fds (in this copy or the
/// serving one): the program never opened it.
fn runtime_owns(fd: c_int) -> bool {
    // SAFETY: a runtime table entry point; no preconditions.
    fd >= 0 && (greenrt::capi::owns_fd_here(fd) || unsafe { (crate::runtime::rt().owns_fd)(fd) } != 0)
}

/// The `dup2` hook.
///
/// # Safety
/// The libc contract of `dup2`.
pub unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    if runtime_owns(old) || runtime_owns(new) {
        // The number belongs to the runtime, which keeps its fds high to
        // make this rare; replacing it would break the hub.
        hook::set_errno(if runtime_owns(old) { libc::EBADF } else { libc::EBUSY });
        return -1;
    }
    before_replace(old, new);
    // SAFETY: the caller's arguments.
    let r = unsafe { real::dup2(old, new) };
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
    if runtime_owns(old) || runtime_owns(new) {
        hook::set_errno(if runtime_owns(old) { libc::EBADF } else { libc::EBUSY });
        return -1;
    }
    before_replace(old, new);
    // SAFETY: the caller's arguments.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 && tracking() {
        fdtable::duplicated(old, r);
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
    let r = unsafe {
        if is64 != 0 {
            real::fcntl64(fd, cmd, arg)
        } else {
            real::fcntl(fd, cmd, arg)
        }
    };
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
    let r = unsafe { real::ioctl(fd, request, arg) };
    if r == 0 && request == libc::FIONBIO as c_ulong && tracking() && !arg.is_null() {
        // SAFETY: the kernel read an int from `arg` successfully.
        let on = unsafe { *(arg as *const c_int) } != 0;
        fdtable::set_user_nonblock(fd, on);
    }
    r
}

crate::hook::forward_hooks! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => read_hook calls super::read;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => write_hook calls super::write;
    fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t => readv_hook calls super::readv;
    fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t => writev_hook calls super::writev;
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t => read_chk_hook calls super::read_chk;
    fn pipe(fds: *mut c_int) -> c_int => pipe_hook calls super::pipe;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int => pipe2_hook calls super::pipe2;
    fn close(fd: c_int) -> c_int => close_hook calls super::close;
    fn dup(fd: c_int) -> c_int => dup_hook calls super::dup;
    fn dup2(old: c_int, new: c_int) -> c_int => dup2_hook calls super::dup2;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => dup3_hook calls super::dup3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_partial_entries() {
        let a = [0u8; 4];
        let b = [0u8; 0];
        let c = [0u8; 3];
        let v = [
            iovec {
                iov_base: a.as_ptr() as *mut c_void,
                iov_len: 4,
            },
            iovec {
                iov_base: b.as_ptr() as *mut c_void,
                iov_len: 0,
            },
            iovec {
                iov_base: c.as_ptr() as *mut c_void,
                iov_len: 3,
            },
        ];
        let mut cur = Cursor::new(v.as_ptr(), 3);
        assert!(!cur.done());
        cur.advance(2);
        let (p, n) = cur.rest();
        assert_eq!(n, 1);
        // SAFETY: `p` points at the cursor's own head entry.
        let h = unsafe { *p };
        assert_eq!(h.iov_len, 2);
        assert_eq!(h.iov_base as usize, a.as_ptr() as usize + 2);
        cur.advance(2);
        // The empty entry is skipped.
        let (p, n) = cur.rest();
        assert_eq!((p, n), (v[2..].as_ptr(), 1));
        cur.advance(1);
        let (p, n) = cur.rest();
        assert_eq!(n, 1);
        // SAFETY: as above.
        assert_eq!(unsafe { *p }.iov_len, 2);
        assert!(!cur.done());
        cur.advance(2);
        assert!(cur.done());
    }

    #[test]
    fn iov_counts() {
        assert!(iov_count_ok(1) && iov_count_ok(1024));
        assert!(!iov_count_ok(-1) && !iov_count_ok(1025));
    }
}
