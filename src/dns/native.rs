//! The native resolver, asynchronous DNS on the hub: see
//! [`NativeResolver`].
//!
//! One concept at ~700 lines (plus tests): the resolver's query loop over
//! servers, attempts, UDP and TCP, and the judgement of each reply; the
//! wire format is in `wire.rs`, the hosts file in `hosts.rs`.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hosts::HostsFile;
use super::sock::Sock;
use super::wire::{self, Datum, QType, Reply};
use super::{ip_literal, random_u16, Error};

/// How many times a lookup re-asks for the target of a CNAME chain whose
/// records the server did not include.
pub const MAX_CNAME_REQUERIES: usize = 8;

/// The environment variable naming an alternate resolv.conf for the
/// process-wide native resolver.
pub const RESOLV_CONF_ENV: &str = "GREENRT_RESOLV_CONF";

/// The native resolver's settings: what `/etc/resolv.conf` says, plus the
/// hosts file's path. Build one by hand to point a [`NativeResolver`] at a
/// test server (gevent's c-ares resolver takes the same settings as
/// keyword arguments: `servers`, `timeout`, `tries`, `ndots`, ...).
///
/// ```
/// use std::time::Duration;
/// use greenrt::dns::{NativeResolver, ResolverConfig};
/// let config = ResolverConfig {
///     nameservers: vec!["127.0.0.1:5353".parse().unwrap()],
///     timeout: Duration::from_millis(500),
///     attempts: 1,
///     hosts_path: None,
///     ..ResolverConfig::default()
/// };
/// let resolver = NativeResolver::with_config(config);
/// // IP literals never reach a nameserver.
/// assert_eq!(resolver.resolve("::1", 80).unwrap(), vec!["[::1]:80".parse().unwrap()]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The nameservers, in order (`nameserver`; port 53 from a file).
    pub nameservers: Vec<SocketAddr>,
    /// Domains appended to names with fewer than `ndots` dots (`search`,
    /// or `domain`, or the domain part of the host name).
    pub search: Vec<String>,
    /// `options ndots:n` (default 1).
    pub ndots: u32,
    /// How long one try waits for a server (`options timeout:n`, whole
    /// seconds in the file; default 5 s).
    pub timeout: Duration,
    /// Rounds over the server list (`options attempts:n`; default 2).
    pub attempts: u32,
    /// `options rotate`: start each lookup at the next server.
    pub rotate: bool,
    /// The hosts file consulted first; `None` for none. Default
    /// `/etc/hosts`.
    pub hosts_path: Option<PathBuf>,
}

impl Default for ResolverConfig {
    /// glibc's defaults: `127.0.0.1:53`, no search list, ndots 1, timeout
    /// 5 s, 2 attempts, no rotate, `/etc/hosts`.
    fn default() -> ResolverConfig {
        ResolverConfig {
            nameservers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            hosts_path: Some(PathBuf::from("/etc/hosts")),
        }
    }
}

impl ResolverConfig {
    /// Parses resolv.conf text (with the `resolv-conf` crate). Lines it
    /// does not understand are ignored, as glibc ignores them; values are
    /// clamped to glibc's limits (ndots ≤ 15, 1 ≤ timeout ≤ 30 s,
    /// 1 ≤ attempts ≤ 5). Without a nameserver line the local one is
    /// used (`127.0.0.1` and `::1`); without a search or domain line the
    /// domain part of the host name is the search list, as for glibc.
    pub fn parse(text: &[u8]) -> ResolverConfig {
        let (c, _ignored) = resolv_conf::Config::parse_with_errors(text);
        let nameservers = c
            .get_nameservers_or_local()
            .into_iter()
            .filter_map(|ip| match ip {
                resolv_conf::ScopedIp::V4(v4) => Some(SocketAddr::from((v4, 53))),
                resolv_conf::ScopedIp::V6(v6, None) => Some(SocketAddr::from((v6, 53))),
                resolv_conf::ScopedIp::V6(v6, Some(scope)) => {
                    let id = super::scope_id(&scope)?;
                    Some(SocketAddr::V6(SocketAddrV6::new(v6, 53, 0, id)))
                }
            })
            .collect();
        let mut search: Vec<String> = c.get_last_search_or_domain().cloned().collect();
        if search.is_empty() {
            search.extend(c.get_system_domain());
        }
        search.retain(|d| !d.trim_matches('.').is_empty());
        ResolverConfig {
            nameservers,
            search,
            ndots: c.ndots.min(15),
            timeout: Duration::from_secs(u64::from(c.timeout.clamp(1, 30))),
            attempts: c.attempts.clamp(1, 5),
            rotate: c.rotate,
            hosts_path: Some(PathBuf::from("/etc/hosts")),
        }
    }

