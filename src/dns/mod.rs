//! Name resolution that only blocks the calling greenlet (gevent's
//! `gevent.resolver` package and `gevent.socket.getaddrinfo`).
//!
//! [`resolve`] and [`reverse`] use the resolver that `GREENRT_RESOLVER`
//! chooses, as gevent's `GEVENT_RESOLVER` does:
//!
//! | `GREENRT_RESOLVER` | resolver | gevent's equivalent |
//! |---|---|---|
//! | `thread` (default) | [`ThreadResolver`]: the system's `getaddrinfo` on the [thread pool](crate::threadpool) (nsswitch, /etc/hosts, exact system semantics) | `gevent.resolver.thread.Resolver` |
//! | `native` | [`NativeResolver`]: asynchronous DNS on the hub itself (/etc/hosts, then UDP/TCP to the /etc/resolv.conf nameservers) | `gevent.resolver.ares.Resolver` (c-ares) |
//! | `block` | [`BlockingResolver`]: plain `getaddrinfo` in the calling thread | `gevent.resolver.blocking.Resolver` |
//!
//! `GREENRT_RESOLV_CONF=path` makes the process-wide native resolver read
//! another resolv.conf instead of `/etc/resolv.conf` (for tests, or a
//! program that wants its own nameservers). A program or a test can also
//! build a [`NativeResolver`] with an explicit [`ResolverConfig`].
//!
//! IP literals (`"127.0.0.1"`, `"::1"`, `"[::1]"`, `"fe80::1%lo"`) never
//! reach a resolver.
//!
//! ```
//! let addrs = greenrt::dns::resolve("127.0.0.1", 8080).unwrap();
//! assert_eq!(addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
//! ```
//!
//! # Errors
//!
//! Failures are `io::Error`s whose kind says what a caller usually needs
//! (`NotFound` for a name that does not exist or has no address,
//! `TimedOut`, `InvalidInput` for a malformed name) and whose inner error
//! is a [`dns::Error`](Error) that tells the cases apart, for example
//! NXDOMAIN from SERVFAIL:
//!
//! ```
//! # use std::io;
//! fn explain(e: &io::Error) -> String {
//!     match greenrt::dns::Error::from_io(e) {
//!         Some(greenrt::dns::Error::NotFound { name }) => format!("{name} does not exist"),
//!         Some(greenrt::dns::Error::ServFail { server, .. }) => format!("{server} failed, try later"),
//!         _ => e.to_string(),
//!     }
//! }
//! # let _ = explain;
//! ```

mod hosts;
mod native;
mod sock;
mod thread;
mod wire;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::OnceLock;

use crate::config::ResolverKind;

pub use native::{Lookup, NativeResolver, ResolverConfig, MAX_CNAME_REQUERIES, RESOLV_CONF_ENV};
pub use thread::{BlockingResolver, ThreadResolver};

/// The addresses of `host`, each with `port`, from the resolver chosen by
/// `GREENRT_RESOLVER` (gevent's `gevent.socket.getaddrinfo`, reduced to
/// the addresses). Only the calling greenlet waits (except with `block`).
/// Kill and [`Timeout`](crate::Timeout) interrupt it.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(a) = ip_literal(host, port) {
        return Ok(vec![a]);
    }
    resolver()?.resolve(host, port)
}

/// The host name of `ip` from the resolver chosen by `GREENRT_RESOLVER`
/// (gevent's `gethostbyaddr`/`getnameinfo` with `NI_NAMEREQD`): the
/// thread and blocking resolvers ask `getnameinfo`, the native one the
/// hosts file and then a PTR query. No name is `ErrorKind::NotFound`.
pub fn reverse(ip: IpAddr) -> io::Result<String> {
    resolver()?.reverse(ip)
}

/// The resolver chosen by `GREENRT_RESOLVER` (gevent's
/// `get_hub().resolver`). Fails only for `native` when its resolv.conf
/// cannot be read (see [`ResolverConfig::system`]).
pub fn resolver() -> io::Result<Resolver> {
    Ok(match crate::config::get().resolver {
        ResolverKind::Thread => Resolver::Thread(ThreadResolver::new()),
        ResolverKind::Block => Resolver::Blocking(BlockingResolver),
        ResolverKind::Native => Resolver::Native(system_native()?),
    })
}

/// The process-wide native resolver, configured once from the system.
fn system_native() -> io::Result<NativeResolver> {
    static NATIVE: OnceLock<Result<NativeResolver, String>> = OnceLock::new();
    match NATIVE.get_or_init(|| NativeResolver::new().map_err(|e| e.to_string())) {
        Ok(r) => Ok(r.clone()),
        Err(message) => Err(Error::Config {
            message: message.clone(),
        }
        .into()),
    }
}

