//! The cross-thread waker: an eventfd that another thread writes to make a
//! hub's poller return, like libev's async watcher.

use super::fds::{RuntimeFd, RuntimeFdRef};
use super::{raw_syscall, syscall};
use std::io;

/// An eventfd owned by one hub and shared with the threads that hold a
/// handle to that hub. Its number may move (see `fds::relocate`).
pub(crate) struct Waker {
    fd: RuntimeFd,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = RuntimeFd::create(|| syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)))?;
        // A poll(2) backend waits with this number in its set: moving it
        // wakes that wait through the fd itself.
        fd.nudge_through(fd.by_ref());
        Ok(Waker { fd })
    }

    /// The eventfd, for the poller to watch.
    pub(crate) fn fd(&self) -> RuntimeFdRef {
        self.fd.by_ref()
    }

    /// Makes the owning hub's poller return. Callable from any thread.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // Writes 8 bytes from a valid u64 to our eventfd; EAGAIN (counter
        // saturated) still leaves the fd readable, which is the point.
        let _ = self
            .fd
            .with(|fd| raw_syscall!(SYS_write, fd, &one as *const u64, 8usize));
    }

    /// Clears the readiness after the hub has been woken.
    pub(crate) fn drain(&self) {
        let mut buf: u64 = 0;
        // Reads at most 8 bytes into a valid u64; EAGAIN is fine.
        let _ = self
            .fd
            .with(|fd| raw_syscall!(SYS_read, fd, &mut buf as *mut u64, 8usize));
    }

    /// After the program closed the hub's fds behind the hooks' back (a
    /// raw close loop): if the number is no longer an eventfd, makes a new
    /// one in its place. True if it did.
    pub(crate) fn renew_if_lost(&self) -> io::Result<bool> {
        let lost = self.fd.with(|fd| {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}"));
            !matches!(link, Ok(l) if l.as_os_str() == "anon_inode:[eventfd]")
        });
        if lost {
            self.fd
                .replace_lost(|| syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)))?;
        }
        Ok(lost)
    }

    /// Closes the child's copy of the eventfd after a fork (the parent
    /// keeps its own).
    pub(crate) fn close_after_fork(&self) {
        self.fd.close_now();
    }
}