    /// Reads and parses the resolv.conf at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> io::Result<ResolverConfig> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(ResolverConfig::parse(&text))
    }

    /// The system's settings: the file named by `GREENRT_RESOLV_CONF`, or
    /// else `/etc/resolv.conf` (a missing `/etc/resolv.conf` means glibc's
    /// defaults; a `GREENRT_RESOLV_CONF` that cannot be read is an error
    /// naming the variable, never a silent fallback).
    pub fn system() -> io::Result<ResolverConfig> {
        match std::env::var_os(RESOLV_CONF_ENV) {
            Some(path) => ResolverConfig::from_file(&path).map_err(|e| {
                Error::Config {
                    message: format!(
                        "greenrt: invalid {RESOLV_CONF_ENV}={:?}: {e}; accepted values: the path of a readable resolv.conf file",
                        path
                    ),
                }
                .into()
            }),
            None => match std::fs::read("/etc/resolv.conf") {
                Ok(text) => Ok(ResolverConfig::parse(&text)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ResolverConfig::parse(b"")),
                Err(e) => Err(io::Error::new(e.kind(), format!("/etc/resolv.conf: {e}"))),
            },
        }
    }
}

/// The result of [`NativeResolver::lookup`]: the addresses and the names
/// met on the way (gevent's `gethostbyname_ex` triple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Where the CNAME chain ended (the name itself without one).
    pub canonical_name: String,
    /// The names the CNAME chain passed through, in order.
    pub aliases: Vec<String>,
    /// IPv4 addresses first, then IPv6.
    pub addrs: Vec<IpAddr>,
}

/// Asynchronous DNS on the hub (gevent's `gevent.resolver.ares.Resolver`,
/// selected with `GREENRT_RESOLVER=native`).
///
/// A lookup never leaves the calling thread and costs no thread-pool
/// worker: the greenlet sends its queries on a non-blocking socket and
/// parks on the hub until a reply arrives or the try times out, while the
/// hub's other greenlets run.
///
/// # How a name is looked up
///
/// 1. An IP literal is the answer (no DNS).
/// 2. The hosts file ([`ResolverConfig::hosts_path`], `/etc/hosts`), like
///    glibc's `files` NSS module; then `localhost` and `*.localhost` are
///    loopback (RFC 6761) even when the hosts file says nothing.
/// 3. The candidate names from the search list: a name with at least
///    `ndots` dots is tried as is first, then with each search domain
///    appended; a shorter one with the search domains first and as is
///    last; a name ending in a dot is only tried as is. The next candidate
///    is tried when one does not exist (NXDOMAIN) or has no address
///    (NODATA); any other failure ends the lookup, as in c-ares.
/// 4. For each candidate, an A and an AAAA query go out together on one
///    UDP socket (two transaction ids outstanding) to a nameserver; the
///    socket is connected to the server and bound to a random source
///    port, and each query has a random transaction id.
/// 5. A datagram that does not match a query exactly (transaction id, QR
///    bit, opcode, question name, type and class), that comes from
///    another address, or that does not parse, is ignored: the try keeps
///    waiting until its deadline. A reply with the TC bit is asked again
///    over TCP to the same server.
/// 6. Each try waits at most `timeout`; a server that does not answer in
///    time, fails (SERVFAIL, REFUSED, ...), or cannot be reached, hands
///    the unanswered queries to the next server; `attempts` rounds over
///    all servers. With `rotate`, each lookup starts one server further
///    along the list. NXDOMAIN is final.
/// 7. CNAME chains are followed inside the answer; when a chain ends in a
///    name whose records the server left out (no record of the type and
///    no SOA saying there is none), that name is asked for (up to
///    [`MAX_CNAME_REQUERIES`] times; a loop is an error).
///
/// Addresses come back IPv4 first, then IPv6, each in the server's order.
/// The resolv.conf used by the process-wide native resolver is read once,
/// on first use (as c-ares, and so gevent, does); the hosts file is
/// re-read whenever it changes.
///
/// Cheap to clone (the clones share the server rotation and the hosts
/// cache) and `Send + Sync`: each lookup opens its own sockets on the
/// calling thread's hub.
#[derive(Clone)]
pub struct NativeResolver {
    inner: Arc<Inner>,
}

