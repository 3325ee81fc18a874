//! Raw socket addresses: the one place that converts between Rust's address
//! types (`std::net::SocketAddr`, `std::os::unix::net::SocketAddr`, paths)
//! and the kernel's `sockaddr_in` / `sockaddr_in6` / `sockaddr_un`.

use std::ffi::OsStr;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

/// Offset of `sun_path` in `sockaddr_un` (the size of `sun_family`).
const SUN_PATH_OFFSET: usize = mem::size_of::<libc::sa_family_t>();

/// A socket address in the kernel's layout, big enough for every family.
pub(crate) struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    /// An empty address to be filled by `accept`, `recvfrom`,
    /// `getsockname` or `getpeername`.
    pub(crate) fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: sockaddr_storage is a plain C struct; all-zero is valid.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The kernel form of an IPv4 or IPv6 address.
    pub(crate) fn from_inet(addr: &SocketAddr) -> SockAddr {
        let mut s = SockAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr type, sockaddr_in included.
                unsafe { std::ptr::write(s.as_mut_ptr().cast::<libc::sockaddr_in>(), sin) };
                s.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
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
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write(s.as_mut_ptr().cast::<libc::sockaddr_in6>(), sin6) };
                s.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        s
    }

    /// A copy of `len` bytes of address at `addr` (as `getaddrinfo`
    /// returns them); `None` if they do not fit a `sockaddr_storage`.
    ///
    /// # Safety
    /// `addr` points at `len` readable bytes.
    pub(crate) unsafe fn from_raw(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<SockAddr> {
        if addr.is_null() || len as usize > mem::size_of::<libc::sockaddr_storage>() {
            return None;
        }
        let mut s = SockAddr::empty();
        // SAFETY: `addr` holds `len` bytes (the caller's contract), which
        // fit in the storage (checked above); the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(addr.cast::<u8>(), s.as_mut_ptr().cast::<u8>(), len as usize) };
        s.len = len;
        Some(s)
    }

    /// The kernel form of a Unix socket path, with the same rules as std:
    /// no NUL bytes, shorter than `sun_path`.
    pub(crate) fn from_path(path: &Path) -> io::Result<SockAddr> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "paths must not contain interior null bytes",
            ));
        }
        let mut s = SockAddr::unix_with_path(bytes)?;
        if !bytes.is_empty() {
            s.len += 1; // the terminating NUL, as std counts it
        }
        Ok(s)
    }

    /// The kernel form of a std Unix socket address (path, abstract name
    /// or unnamed).
    pub(crate) fn from_unix(addr: &UnixSocketAddr) -> io::Result<SockAddr> {
        if let Some(p) = addr.as_pathname() {
            SockAddr::from_path(p)
        } else if let Some(name) = addr.as_abstract_name() {
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            SockAddr::unix_with_path(&bytes)
        } else {
            SockAddr::unix_with_path(&[])
        }
    }

    /// A `sockaddr_un` whose `sun_path` holds exactly `bytes`.
    fn unix_with_path(bytes: &[u8]) -> io::Result<SockAddr> {
        let mut s = SockAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned for
        // sockaddr_un; the zeroed storage is a valid sockaddr_un.
        let un = unsafe { &mut *s.as_mut_ptr().cast::<libc::sockaddr_un>() };
        if bytes.len() >= un.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path must be shorter than SUN_LEN",
            ));
        }
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, b) in un.sun_path.iter_mut().zip(bytes) {
            *d = *b as libc::c_char;
        }
        s.len = (SUN_PATH_OFFSET + bytes.len()) as libc::socklen_t;
        Ok(s)
    }

    /// Pointer for calls that read an address (`bind`, `connect`, `sendto`).
    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    /// Pointer for calls that fill an address (`accept`, `recvfrom`).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    /// The address length.
    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// The length slot for calls that fill an address.
    pub(crate) fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    pub(crate) fn family(&self) -> libc::c_int {
        self.storage.ss_family as libc::c_int
    }

    /// As an IPv4/IPv6 socket address.
    pub(crate) fn to_inet(&self) -> io::Result<SocketAddr> {
        let len = self.len as usize;
        match self.family() {
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // and the length says the kernel filled all of it.
                let sin = unsafe { &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid argument")),
        }
    }

    /// As a std Unix socket address. A zero length (what the kernel
    /// reports for an unbound peer) is the unnamed address.
    pub(crate) fn to_unix(&self) -> io::Result<UnixSocketAddr> {
        let len = self.len as usize;
        if len == 0 || (self.family() == libc::AF_UNIX && len <= SUN_PATH_OFFSET) {
            return UnixSocketAddr::from_pathname("");
        }
        if self.family() != libc::AF_UNIX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file descriptor did not correspond to a Unix socket",
            ));
        }
        // SAFETY: the family says the storage holds a sockaddr_un.
        let un = unsafe { &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
        let n = (len - SUN_PATH_OFFSET).min(un.sun_path.len());
        let path: Vec<u8> = un.sun_path[..n].iter().map(|c| *c as u8).collect();
        if path[0] == 0 {
            UnixSocketAddr::from_abstract_name(&path[1..])
        } else {
            let end = path.iter().position(|b| *b == 0).unwrap_or(path.len());
            UnixSocketAddr::from_pathname(Path::new(OsStr::from_bytes(&path[..end])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_roundtrip() {
        for a in [
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap(),
            "[::1]:443".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 9, 7, 3)),
        ] {
            assert_eq!(SockAddr::from_inet(&a).to_inet().unwrap(), a);
        }
    }

    #[test]
    fn unix_roundtrip_and_unnamed() {
        let p = SockAddr::from_path(Path::new("/tmp/x.sock")).unwrap();
        assert_eq!(p.to_unix().unwrap().as_pathname(), Some(Path::new("/tmp/x.sock")));
        let abs = UnixSocketAddr::from_abstract_name(b"greenrt").unwrap();
        let s = SockAddr::from_unix(&abs).unwrap();
        assert_eq!(s.to_unix().unwrap().as_abstract_name(), Some(&b"greenrt"[..]));
        let mut e = SockAddr::empty();
        *e.len_mut() = 0;
        assert!(e.to_unix().unwrap().is_unnamed());
        assert!(SockAddr::from_path(Path::new("a\0b")).is_err());
        let long = "x".repeat(200);
        assert!(SockAddr::from_path(Path::new(&long)).is_err());
    }
}