/// One of the three resolvers, as [`resolver`] returns it (gevent's
/// resolver classes behind `GEVENT_RESOLVER`).
#[derive(Clone, Debug)]
pub enum Resolver {
    /// The system's `getaddrinfo` on the thread pool.
    Thread(ThreadResolver),
    /// Asynchronous DNS on the hub.
    Native(NativeResolver),
    /// The system's `getaddrinfo` in the calling thread.
    Blocking(BlockingResolver),
}

impl Resolver {
    /// The addresses of `host`, each with `port`.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        match self {
            Resolver::Thread(r) => r.resolve(host, port),
            Resolver::Native(r) => r.resolve(host, port),
            Resolver::Blocking(r) => r.resolve(host, port),
        }
    }

    /// The host name of `ip`.
    pub fn reverse(&self, ip: IpAddr) -> io::Result<String> {
        match self {
            Resolver::Thread(r) => r.reverse(ip),
            Resolver::Native(r) => r.reverse(ip),
            Resolver::Blocking(r) => r.reverse(ip),
        }
    }

    /// Which `GREENRT_RESOLVER` value this resolver stands for.
    pub fn kind(&self) -> ResolverKind {
        match self {
            Resolver::Thread(_) => ResolverKind::Thread,
            Resolver::Native(_) => ResolverKind::Native,
            Resolver::Blocking(_) => ResolverKind::Block,
        }
    }
}

/// Why a lookup failed: the error inside the `io::Error` that the
/// resolvers return (get it with [`Error::from_io`]). Its
/// [`kind`](Error::kind) is the `io::ErrorKind` of that `io::Error`.
/// gevent raises `socket.gaierror` with `EAI_NONAME`, `EAI_AGAIN`, ... for
/// the same cases.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name does not exist: NXDOMAIN for every name tried
    /// (`EAI_NONAME`). Kind `NotFound`.
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The name exists but has no record of the kind asked for: no A or
    /// AAAA, no PTR (`EAI_NODATA`). Kind `NotFound`.
    NoData {
        /// The name looked up.
        name: String,
    },
    /// A nameserver answered SERVFAIL (and no other server answered
    /// better). Kind `Other`.
    ServFail {
        /// The name asked about.
        name: String,
        /// The server that failed last.
        server: SocketAddr,
    },
    /// A nameserver answered another error code (FORMERR 1, NOTIMP 4,
    /// REFUSED 5, ...). Kind `Other`.
    Rcode {
        /// The name asked about.
        name: String,
        /// The server.
        server: SocketAddr,
        /// The RCODE.
        rcode: u16,
    },
    /// No nameserver answered in time (`timeout` × `attempts` per
    /// server). Kind `TimedOut`.
    TimedOut {
        /// The name asked about.
        name: String,
        /// The servers asked.
        servers: Vec<SocketAddr>,
        /// Tries made in all.
        tries: u32,
    },
    /// A nameserver could not be reached (for example `ECONNREFUSED`:
    /// nothing listens there). Kind: the source's.
    Network {
        /// The server.
        server: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// A nameserver's TCP reply did not parse or did not match the query.
    /// Kind `InvalidData`.
    BadReply {
        /// The name asked about.
        name: String,
        /// The server.
        server: SocketAddr,
    },
    /// The CNAME chain loops or is longer than the limits. Kind `Other`.
    CnameLoop {
        /// The name looked up.
        name: String,
    },
    /// The name cannot be a domain name. Kind `InvalidInput`.
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The native resolver has no nameserver to ask. Kind `Other`.
    NoNameservers,
    /// `getaddrinfo`/`getnameinfo` failed with this `EAI_*` code; the
    /// message is `gai_strerror`'s. Kind `NotFound` for `EAI_NONAME`,
    /// `EAI_NODATA` and `EAI_ADDRFAMILY`, `InvalidInput` for bad
    /// arguments, `OutOfMemory` for `EAI_MEMORY`, `Other` otherwise
    /// (`EAI_AGAIN`, `EAI_FAIL`).
    Gai {
        /// The `EAI_*` code.
        code: i32,
        /// `gai_strerror(code)`.
        message: String,
    },
    /// The resolver's configuration could not be loaded (for example a
    /// `GREENRT_RESOLV_CONF` naming a missing file). Kind `Other`.
    Config {
        /// What is wrong, naming the variable or file.
        message: String,
    },
}

impl Error {
    /// The `dns::Error` inside an `io::Error` from a resolver, if any.
    pub fn from_io(e: &io::Error) -> Option<&Error> {
        e.get_ref()?.downcast_ref::<Error>()
    }

    /// The `io::ErrorKind` this error is reported with.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NotFound { .. } | Error::NoData { .. } => io::ErrorKind::NotFound,
            Error::TimedOut { .. } => io::ErrorKind::TimedOut,
            Error::Network { source, .. } => source.kind(),
            Error::BadReply { .. } => io::ErrorKind::InvalidData,
            Error::InvalidName { .. } => io::ErrorKind::InvalidInput,
            Error::Gai { code, .. } => thread::gai_kind(*code),
            Error::ServFail { .. }
            | Error::Rcode { .. }
            | Error::CnameLoop { .. }
            | Error::NoNameservers
            | Error::Config { .. } => io::ErrorKind::Other,
        }
    }
}

