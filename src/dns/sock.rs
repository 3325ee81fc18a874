//! The native resolver's own sockets: non-blocking UDP and TCP on raw
//! libc calls, parked on the hub with the edge-triggered [`io::wait`]
//! (try the call, wait only after `EAGAIN`, retry). Private to `dns` so
//! that the resolver does not depend on `greenrt::net`.
//!
//! [`io::wait`]: crate::io::wait

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::sys::{syscall, Interest};

/// An owned non-blocking socket. Dropping it takes the fd out of the hub's
/// poller first (waking any waiter with `EBADF`), then closes it, so a
/// reused fd number never inherits this socket's registration.
pub(crate) struct Sock {
    fd: OwnedFd,
}

impl Drop for Sock {
    fn drop(&mut self) {
        let fd = self.fd.as_raw_fd();
        crate::hub::try_with_existing(|h| h.forget_fd(fd));
        // `self.fd` closes the fd after this.
    }
}

impl AsRawFd for Sock {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// `addr` as a `sockaddr_storage` and its length.
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned
            // for sockaddr_in.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned
            // for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address in a `sockaddr_storage` filled by the kernel, if it is an
/// IPv4 or IPv6 one.
pub(crate) fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // the storage is large and aligned enough for one.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

impl Sock {
    fn new(domain: libc::c_int, ty: libc::c_int) -> io::Result<Sock> {
        let fd = syscall!(socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0))?;
        // SAFETY: socket() just returned this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Sock { fd })
    }

    /// A UDP socket bound to a random source port (drawn with getrandom,
    /// so that an off-path attacker must guess the port as well as the
    /// transaction id) and connected to `server`, so the kernel already
    /// drops datagrams from other addresses and reports ICMP "port
    /// unreachable" as `ECONNREFUSED`.
    pub(crate) fn udp_connected(server: SocketAddr) -> io::Result<Sock> {
        let s = Sock::new(family(&server), libc::SOCK_DGRAM)?;
        s.bind_random_port(&server)?;
        let (sa, len) = to_sockaddr(&server);
        syscall!(connect(s.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len))?;
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
            let (sa, len) = to_sockaddr(&local);
            match syscall!(bind(self.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len)) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) || e.raw_os_error() == Some(libc::EACCES) => {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        // A crowded port range: let the kernel pick (Linux randomises
        // ephemeral UDP ports too).
        let (sa, len) = to_sockaddr(&any);
        syscall!(bind(self.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len))?;
        Ok(())
    }

    /// Sends one datagram (or bytes on a stream) on the connected socket.
    pub(crate) fn send(&self, buf: &[u8], deadline: Instant) -> io::Result<usize> {
        loop {
            match syscall!(send(
                self.as_raw_fd(),
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
                libc::MSG_NOSIGNAL
            )) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::io::wait(self.as_raw_fd(), Interest::WRITE, Some(deadline))?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one datagram (or some stream bytes) and the sender's
    /// address, waiting until `deadline` (`ErrorKind::TimedOut`). Data
    /// already queued is returned even when the deadline has passed.
    pub(crate) fn recv_from(&self, buf: &mut [u8], deadline: Instant) -> io::Result<(usize, Option<SocketAddr>)> {
        loop {
            // SAFETY: as in to_sockaddr.
            let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            match syscall!(recvfrom(
                self.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut storage as *mut _ as *mut libc::sockaddr,
                &mut len
            )) {
                Ok(n) => return Ok((n as usize, from_sockaddr(&storage, len))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::io::wait(self.as_raw_fd(), Interest::READ, Some(deadline))?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A TCP connection to `server`, established by `deadline`.
    pub(crate) fn tcp_connect(server: SocketAddr, deadline: Instant) -> io::Result<Sock> {
        let s = Sock::new(family(&server), libc::SOCK_STREAM)?;
        let (sa, len) = to_sockaddr(&server);
        match syscall!(connect(s.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len)) {
            Ok(_) => return Ok(s),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        crate::io::wait(s.as_raw_fd(), Interest::WRITE, Some(deadline))?;
        let mut err: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        syscall!(getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len
        ))?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
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
