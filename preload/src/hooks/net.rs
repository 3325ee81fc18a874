//! Hooks for sockets: `socket`, `socketpair`, `accept`, `accept4`,
//! `connect`, `recv`, `recvfrom`, `recvmsg`, `recvmmsg`, `send`, `sendto`,
//! `sendmsg`, `sendmmsg`, `setsockopt` (timeouts), `__recv_chk` and
//! `__recvfrom_chk`.
//!
//! One family at ~730 lines: fourteen libc entry points that share the
//! socket rules (flags that never block, `MSG_WAITALL`, timeouts, partial
//! sends); the machinery they run on is in `coop.rs`.
//!
//! They follow the pattern of `coop.rs` (see its docs for the rules kept): the
//! call is made with `MSG_DONTWAIT` and the greenlet parks on `EAGAIN`;
//! calls that never block pass straight through (`MSG_DONTWAIT`, `MSG_OOB`
//! and `MSG_ERRQUEUE` reads). `connect` and `accept` set `O_NONBLOCK` for
//! the call only. Sends loop until every byte is sent (rule 14);
//! `MSG_WAITALL` receives on stream sockets loop until the buffer is full,
//! end of stream, an error, a timeout or an interruption, like the
//! kernel's.

use std::ffi::{c_int, c_uint, c_void};
use std::time::Instant;

use libc::{iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};

use crate::coop::{self, hooked, send_msg, stale, tracking, transfer, CallFd, Cursor, Dir, Until, Waited};
use crate::errno::{errno, set_errno};
use crate::fdtable::{self, FdState, Kind, Timeo};
use crate::hook;
use crate::real;

/// Flags under which a receive never blocks: pass through.
const RECV_NONBLOCKING: c_int = libc::MSG_DONTWAIT | libc::MSG_OOB | libc::MSG_ERRQUEUE;

/// `SO_RCVTIMEO_NEW` / `SO_SNDTIMEO_NEW` (64-bit time variants).
const SO_RCVTIMEO_NEW: c_int = 66;
const SO_SNDTIMEO_NEW: c_int = 67;

/// The int socket option `name` (`SOL_SOCKET` level), or getsockopt's
/// errno.
fn sockopt_int(fd: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut val: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: an int out-buffer of the length we pass.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            &mut val as *mut c_int as *mut c_void,
            &mut len,
        )
    };
    if r != 0 {
        Err(errno())
    } else {
        Ok(val)
    }
}

/// True if `fd` is a stream socket (where `MSG_WAITALL` loops).
fn is_stream(fd: c_int) -> bool {
    sockopt_int(fd, libc::SO_TYPE) == Ok(libc::SOCK_STREAM)
}

/// The fd's state if `eligible` (the call's flags and arguments allow the
/// cooperative path) and it is a socket that cooperates now.
fn coop_socket(eligible: bool, fd: c_int) -> Option<FdState> {
    coop::coop_if(eligible, fd).filter(|st| st.kind == Kind::Socket)
}

/// `Until::All` for a `MSG_WAITALL` receive on a stream socket (where it
/// loops), else `Until::First`.
fn recv_until(fd: c_int, flags: c_int) -> Until {
    if flags & libc::MSG_WAITALL != 0 && is_stream(fd) {
        Until::All
    } else {
        Until::First
    }
}

/// True when `fd`'s peer has shut down its side or the socket has an
/// error: no more data will come, so a waiting receive ends with what is
/// there (as the kernel's does). The runtime's own zero-timeout poll.
fn peer_done(fd: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // Every variadic argument is passed full width: the kernel reads 64 bits.
    // SAFETY: one pollfd of ours, a zero timeout, no signal mask.
    let n = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            &mut p as *mut libc::pollfd,
            1 as libc::c_ulong,
            &zero as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            0 as libc::c_ulong,
        )
    };
    n == 1 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// `MSG_PEEK | MSG_WAITALL` on a stream socket, the kernel's way: peek the