fn rcode_name(rcode: u16) -> String {
    match rcode {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE {n}"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { name } => write!(f, "{name}: no such host (NXDOMAIN)"),
            Error::NoData { name } => write!(f, "{name}: the name has no records of the requested type"),
            Error::ServFail { name, server } => write!(f, "SERVFAIL from {server} for {name}"),
            Error::Rcode { name, server, rcode } => {
                write!(f, "{} from {server} for {name}", rcode_name(*rcode))
            }
            Error::TimedOut { name, servers, tries } => {
                write!(f, "{name}: no reply from the nameservers (")?;
                for (i, s) in servers.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                write!(f, ") after {tries} tries")
            }
            Error::Network { server, source } => write!(f, "nameserver {server}: {source}"),
            Error::BadReply { name, server } => write!(f, "malformed reply from {server} for {name}"),
            Error::CnameLoop { name } => write!(f, "{name}: the CNAME chain loops or is too long"),
            Error::InvalidName { name, reason } => write!(f, "invalid host name {name:?}: {reason}"),
            Error::NoNameservers => f.write_str("no nameservers configured"),
            Error::Gai { message, .. } => f.write_str(message),
            Error::Config { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Network { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// `host` as a socket address if it is an IP literal: dotted IPv4, IPv6
/// with or without brackets, and IPv6 with a `%scope` (an interface name
/// or number).
pub(crate) fn ip_literal(host: &str, port: u16) -> Option<SocketAddr> {
    let h = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.contains(':') => inner,
        Some(_) => return None,
        None => host,
    };
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let (addr, scope) = h.split_once('%')?;
    let v6: Ipv6Addr = addr.parse().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id(scope)?)))
}

/// An IPv6 scope: a number or an interface name.
pub(crate) fn scope_id(scope: &str) -> Option<u32> {
    if let Ok(n) = scope.parse::<u32>() {
        return Some(n);
    }
    let c = std::ffi::CString::new(scope).ok()?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// 16 random bits for transaction ids and source ports, from getrandom(2);
/// if that is unavailable, from std's randomly keyed hasher.
pub(crate) fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: b is a writable buffer of the length passed.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == 2 {
        return u16::from_ne_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u16
}

/// The fuzzing entry point (the `dns_reply` target in `fuzz/`, and a
/// stable-Rust test in `tests/dns.rs`): runs the reply parser and
/// validator on arbitrary bytes as replies to an A, an AAAA and a PTR
/// query, with the transaction id taken from the input so that the
/// deeper checks are reached. It must never panic. Returns how many of
/// the three questions the bytes were accepted as a reply to, so that a
/// fuzzing harness can tell it reaches past the first checks.
#[doc(hidden)]
pub fn fuzz_reply(data: &[u8]) -> usize {
    let id = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    [
        ("example.com", wire::QType::A),
        ("www.example.com", wire::QType::Aaaa),
        ("1.0.0.127.in-addr.arpa", wire::QType::Ptr),
    ]
    .into_iter()
    .filter(|&(name, qtype)| wire::check_reply(data, id, name, qtype).is_ok())
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        let p = |s: &str| ip_literal(s, 7);
        assert_eq!(p("127.0.0.1"), Some("127.0.0.1:7".parse().unwrap()));
        assert_eq!(p("::1"), Some("[::1]:7".parse().unwrap()));
        assert_eq!(p("[::1]"), Some("[::1]:7".parse().unwrap()));
        assert_eq!(p("[127.0.0.1]"), None);
        assert_eq!(
            p("fe80::1%1"),
            Some(SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 0, 1)))
        );
        assert_eq!(p("fe80::1%lo").map(|a| a.ip()), Some("fe80::1".parse().unwrap()));
        assert_eq!(p("fe80::1%no-such-interface0"), None);
        assert_eq!(p("localhost"), None);
        assert_eq!(p("1.2.3"), None);
    }

    #[test]
    fn errors_carry_kind_and_variant() {
        let e: io::Error = Error::ServFail {
            name: "x.test".into(),
            server: "127.0.0.1:5353".parse().unwrap(),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert_eq!(e.to_string(), "SERVFAIL from 127.0.0.1:5353 for x.test");
        assert!(matches!(Error::from_io(&e), Some(Error::ServFail { .. })));
        let e: io::Error = Error::NotFound { name: "x.test".into() }.into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(Error::from_io(&io::Error::from(io::ErrorKind::NotFound)).is_none());
    }

    #[test]
    fn random_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_u16()).collect();
        assert!(ids.len() > 32, "{ids:?}");
    }
}
