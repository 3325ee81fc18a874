//! The cooperative machinery every fd hook shares (`hooks/io.rs`,
//! `hooks/net.rs`): whether a call on an fd cooperates ([`coop`]), the
//! park on one fd ([`park`]), the transfer loop ([`transfer`]) with its
//! iovec [`Cursor`], and the whole-message socket send ([`send_msg`]).
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
//! Signals (rule 16, signal(7)): the non-blocking calls made here never
//! sleep, so a signal cannot interrupt them; a real `EINTR` from any
//! underlying call is returned as is. A handler that runs while the
//! greenlet is parked ends the park ([`park`]): the call is restarted if
//! every handler that ran has `SA_RESTART` (as `handlers` knows them) and
//! the call is restartable (no socket timeout set), and otherwise fails
//! with `EINTR`, or returns the count already moved. Where the hook passes
//! straight through (rule 1), the kernel's behaviour is unchanged.
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
//!   socket call failing with `ENOTSOCK` or a poller refusal repairs it,
//!   and before every park the program's `O_NONBLOCK` is asked of the
//!   kernel, so a reused number never waits where the kernel would not.
//! - `recvmmsg`: an error after some messages returns their count but is
//!   not kept for the next call (the kernel stores it in `sk_err`).

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use greenrt::abi::{WAIT_READ, WAIT_WRITE};
use libc::{iovec, msghdr, ssize_t};

use crate::config::{self, Hooks};
use crate::errno::{errno, set_errno};
use crate::fdtable::{self, FdState, Kind, Timeo};
use crate::handlers;
use crate::handover;
use crate::hook;
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
pub(crate) fn hooked<R: hook::Failure>(
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
/// record what they see: not with `GREENRT_HOOKS=off`, nor in a child made
/// with `vfork`, which runs in the parent's memory until it execs (its
/// `dup2`s onto 0, 1 and 2 and its closes are not the parent's). Costs a
/// `getpid` on these calls only, never on reads and writes.
#[inline]
pub(crate) fn tracking() -> bool {
    config::hooks() != Hooks::Off && !handlers::in_vfork_child()
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
    /// The greenlet was killed, or a signal handler ended the call
    /// (signal(7)): `EINTR`.
    Interrupted,
    /// The poller cannot wait for this fd: make the real blocking call.
    Refused,
}

/// Parks the calling greenlet until `fd` is ready for `dir` or `deadline`
/// passes; edge-triggered (call only after `EAGAIN`) unless `level`.
///
/// A signal handler that runs on this thread meanwhile ends the park the
/// way the kernel ends a blocking call (signal(7)): with `Interrupted`
/// (the caller's `EINTR`) if the handler lacks `SA_RESTART` or the call
/// is not `restartable` (a socket call with a timeout set), else the call
/// goes on: a level-triggered park waits again, an edge-triggered one
/// returns `Ready` so the caller retries its operation first (an event
/// that arrived meanwhile is then not missed).
pub(crate) fn park(fd: c_int, dir: Dir, deadline: Option<Instant>, level: bool, restartable: bool) -> Waited {
    let ev = match dir {
        Dir::Read => WAIT_READ,
        Dir::Write => WAIT_WRITE,
    };
    let rt = rt();
    let wait = if level { rt.wait_fd_level } else { rt.wait_fd };
    loop {
        let ns = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_nanos()
                .min(i64::MAX as u128) as i64,
        };
        // SAFETY: a runtime entry point; no preconditions beyond a valid fd
        // number, which the wait checks itself.
        let (r, since) = hook::park_interruptibly(|| unsafe { wait(fd, ev, ns) });
        return match -r {
            0 => Waited::Ready,
            libc::ETIMEDOUT => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    Waited::Expired
                } else {
                    Waited::Timeout
                }
            }
            libc::EBADF => Waited::Closed,
            libc::EINTR => {
                // SAFETY: a runtime entry point; no pointers.
                if unsafe { (rt.killed)() } != 0 {
                    return Waited::Interrupted;
                }
                match handlers::verdict(since, restartable) {
                    Some(true) => Waited::Interrupted,
                    _ if level => continue,
                    _ => Waited::Ready,
                }
            }
            libc::EPERM => {
                fdtable::set_passthrough(fd);
                Waited::Refused
            }
            _ => Waited::Refused,
        };
    }
}