/// whole buffer again each time more data arrives (a peek never consumes,
/// so continuing after a partial one would return the same bytes twice),
/// until it is full, the peer shuts down or fails, or the timeout passes;
/// then the bytes peeked so far (`-1` with the errno only if there are
/// none).
///
/// `peek()` makes the call with `MSG_DONTWAIT`; `want()` is the buffer's
/// size, asked only after the kernel accepted the buffer; `blocking()` is
/// the real call, made where the poller refuses the fd.
fn peek_all(
    fd: c_int,
    st: &FdState,
    mut peek: impl FnMut(c_int) -> ssize_t,
    want: impl Fn() -> usize,
    blocking: impl Fn(c_int) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut call = CallFd::new(fd);
    let mut deadline = None;
    let mut last = 0usize;
    let mut pause_ns: i64 = 1_000_000;
    loop {
        let r = peek(call.get());
        if r < 0 && errno() != libc::EAGAIN {
            return r;
        }
        let got = r.max(0) as usize;
        if r >= 0 && (r == 0 || got >= want() || peer_done(call.get())) {
            set_errno(saved);
            return r;
        }
        if got == 0 && fdtable::user_nonblock_now(call.get(), st) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let end = |e: c_int| -> ssize_t {
            if got > 0 {
                set_errno(saved);
                got as ssize_t
            } else {
                set_errno(e);
                -1
            }
        };
        let timeout_ns = fdtable::timeout(fd, st, Timeo::Rcv);
        let dl = *deadline.get_or_insert_with(|| coop::deadline_after(timeout_ns));
        if got > 0 && got == last {
            // Woken without new data (a level-triggered poller reports
            // the data already peeked): wait a little instead of spinning.
            if dl.is_some_and(|d| Instant::now() >= d) {
                return end(libc::EAGAIN);
            }
            if !coop::pause(pause_ns) {
                return end(libc::EINTR);
            }
            pause_ns = (pause_ns * 2).min(50_000_000);
            continue;
        }
        last = got;
        match call.park(Dir::Read, dl, false, timeout_ns == 0) {
            Waited::Ready => {}
            Waited::Expired | Waited::Timeout => return end(libc::EAGAIN),
            Waited::Closed => return end(libc::EBADF),
            Waited::Interrupted => return end(libc::EINTR),
            Waited::Refused => {
                set_errno(saved);
                return blocking(call.get());
            }
        }
    }
}

/// True for a receive that peeks until its buffer is full.
fn peeks_all(until: Until, flags: c_int) -> bool {
    until == Until::All && flags & libc::MSG_PEEK != 0
}

/// A cooperative transfer of one buffer (`recvfrom`, `sendto`):
/// `call(ptr, len, flags)` is the socket call, made with `MSG_DONTWAIT`
/// added while cooperating, with `flags` as given for the blocking
/// fallback, and on the whole buffer after an `ENOTSOCK` ([`stale`]).
#[allow(clippy::too_many_arguments)]
fn one_buffer(
    fd: c_int,
    st: &FdState,
    dir: Dir,
    until: Until,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    call: impl Fn(c_int, *mut c_void, size_t, c_int) -> ssize_t,
) -> ssize_t {
    let timeo = match dir {
        Dir::Read => Timeo::Rcv,
        Dir::Write => Timeo::Snd,
    };
    let v = iovec {
        iov_base: buf,
        iov_len: n,
    };
    let mut cur = Cursor::new(&v, 1);
    // The cursor's next contiguous piece (what is left of the buffer).
    let piece = |c: &mut Cursor| {
        let (p, _) = c.rest();
        // SAFETY: `rest` returns at least one valid entry while not done.
        let v = unsafe { *p };
        (v.iov_base, v.iov_len)
    };
    let r = transfer(
        fd,
        st,
        dir,
        Some(timeo),
        until,
        &mut cur,
        |fd, c| {
            let (p, n) = piece(c);
            call(fd, p, n, flags | libc::MSG_DONTWAIT)
        },
        |fd, c| {
            let (p, n) = piece(c);
            call(fd, p, n, flags)
        },
    );
    stale(fd, r, || call(fd, buf, n, flags))
}

// ===== creation =====

/// The `socket` hook: records a fresh socket.
///
/// # Safety
/// The libc contract of `socket`.
pub unsafe fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::socket(domain, ty, protocol) };
    if r >= 0 && tracking() {
        fdtable::created(r, Kind::Socket, ty & libc::SOCK_NONBLOCK != 0);
    }
    r
}

