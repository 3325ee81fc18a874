//! The one way to park a greenlet on an fd, for the runtime's sockets and
//! for users with raw fds (gevent's `wait_read`, `wait_write`,
//! `cancel_wait`).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::greenlet::deliver;
use crate::hub::{self, FdWait};
use crate::sys::Interest;

/// Parks the current greenlet until `fd` is readable (or hung up / in
/// error), or `timeout` passes (`ErrorKind::TimedOut`). If another
/// greenlet calls [`cancel_wait`] on the fd (as closing one of greenrt's
/// sockets does), the wait fails with `EBADF`. Readiness may be spurious:
/// retry the operation and wait again on `EAGAIN`.
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait(fd, Interest::READ, timeout.map(|t| Instant::now() + t))
}

/// Like [`wait_readable`], for writability.
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait(fd, Interest::WRITE, timeout.map(|t| Instant::now() + t))
}

/// Waits for `interest` on `fd` until `deadline`; kill and Timeout unwind.
pub(crate) fn wait(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    match hub::with(|h| h.wait_fd(fd, interest, deadline))? {
        FdWait::Ready => Ok(()),
        FdWait::TimedOut => Err(io::Error::from(io::ErrorKind::TimedOut)),
        FdWait::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        FdWait::Interrupted(i) => deliver(i),
    }
}

/// Wakes every greenlet waiting on `fd` with `EBADF` and removes the fd
/// from the poller. Call it before closing an fd other greenlets may wait
/// on, so that a reused fd number never inherits the registration.
pub fn cancel_wait(fd: RawFd) {
    hub::with(|h| h.forget_fd(fd));
}