/// Sleeps `ns` nanoseconds on the hub (other greenlets run meanwhile):
/// for waits the kernel offers no readiness event for. False if the
/// greenlet was killed.
pub(crate) fn pause(ns: i64) -> bool {
    // SAFETY: a runtime entry point; a null `remaining_ns`.
    let r = hook::unguarded(|| unsafe { (rt().sleep_ns)(ns, std::ptr::null_mut()) });
    r == 0
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

/// The fd a blocking call works on: the program's number, or, once
/// another thread closed or replaced that number while the call was
/// parked, a private duplicate of the same open file (see `handover`),
/// held until the call returns.
pub(crate) struct CallFd {
    fd: c_int,
    claim: Option<handover::Claim>,
}

impl CallFd {
    /// The call on the program's `fd`.
    pub(crate) fn new(fd: c_int) -> CallFd {
        CallFd { fd, claim: None }
    }

    /// The fd to make the call on now.
    pub(crate) fn get(&self) -> c_int {
        self.fd
    }

    /// [`park`], keeping the call's open file if another thread closes
    /// or replaces the number meanwhile: the call then goes on with the
    /// private duplicate, unless the close came from this thread's own
    /// greenlets, which end the call with `EBADF` (`Waited::Closed`).
    pub(crate) fn park(&mut self, dir: Dir, deadline: Option<Instant>, level: bool, restartable: bool) -> Waited {
        let counted = if self.claim.is_none() {
            handover::enter(self.fd)
        } else {
            None
        };
        let w = park(self.fd, dir, deadline, level, restartable);
        if let Some(kept) = counted.and_then(handover::Park::leave) {
            if w != Waited::Closed {
                self.fd = kept.fd();
                self.claim = Some(kept);
            }
        }
        w
    }
}

/// The cooperative loop every blocking transfer shares.
///
/// `try_op(fd, cursor)` makes the call without blocking (returns `-1`
/// with `EAGAIN` when it would block); `blocking(fd, cursor)` is the real
/// blocking call, made if the poller cannot wait for the fd. Both get the
/// fd to use: the program's, or the private duplicate of its open file
/// after another thread closed the number while the call was parked
/// ([`CallFd::park`]). For `Until::First` calls the cursor is
/// meaningless (it may be empty).
#[allow(clippy::too_many_arguments)]
pub(crate) fn transfer(
    fd: c_int,
    st: &FdState,
    dir: Dir,
    timeo: Option<Timeo>,
    until: Until,
    cursor: &mut Cursor,
    mut try_op: impl FnMut(c_int, &mut Cursor) -> ssize_t,
    mut blocking: impl FnMut(c_int, &mut Cursor) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut call = CallFd::new(fd);
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
        let r = try_op(call.get(), cursor);
        if r >= 0 {
            if until == Until::First {
                set_errno(saved);
                return r;
            }
            if r > 0 {
                hook::progressed();
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
        if done == 0 && fdtable::user_nonblock_now(call.get(), st) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let timeout_ns = timeo.map_or(0, |t| fdtable::timeout(fd, st, t));
        let dl = *deadline.get_or_insert_with(|| deadline_after(timeout_ns));
        // A socket call with a timeout set is never restarted (socket(7)).
        match call.park(dir, dl, false, timeout_ns == 0) {
            Waited::Ready => continue,
            Waited::Expired | Waited::Timeout => return finish(done, libc::EAGAIN),
            Waited::Closed => return finish(done, libc::EBADF),
            Waited::Interrupted => return finish(done, libc::EINTR),
            Waited::Refused => {
                set_errno(saved);
                let r = blocking(call.get(), cursor);
                if r < 0 {
                    return finish(done, errno());
                }
                set_errno(saved);
                return (done + r as usize) as ssize_t;
            }
        }
    }
}

/// The total length of `iov[..cnt]`.
///
/// # Safety
/// The kernel has accepted the array (its entries are readable).
pub(crate) unsafe fn iov_total(iov: *const iovec, cnt: usize) -> usize {
    // SAFETY: see above.
    (0..cnt).map(|i| unsafe { (*iov.add(i)).iov_len }).sum()
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
    mut try_op: impl FnMut(c_int) -> ssize_t,
    blocking: impl Fn(c_int) -> ssize_t,
) -> ssize_t {
    let mut cur = Cursor::new(std::ptr::null(), 0);
    let r = transfer(
        fd,
        st,
        Dir::Read,
        Some(Timeo::Rcv),
        Until::First,
        &mut cur,
        |fd, _| try_op(fd),
        |fd, _| blocking(fd),
    );
    stale(fd, r, || blocking(fd))
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

/// Sends a whole message cooperatively (rule 14): the caller's msghdr
/// first, then, after a partial send, the rest of its iovecs (no
/// ancillary data twice).
///
/// # Safety
/// `msg` is the caller's valid msghdr (or null: the kernel says EFAULT).
pub(crate) unsafe fn send_msg(fd: c_int, st: &FdState, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: read only after the kernel accepted the msghdr (see `first`).
    let mut cur = Cursor::new(std::ptr::null(), 0);
    let first = std::cell::Cell::new(true);
    // A msghdr of ours over the rest of the caller's data, to its address.
    let rest = |c: &mut Cursor| {
        // SAFETY: the caller's msghdr, valid once `first` is false (the
        // kernel read it successfully).
        let orig = unsafe { &*msg };
        let (p, n) = c.rest();
        let mut m = iov_msghdr(p, n);
        m.msg_name = orig.msg_name;
        m.msg_namelen = orig.msg_namelen;
        m
    };
    transfer(
        fd,
        st,
        Dir::Write,
        Some(Timeo::Snd),
        Until::All,
        &mut cur,
        |fd, c| {
            if first.get() {
                // SAFETY: the caller's arguments.
                let r = unsafe { real::sendmsg(fd, msg, flags | libc::MSG_DONTWAIT) };
                if r >= 0 {
                    first.set(false);
                    // SAFETY: the kernel read this msghdr successfully.
                    let m = unsafe { &*msg };
                    *c = Cursor::new(m.msg_iov, m.msg_iovlen);
                }
                return r;
            }
            let m = rest(c);
            // SAFETY: a msghdr of ours over the rest of the caller's data.
            unsafe { real::sendmsg(fd, &m, flags | libc::MSG_DONTWAIT) }
        },
        |fd, c| {
            if first.get() {
                // SAFETY: the caller's arguments.
                return unsafe { real::sendmsg(fd, msg, flags) };
            }
            let m = rest(c);
            // SAFETY: as above.
            unsafe { real::sendmsg(fd, &m, flags) }
        },
    )
}

/// Sends `iov[..cnt]` with `flags` cooperatively (`writev` on a socket).
///
/// # Safety
/// The libc contract of `writev`.
pub(crate) unsafe fn send_iov(fd: c_int, st: &FdState, iov: *const iovec, cnt: c_int, flags: c_int) -> ssize_t {
    let m = iov_msghdr(iov, cnt);
    // SAFETY: a msghdr of ours around the caller's iovecs, which the
    // kernel validates.
    unsafe { send_msg(fd, st, &m, flags) }
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
}