/// The `socketpair` hook.
///
/// # Safety
/// The libc contract of `socketpair`.
pub unsafe fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::socketpair(domain, ty, protocol, sv) };
    if r == 0 && tracking() {
        // SAFETY: the kernel filled both entries.
        unsafe { coop::created_pair(sv, Kind::Socket, ty & libc::SOCK_NONBLOCK != 0) };
    }
    r
}

/// `accept4` (`flags == None`: plain `accept`).
unsafe fn accept_any(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: Option<c_int>) -> c_int {
    // SAFETY: the caller's arguments.
    let accept_on = |fd| unsafe {
        match flags {
            None => real::accept(fd, addr, len),
            Some(f) => real::accept4(fd, addr, len, f),
        }
    };
    let real_call = || accept_on(fd);
    let r = hooked(
        "accept",
        coop_socket(true, fd),
        |st| {
            coop::socket_read_once(
                fd,
                &st,
                |fd| {
                    // No per-call flag for accept: O_NONBLOCK for the
                    // call, hidden from F_GETFL, restored at once.
                    let Some(guard) = fdtable::temp_nonblock(fd) else {
                        return accept_on(fd) as ssize_t;
                    };
                    let r = accept_on(fd);
                    drop(guard);
                    if r >= 0 {
                        // A connection taken: a retry would take another.
                        hook::progressed();
                    }
                    r as ssize_t
                },
                |fd| accept_on(fd) as ssize_t,
            ) as c_int
        },
        real_call,
    );
    if r >= 0 && tracking() {
        let nb = flags.is_some_and(|f| f & libc::SOCK_NONBLOCK != 0);
        fdtable::created(r, Kind::Socket, nb);
    }
    r
}

/// The `accept` hook.
///
/// # Safety
/// The libc contract of `accept`.
pub unsafe fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { accept_any(fd, addr, len, None) }
}

/// The `accept4` hook.
///
/// # Safety
/// The libc contract of `accept4`.
pub unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { accept_any(fd, addr, len, Some(flags)) }
}

/// Cooperative `connect`: the call made non-blocking, then, while the
/// connection is in progress, a park until the socket is writable and the
/// same call again, which is how the kernel itself completes a connect in
/// progress: `0` once connected (and the socket is marked connected, so a
/// later connect is `EISCONN`), the error once refused or unreachable
/// (and the socket may connect again, as after a blocking failure), or
/// `EALREADY` while still in progress (park again). Never `SO_ERROR`,
/// which would consume the error and leave the socket "connecting".
///
/// # Safety
/// The libc contract of `connect`.
unsafe fn connect_coop(fd: c_int, st: FdState, addr: *const sockaddr, len: socklen_t) -> c_int {
    let saved = errno();
    // One non-blocking connect: `Ok(())` connected, `Err(errno)`.
    let try_connect = |fd| -> Result<(), c_int> {
        let Some(guard) = fdtable::temp_nonblock(fd) else {
            return Err(-1);
        };
        // SAFETY: the caller's arguments.
        let r = unsafe { real::connect(fd, addr, len) };
        let e = errno();
        drop(guard);
        if r == 0 {
            Ok(())
        } else {
            Err(e)
        }
    };
    // SAFETY: the caller's arguments.
    let blocking = |fd| unsafe { real::connect(fd, addr, len) };
    let done = |r: Result<(), c_int>| -> c_int {
        match r {
            Ok(()) => {
                set_errno(saved);
                0
            }
            Err(e) => {
                set_errno(e);
                -1
            }
        }
    };
    match try_connect(fd) {
        Ok(()) => return done(Ok(())),
        Err(-1) => {
            set_errno(saved);
            return blocking(fd);
        }
        // Started: a repeated connect would answer EALREADY.
        Err(libc::EINPROGRESS) => hook::progressed(),
        Err(libc::EAGAIN) => {
            // A full AF_UNIX backlog: the blocking call waits for room,
            // which no readiness event announces; make it.
            set_errno(saved);
            return blocking(fd);
        }
        Err(e) => {
            if e == libc::ENOTSOCK {
                fdtable::reclassify(fd);
            }
            return done(Err(e));
        }
    }
    let timeout_ns = fdtable::timeout(fd, &st, Timeo::Snd);
    let deadline = coop::deadline_after(timeout_ns);
    let mut call = CallFd::new(fd);
    loop {
        let e = match call.park(Dir::Write, deadline, false, timeout_ns == 0) {
            Waited::Ready => match try_connect(call.get()) {
                // EISCONN: connected meanwhile, by this call's own connect.
                Ok(()) | Err(libc::EISCONN) => return done(Ok(())),
                Err(libc::EALREADY) => continue,
                Err(-1) => {
                    set_errno(saved);
                    return blocking(call.get());
                }
                Err(e) => e,
            },
            // The kernel's answer when SO_SNDTIMEO ends a blocking connect:
            // still connecting.
            Waited::Expired => libc::EINPROGRESS,
            Waited::Timeout => libc::ETIMEDOUT,
            Waited::Closed => libc::EBADF,
            Waited::Interrupted => libc::EINTR,
            Waited::Refused => {
                // The blocking call completes the connect in progress.
                set_errno(saved);
                return blocking(call.get());
            }
        };
        return done(Err(e));
    }
}