struct Inner {
    config: ResolverConfig,
    hosts: HostsFile,
    next_server: AtomicUsize,
}

impl fmt::Debug for NativeResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeResolver")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// One question's answer after the CNAME chain.
struct Answer {
    data: Vec<Datum>,
    canonical: String,
    aliases: Vec<String>,
    /// The server said the chain's end has no such record (NODATA).
    negative: bool,
}

/// What one server said about one question.
enum Step {
    /// Final for this question.
    Done(Result<Answer, Error>),
    /// Ask the next server; the error says why.
    NextServer(Error),
}

impl NativeResolver {
    /// A resolver with the system's settings
    /// ([`ResolverConfig::system`]).
    pub fn new() -> io::Result<NativeResolver> {
        Ok(NativeResolver::with_config(ResolverConfig::system()?))
    }

    /// A resolver with explicit settings: the test-only override that
    /// points it at a DNS server on 127.0.0.1 with a port, or anything
    /// else a program wants.
    pub fn with_config(config: ResolverConfig) -> NativeResolver {
        NativeResolver {
            inner: Arc::new(Inner {
                hosts: HostsFile::new(config.hosts_path.clone()),
                config,
                next_server: AtomicUsize::new(0),
            }),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ResolverConfig {
        &self.inner.config
    }

    /// The addresses of `host`, each with `port` (gevent's
    /// `getaddrinfo`).
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Some(a) = ip_literal(host, port) {
            return Ok(vec![a]);
        }
        let l = self.lookup(host)?;
        Ok(l.addrs.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// Looks `host` up and returns its addresses with its canonical name
    /// and aliases (gevent's `gethostbyname_ex`). Errors carry a
    /// [`dns::Error`](Error): `NotFound` (NXDOMAIN for every candidate
    /// name), `NoData`, `ServFail`, `TimedOut`, ...
    pub fn lookup(&self, host: &str) -> io::Result<Lookup> {
        if let Some(a) = ip_literal(host, 0) {
            return Ok(Lookup {
                canonical_name: host.to_string(),
                aliases: Vec::new(),
                addrs: vec![a.ip()],
            });
        }
        let (name, absolute) = match host.strip_suffix('.') {
            Some(n) => (n, true),
            None => (host, false),
        };
        if wire::valid_name(name).is_none() {
            return Err(Error::InvalidName {
                name: host.to_string(),
                reason: "not a valid domain name",
            }
            .into());
        }
        if let Some(addrs) = self.inner.hosts.get().lookup(name) {
            return Ok(Lookup {
                canonical_name: name.to_string(),
                aliases: Vec::new(),
                addrs: addrs.to_vec(),
            });
        }
        let lower = name.to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            return Ok(Lookup {
                canonical_name: name.to_string(),
                aliases: Vec::new(),
                addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
            });
        }
        let mut nodata = false;
        for candidate in self.candidates(name, absolute) {
            let results = self.query_chain(&candidate, &[QType::A, QType::Aaaa]);
            match combine(&candidate, results) {
                Ok(l) => return Ok(l),
                Err(Error::NotFound { .. }) => {}
                Err(Error::NoData { .. }) => nodata = true,
                Err(e) => return Err(e.into()),
            }
        }
        let name = host.to_string();
        Err(if nodata {
            Error::NoData { name }
        } else {
            Error::NotFound { name }
        }
        .into())
    }

    /// The host name of `ip`: the hosts file first, then a PTR query
    /// (gevent's `gethostbyaddr`/`getnameinfo`). No PTR record is
    /// `ErrorKind::NotFound`.
    pub fn reverse(&self, ip: IpAddr) -> io::Result<String> {
        if let Some(name) = self.inner.hosts.get().reverse(ip) {
            return Ok(name.to_string());
        }
        let qname = wire::reverse_name(ip);
        let r = self.query_chain(&qname, &[QType::Ptr]).pop();
        match r {
            Some(Ok(ans)) => ans
                .data
                .into_iter()
                .find_map(|d| match d {
                    Datum::Name(n) => Some(n),
                    Datum::Ip(_) => None,
                })
                .ok_or_else(|| Error::NoData { name: qname }.into()),
            Some(Err(e)) => Err(e.into()),
            None => Err(Error::NoData { name: qname }.into()),
        }
    }

    /// The names to try for `name`, in order (see the module docs).
    fn candidates(&self, name: &str, absolute: bool) -> Vec<String> {
        if absolute {
            return vec![name.to_string()];
        }
        let c = &self.inner.config;
        let searched = c
            .search
            .iter()
            .map(|d| d.trim_matches('.'))
            .filter(|d| !d.is_empty())
            .map(|d| format!("{name}.{d}"));
        let dots = name.matches('.').count() as u32;
        let mut out: Vec<String> = Vec::new();
        if dots >= c.ndots {
            out.push(name.to_string());
            out.extend(searched);
        } else {
            out.extend(searched);
            out.push(name.to_string());
        }
        let mut seen = Vec::new();
        out.retain(|n| {
            let key = n.to_ascii_lowercase();
            let fresh = wire::valid_name(n).is_some() && !seen.contains(&key);
            seen.push(key);
            fresh
        });
        out
    }

    /// Asks `qtypes` for `name` together, re-asking for the target of a
    /// CNAME chain the server did not resolve.
    fn query_chain(&self, name: &str, qtypes: &[QType]) -> Vec<Result<Answer, Error>> {
        let n = qtypes.len();
        let mut asked: Vec<(String, QType)> = qtypes.iter().map(|&t| (name.to_string(), t)).collect();
        let mut aliases: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut visited: Vec<Vec<String>> = vec![vec![name.to_ascii_lowercase()]; n];
        let mut out: Vec<Option<Result<Answer, Error>>> = (0..n).map(|_| None).collect();
        loop {
            let todo: Vec<usize> = (0..n).filter(|&i| out[i].is_none()).collect();
            if todo.is_empty() {
                break;
            }
            let questions: Vec<(String, QType)> = todo.iter().map(|&i| asked[i].clone()).collect();
            let results = self.exchange(&questions);
            for (&i, r) in todo.iter().zip(results) {
                match r {
                    Ok(ans)
                        if ans.data.is_empty() && !ans.negative && !ans.canonical.eq_ignore_ascii_case(&asked[i].0) =>
                    {
                        aliases[i].extend(ans.aliases);
                        let key = ans.canonical.to_ascii_lowercase();
                        if visited[i].contains(&key) || visited[i].len() > MAX_CNAME_REQUERIES {
                            out[i] = Some(Err(Error::CnameLoop { name: name.to_string() }));
                        } else {
                            visited[i].push(key);
                            asked[i].0 = ans.canonical;
                        }
                    }
                    Ok(mut ans) => {
                        let mut all = std::mem::take(&mut aliases[i]);
                        all.append(&mut ans.aliases);
                        ans.aliases = all;
                        out[i] = Some(Ok(ans));
                    }
                    Err(e) => out[i] = Some(Err(e)),
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::CnameLoop { name: name.to_string() })))
            .collect()
    }

    /// Sends `questions` to the servers until each has an answer or the
    /// tries run out.
    fn exchange(&self, questions: &[(String, QType)]) -> Vec<Result<Answer, Error>> {
        let c = &self.inner.config;
        let n = c.nameservers.len();
        let mut done: Vec<Option<Result<Answer, Error>>> = (0..questions.len()).map(|_| None).collect();
        let mut why: Vec<Option<Error>> = (0..questions.len()).map(|_| None).collect();
        if n == 0 {
            return questions.iter().map(|_| Err(Error::NoNameservers)).collect();
        }
        let start = if c.rotate {
            self.inner.next_server.fetch_add(1, Ordering::Relaxed) % n
        } else {
            0
        };
        'tries: for _ in 0..c.attempts.max(1) {
            for k in 0..n {
                let pending: Vec<usize> = (0..questions.len()).filter(|&i| done[i].is_none()).collect();
                if pending.is_empty() {
                    break 'tries;
                }
                let server = c.nameservers[(start + k) % n];
                self.try_server(server, questions, &pending, &mut done, &mut why);
            }
        }
        let tries = c.attempts.max(1) * n as u32;
        done.into_iter()
            .zip(why)
            .zip(questions)
            .map(|((d, w), (name, _))| match d {
                Some(r) => r,
                None => Err(match w {
                    Some(e) if !matches!(e, Error::TimedOut { .. }) => e,
                    _ => Error::TimedOut {
                        name: name.clone(),
                        servers: c.nameservers.clone(),
                        tries,
                    },
                }),
            })
            .collect()
    }

    /// One try of the `pending` questions on one server over UDP (and TCP
    /// for truncated replies).
    fn try_server(
        &self,
        server: SocketAddr,
        questions: &[(String, QType)],
        pending: &[usize],
        done: &mut [Option<Result<Answer, Error>>],
        why: &mut [Option<Error>],
    ) {
        let deadline = Instant::now() + self.inner.config.timeout;
        let sock = match Sock::udp_connected(server) {
            Ok(s) => s,
            Err(e) => {
                for &i in pending {
                    note(why, i, network(server, &e));
                }
                return;
            }
        };
        let mut outstanding: Vec<(usize, u16)> = Vec::with_capacity(pending.len());
        for &i in pending {
            let (name, qtype) = (&questions[i].0, questions[i].1);
            let id = loop {
                let id = random_u16();
                if !outstanding.iter().any(|&(_, o)| o == id) {
                    break id;
                }
            };
            let Some(q) = wire::build_query(id, name, qtype) else {
                done[i] = Some(Err(Error::InvalidName {
                    name: name.clone(),
                    reason: "not a valid domain name",
                }));
                continue;
            };
            if let Err(e) = sock.send(&q, deadline) {
                // The server is unusable (a queued ICMP error such as
                // ECONNREFUSED comes back on the next call): hand every
                // question to the next one.
                for &j in pending {
                    if done[j].is_none() {
                        note(why, j, network(server, &e));
                    }
                }
                return;
            }
            outstanding.push((i, id));
        }
        let mut buf = vec![0u8; 65536];
        while !outstanding.is_empty() {
            let (len, from) = match sock.recv_from(&mut buf, deadline) {
                Ok(r) => r,
                Err(e) => {
                    for &(i, _) in &outstanding {
                        let err = if e.kind() == io::ErrorKind::TimedOut {
                            Error::TimedOut {
                                name: questions[i].0.clone(),
                                servers: vec![server],
                                tries: 1,
                            }
                        } else {
                            network(server, &e)
                        };
                        note(why, i, err);
                    }
                    return;
                }
            };
            // The socket is connected, so the kernel already filters by
            // source; check anyway.
            if from.map(|f| (f.ip(), f.port())) != Some((server.ip(), server.port())) {
                continue;
            }
            let msg = &buf[..len];
            let Some(id) = wire::message_id(msg) else { continue };
            let Some(pos) = outstanding.iter().position(|&(_, o)| o == id) else {
                continue;
            };
            let i = outstanding[pos].0;
            let (name, qtype) = (&questions[i].0, questions[i].1);
            let Ok(reply) = wire::check_reply(msg, id, name, qtype) else {
                continue;
            };
            outstanding.swap_remove(pos);
            let step = match reply {
                Reply::Truncated => self.tcp_query(server, name, qtype),
                reply => judge(reply, name, server),
            };
            match step {
                Step::Done(r) => done[i] = Some(r),
                Step::NextServer(e) => note(why, i, e),
            }
        }
    }

    /// Asks one question over TCP (after a truncated UDP reply).
    fn tcp_query(&self, server: SocketAddr, name: &str, qtype: QType) -> Step {
        let deadline = Instant::now() + self.inner.config.timeout;
        let id = random_u16();
        let exchange = || -> io::Result<Result<Reply, wire::Reject>> {
            let q = wire::build_query(id, name, qtype).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            let s = Sock::tcp_connect(server, deadline)?;
            let mut framed = Vec::with_capacity(q.len() + 2);
            framed.extend_from_slice(&(q.len() as u16).to_be_bytes());
            framed.extend_from_slice(&q);
            s.write_all(&framed, deadline)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len, deadline)?;
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut msg, deadline)?;
            Ok(wire::check_reply(&msg, id, name, qtype))
        };
        match exchange() {
            Ok(Ok(Reply::Truncated)) | Ok(Err(_)) => Step::NextServer(Error::BadReply {
                name: name.to_string(),
                server,
            }),
            Ok(Ok(reply)) => judge(reply, name, server),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Step::NextServer(Error::TimedOut {
                name: name.to_string(),
                servers: vec![server],
                tries: 1,
            }),
            Err(e) => Step::NextServer(network(server, &e)),
        }
    }
}

