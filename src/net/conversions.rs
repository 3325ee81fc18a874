//! The std-shaped surface every socket type of `greenrt::net` shares,
//! written once as macros over the newtype around `crate::socket::Socket`:
//! fd and std conversions, timeouts, and `Read`/`Write` for streams.

/// Implements the fd and std conversions for a socket type that is a
/// newtype around `Socket` (`crate::socket`).
macro_rules! socket_conversions {
    ($t:ident, $std:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0.raw()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// The fd leaves the hub's poller; it stays `O_NONBLOCK`.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.0.into_owned_fd())
            }
        }

        impl std::os::fd::FromRawFd for $t {
            /// Takes ownership of `fd` and sets `O_NONBLOCK` on it.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: the caller guarantees `fd` is an open fd it owns
                // and gives to us.
                Self::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
            }
        }

        impl From<std::os::fd::OwnedFd> for $t {
            /// Takes ownership of the fd and sets `O_NONBLOCK` on it.
            fn from(fd: std::os::fd::OwnedFd) -> Self {
                $t($crate::socket::Socket::from_owned_fd(fd))
            }
        }

        impl From<$t> for std::os::fd::OwnedFd {
            /// The fd leaves the hub's poller; it stays `O_NONBLOCK`.
            fn from(s: $t) -> std::os::fd::OwnedFd {
                s.0.into_owned_fd()
            }
        }

        impl From<$std> for $t {
            /// Takes over a std socket: `O_NONBLOCK` is set, and the
            /// std socket's read/write timeouts become cooperative ones.
            fn from(s: $std) -> Self {
                $t($crate::socket::Socket::from_std(std::os::fd::OwnedFd::from(s)))
            }
        }

        impl $t {
            /// Converts into the std type: the fd leaves the hub, is made
            /// blocking again (unless non-blocking mode was set), and
            /// carries the timeouts as `SO_RCVTIMEO`/`SO_SNDTIMEO`.
            pub fn into_std(self) -> std::io::Result<$std> {
                Ok(<$std>::from(self.0.into_std_fd()?))
            }

            /// Closes the socket while other greenlets may still hold it
            /// (gevent's `socket.close()`): every greenlet of this hub
            /// waiting on it wakes with an `EBADF` error, the connection is
            /// released as by `close(2)` (the peer sees end of file), and
            /// every later operation fails with `EBADF`. The fd number
            /// stays reserved by a placeholder until the value is dropped,
            /// so it is never reused under a handle that is still alive.
            /// Dropping the value closes it too; `close` is for when it is
            /// shared.
            pub fn close(&self) {
                self.0.close()
            }

            /// Moves the socket into or out of non-blocking mode (std's
            /// `set_nonblocking`; gevent's `setblocking(False)`). In
            /// non-blocking mode an operation that would wait fails with
            /// `ErrorKind::WouldBlock` instead of parking the greenlet. The
            /// fd itself is always `O_NONBLOCK`.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.0.set_nonblocking(nonblocking)
            }

            /// Takes the pending socket error, `SO_ERROR` (std's
            /// `take_error`).
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.0.take_error()
            }
        }
    };
}
pub(crate) use socket_conversions;

/// Implements the read/write timeouts for a connection type that is a
/// newtype around `Socket` (`crate::socket`).
macro_rules! socket_timeouts {
    ($t:ident) => {
        impl $t {
            /// Bounds how long a read waits (std's `set_read_timeout`;
            /// gevent's `settimeout`). When it passes, the read fails with
            /// `ErrorKind::WouldBlock` (`EAGAIN`), as std's does on Linux.
            /// `None` waits without limit; a zero duration is an error.
            /// Enforced cooperatively: only the greenlet waits.
            pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
                self.0.set_read_timeout(dur)
            }

            /// Bounds how long a write waits for room (std's
            /// `set_write_timeout`); see [`Self::set_read_timeout`].
            pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
                self.0.set_write_timeout(dur)
            }

            /// The read timeout (std's `read_timeout`).
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.0.fd()?;
                Ok(self.0.read_timeout())
            }

            /// The write timeout (std's `write_timeout`).
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.0.fd()?;
                Ok(self.0.write_timeout())
            }
        }
    };
}
pub(crate) use socket_timeouts;

/// Implements `Read` and `Write` for a stream type and for `&` it.
macro_rules! stream_io {
    ($t:ident) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.recv(buf, 0)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                self.0.recv_vectored(bufs)
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.send(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.0.send_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use stream_io;