/// The `connect` hook.
///
/// # Safety
/// The libc contract of `connect`.
pub unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    hooked(
        "connect",
        coop_socket(true, fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { connect_coop(fd, st, addr, len) },
        // SAFETY: the caller's arguments.
        || unsafe { real::connect(fd, addr, len) },
    )
}

// ===== receiving =====

/// Cooperative `recvfrom` (`recv` passes null addresses).
unsafe fn recvfrom_coop(
    fd: c_int,
    st: FdState,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let until = recv_until(fd, flags);
    // SAFETY: the caller's buffer (or what is left of it) and arguments.
    let call = |fd, p, n, f| unsafe { real::recvfrom(fd, p, n, f, addr, alen) };
    if peeks_all(until, flags) {
        let r = peek_all(
            fd,
            &st,
            |fd| call(fd, buf, n, flags | libc::MSG_DONTWAIT),
            || n,
            |fd| call(fd, buf, n, flags),
        );
        return stale(fd, r, || call(fd, buf, n, flags));
    }
    one_buffer(fd, &st, Dir::Read, until, buf, n, flags, call)
}

/// The `recvfrom` hook.
///
/// # Safety
/// The libc contract of `recvfrom`.
pub unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    hooked(
        "recvfrom",
        coop_socket(flags & RECV_NONBLOCKING == 0, fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { recvfrom_coop(fd, st, buf, n, flags, addr, alen) },
        // SAFETY: the caller's arguments.
        || unsafe { real::recvfrom(fd, buf, n, flags, addr, alen) },
    )
}

/// The `recv` hook.
///
/// # Safety
/// The libc contract of `recv`.
pub unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let null = std::ptr::null_mut();
    hooked(
        "recv",
        coop_socket(flags & RECV_NONBLOCKING == 0, fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { recvfrom_coop(fd, st, buf, n, flags, null, null as *mut socklen_t) },
        // SAFETY: the caller's arguments.
        || unsafe { real::recv(fd, buf, n, flags) },
    )
}

/// The `__recv_chk` hook.
///
/// # Safety
/// The libc contract of `__recv_chk`.
pub unsafe fn recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t {
    if n > buflen {
        // SAFETY: the real one reports the overflow and aborts.
        return unsafe { real::__recv_chk(fd, buf, n, buflen, flags) };
    }
    // SAFETY: the caller's arguments; the buffer is large enough.
    unsafe { recv(fd, buf, n, flags) }
}

/// The `__recvfrom_chk` hook.
///
/// # Safety
/// The libc contract of `__recvfrom_chk`.
pub unsafe fn recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: the real one reports the overflow and aborts.
        return unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, alen) };
    }
    // SAFETY: the caller's arguments; the buffer is large enough.
    unsafe { recvfrom(fd, buf, n, flags, addr, alen) }
}

