//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], std's `std::os::unix::net` types made cooperative
//! (gevent's `socket.socket(AF_UNIX, ...)`). Addresses are std's
//! [`SocketAddr`]: a path, an abstract name (Linux) or unnamed.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::conversions::{socket_conversions, socket_timeouts, stream_io};
use crate::socket::{SockAddr, Socket};

/// A Unix stream socket server (std's `UnixListener`).
///
/// ```
/// use std::io::{Read, Write};
/// use greenrt::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("greenrt-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let server = greenrt::spawn(move || {
///     let (mut s, _) = listener.accept().unwrap();
///     s.write_all(b"hi").unwrap();
/// });
/// let mut c = UnixStream::connect(&path).unwrap();
/// let mut buf = String::new();
/// c.read_to_string(&mut buf).unwrap();
/// assert_eq!(buf, "hi");
/// server.join().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener(Socket);

/// A Unix stream connection (std's `UnixStream`). Like
/// [`TcpStream`](super::TcpStream): cooperative reads and writes, `Read`
/// and `Write` for `&UnixStream` too, `MSG_NOSIGNAL` on every write.
pub struct UnixStream(Socket);

/// A Unix datagram socket (std's `UnixDatagram`).
pub struct UnixDatagram(Socket);

socket_conversions!(UnixListener, std::os::unix::net::UnixListener);
socket_conversions!(UnixStream, std::os::unix::net::UnixStream);
socket_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
socket_timeouts!(UnixStream);
socket_timeouts!(UnixDatagram);
stream_io!(UnixStream);

fn unix_socket(ty: libc::c_int) -> io::Result<Socket> {
    Socket::new(libc::AF_UNIX, ty)
}

impl UnixListener {
    /// Binds to the path `path` and listens (std's `UnixListener::bind`).
    /// The path must not exist yet.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_sockaddr(&SockAddr::from_path(path.as_ref())?)
    }

    /// Binds to `addr`, which may be an abstract name (std's `bind_addr`).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::bind_sockaddr(&SockAddr::from_unix(addr)?)
    }

    fn bind_sockaddr(addr: &SockAddr) -> io::Result<UnixListener> {
        let s = unix_socket(libc::SOCK_STREAM)?;
        s.bind(addr)?;
        s.listen()?;
        Ok(UnixListener(s))
    }

    /// Accepts a connection, parking the greenlet until one arrives (std's
    /// `accept`). The new stream is non-blocking and close-on-exec from
    /// the start (`accept4`).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.0.accept()?;
        Ok((UnixStream(s), a.to_unix()?))
    }

    /// An endless iterator of accepted connections (std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_unix()
    }

    /// A second handle to the same listening socket (std's `try_clone`).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        self.0.try_clone().map(UnixListener)
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}

/// The iterator returned by [`UnixListener::incoming`] (std's
/// `Incoming`): each item is one `accept`; it never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl UnixStream {
    /// Connects to the socket at `path` (std's `UnixStream::connect`). If
    /// the listener's backlog is full, the greenlet retries with a short
    /// sleep until there is room (the kernel offers no readiness event for
    /// that).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_sockaddr(&SockAddr::from_path(path.as_ref())?)
    }

    /// Connects to `addr`, which may be an abstract name (std's
    /// `connect_addr`).
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_sockaddr(&SockAddr::from_unix(addr)?)
    }

    fn connect_sockaddr(addr: &SockAddr) -> io::Result<UnixStream> {
        let s = unix_socket(libc::SOCK_STREAM)?;
        s.connect(addr, None)?;
        Ok(UnixStream(s))
    }

    /// A connected pair of streams (std's `UnixStream::pair`; gevent's
    /// `socketpair`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(libc::AF_UNIX, libc::SOCK_STREAM)?;
        Ok((UnixStream(a), UnixStream(b)))
    }

    /// The local address (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_unix()
    }

    /// The remote address (std's `peer_addr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()?.to_unix()
    }

    /// Shuts down reading, writing or both (std's `shutdown`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// A second handle to the same connection (std's `try_clone`): a `dup`
    /// with close-on-exec, starting with this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        self.0.try_clone().map(UnixStream)
    }

    /// Reads without removing the data from the queue (std's `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, libc::MSG_PEEK)
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixStream");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}

impl UnixDatagram {
    /// A datagram socket bound to the path `path` (std's `bind`).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_sockaddr(&SockAddr::from_path(path.as_ref())?)
    }

    /// A datagram socket bound to `addr`, which may be an abstract name
    /// (std's `bind_addr`).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_sockaddr(&SockAddr::from_unix(addr)?)
    }

    fn bind_sockaddr(addr: &SockAddr) -> io::Result<UnixDatagram> {
        let s = unix_socket(libc::SOCK_DGRAM)?;
        s.bind(addr)?;
        Ok(UnixDatagram(s))
    }

    /// A datagram socket bound to no address (std's `unbound`).
    pub fn unbound() -> io::Result<UnixDatagram> {
        unix_socket(libc::SOCK_DGRAM).map(UnixDatagram)
    }

    /// A connected pair of datagram sockets (std's `UnixDatagram::pair`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(libc::AF_UNIX, libc::SOCK_DGRAM)?;
        Ok((UnixDatagram(a), UnixDatagram(b)))
    }

    /// Sets the default peer to the socket at `path` (std's `connect`).
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.0.connect(&SockAddr::from_path(path.as_ref())?, None)
    }

    /// Sets the default peer to `addr` (std's `connect_addr`).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.0.connect(&SockAddr::from_unix(addr)?, None)
    }

    /// The local address (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_unix()
    }

    /// The connected peer's address (std's `peer_addr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()?.to_unix()
    }

    /// Receives one datagram and its sender's address (std's
    /// `recv_from`), parking the greenlet until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.0.recv_from(buf, 0)?;
        Ok((n, a.to_unix()?))
    }

    /// Like [`recv_from`](Self::recv_from), leaving the datagram queued
    /// (std's `peek_from`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.0.recv_from(buf, libc::MSG_PEEK)?;
        Ok((n, a.to_unix()?))
    }

    /// Receives one datagram (std's `recv`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, 0)
    }

    /// Like [`recv`](Self::recv), leaving the datagram queued (std's
    /// `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, libc::MSG_PEEK)
    }

    /// Sends one datagram to the socket at `path` (std's `send_to`),
    /// parking while the receiver's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.0.send_to(buf, &SockAddr::from_path(path.as_ref())?)
    }

    /// Sends one datagram to `addr` (std's `send_to_addr`).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.0.send_to(buf, &SockAddr::from_unix(addr)?)
    }

    /// Sends one datagram to the connected peer (std's `send`).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }

    /// Shuts down reading, writing or both (std's `shutdown`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// A second handle to the same socket (std's `try_clone`): a `dup`
    /// with close-on-exec, starting with this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        self.0.try_clone().map(UnixDatagram)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixDatagram");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}