fn network(server: SocketAddr, e: &io::Error) -> Error {
    Error::Network {
        server,
        source: match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        },
    }
}

/// Remembers why a question failed on a server: a server's own answer
/// (SERVFAIL, REFUSED, a bad reply) outranks not reaching it, which
/// outranks a timeout.
fn note(why: &mut [Option<Error>], i: usize, e: Error) {
    fn rank(e: &Error) -> u8 {
        match e {
            Error::TimedOut { .. } => 0,
            Error::Network { .. } => 1,
            _ => 2,
        }
    }
    match &why[i] {
        Some(old) if rank(old) > rank(&e) => {}
        _ => why[i] = Some(e),
    }
}

/// What a matching reply means for its question.
fn judge(reply: Reply, name: &str, server: SocketAddr) -> Step {
    let name = name.to_string();
    match reply {
        Reply::Answer {
            data,
            canonical,
            aliases,
            negative,
        } => Step::Done(Ok(Answer {
            data,
            canonical,
            aliases,
            negative,
        })),
        Reply::NxDomain => Step::Done(Err(Error::NotFound { name })),
        Reply::CnameLoop => Step::Done(Err(Error::CnameLoop { name })),
        Reply::ServFail => Step::NextServer(Error::ServFail { name, server }),
        Reply::Rcode(rcode) => Step::NextServer(Error::Rcode { name, server, rcode }),
        Reply::Truncated => Step::NextServer(Error::BadReply { name, server }),
    }
}