/// Cooperative `recvmsg`; with `MSG_WAITALL` on a stream socket the later
/// pieces go into the rest of the iovecs (ancillary data only with the
/// first).
unsafe fn recvmsg_coop(fd: c_int, st: FdState, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let until = recv_until(fd, flags);
    // SAFETY: the caller's arguments.
    let real_call = || unsafe { real::recvmsg(fd, msg, flags) };
    if peeks_all(until, flags) {
        // SAFETY: the caller's arguments.
        let peek = |fd| unsafe { real::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT) };
        // SAFETY: read only after the kernel accepted the msghdr and its
        // iovecs (a peek returned data).
        let want = || unsafe { coop::iov_total((*msg).msg_iov, (*msg).msg_iovlen) };
        // SAFETY: the caller's arguments.
        let blocking = |fd| unsafe { real::recvmsg(fd, msg, flags) };
        let r = peek_all(fd, &st, peek, want, blocking);
        return stale(fd, r, real_call);
    }
    // The cursor starts empty and takes the caller's iovecs only after the
    // kernel accepted the msghdr (the first successful call): a bad
    // pointer is the kernel's EFAULT, never a fault here.
    let mut cur = Cursor::new(std::ptr::null(), 0);
    let mut first = true;
    let r = transfer(
        fd,
        &st,
        Dir::Read,
        Some(Timeo::Rcv),
        until,
        &mut cur,
        |fd, c| {
            if first {
                // SAFETY: the caller's arguments.
                let r = unsafe { real::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT) };
                if r > 0 {
                    first = false;
                    // SAFETY: the kernel read this msghdr and its iovecs.
                    let (iov, cnt) = unsafe { ((*msg).msg_iov as *const iovec, (*msg).msg_iovlen) };
                    *c = Cursor::new(iov, cnt);
                }
                return r;
            }
            let (p, n) = c.rest();
            let mut m = coop::iov_msghdr(p, n);
            // SAFETY: a msghdr of ours over the rest of the caller's iovecs.
            unsafe { real::recvmsg(fd, &mut m, flags | libc::MSG_DONTWAIT) }
        },
        |fd, c| {
            let (p, n) = c.rest();
            let mut m = coop::iov_msghdr(p, n);
            // SAFETY: as above.
            unsafe { real::recvmsg(fd, &mut m, flags) }
        },
    );
    stale(fd, r, real_call)
}

/// The `recvmsg` hook.
///
/// # Safety
/// The libc contract of `recvmsg`.
pub unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    hooked(
        "recvmsg",
        coop_socket(flags & RECV_NONBLOCKING == 0 && !msg.is_null(), fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { recvmsg_coop(fd, st, msg, flags) },
        // SAFETY: the caller's arguments.
        || unsafe { real::recvmsg(fd, msg, flags) },
    )
}

fn ts_ns(t: &timespec) -> i128 {
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

/// Cooperative `recvmmsg`: like the kernel's, receives until `vlen`
/// messages (or one, with `MSG_WAITFORONE`), checking `timeout` after each
/// batch and writing back what is left of it; an error after some
/// messages returns their count.
unsafe fn recvmmsg_coop(
    fd: c_int,
    st: FdState,
    v: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    let saved = errno();
    let end = if timeout.is_null() {
        None
    } else {
        // SAFETY: the caller's timespec (the first real call validates it).
        let t = unsafe { *timeout };
        if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
            // SAFETY: the kernel reports EINVAL.
            return unsafe { real::recvmmsg(fd, v, vlen, flags, timeout) };
        }
        Some((Instant::now(), ts_ns(&t)))
    };
    let mut done: c_uint = 0;
    let mut call = CallFd::new(fd);
    let mut deadline = None;
    let mut have_deadline = false;
    let result: Result<(), c_int> = loop {
        let fl = (flags & !libc::MSG_WAITFORONE) | libc::MSG_DONTWAIT;
        // SAFETY: the caller's array from `done` on.
        let r = unsafe { real::recvmmsg(call.get(), v.add(done as usize), vlen - done, fl, std::ptr::null_mut()) };
        if r > 0 {
            hook::progressed();
            done += r as c_uint;
            if done >= vlen || flags & libc::MSG_WAITFORONE != 0 {
                break Ok(());
            }
            if let Some((t0, ns)) = end {
                if t0.elapsed().as_nanos() as i128 >= ns {
                    break Ok(());
                }
            }
            continue;
        }
        if r == 0 {
            break Ok(());
        }
        let e = errno();
        if e != libc::EAGAIN {
            break Err(e);
        }
        if done == 0 && fdtable::user_nonblock_now(call.get(), &st) {
            break Err(libc::EAGAIN);
        }
        let timeout_ns = fdtable::timeout(fd, &st, Timeo::Rcv);
        if !have_deadline {
            deadline = coop::deadline_after(timeout_ns);
            have_deadline = true;
        }
        match call.park(Dir::Read, deadline, false, timeout_ns == 0) {
            Waited::Ready => continue,
            Waited::Expired | Waited::Timeout => break Err(libc::EAGAIN),
            Waited::Closed => break Err(libc::EBADF),
            Waited::Interrupted => break Err(libc::EINTR),
            Waited::Refused => {
                // SAFETY: as above, blocking.
                let r = unsafe {
                    real::recvmmsg(
                        call.get(),
                        v.add(done as usize),
                        vlen - done,
                        flags,
                        std::ptr::null_mut(),
                    )
                };
                if r < 0 {
                    break Err(errno());
                }
                done += r as c_uint;
                break Ok(());
            }
        }
    };
    if let Some((t0, ns)) = end {
        let left = (ns - t0.elapsed().as_nanos() as i128).max(0);
        // SAFETY: the caller's timespec, read above.
        unsafe {
            (*timeout).tv_sec = (left / 1_000_000_000) as libc::time_t;
            (*timeout).tv_nsec = (left % 1_000_000_000) as _;
        }
    }
    match result {
        Err(e) if done == 0 => {
            set_errno(e);
            -1
        }
        _ => {
            set_errno(saved);
            done as c_int
        }
    }
}

