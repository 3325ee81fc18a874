//! The socket core every socket of the runtime is built on (the types of
//! `greenrt::net`, and the native resolver's in `dns`): an owned,
//! always-non-blocking fd plus the cooperative state (timeouts, the
//! user-visible non-blocking mode, closed), and the one loop that makes a
//! syscall cooperative:
//!
//! 1. try the syscall;
//! 2. on `EAGAIN`, park the greenlet on the hub until the fd is ready
//!    (edge-triggered, so only after `EAGAIN`), with the socket's timeout
//!    as the deadline;
//! 3. retry.
//!
//! `EINTR` is retried. A timeout gives `EAGAIN` (`ErrorKind::WouldBlock`),
//! what std on Linux returns when `SO_RCVTIMEO`/`SO_SNDTIMEO` expires. In
//! non-blocking mode the `EAGAIN` is returned at once. Kill and Timeout
//! unwind out of the wait.
//!
//! One concept at ~700 lines: every socket operation is a thin shell over
//! the same cooperative loop and the same owned state, and splitting the
//! operations by kind would scatter what each must keep true.

mod addr;

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::{self, ManuallyDrop};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::hub;
use crate::sys::{syscall, Interest};
pub(crate) use addr::SockAddr;

/// Which way an operation moves data: picks the interest to wait for and
/// the timeout that bounds the wait.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Receives: waits for readability, bounded by the read timeout.
    Read,
    /// Sends: waits for writability, bounded by the write timeout.
    Write,
}

impl Dir {
    /// The readiness this direction waits for.
    fn interest(self) -> Interest {
        match self {
            Dir::Read => Interest::READ,
            Dir::Write => Interest::WRITE,
        }
    }
}

/// A socket owned by the runtime. `O_NONBLOCK` is always set on the fd;
/// the user-visible blocking behaviour is cooperative.
pub(crate) struct Socket {
    fd: OwnedFd,
    /// Read timeout in nanoseconds; 0 = none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds; 0 = none.
    write_timeout: AtomicU64,
    /// User-visible non-blocking mode: `EAGAIN` is returned, not waited on.
    nonblocking: AtomicBool,
    /// Set by [`Socket::close`]: every operation fails with `EBADF`.
    closed: AtomicBool,
}

/// Linux's limit on buffers per vectored call (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// Wakes the greenlets of this thread's hub that wait on `fd` (with
/// `EBADF`) and drops the fd from the poller: `crate::io::cancel_wait`,
/// except that it neither creates a hub on a thread that has none nor
/// panics while the thread is being torn down.
fn cancel_wait(fd: RawFd) {
    let _ = hub::try_with_existing(|h| h.forget_fd(fd));
}

/// A new fd number may have been used (and closed behind this hub's back,
/// e.g. by a socket moved to another thread): make the next wait register
/// it afresh. Costs no syscall.
fn fresh_fd(fd: RawFd) {
    let _ = hub::try_with_existing(|h| h.revalidate_fd(fd));
}

fn duration_to_nanos(d: Option<Duration>) -> io::Result<u64> {
    match d {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    }
}

fn nanos_to_duration(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_nanos(n))
}

