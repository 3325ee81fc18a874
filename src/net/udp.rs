//! UDP: [`UdpSocket`], std's type made cooperative (gevent's
//! `socket.socket(AF_INET, SOCK_DGRAM)`).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::addr::{each_addr, first_addr, ToSocketAddrs};
use super::conversions::{socket_conversions, socket_timeouts};
use crate::socket::{SockAddr, Socket};

/// A UDP socket (std's `std::net::UdpSocket`; gevent's datagram
/// `socket`).
///
/// Receiving parks only the calling greenlet until a datagram arrives (or
/// the read timeout passes: `ErrorKind::WouldBlock`); sending parks while
/// the send buffer is full. One greenlet may receive while another sends.
///
/// ```
/// use greenrt::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
pub struct UdpSocket(Socket);

socket_conversions!(UdpSocket, std::net::UdpSocket);
socket_timeouts!(UdpSocket);

impl UdpSocket {
    /// Binds to `addr` (std's `UdpSocket::bind`): tries each address it
    /// names until one works. Port 0 picks a free port.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let domain = match a {
                SocketAddr::V4(_) => libc::AF_INET,
                SocketAddr::V6(_) => libc::AF_INET6,
            };
            let s = Socket::new(domain, libc::SOCK_DGRAM)?;
            s.bind(&SockAddr::from_inet(a))?;
            Ok(UdpSocket(s))
        })
    }

    /// Receives one datagram and its sender's address (std's `recv_from`).
    /// A datagram longer than `buf` is truncated to it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.0.recv_from(buf, 0)?;
        Ok((n, a.to_inet()?))
    }

    /// Like [`recv_from`](Self::recv_from), leaving the datagram queued
    /// (std's `peek_from`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.0.recv_from(buf, libc::MSG_PEEK)?;
        Ok((n, a.to_inet()?))
    }

    /// Sends one datagram to `addr` (std's `send_to`: only the first
    /// address `addr` names is used); returns the bytes sent.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = first_addr(addr)?;
        self.0.send_to(buf, &SockAddr::from_inet(&a))
    }

    /// Sets the default peer and filters incoming datagrams to it (std's
    /// `connect`); tries each address `addr` names until one works.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.0.connect(&SockAddr::from_inet(a), None))
    }

    /// Sends one datagram to the connected peer (std's `send`).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }

    /// Receives one datagram from the connected peer (std's `recv`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, 0)
    }

    /// Like [`recv`](Self::recv), leaving the datagram queued (std's
    /// `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, libc::MSG_PEEK)
    }

    /// The connected peer's address (std's `peer_addr`; `NotConnected`
    /// when not connected).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()?.to_inet()
    }

    /// The local address (std's `local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()?.to_inet()
    }

    /// A second handle to the same socket (std's `try_clone`): a `dup`
    /// with close-on-exec, starting with this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        self.0.try_clone().map(UdpSocket)
    }

    /// Sets `SO_BROADCAST` (std's `set_broadcast`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.0
            .set_int(libc::SOL_SOCKET, libc::SO_BROADCAST, libc::c_int::from(on))
    }

    /// `SO_BROADCAST` (std's `broadcast`).
    pub fn broadcast(&self) -> io::Result<bool> {
        self.0.get_int(libc::SOL_SOCKET, libc::SO_BROADCAST).map(|v| v != 0)
    }

    /// Sets `IP_MULTICAST_LOOP` (std's `set_multicast_loop_v4`).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.0
            .set_int(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, libc::c_int::from(on))
    }

    /// `IP_MULTICAST_LOOP` (std's `multicast_loop_v4`).
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.0
            .get_int(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP)
            .map(|v| v != 0)
    }

    /// Sets `IP_MULTICAST_TTL` (std's `set_multicast_ttl_v4`).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.0
            .set_int(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, ttl as libc::c_int)
    }

    /// `IP_MULTICAST_TTL` (std's `multicast_ttl_v4`).
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.0
            .get_int(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL)
            .map(|v| v as u32)
    }

    /// Sets `IPV6_MULTICAST_LOOP` (std's `set_multicast_loop_v6`).
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.0
            .set_int(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, libc::c_int::from(on))
    }

    /// `IPV6_MULTICAST_LOOP` (std's `multicast_loop_v6`).
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.0
            .get_int(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP)
            .map(|v| v != 0)
    }

    /// Joins an IPv4 multicast group on `interface` (std's
    /// `join_multicast_v4`).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.0
            .set_opt(libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, ip_mreq(multiaddr, interface))
    }

    /// Leaves an IPv4 multicast group (std's `leave_multicast_v4`).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.0.set_opt(
            libc::IPPROTO_IP,
            libc::IP_DROP_MEMBERSHIP,
            ip_mreq(multiaddr, interface),
        )
    }

    /// Joins an IPv6 multicast group on the interface with index
    /// `interface` (0: any; std's `join_multicast_v6`).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.0.set_opt(
            libc::IPPROTO_IPV6,
            libc::IPV6_ADD_MEMBERSHIP,
            ipv6_mreq(multiaddr, interface),
        )
    }

    /// Leaves an IPv6 multicast group (std's `leave_multicast_v6`).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.0.set_opt(
            libc::IPPROTO_IPV6,
            libc::IPV6_DROP_MEMBERSHIP,
            ipv6_mreq(multiaddr, interface),
        )
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

fn ip_mreq(multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> libc::ip_mreq {
    libc::ip_mreq {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(*multiaddr).to_be(),
        },
        imr_interface: libc::in_addr {
            s_addr: u32::from(*interface).to_be(),
        },
    }
}

fn ipv6_mreq(multiaddr: &Ipv6Addr, interface: u32) -> libc::ipv6_mreq {
    libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: multiaddr.octets(),
        },
        ipv6mr_interface: interface as libc::c_uint,
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.0.raw()).finish()
    }
}
