//! greenrt's ends of the pipes to a child: `ChildStdin`, `ChildStdout`
//! and `ChildStderr` over one non-blocking [`PipeFd`].

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::time::Instant;

use crate::os;
use crate::sys::Interest;

/// greenrt's end of a pipe to a child: non-blocking, and removed from the
/// hub's poller before it is closed.
///
/// Like every fd greenrt waits on, it is registered with the poller of the
/// hub whose greenlet waited; dropping it removes it from the dropping
/// thread's poller only. So use and drop a pipe on one thread (moving it,
/// or its `Child`, to another thread before any greenlet waited on it is
/// fine).
pub(super) struct PipeFd(OwnedFd);

impl PipeFd {
    pub(super) fn new(fd: OwnedFd) -> io::Result<PipeFd> {
        os::set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(PipeFd(fd))
    }

    pub(super) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub(super) fn read(&self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        let fd = self.fd();
        os::nonblocking_op(fd, Interest::READ, deadline, || os::raw_read(fd, buf))
    }

    pub(super) fn write(&self, buf: &[u8], deadline: Option<Instant>) -> io::Result<usize> {
        let fd = self.fd();
        os::nonblocking_op(fd, Interest::WRITE, deadline, || os::raw_write(fd, buf))
    }

    /// Back to a plain blocking fd, for handing to another process.
    pub(super) fn into_blocking(self) -> OwnedFd {
        let fd = self.fd();
        os::forget_fd(fd);
        // F_SETFL on an fd we own cannot fail for a reason we could act on.
        let _ = os::set_nonblocking(fd, false);
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the OwnedFd is moved out once.
        unsafe { std::ptr::read(&me.0) }
    }
}

impl Drop for PipeFd {
    fn drop(&mut self) {
        os::forget_fd(self.fd());
    }
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name(pub(super) PipeFd);

        impl $name {
            pub(super) fn from_std(p: $std) -> io::Result<$name> {
                Ok($name(PipeFd::new(OwnedFd::from(p))?))
            }

            /// The fd back as a plain (blocking) `OwnedFd`, no longer
            /// known to the hub.
            pub fn into_owned_fd(self) -> OwnedFd {
                self.0.into_blocking()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0 .0.as_fd()
            }
        }

        impl From<$name> for Stdio {
            /// Hands the pipe to another child (`a | b`); the fd is made
            /// blocking again first, since the other child will own it.
            fn from(p: $name) -> Stdio {
                Stdio::from(p.0.into_blocking())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {{ fd: {} }}", stringify!($name), self.0.fd())
            }
        }
    };
}

pipe_type!(
    /// The child's stdin, writable cooperatively (`std::process::ChildStdin`;
    /// gevent's `Popen.stdin`): a write parks the calling greenlet while the
    /// pipe is full. Dropping it closes the pipe (the child sees end of
    /// file).
    ChildStdin,
    std::process::ChildStdin
);
pipe_type!(
    /// The child's stdout, readable cooperatively
    /// (`std::process::ChildStdout`; gevent's `Popen.stdout`): a read parks
    /// the calling greenlet until data or end of file is there.
    ChildStdout,
    std::process::ChildStdout
);
pipe_type!(
    /// The child's stderr, readable cooperatively
    /// (`std::process::ChildStderr`; gevent's `Popen.stderr`).
    ChildStderr,
    std::process::ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf, None)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf, None)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf, None)
    }
}
