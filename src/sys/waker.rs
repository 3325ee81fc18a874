//! The cross-thread waker: an eventfd that another thread writes to make a
//! hub's poller return, like libev's async watcher.

use super::{raw_syscall, syscall};
use std::io;
use std::os::fd::RawFd;

/// An eventfd owned by one hub and shared (by fd number) with the threads
/// that hold a handle to that hub.
pub(crate) struct Waker {
    fd: RawFd,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = super::fds::own_high(syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?)?;
        Ok(Waker { fd })
    }

    /// The fd to register for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Makes the owning hub's poller return. Callable from any thread.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // Writes 8 bytes from a valid u64 to our eventfd; EAGAIN (counter
        // saturated) still leaves the fd readable, which is the point.
        let _ = raw_syscall!(SYS_write, self.fd, &one as *const u64, 8usize);
    }

    /// Clears the readiness after the hub has been woken.
    pub(crate) fn drain(&self) {
        let mut buf: u64 = 0;
        // Reads at most 8 bytes into a valid u64; EAGAIN is fine.
        let _ = raw_syscall!(SYS_read, self.fd, &mut buf as *mut u64, 8usize);
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        super::fds::disown(self.fd);
        super::close_raw(self.fd);
    }
}
