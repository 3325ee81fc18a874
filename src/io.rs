//! The one way to park a greenlet on an fd, for the runtime's sockets and
//! for users with raw fds (gevent's `wait_read`, `wait_write`,
//! `cancel_wait`).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::hub::deliver;
use crate::hub::{self, FdWait};
use crate::sys::Interest;

/// Parks the current greenlet until `fd` is readable (or hung up / in
/// error), or `timeout` passes (`ErrorKind::TimedOut`), like gevent's
/// `wait_read`. Level-triggered: an fd that is readable now returns at
/// once. If another greenlet calls [`cancel_wait`] on the fd (as closing
/// one of greenrt's sockets does), the wait fails with `EBADF`.
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_level(fd, Interest::READ, timeout)
}

/// Like [`wait_readable`], for writability (gevent's `wait_write`).
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_level(fd, Interest::WRITE, timeout)
}

fn wait_level(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    if crate::sys::ready_now(fd, interest)? {
        return Ok(());
    }
    // A raw fd may have been closed and its number reused without
    // `cancel_wait`; make sure the poller watches the file it names now.
    hub::with(|h| h.revalidate_fd(fd));
    wait(fd, interest, deadline)
}

/// Waits for `interest` on `fd` until `deadline`; kill and Timeout unwind.
///
/// Edge-triggered contract: call only after the operation returned
/// `EAGAIN`, then retry it; wakeups may be spurious.
pub(crate) fn wait(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    match hub::with(|h| h.wait_fd(fd, interest, deadline))? {
        FdWait::Ready => Ok(()),
        FdWait::TimedOut => Err(io::Error::from(io::ErrorKind::TimedOut)),
        FdWait::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        FdWait::Interrupted(i) => deliver(i),
        // Only waits made through the C ABI with signal interruption on
        // end this way; Rust callers never ask for it.
        FdWait::Signal => Err(io::Error::from(io::ErrorKind::Interrupted)),
    }
}

/// Wakes every greenlet waiting on `fd` with `EBADF` and removes the fd
/// from the poller. Call it before closing an fd other greenlets may wait
/// on, so that a reused fd number never inherits the registration.
pub fn cancel_wait(fd: RawFd) {
    // Every hub's registration of the number is stale from now on.
    crate::sys::fd_epochs::end(fd);
    hub::with(|h| h.forget_fd(fd));
}