/// The A and AAAA results for one candidate name as one lookup.
fn combine(name: &str, results: Vec<Result<Answer, Error>>) -> Result<Lookup, Error> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut names: Option<(String, Vec<String>)> = None;
    let mut errors = Vec::new();
    let mut all_nxdomain = true;
    for r in results {
        match r {
            Ok(ans) => {
                all_nxdomain = false;
                if !ans.data.is_empty() && names.is_none() {
                    names = Some((ans.canonical, ans.aliases));
                }
                for d in ans.data {
                    if let Datum::Ip(ip) = d {
                        if !addrs.contains(&ip) {
                            addrs.push(ip);
                        }
                    }
                }
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                all_nxdomain = false;
                errors.push(e);
            }
        }
    }
    if !addrs.is_empty() {
        let (canonical_name, aliases) = names.unwrap_or_else(|| (name.to_string(), Vec::new()));
        return Ok(Lookup {
            canonical_name,
            aliases,
            addrs,
        });
    }
    if let Some(e) = errors.into_iter().find(|e| !matches!(e, Error::NoData { .. })) {
        return Err(e);
    }
    let name = name.to_string();
    Err(if all_nxdomain {
        Error::NotFound { name }
    } else {
        Error::NoData { name }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolv_conf_with_glibc_limits() {
        let c = ResolverConfig::parse(
            b"# comment\n\
              nameserver 127.0.0.1\n\
              nameserver ::1\n\
              search corp.test lab.test\n\
              options ndots:3 timeout:99 attempts:0 rotate\n\
              options some-future-option\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(c.search, vec!["corp.test".to_string(), "lab.test".to_string()]);
        assert_eq!(c.ndots, 3);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.attempts, 1);
        assert!(c.rotate);
        let d = ResolverConfig::parse(b"domain only.test\n");
        assert_eq!(d.search, vec!["only.test".to_string()]);
        assert_eq!(d.nameservers.len(), 2, "no nameserver line: the local one");
        assert_eq!(d.ndots, 1);
        assert_eq!(d.attempts, 2);
        assert_eq!(d.timeout, Duration::from_secs(5));
    }

    #[test]
    fn candidates_follow_ndots_and_search() {
        let r = NativeResolver::with_config(ResolverConfig {
            search: vec!["a.test".into(), ".b.test.".into()],
            ndots: 2,
            hosts_path: None,
            ..ResolverConfig::default()
        });
        assert_eq!(r.candidates("db", false), vec!["db.a.test", "db.b.test", "db"]);
        assert_eq!(
            r.candidates("x.y.z", false),
            vec!["x.y.z", "x.y.z.a.test", "x.y.z.b.test"]
        );
        assert_eq!(r.candidates("x.y", false), vec!["x.y.a.test", "x.y.b.test", "x.y"]);
        assert_eq!(r.candidates("db", true), vec!["db"]);
    }

    #[test]
    fn combine_prefers_addresses_then_hard_errors() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let ans = |ips: &[&str]| {
            Ok(Answer {
                data: ips.iter().map(|s| Datum::Ip(s.parse().unwrap())).collect(),
                canonical: "n".into(),
                aliases: vec![],
                negative: false,
            })
        };
        let l = combine(
            "n",
            vec![
                ans(&["127.0.0.1"]),
                Err(Error::ServFail {
                    name: "n".into(),
                    server,
                }),
            ],
        )
        .unwrap();
        assert_eq!(l.addrs, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let nx = || Err(Error::NotFound { name: "n".into() });
        assert!(matches!(combine("n", vec![nx(), nx()]), Err(Error::NotFound { .. })));
        assert!(matches!(combine("n", vec![nx(), ans(&[])]), Err(Error::NoData { .. })));
        assert!(matches!(
            combine(
                "n",
                vec![
                    ans(&[]),
                    Err(Error::ServFail {
                        name: "n".into(),
                        server
                    })
                ]
            ),
            Err(Error::ServFail { .. })
        ));
    }
}