/// An fd that stands in for a closed socket until its handle is dropped
/// (see [`Socket::close`]): an unconnected Unix stream socket, on which any
/// stray call fails harmlessly (`ENOTCONN`).
fn dead_fd() -> Option<RawFd> {
    static DEAD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    DEAD.get_or_init(|| {
        let fd = syscall!(socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)).ok()?;
        // SAFETY: socket() just returned this fd; nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .as_ref()
    .map(|f| f.as_raw_fd())
}

impl Socket {
    /// A new socket (`SOCK_NONBLOCK | SOCK_CLOEXEC`).
    pub(crate) fn new(domain: libc::c_int, ty: libc::c_int) -> io::Result<Socket> {
        let fd = syscall!(socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0))?;
        // SAFETY: socket() just returned this fd; nothing else owns it.
        Ok(Socket::from_fresh(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A connected pair (`socketpair`), both ends non-blocking.
    pub(crate) fn pair(domain: libc::c_int, ty: libc::c_int) -> io::Result<(Socket, Socket)> {
        let mut fds = [0 as RawFd; 2];
        // The pointer is to a local array of the two ints socketpair fills.
        syscall!(socketpair(
            domain,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr()
        ))?;
        // SAFETY: socketpair() just returned these two fds; nothing else owns them.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Socket::from_fresh(a), Socket::from_fresh(b)))
    }

    /// Wraps an fd that was created non-blocking.
    fn from_fresh(fd: OwnedFd) -> Socket {
        fresh_fd(fd.as_raw_fd());
        Socket {
            fd,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes over an fd from elsewhere (std, a raw fd): the fd is switched
    /// to `O_NONBLOCK`, which the runtime needs.
    pub(crate) fn from_owned_fd(fd: OwnedFd) -> Socket {
        // An invalid fd fails here and in every later operation alike.
        let _ = crate::os::set_nonblocking(fd.as_raw_fd(), true);
        Socket::from_fresh(fd)
    }

    /// Takes over a std socket, keeping the timeouts it had as socket
    /// options as cooperative timeouts.
    pub(crate) fn from_std(fd: OwnedFd) -> Socket {
        let s = Socket::from_owned_fd(fd);
        for (opt, slot) in [
            (libc::SO_RCVTIMEO, &s.read_timeout),
            (libc::SO_SNDTIMEO, &s.write_timeout),
        ] {
            if let Ok(Some(d)) = s.timeout_option(opt) {
                slot.store(duration_to_nanos(Some(d)).unwrap_or(0), Ordering::Relaxed);
            }
        }
        s
    }

    /// Gives the fd up: it leaves the poller (waiters wake with `EBADF`),
    /// and the socket's state is dropped.
    pub(crate) fn into_owned_fd(self) -> OwnedFd {
        cancel_wait(self.fd.as_raw_fd());
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the fd is moved out exactly
        // once; the other fields are atomics with nothing to drop.
        unsafe { std::ptr::read(&this.fd) }
    }

    /// Gives the fd up for a std socket: blocking again (unless the user
    /// asked for non-blocking mode), with the cooperative timeouts set as
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO` so that std honours them.
    pub(crate) fn into_std_fd(self) -> io::Result<OwnedFd> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        let rt = self.read_timeout();
        let wt = self.write_timeout();
        let fd = self.into_owned_fd();
        crate::os::set_nonblocking(fd.as_raw_fd(), nonblocking)?;
        let raw = fd.as_raw_fd();
        for (opt, d) in [(libc::SO_RCVTIMEO, rt), (libc::SO_SNDTIMEO, wt)] {
            if let Some(d) = d {
                let tv = libc::timeval {
                    tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                    tv_usec: d.subsec_micros().max(u32::from(d.as_secs() == 0)) as libc::suseconds_t,
                };
                setsockopt_raw(raw, libc::SOL_SOCKET, opt, tv)?;
            }
        }
        Ok(fd)
    }

    /// The fd number (whether or not the socket is closed).
    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The fd, borrowed.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The fd for an operation: `EBADF` once the socket is closed.
    #[inline]
    pub(crate) fn fd(&self) -> io::Result<RawFd> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(ebadf());
        }
        Ok(self.fd.as_raw_fd())
    }

    // ===== the cooperative loop =====

    /// Runs `op` (one syscall on the fd) until it does not fail with
    /// `EAGAIN`, parking the greenlet in between (see the module docs).
    #[inline]
    pub(crate) fn io<R>(&self, dir: Dir, op: impl FnMut(RawFd) -> io::Result<R>) -> io::Result<R> {
        self.io_inner(dir, false, op)
    }

    /// [`io`](Self::io); with `backoff`, `EAGAIN` is waited out with a
    /// short sleep (1 ms, doubling up to 50 ms) instead of a wait on the
    /// fd: for the cases where the kernel sends no readiness event when
    /// the operation could succeed (a Unix datagram sent with `sendto` to
    /// a receiver whose queue is full).
    #[inline(always)]
    fn io_inner<R>(&self, dir: Dir, backoff: bool, mut op: impl FnMut(RawFd) -> io::Result<R>) -> io::Result<R> {
        let mut deadline = None;
        let mut first_wait = true;
        let mut pause = Duration::from_millis(1);
        loop {
            let fd = self.fd()?;
            let e = match op(fd) {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {}
                _ => return Err(e),
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(e);
            }
            if first_wait {
                first_wait = false;
                deadline = self.timeout(dir).map(|t| Instant::now() + t);
            }
            if backoff {
                if let Some(d) = deadline {
                    let now = Instant::now();
                    if now >= d {
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                    pause = pause.min(d - now);
                }
                crate::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
                continue;
            }
            match crate::io::wait(fd, dir.interest(), deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`io`](Self::io) bounded by `deadline` instead of the socket's
    /// timeout, and whatever the non-blocking mode: `ErrorKind::TimedOut`
    /// once it passes (the resolver's sockets, where one deadline bounds a
    /// whole exchange). Data already there is returned even after it.
    pub(crate) fn io_until<R>(
        &self,
        dir: Dir,
        deadline: Instant,
        mut op: impl FnMut(RawFd) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let fd = self.fd()?;
            match op(fd) {
                Ok(r) => return Ok(r),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => crate::io::wait(fd, dir.interest(), Some(deadline))?,
                    _ => return Err(e),
                },
            }
        }
    }

    // ===== data =====

    /// `recv(2)` with `flags`.
    pub(crate) fn recv(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        self.io(Dir::Read, |fd| {
            // The pointer and length describe `buf`, which recv fills.
            syscall!(recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags)).map(|n| n as usize)
        })
    }

    /// `send(2)` with `MSG_NOSIGNAL`: a closed peer gives `EPIPE`, never
    /// `SIGPIPE`.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Dir::Write, |fd| {
            // The pointer and length describe `buf`, which send reads.
            syscall!(send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)).map(|n| n as usize)
        })
    }

    /// `readv(2)` (at most `IOV_MAX` buffers per call, as std does).
    pub(crate) fn recv_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let n = bufs.len().min(IOV_MAX) as libc::c_int;
        self.io(Dir::Read, |fd| {
            // IoSliceMut is ABI-compatible with iovec on Unix; `n` entries.
            syscall!(readv(fd, bufs.as_mut_ptr().cast(), n)).map(|n| n as usize)
        })
    }

    /// `sendmsg(2)` with `MSG_NOSIGNAL` (writev would raise SIGPIPE); at
    /// most `IOV_MAX` buffers per call, as std does.
    pub(crate) fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let bufs = &bufs[..bufs.len().min(IOV_MAX)];
        self.io(Dir::Write, |fd| {
            // SAFETY: msghdr is a plain C struct; all-zero is valid.
            let mut msg: libc::msghdr = unsafe { mem::zeroed() };
            // IoSlice is ABI-compatible with iovec on Unix; sendmsg only
            // reads through the pointer.
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len() as _;
            syscall!(sendmsg(fd, &msg, libc::MSG_NOSIGNAL)).map(|n| n as usize)
        })
    }

    /// `recvfrom(2)` with `flags`; the sender's address.
    pub(crate) fn recv_from(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SockAddr)> {
        self.io(Dir::Read, |fd| {
            let mut addr = SockAddr::empty();
            let p = addr.as_mut_ptr();
            // Pointers: `buf` to fill, and the address storage with its length.
            let n = syscall!(recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                p,
                addr.len_mut()
            ))?;
            Ok((n as usize, addr))
        })
    }

    /// `sendto(2)` with `MSG_NOSIGNAL`. For Unix datagram sockets a full
    /// receiver queue is waited out with a backoff sleep (see `io_inner`):
    /// the kernel wakes only a *connected* sender when it drains.
    pub(crate) fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        let backoff = addr.family() == libc::AF_UNIX;
        self.io_inner(Dir::Write, backoff, |fd| {
            // Pointers: `buf` to send, and a valid address of `len()` bytes.
            syscall!(sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                addr.as_ptr(),
                addr.len()
            ))
            .map(|n| n as usize)
        })
    }

    // ===== connections =====

    /// `bind(2)`.
    pub(crate) fn bind(&self, addr: &SockAddr) -> io::Result<()> {
        // The address pointer is valid for `len()` bytes.
        syscall!(bind(self.fd()?, addr.as_ptr(), addr.len())).map(drop)
    }

    /// `listen(2)` with the largest backlog the system allows (Linux caps
    /// it at `net.core.somaxconn`).
    pub(crate) fn listen(&self) -> io::Result<()> {
        syscall!(listen(self.fd()?, -1)).map(drop)
    }

    /// `accept4(2)`: the new socket is non-blocking and close-on-exec.
    pub(crate) fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        self.io(Dir::Read, |fd| {
            let mut addr = SockAddr::empty();
            let p = addr.as_mut_ptr();
            // The address storage and its length, which accept4 fills.
            let nfd = syscall!(accept4(fd, p, addr.len_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC))?;
            // SAFETY: accept4() just returned this fd; nothing else owns it.
            let s = Socket::from_fresh(unsafe { OwnedFd::from_raw_fd(nfd) });
            Ok((s, addr))
        })
    }

    /// Non-blocking `connect(2)`: `EINPROGRESS`, wait until writable (or
    /// `deadline`: `TimedOut`), then the result from `SO_ERROR`.
    pub(crate) fn connect(&self, addr: &SockAddr, deadline: Option<Instant>) -> io::Result<()> {
        let fd = self.fd()?;
        // The address pointer is valid for `len()` bytes.
        match syscall!(connect(fd, addr.as_ptr(), addr.len())) {
            Ok(_) => return Ok(()),
            // An interrupted connect carries on asynchronously, like EINPROGRESS.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && addr.family() == libc::AF_UNIX => {
                return self.connect_unix_backlog_full(addr, deadline);
            }
            Err(e) => return Err(e),
        }
        loop {
            match crate::io::wait(fd, Interest::WRITE, deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"));
                }
                Err(e) => return Err(e),
            }
            let fd = self.fd()?;
            let mut p = [libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            }];
            // The runtime's own zero-timeout poll (never a hooked one).
            if crate::sys::ppoll_raw(&mut p, 0)? == 0 {
                continue; // a spurious wakeup: still connecting
            }
            if let Some(e) = self.take_error()? {
                return Err(e);
            }
            if p[0].revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                return Err(io::Error::other("no error set after POLLHUP"));
            }
            return Ok(());
        }
    }

    /// A Unix stream connect to a listener whose backlog is full fails with
    /// `EAGAIN` and the kernel offers no readiness event for "backlog has
    /// room", so retry with a short, growing sleep until `deadline`.
    fn connect_unix_backlog_full(&self, addr: &SockAddr, deadline: Option<Instant>) -> io::Result<()> {
        let mut pause = Duration::from_millis(1);
        loop {
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"));
                }
                pause = pause.min(d - now);
            }
            crate::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
            // The address pointer is valid for `len()` bytes.
            match syscall!(connect(self.fd()?, addr.as_ptr(), addr.len())) {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `shutdown(2)`.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        syscall!(shutdown(self.fd()?, how)).map(drop)
    }

    /// Closes the socket now, while other greenlets may still hold it
    /// (gevent's `socket.close()`): every greenlet of this hub waiting on
    /// it wakes with `EBADF`, the connection is released as by `close(2)`,
    /// and later operations fail with `EBADF`. The fd number stays taken
    /// (by a placeholder) until the handle is dropped, so that it cannot
    /// be reused while anything may still refer to it.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let fd = self.fd.as_raw_fd();
        cancel_wait(fd);
        match dead_fd() {
            // Atomically closes the socket's file and puts the placeholder
            // in its place; the fd stays close-on-exec.
            Some(dead) if syscall!(dup3(dead, fd, libc::O_CLOEXEC)).is_ok() => {}
            // No placeholder: at least release the connection.
            _ => {
                let _ = syscall!(shutdown(fd, libc::SHUT_RDWR));
            }
        }
    }

    /// A second socket for the same connection (`F_DUPFD_CLOEXEC`), with
    /// this one's timeouts and mode.
    pub(crate) fn try_clone(&self) -> io::Result<Socket> {
        let nfd = syscall!(fcntl(self.fd()?, libc::F_DUPFD_CLOEXEC, 3))?;
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) just returned this fd; nothing else owns it.
        let s = Socket::from_fresh(unsafe { OwnedFd::from_raw_fd(nfd) });
        for (to, from) in [
            (&s.read_timeout, &self.read_timeout),
            (&s.write_timeout, &self.write_timeout),
        ] {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        s.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(s)
    }

    // ===== addresses =====

    /// `getsockname(2)`.
    pub(crate) fn local_addr(&self) -> io::Result<SockAddr> {
        let mut a = SockAddr::empty();
        let p = a.as_mut_ptr();
        // The address storage and its length, which getsockname fills.
        syscall!(getsockname(self.fd()?, p, a.len_mut()))?;
        Ok(a)
    }

    /// `getpeername(2)`.
    pub(crate) fn peer_addr(&self) -> io::Result<SockAddr> {
        let mut a = SockAddr::empty();
        let p = a.as_mut_ptr();
        // The address storage and its length, which getpeername fills.
        syscall!(getpeername(self.fd()?, p, a.len_mut()))?;
        Ok(a)
    }

    // ===== modes and timeouts =====

    /// Sets the user-visible non-blocking mode.
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd()?;
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// The timeout bounding waits in direction `dir`.
    #[inline]
    fn timeout(&self, dir: Dir) -> Option<Duration> {
        nanos_to_duration(match dir {
            Dir::Read => self.read_timeout.load(Ordering::Relaxed),
            Dir::Write => self.write_timeout.load(Ordering::Relaxed),
        })
    }

    /// Sets the read timeout (`None`: wait without limit; zero is an error).
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd()?;
        self.read_timeout.store(duration_to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the write timeout (`None`: wait without limit; zero is an error).
    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd()?;
        self.write_timeout.store(duration_to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    /// The read timeout.
    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.timeout(Dir::Read)
    }

    /// The write timeout.
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.timeout(Dir::Write)
    }

    // ===== options =====

    /// `setsockopt(2)` with an `int`.
    pub(crate) fn set_int(&self, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
        setsockopt_raw(self.fd()?, level, name, v)
    }

    /// `setsockopt(2)` with a plain C value.
    pub(crate) fn set_opt<T: Copy>(&self, level: libc::c_int, name: libc::c_int, v: T) -> io::Result<()> {
        setsockopt_raw(self.fd()?, level, name, v)
    }

    /// `getsockopt(2)` of an `int`.
    pub(crate) fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // Pointers: a local int and its length, which getsockopt fills.
        syscall!(getsockopt(
            self.fd()?,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len
        ))?;
        Ok(v)
    }

    /// `SO_LINGER`.
    pub(crate) fn linger(&self) -> io::Result<Option<Duration>> {
        let mut v = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        let mut len = mem::size_of::<libc::linger>() as libc::socklen_t;
        // Pointers: a local linger struct and its length, which getsockopt fills.
        syscall!(getsockopt(
            self.fd()?,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut v as *mut libc::linger).cast(),
            &mut len
        ))?;
        Ok((v.l_onoff != 0).then(|| Duration::from_secs(v.l_linger as u64)))
    }

    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` as set on the socket itself.
    fn timeout_option(&self, name: libc::c_int) -> io::Result<Option<Duration>> {
        let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
        let mut len = mem::size_of::<libc::timeval>() as libc::socklen_t;
        // Pointers: a local timeval and its length, which getsockopt fills.
        syscall!(getsockopt(
            self.fd()?,
            libc::SOL_SOCKET,
            name,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len
        ))?;
        if tv.tv_sec == 0 && tv.tv_usec == 0 {
            return Ok(None);
        }
        Ok(Some(
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64),
        ))
    }

    /// `SO_ERROR`: the pending socket error, cleared by reading it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self.get_int(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }
}

/// `setsockopt(2)` of a plain C value on a raw fd.
fn setsockopt_raw<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: T) -> io::Result<()> {
    // Pointers: a local value of `T` and its exact size.
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&v as *const T).cast(),
        mem::size_of::<T>() as libc::socklen_t
    ))
    .map(drop)
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Waiters wake with EBADF and the fd leaves the poller before the
        // number can be reused; then OwnedFd closes it.
        cancel_wait(self.fd.as_raw_fd());
    }
}
