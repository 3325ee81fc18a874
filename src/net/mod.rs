//! Cooperative sockets (gevent's `gevent.socket`): std's networking types
//! with the same API shape, where every operation that would block parks
//! only the calling greenlet.
//!
//! | type | std equivalent | gevent |
//! |---|---|---|
//! | [`TcpListener`] | `std::net::TcpListener` | listening `socket(AF_INET, SOCK_STREAM)` |
//! | [`TcpStream`] | `std::net::TcpStream` | connected stream `socket`, `create_connection` |
//! | [`UdpSocket`] | `std::net::UdpSocket` | `socket(AF_INET, SOCK_DGRAM)` |
//! | [`UnixListener`] | `std::os::unix::net::UnixListener` | listening `socket(AF_UNIX, SOCK_STREAM)` |
//! | [`UnixStream`] | `std::os::unix::net::UnixStream` | `socket(AF_UNIX, SOCK_STREAM)`, `socketpair` |
//! | [`UnixDatagram`] | `std::os::unix::net::UnixDatagram` | `socket(AF_UNIX, SOCK_DGRAM)` |
//!
//! How they behave:
//!
//! - Every socket is created non-blocking (`SOCK_NONBLOCK`, and
//!   close-on-exec); the runtime owns that flag. Each operation tries the
//!   syscall first and, only on `EAGAIN`, parks the greenlet until the fd
//!   is ready, then retries. One greenlet may read while another writes
//!   the same socket.
//! - Read and write timeouts (`set_read_timeout`, `set_write_timeout`)
//!   bound those waits; when one passes the call fails with
//!   `ErrorKind::WouldBlock`, as std's socket timeouts do on Linux.
//!   `set_nonblocking(true)` makes operations fail with `WouldBlock`
//!   instead of waiting. A [`Timeout`](crate::Timeout) or a kill
//!   interrupts any wait by unwinding, like everywhere else.
//! - `close()` (or dropping the last handle) wakes every greenlet waiting
//!   on the socket with an `EBADF` error before the fd is closed.
//! - Writes use `MSG_NOSIGNAL`: a reset or closed peer is an error
//!   (`EPIPE`, `ECONNRESET`), never a `SIGPIPE`. `write_all` sends every
//!   byte or fails. A peer's orderly close reads as end of file (0).
//! - Host names in `bind`/`connect`/`send_to` are resolved without
//!   blocking the hub (see [`ToSocketAddrs`]).
//! - Like std's, the types are `Send` and `Sync`. A greenlet waits on the
//!   hub of its own thread; `close()` wakes the waiters of the calling
//!   thread's hub (the usual case: one socket, one hub).
//! - Conversions: `From<std type>`, `into_std`, `AsRawFd`, `AsFd`,
//!   `FromRawFd`, `IntoRawFd`, `From<OwnedFd>` and `Into<OwnedFd>`.
//!
//! ```
//! use std::io::{Read, Write};
//! use greenrt::net::{TcpListener, TcpStream};
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! // An echo server: one greenlet per connection.
//! greenrt::spawn(move || {
//!     for conn in listener.incoming() {
//!         let mut conn = conn.unwrap();
//!         greenrt::spawn(move || {
//!             let mut buf = [0; 1024];
//!             loop {
//!                 match conn.read(&mut buf) {
//!                     Ok(0) | Err(_) => break,
//!                     Ok(n) => conn.write_all(&buf[..n]).unwrap(),
//!                 }
//!             }
//!         });
//!     }
//! });
//! let clients: Vec<_> = (0..10)
//!     .map(|i| greenrt::spawn(move || {
//!         let mut c = TcpStream::connect(addr).unwrap();
//!         let msg = format!("hello {i}");
//!         c.write_all(msg.as_bytes()).unwrap();
//!         let mut back = vec![0; msg.len()];
//!         c.read_exact(&mut back).unwrap();
//!         back == msg.as_bytes()
//!     }))
//!     .collect();
//! assert!(clients.iter().all(|c| c.get().unwrap()));
//! ```

mod addr;
mod conversions;
mod tcp;
mod udp;
mod unix;

pub use addr::ToSocketAddrs;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{Incoming as UnixIncoming, UnixDatagram, UnixListener, UnixStream};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn socket_types_are_send_and_sync_like_std() {
        assert_send_sync::<TcpListener>();
        assert_send_sync::<TcpStream>();
        assert_send_sync::<UdpSocket>();
        assert_send_sync::<UnixListener>();
        assert_send_sync::<UnixStream>();
        assert_send_sync::<UnixDatagram>();
    }
}
