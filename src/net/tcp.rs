//! TCP: [`TcpListener`] and [`TcpStream`], std's types made cooperative
//! (gevent's `socket.socket(AF_INET, SOCK_STREAM)`).

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use super::addr::{each_addr, ToSocketAddrs};
use super::conversions::{socket_conversions, socket_timeouts, stream_io};
use crate::socket::{SockAddr, Socket};

fn domain(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// A TCP socket server, listening for connections (std's
/// `std::net::TcpListener`; gevent's listening `socket`).
///
/// [`accept`](Self::accept) parks only the calling greenlet until a
/// connection arrives; any number of greenlets may accept on one
/// listener.
///
/// ```
/// use std::io::{Read, Write};
/// use greenrt::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenrt::spawn(move || {
///     let (mut s, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     s.read_exact(&mut buf).unwrap();
///     s.write_all(&buf).unwrap();
/// });
/// let mut c = TcpStream::connect(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut back = [0; 5];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"hello");
/// server.join().unwrap();
/// ```
pub struct TcpListener(Socket);

/// A TCP connection (std's `std::net::TcpStream`; gevent's connected
/// `socket`).
///
/// Reads and writes park only the calling greenlet. One greenlet may read
/// while another writes the same stream (`Read` and `Write` are also
/// implemented for `&TcpStream`). Writes use `MSG_NOSIGNAL`: writing to a
/// closed or reset peer is an `EPIPE`/`ECONNRESET` error, never a
/// `SIGPIPE`.
pub struct TcpStream(Socket);

socket_conversions!(TcpListener, std::net::TcpListener);
socket_conversions!(TcpStream, std::net::TcpStream);
socket_timeouts!(TcpStream);
stream_io!(TcpStream);

impl TcpListener {
    /// Binds to `addr` and listens (std's `TcpListener::bind`): tries each
    /// address `addr` names until one works; `SO_REUSEADDR` is set, as std
    /// does. Port 0 picks a free port ([`local_addr`](Self::local_addr)
    /// tells which).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| TcpListener::bind_one(a, false))
    }

    /// Like [`bind`](Self::bind), with `SO_REUSEPORT` also set before
    /// binding, so that several listeners (one per thread and hub) can
    /// share a port and the kernel spreads new connections among them.
    /// std has no equivalent; gevent users set the option by hand.
    pub fn bind_reuse_port<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| TcpListener::bind_one(a, true))
    }

    fn bind_one(addr: &SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let s = Socket::new(domain(addr), libc::SOCK_STREAM)?;
        s.set_int(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuse_port {
            s.set_int(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        s.bind(&SockAddr::from_inet(addr))?;
        s.listen()?;
        Ok(TcpListener(s))
    }

    /// Accepts a connection, parking the greenlet until one arrives (std's
    /// `accept`; gevent's `socket.accept`). The new stream is
    /// non-blocking and close-on-exec from the start (`accept4`).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.0.accept()?;
        Ok((TcpStream(s), a.to_inet()?))
    }

    /// An endless iterator of accepted connections (std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_inet()
    }

    /// A second handle to the same listening socket (std's `try_clone`):
    /// a `dup` with close-on-exec; it starts in this handle's mode.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        self.0.try_clone().map(TcpListener)
    }

    /// Sets `IP_TTL` (std's `set_ttl`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.set_int(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// `IP_TTL` (std's `ttl`).
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get_int(libc::IPPROTO_IP, libc::IP_TTL).map(|v| v as u32)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}

/// The iterator returned by [`TcpListener::incoming`] (std's
/// `Incoming`): each item is one `accept`; it never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr` (std's `TcpStream::connect`; gevent's
    /// `create_connection`): tries each address it names until one
    /// accepts. Names are resolved without blocking the hub. A refused
    /// connection is `ErrorKind::ConnectionRefused`.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_until(a, None))
    }

    /// Connects to one address, giving up after `timeout` with
    /// `ErrorKind::TimedOut` (std's `connect_timeout`; a zero timeout is an
    /// error, as in std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_until(addr, Some(Instant::now() + timeout))
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let s = Socket::new(domain(addr), libc::SOCK_STREAM)?;
        s.connect(&SockAddr::from_inet(addr), deadline)?;
        Ok(TcpStream(s))
    }

    /// The remote address (std's `peer_addr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()?.to_inet()
    }

    /// The local address (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_inet()
    }

    /// Shuts down reading, writing or both (std's `shutdown`). After
    /// `Shutdown::Write` the peer reads end of file and this side can still
    /// read; a greenlet waiting to read wakes on `Shutdown::Read`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// A second handle to the same connection (std's `try_clone`): a `dup`
    /// with close-on-exec. It starts with this handle's timeouts and mode,
    /// which are then its own (in std they are shared socket options).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        self.0.try_clone().map(TcpStream)
    }

    /// Reads without removing the data from the queue (std's `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, libc::MSG_PEEK)
    }

    /// Sets `TCP_NODELAY` (std's `set_nodelay`): send small writes at
    /// once instead of coalescing them (Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0
            .set_int(libc::IPPROTO_TCP, libc::TCP_NODELAY, libc::c_int::from(nodelay))
    }

    /// `TCP_NODELAY` (std's `nodelay`).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.0.get_int(libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0)
    }

    /// Sets `SO_LINGER` (std's unstable `set_linger`). `Some(Duration::ZERO)`
    /// makes closing the socket reset the connection (the peer gets
    /// `ECONNRESET`) instead of a graceful FIN.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let v = libc::linger {
            l_onoff: libc::c_int::from(linger.is_some()),
            l_linger: linger.map_or(0, |d| d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int),
        };
        self.0.set_opt(libc::SOL_SOCKET, libc::SO_LINGER, v)
    }

    /// `SO_LINGER` (std's unstable `linger`).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.0.linger()
    }

    /// Sets `IP_TTL` (std's `set_ttl`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.set_int(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// `IP_TTL` (std's `ttl`).
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get_int(libc::IPPROTO_IP, libc::IP_TTL).map(|v| v as u32)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}