/// The `recvmmsg` hook.
///
/// # Safety
/// The libc contract of `recvmmsg`.
pub unsafe fn recvmmsg(fd: c_int, v: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int {
    hooked(
        "recvmmsg",
        coop_socket(
            flags & RECV_NONBLOCKING == 0 && vlen > 0 && vlen <= libc::UIO_MAXIOV as c_uint && !v.is_null(),
            fd,
        ),
        // SAFETY: the caller's arguments.
        |st| unsafe { recvmmsg_coop(fd, st, v, vlen, flags, timeout) },
        // SAFETY: the caller's arguments.
        || unsafe { real::recvmmsg(fd, v, vlen, flags, timeout) },
    )
}

// ===== sending =====

/// Cooperative `sendto` (`send` passes a null address).
unsafe fn sendto_coop(
    fd: c_int,
    st: FdState,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    // SAFETY: the caller's buffer (or what is left of it) and arguments.
    let call = |fd, p: *mut c_void, n, f| unsafe { real::sendto(fd, p, n, f, addr, alen) };
    one_buffer(fd, &st, Dir::Write, Until::All, buf as *mut c_void, n, flags, call)
}

/// The `sendto` hook.
///
/// # Safety
/// The libc contract of `sendto`.
pub unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    hooked(
        "sendto",
        coop_socket(flags & libc::MSG_DONTWAIT == 0, fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { sendto_coop(fd, st, buf, n, flags, addr, alen) },
        // SAFETY: the caller's arguments.
        || unsafe { real::sendto(fd, buf, n, flags, addr, alen) },
    )
}

/// The `send` hook.
///
/// # Safety
/// The libc contract of `send`.
pub unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    hooked(
        "send",
        coop_socket(flags & libc::MSG_DONTWAIT == 0, fd),
        // SAFETY: the caller's arguments.
        |st| unsafe { sendto_coop(fd, st, buf, n, flags, std::ptr::null(), 0) },
        // SAFETY: the caller's arguments.
        || unsafe { real::send(fd, buf, n, flags) },
    )
}

/// The `sendmsg` hook.
///
/// # Safety
/// The libc contract of `sendmsg`.
pub unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments.
    let r = unsafe { sendmsg_any(fd, msg, flags) };
    if r >= 0 && tracking() {
        // SAFETY: the kernel accepted `msg` (and its control data).
        unsafe { passed_fds_are_shared(msg) };
    }
    r
}

