//! The system resolver: libc's `getaddrinfo`/`getnameinfo`, either on the
//! thread pool ([`ThreadResolver`], gevent's `gevent.resolver.thread`) or
//! in the calling thread ([`BlockingResolver`], gevent's
//! `gevent.resolver.blocking`).
//!
//! Both have the system's exact semantics: nsswitch.conf, /etc/hosts,
//! mDNS or LDAP modules, glibc's resolv.conf handling and address sorting.

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};

use super::{ip_literal, Error};
use crate::socket::SockAddr;
use crate::threadpool::{default_pool, ThreadPool};

/// Resolves on a pool of native threads with the system's `getaddrinfo`,
/// so that only the calling greenlet waits (gevent's default
/// `gevent.resolver.thread.Resolver`). `GREENRT_RESOLVER=thread`, the
/// default.
#[derive(Clone, Debug, Default)]
pub struct ThreadResolver {
    pool: Option<ThreadPool>,
}

impl ThreadResolver {
    /// A resolver on the calling thread's
    /// [`default_pool`](crate::threadpool::default_pool) (looked up at
    /// each call, so it follows the hub of whichever thread uses it).
    pub fn new() -> ThreadResolver {
        ThreadResolver { pool: None }
    }

    /// A resolver on `pool`.
    pub fn with_pool(pool: ThreadPool) -> ThreadResolver {
        ThreadResolver { pool: Some(pool) }
    }

    /// The addresses of `host`, each with `port` (gevent's
    /// `Resolver.getaddrinfo`, for stream sockets). IP literals are
    /// answered at once without a thread.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Some(a) = ip_literal(host, port) {
            return Ok(vec![a]);
        }
        let host = host.to_owned();
        self.run(move || getaddrinfo(&host, port))
    }

    /// The host name for `ip` (gevent's `Resolver.getnameinfo` with
    /// `NI_NAMEREQD`): fails with `NotFound` when there is none.
    pub fn reverse(&self, ip: IpAddr) -> io::Result<String> {
        self.run(move || getnameinfo(ip))
    }

    fn run<R: Send + 'static>(&self, f: impl FnOnce() -> io::Result<R> + Send + 'static) -> io::Result<R> {
        let pool = self.pool.clone().unwrap_or_else(default_pool);
        pool.apply(f).map_err(io::Error::other)?
    }
}

/// Resolves with the system's `getaddrinfo` in the calling thread,
/// blocking the whole hub meanwhile (gevent's
/// `gevent.resolver.blocking.Resolver`). `GREENRT_RESOLVER=block`: for
/// programs that resolve once at startup, or to rule the other resolvers
/// out when debugging.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingResolver;

impl BlockingResolver {
    /// Like [`ThreadResolver::resolve`], in the calling thread.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Some(a) = ip_literal(host, port) {
            return Ok(vec![a]);
        }
        getaddrinfo(host, port)
    }

    /// Like [`ThreadResolver::reverse`], in the calling thread.
    pub fn reverse(&self, ip: IpAddr) -> io::Result<String> {
        getnameinfo(ip)
    }
}

/// `getaddrinfo(host)` for stream sockets, each address with `port`, in
/// the system's order, duplicates removed.
pub(crate) fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let c_host = CString::new(host).map_err(|_| {
        io::Error::from(Error::InvalidName {
            name: host.escape_debug().to_string(),
            reason: "contains a NUL byte",
        })
    })?;
    // SAFETY: addrinfo is plain old data; all-zero is the documented way
    // to start hints.
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: c_host is NUL-terminated, service may be null, hints and res
    // point to live locals.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(gai_error(rc));
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p is a node of the list getaddrinfo returned, not yet
        // freed.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr (if not null) points at ai_addrlen bytes of
        // the list getaddrinfo returned.
        let addr = unsafe { SockAddr::from_raw(ai.ai_addr, ai.ai_addrlen) };
        if let Some(mut a) = addr.and_then(|a| a.to_inet().ok()) {
            a.set_port(port);
            if !out.contains(&a) {
                out.push(a);
            }
        }
        p = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    if out.is_empty() {
        return Err(gai_error(libc::EAI_NONAME));
    }
    Ok(out)
}

/// `getnameinfo(ip, NI_NAMEREQD)`.
pub(crate) fn getnameinfo(ip: IpAddr) -> io::Result<String> {
    let sa = SockAddr::from_inet(&SocketAddr::new(ip, 0));
    // NI_MAXHOST bytes.
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: sa/len describe a valid sockaddr; host is a writable buffer
    // of the length passed; no service buffer is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc));
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into
    // host.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// An `EAI_*` code as an `io::Error` carrying [`Error::Gai`] with
/// `gai_strerror`'s text; `EAI_SYSTEM` becomes the errno it stands for.
/// Call it on the thread that made the call (errno is per thread).
pub(crate) fn gai_error(code: libc::c_int) -> io::Error {
    if code == libc::EAI_SYSTEM {
        return io::Error::last_os_error();
    }
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated
    // string for any code.
    let message = unsafe { CStr::from_ptr(libc::gai_strerror(code)) }
        .to_string_lossy()
        .into_owned();
    Error::Gai { code, message }.into()
}

/// glibc's `EAI_ADDRFAMILY` ("the host has no address in the requested
/// family"), which the libc crate does not export.
const EAI_ADDRFAMILY: libc::c_int = -9;

/// The `io::ErrorKind` for an `EAI_*` code.
pub(crate) fn gai_kind(code: libc::c_int) -> io::ErrorKind {
    match code {
        libc::EAI_NONAME | libc::EAI_NODATA | EAI_ADDRFAMILY => io::ErrorKind::NotFound,
        libc::EAI_MEMORY => io::ErrorKind::OutOfMemory,
        libc::EAI_BADFLAGS | libc::EAI_FAMILY | libc::EAI_SOCKTYPE | libc::EAI_SERVICE => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eai_codes_map_to_kinds_and_system_text() {
        let e = gai_error(libc::EAI_NONAME);
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // SAFETY: as in gai_error.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(libc::EAI_NONAME)) }
            .to_string_lossy()
            .into_owned();
        assert!(!text.is_empty());
        assert_eq!(e.to_string(), text);
        assert!(matches!(
            Error::from_io(&e),
            Some(Error::Gai { code, .. }) if *code == libc::EAI_NONAME
        ));
        assert_eq!(gai_error(libc::EAI_AGAIN).kind(), io::ErrorKind::Other);
        assert_eq!(gai_error(libc::EAI_FAMILY).kind(), io::ErrorKind::InvalidInput);
        assert_eq!(gai_error(libc::EAI_MEMORY).kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn nul_in_name_is_invalid_input() {
        let e = getaddrinfo("a\0b", 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn blocking_resolves_localhost_to_loopback() {
        let addrs = BlockingResolver.resolve("localhost", 8080).unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
    }
}
