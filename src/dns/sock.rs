//! The native resolver's sockets: UDP and TCP on the runtime's socket
//! core (`crate::socket`), where one deadline bounds a whole exchange
//! (`Socket::io_until`), with the resolver's own rules for the source port.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use crate::socket::{Dir, SockAddr, Socket};
use crate::sys::syscall;

/// A resolver socket: non-blocking, close-on-exec, and taken out of the
/// hub's poller before it is closed (the socket core's drop).
pub(crate) struct Sock(Socket);

fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

impl Sock {
    /// A UDP socket bound to a random source port (drawn with getrandom,
    /// so that an off-path attacker must guess the port as well as the
    /// transaction id) and connected to `server`, so the kernel already
    /// drops datagrams from other addresses and reports ICMP "port
    /// unreachable" as `ECONNREFUSED`.
    pub(crate) fn udp_connected(server: SocketAddr) -> io::Result<Sock> {
        let s = Sock(Socket::new(family(&server), libc::SOCK_DGRAM)?);
        s.bind_random_port(&server)?;
        let sa = SockAddr::from_inet(&server);
        // The address pointer is valid for `len()` bytes.
        syscall!(connect(s.0.fd()?, sa.as_ptr(), sa.len()))?;
        Ok(s)
    }

    fn bind_random_port(&self, server: &SocketAddr) -> io::Result<()> {
        let any = match server {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        for _ in 0..8 {
            // Ports 1024..=65535.
            let port = 1024 + (super::random_u16() % (65535 - 1024 + 1));
            let mut local = any;
            local.set_port(port);
            match self.0.bind(&SockAddr::from_inet(&local)) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) || e.raw_os_error() == Some(libc::EACCES) => {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        // A crowded port range: let the kernel pick (Linux randomises
        // ephemeral UDP ports too).
        self.0.bind(&SockAddr::from_inet(&any))
    }

    /// Sends one datagram (or bytes on a stream) on the connected socket.
    pub(crate) fn send(&self, buf: &[u8], deadline: Instant) -> io::Result<usize> {
        self.0.io_until(Dir::Write, deadline, |fd| {
            // The pointer and length describe `buf`, which send reads.
            syscall!(send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)).map(|n| n as usize)
        })
    }

    /// Receives one datagram (or some stream bytes) and the sender's
    /// address, waiting until `deadline` (`ErrorKind::TimedOut`). Data
    /// already queued is returned even when the deadline has passed.
    pub(crate) fn recv_from(&self, buf: &mut [u8], deadline: Instant) -> io::Result<(usize, Option<SocketAddr>)> {
        let mut from = SockAddr::empty();
        let n = self.0.io_until(Dir::Read, deadline, |fd| {
            *from.len_mut() = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // `buf` is writable for its length; `from` is an address
            // buffer with its length slot.
            syscall!(recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                from.as_mut_ptr(),
                from.len_mut()
            ))
            .map(|n| n as usize)
        })?;
        Ok((n, from.to_inet().ok()))
    }

    /// A TCP connection to `server`, established by `deadline`.
    pub(crate) fn tcp_connect(server: SocketAddr, deadline: Instant) -> io::Result<Sock> {
        let s = Sock(Socket::new(family(&server), libc::SOCK_STREAM)?);
        s.0.connect(&SockAddr::from_inet(&server), Some(deadline))?;
        Ok(s)
    }

    /// Writes every byte of `buf` by `deadline`.
    pub(crate) fn write_all(&self, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.send(buf, deadline)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Fills `buf` by `deadline`; a peer that closes first is
    /// `UnexpectedEof`.
    pub(crate) fn read_exact(&self, mut buf: &mut [u8], deadline: Instant) -> io::Result<()> {
        while !buf.is_empty() {
            let (n, _) = self.recv_from(buf, deadline)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the nameserver closed the TCP connection mid-reply",
                ));
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }
}