/// Marks the fds a successful `sendmsg` passed with `SCM_RIGHTS` as
/// shared: another process now holds their open file descriptions and
/// may change their flags and timeouts (`fdtable::mark_shared`).
///
/// # Safety
/// `msg` is a msghdr the kernel just accepted (readable, with readable
/// control data).
unsafe fn passed_fds_are_shared(msg: *const msghdr) {
    // SAFETY: see above; the CMSG macros walk the accepted control buffer.
    unsafe {
        if (*msg).msg_control.is_null() {
            return;
        }
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const c_int;
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<c_int>();
                for i in 0..n {
                    fdtable::mark_shared(std::ptr::read_unaligned(data.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
}

/// `sendmsg`, cooperative where it can be.
///
/// # Safety
/// The libc contract of `sendmsg`.
unsafe fn sendmsg_any(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    hooked(
        "sendmsg",
        coop_socket(flags & libc::MSG_DONTWAIT == 0 && !msg.is_null(), fd),
        |st| {
            // SAFETY: the caller's arguments.
            let r = unsafe { send_msg(fd, &st, msg, flags) };
            // SAFETY: the caller's arguments.
            stale(fd, r, || unsafe { real::sendmsg(fd, msg, flags) })
        },
        // SAFETY: the caller's arguments.
        || unsafe { real::sendmsg(fd, msg, flags) },
    )
}

/// Cooperative `sendmmsg`: every message sent whole, in order; an error
/// after some messages returns their count.
unsafe fn sendmmsg_coop(fd: c_int, st: FdState, v: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    let saved = errno();
    let mut done: c_uint = 0;
    while done < vlen {
        // SAFETY: the caller's array entry.
        let e = unsafe { &mut *v.add(done as usize) };
        // SAFETY: the caller's message.
        let r = unsafe { send_msg(fd, &st, &e.msg_hdr, flags) };
        if r < 0 {
            if done == 0 {
                return -1;
            }
            break;
        }
        e.msg_len = r as c_uint;
        done += 1;
    }
    set_errno(saved);
    done as c_int
}

/// The `sendmmsg` hook.
///
/// # Safety
/// The libc contract of `sendmmsg`.
pub unsafe fn sendmmsg(fd: c_int, v: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    hooked(
        "sendmmsg",
        coop_socket(
            flags & libc::MSG_DONTWAIT == 0 && vlen > 0 && vlen <= libc::UIO_MAXIOV as c_uint && !v.is_null(),
            fd,
        ),
        // SAFETY: the caller's arguments.
        |st| unsafe { sendmmsg_coop(fd, st, v, vlen, flags) },
        // SAFETY: the caller's arguments.
        || unsafe { real::sendmmsg(fd, v, vlen, flags) },
    )
}

// ===== options =====

/// The `setsockopt` hook: records `SO_RCVTIMEO` / `SO_SNDTIMEO`.
///
/// # Safety
/// The libc contract of `setsockopt`.
pub unsafe fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    if r == 0 && level == libc::SOL_SOCKET && tracking() && !val.is_null() {
        let which = match name {
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => Some(Timeo::Rcv),
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => Some(Timeo::Snd),
            _ => None,
        };
        if let Some(which) = which {
            if len as usize >= std::mem::size_of::<libc::timeval>() {
                // SAFETY: the kernel read a timeval from `val`.
                let tv = unsafe { std::ptr::read_unaligned(val as *const libc::timeval) };
                // A negative time makes the kernel time out at once.
                let ns = if tv.tv_sec < 0 { 1 } else { fdtable::timeval_ns(&tv) };
                fdtable::set_timeout(fd, which, ns);
            }
        }
    }
    r
}

crate::hook::forward_hooks! {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int => socket_hook calls super::socket;
    fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int => socketpair_hook calls super::socketpair;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => accept_hook calls super::accept;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int => accept4_hook calls super::accept4;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int => connect_hook calls super::connect;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t => recv_hook calls super::recv;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t => recvfrom_hook calls super::recvfrom;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t => recvmsg_hook calls super::recvmsg;
    fn recvmmsg(fd: c_int, v: *mut mmsghdr, vlen: c_uint, flags: c_int, t: *mut timespec) -> c_int => recvmmsg_hook calls super::recvmmsg;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t => send_hook calls super::send;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, alen: socklen_t) -> ssize_t => sendto_hook calls super::sendto;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t => sendmsg_hook calls super::sendmsg;
    fn sendmmsg(fd: c_int, v: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int => sendmmsg_hook calls super::sendmmsg;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int => setsockopt_hook calls super::setsockopt;
    fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t => recv_chk_hook calls super::recv_chk;
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t => recvfrom_chk_hook calls super::recvfrom_chk;
}
