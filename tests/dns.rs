//! greenrt::dns against a real DNS server written here: std threads with a
//! UDP socket and a TCP listener on the same 127.0.0.1 port, answering
//! from a table built with the same wire crate (simple-dns). Network
//! traffic stays on loopback; the other addresses in answers are data only.

mod util;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use greenrt::dns::{self, Error as DnsError, NativeResolver, ResolverConfig, ThreadResolver};
use simple_dns::rdata::{RData, A, AAAA, CNAME, PTR, SOA};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QCLASS, QTYPE, RCODE, TYPE};
use util::Rng;

// ===== the test server =====

/// One query the server received.
#[derive(Clone, Debug)]
struct Query {
    id: u16,
    /// Lower-cased, no trailing dot.
    name: String,
    qtype: u16,
    tcp: bool,
}

const T_A: u16 = 1;
const T_AAAA: u16 = 28;
const T_PTR: u16 = 12;

/// What the server does about a query.
enum Action {
    /// Send these bytes back now.
    Send(Vec<u8>),
    /// Send them after a delay (UDP only).
    SendAfter(Duration, Vec<u8>),
    /// Send them from another socket (another source port).
    SendFromOther(Vec<u8>),
}

type Handler = Arc<dyn Fn(&Query, &[u8]) -> Vec<Action> + Send + Sync>;

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Query>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn parse_query(msg: &[u8], tcp: bool) -> Option<Query> {
    let p = Packet::parse(msg).ok()?;
    let q = p.questions.first()?;
    Some(Query {
        id: p.id(),
        name: q.qname.to_string().trim_end_matches('.').to_ascii_lowercase(),
        qtype: u16::from(q.qtype),
        tcp,
    })
}

impl Server {
    fn start(handler: impl Fn(&Query, &[u8]) -> Vec<Action> + Send + Sync + 'static) -> Server {
        let handler: Handler = Arc::new(handler);
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (log, stop, handler) = (log.clone(), stop.clone(), handler.clone());
            threads.push(thread::spawn(move || udp_loop(udp, log, stop, handler)));
        }
        {
            let (log, stop, handler) = (log.clone(), stop.clone(), handler.clone());
            threads.push(thread::spawn(move || tcp_loop(tcp, log, stop, handler)));
        }
        Server {
            addr,
            log,
            stop,
            threads,
        }
    }

    fn queries(&self) -> Vec<Query> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The names asked about with type `qtype`, in order.
    fn names(&self, qtype: u16) -> Vec<String> {
        self.queries()
            .into_iter()
            .filter(|q| q.qtype == qtype)
            .map(|q| q.name)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn udp_loop(udp: UdpSocket, log: Arc<Mutex<Vec<Query>>>, stop: Arc<AtomicBool>, handler: Handler) {
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    let mut delayed: Vec<(Instant, Vec<u8>, SocketAddr)> = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        delayed.retain(|(due, bytes, to)| {
            if *due <= now {
                let _ = udp.send_to(bytes, to);
                false
            } else {
                true
            }
        });
        let (n, from) = match udp.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let msg = &buf[..n];
        let Some(q) = parse_query(msg, false) else { continue };
        log.lock().unwrap().push(q.clone());
        for a in handler(&q, msg) {
            match a {
                Action::Send(b) => {
                    let _ = udp.send_to(&b, from);
                }
                Action::SendAfter(d, b) => delayed.push((Instant::now() + d, b, from)),
                Action::SendFromOther(b) => {
                    let _ = other.send_to(&b, from);
                }
            }
        }
    }
}

fn tcp_loop(tcp: TcpListener, log: Arc<Mutex<Vec<Query>>>, stop: Arc<AtomicBool>, handler: Handler) {
    tcp.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let Ok((mut s, _)) = tcp.accept() else {
            thread::sleep(Duration::from_millis(2));
            continue;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).is_err() {
            continue;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if s.read_exact(&mut msg).is_err() {
            continue;
        }
        let Some(q) = parse_query(&msg, true) else { continue };
        log.lock().unwrap().push(q.clone());
        for a in handler(&q, &msg) {
            if let Action::Send(b) = a {
                let mut framed = (b.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&b);
                let _ = s.write_all(&framed);
            }
        }
    }
}

// ===== building replies =====

/// A reply to `query` with `rcode`, the question copied, and `answers`;
/// `soa` adds an SOA record to the authority section (a negative answer).
fn reply(query: &[u8], rcode: RCODE, answers: Vec<ResourceRecord<'static>>, soa: bool) -> Vec<u8> {
    let q = Packet::parse(query).unwrap();
    let mut p = Packet::new_reply(q.id());
    p.set_flags(PacketFlag::RECURSION_AVAILABLE | PacketFlag::RECURSION_DESIRED);
    *p.rcode_mut() = rcode;
    p.questions = q.questions.into_iter().map(|q| q.into_owned()).collect();
    p.answers = answers;
    if soa {
        p.name_servers.push(ResourceRecord::new(
            Name::new_unchecked("test"),
            CLASS::IN,
            60,
            RData::SOA(SOA {
                mname: Name::new_unchecked("ns.test"),
                rname: Name::new_unchecked("admin.test"),
                serial: 1,
                refresh: 60,
                retry: 60,
                expire: 60,
                minimum: 60,
            }),
        ));
    }
    p.build_bytes_vec_compressed().unwrap()
}

fn with_id(mut msg: Vec<u8>, id: u16) -> Vec<u8> {
    msg[..2].copy_from_slice(&id.to_be_bytes());
    msg
}

fn with_tc(mut msg: Vec<u8>) -> Vec<u8> {
    msg[2] |= 0x02;
    msg
}

#[derive(Clone, Debug)]
enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(&'static str),
    Ptr(&'static str),
    /// Answer SERVFAIL for this name.
    ServFail,
}

fn rr(name: &str, rdata: RData<'static>) -> ResourceRecord<'static> {
    ResourceRecord::new(Name::new_unchecked(name).into_owned(), CLASS::IN, 60, rdata)
}

fn rdata(r: &Rec) -> Option<(u16, RData<'static>)> {
    Some(match r {
        Rec::A(ip) => (
            T_A,
            RData::A(A {
                address: u32::from(*ip),
            }),
        ),
        Rec::Aaaa(ip) => (
            T_AAAA,
            RData::AAAA(AAAA {
                address: u128::from(*ip),
            }),
        ),
        Rec::Ptr(n) => (T_PTR, RData::PTR(PTR(Name::new_unchecked(n)))),
        Rec::Cname(n) => (5, RData::CNAME(CNAME(Name::new_unchecked(n)))),
        Rec::ServFail => return None,
    })
}

/// A zone answering like a recursive server: follows CNAMEs inside the
/// zone (when `follow`), NXDOMAIN for unknown names, NODATA with an SOA
/// for known names without the type.
fn zone(records: &[(&'static str, Rec)], follow: bool) -> impl Fn(&Query, &[u8]) -> Vec<Action> + Send + Sync {
    let mut table: HashMap<String, Vec<Rec>> = HashMap::new();
    for (n, r) in records {
        table.entry(n.to_string()).or_default().push(r.clone());
    }
    move |q, raw| vec![Action::Send(answer_from(&table, q, raw, follow))]
}

fn answer_from(table: &HashMap<String, Vec<Rec>>, q: &Query, raw: &[u8], follow: bool) -> Vec<u8> {
    let mut name = q.name.clone();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let Some(recs) = table.get(&name) else {
            let rcode = if answers.is_empty() {
                RCODE::NameError
            } else {
                RCODE::NoError
            };
            return reply(raw, rcode, answers, true);
        };
        if recs.iter().any(|r| matches!(r, Rec::ServFail)) {
            return reply(raw, RCODE::ServerFailure, vec![], false);
        }
        let matching: Vec<_> = recs
            .iter()
            .filter_map(rdata)
            .filter(|(t, _)| *t == q.qtype)
            .map(|(_, d)| rr(&name, d))
            .collect();
        if !matching.is_empty() {
            answers.extend(matching);
            return reply(raw, RCODE::NoError, answers, false);
        }
        let Some(Rec::Cname(target)) = recs.iter().find(|r| matches!(r, Rec::Cname(_))) else {
            return reply(raw, RCODE::NoError, answers, true);
        };
        answers.push(rr(&name, RData::CNAME(CNAME(Name::new_unchecked(target)))));
        if !follow {
            return reply(raw, RCODE::NoError, answers, false);
        }
        name = target.to_string();
    }
    reply(raw, RCODE::NoError, answers, false)
}

// ===== resolver helpers =====

fn config(servers: &[&Server], timeout: Duration, attempts: u32) -> ResolverConfig {
    ResolverConfig {
        nameservers: servers.iter().map(|s| s.addr).collect(),
        timeout,
        attempts,
        hosts_path: None,
        search: Vec::new(),
        ndots: 1,
        rotate: false,
    }
}

fn native(server: &Server) -> NativeResolver {
    NativeResolver::with_config(config(&[server], Duration::from_secs(1), 2))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn dns_error(e: &io::Error) -> &DnsError {
    DnsError::from_io(e).unwrap_or_else(|| panic!("not a dns::Error: {e:?}"))
}

// ===== answers =====

#[test]
fn answers_a_and_aaaa() {
    let s = Server::start(zone(
        &[
            ("host.test", Rec::A(Ipv4Addr::new(127, 0, 0, 10))),
            ("host.test", Rec::A(Ipv4Addr::new(127, 0, 0, 11))),
            ("host.test", Rec::Aaaa("2001:db8::10".parse().unwrap())),
        ],
        true,
    ));
    let r = native(&s);
    let addrs = r.resolve("Host.TEST", 8080).unwrap();
    assert_eq!(
        addrs,
        vec![sa("127.0.0.10:8080"), sa("127.0.0.11:8080"), sa("[2001:db8::10]:8080")]
    );
    let qs = s.queries();
    assert_eq!(qs.len(), 2, "{qs:?}");
    let mut types: Vec<u16> = qs.iter().map(|q| q.qtype).collect();
    types.sort();
    assert_eq!(types, vec![T_A, T_AAAA]);
    assert!(qs.iter().all(|q| q.name == "host.test" && !q.tcp));
    assert_ne!(qs[0].id, qs[1].id, "each query has its own transaction id");
}

#[test]
fn a_and_aaaa_are_asked_together() {
    // Each answer comes 300 ms after its query: asked one after the other,
    // the lookup would take 600 ms.
    let table = zone(
        &[
            ("slow.test", Rec::A(Ipv4Addr::new(127, 0, 0, 12))),
            ("slow.test", Rec::Aaaa("2001:db8::12".parse().unwrap())),
        ],
        true,
    );
    let s = Server::start(move |q, raw| {
        table(q, raw)
            .into_iter()
            .map(|a| match a {
                Action::Send(b) => Action::SendAfter(Duration::from_millis(300), b),
                other => other,
            })
            .collect()
    });
    let start = Instant::now();
    let addrs = native(&s).resolve("slow.test", 1).unwrap();
    let took = start.elapsed();
    assert_eq!(addrs.len(), 2);
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(
        took < Duration::from_millis(550),
        "A and AAAA were not concurrent: {took:?}"
    );
}

#[test]
fn reverse_ptr_query() {
    let s = Server::start(zone(&[("5.0.0.127.in-addr.arpa", Rec::Ptr("five.test"))], true));
    let r = native(&s);
    assert_eq!(r.reverse(ip("127.0.0.5")).unwrap(), "five.test");
    assert_eq!(s.names(T_PTR), vec!["5.0.0.127.in-addr.arpa"]);
    let e = r.reverse(ip("127.0.0.6")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}

// ===== CNAME =====

#[test]
fn cname_chain_in_the_answer() {
    let s = Server::start(zone(
        &[
            ("www.test", Rec::Cname("edge.test")),
            ("edge.test", Rec::Cname("final.test")),
            ("final.test", Rec::A(Ipv4Addr::new(127, 0, 0, 20))),
        ],
        true,
    ));
    let l = native(&s).lookup("www.test").unwrap();
    assert_eq!(l.addrs, vec![ip("127.0.0.20")]);
    assert_eq!(l.canonical_name, "final.test");
    assert_eq!(l.aliases, vec!["www.test".to_string(), "edge.test".to_string()]);
    // The AAAA reply carries the chain and an SOA (NODATA): no re-query.
    assert_eq!(s.count(), 2, "{:?}", s.queries());
}

#[test]
fn cname_chain_cut_short_is_asked_again() {
    // The server returns only the first CNAME; the resolver asks for the
    // target itself.
    let s = Server::start(zone(
        &[
            ("alias.test", Rec::Cname("middle.test")),
            ("middle.test", Rec::Cname("target.test")),
            ("target.test", Rec::A(Ipv4Addr::new(127, 0, 0, 30))),
        ],
        false,
    ));
    let l = native(&s).lookup("alias.test").unwrap();
    assert_eq!(l.addrs, vec![ip("127.0.0.30")]);
    assert_eq!(l.canonical_name, "target.test");
    assert_eq!(l.aliases, vec!["alias.test".to_string(), "middle.test".to_string()]);
    assert_eq!(s.names(T_A), vec!["alias.test", "middle.test", "target.test"]);
}

#[test]
fn cname_loop_is_an_error() {
    let s = Server::start(zone(
        &[
            ("loop1.test", Rec::Cname("loop2.test")),
            ("loop2.test", Rec::Cname("loop1.test")),
        ],
        false,
    ));
    let e = native(&s).resolve("loop1.test", 1).unwrap_err();
    assert!(matches!(dns_error(&e), DnsError::CnameLoop { .. }), "{e:?}");
    assert!(s.count() <= 2 * (dns::MAX_CNAME_REQUERIES + 1), "{}", s.count());
    // And a loop inside one reply.
    let s = Server::start(zone(
        &[
            ("loop1.test", Rec::Cname("loop2.test")),
            ("loop2.test", Rec::Cname("loop1.test")),
        ],
        true,
    ));
    let e = native(&s).resolve("loop1.test", 1).unwrap_err();
    assert!(matches!(dns_error(&e), DnsError::CnameLoop { .. }), "{e:?}");
}

// ===== errors =====

#[test]
fn nxdomain_and_servfail_are_distinct() {
    let s = Server::start(zone(
        &[("ok.test", Rec::A(Ipv4Addr::LOCALHOST)), ("sf.test", Rec::ServFail)],
        true,
    ));
    let r = native(&s);
    let start = Instant::now();
    let nx = r.resolve("nx.test", 1).unwrap_err();
    assert_eq!(nx.kind(), io::ErrorKind::NotFound);
    assert!(
        matches!(dns_error(&nx), DnsError::NotFound { name } if name == "nx.test"),
        "{nx:?}"
    );

    let sf = r.resolve("sf.test", 1).unwrap_err();
    assert_ne!(sf.kind(), io::ErrorKind::NotFound);
    match dns_error(&sf) {
        DnsError::ServFail { server, name } => {
            assert_eq!(*server, s.addr);
            assert_eq!(name, "sf.test");
        }
        other => panic!("expected SERVFAIL, got {other:?}"),
    }
    assert!(sf.to_string().contains(&format!("SERVFAIL from {}", s.addr)), "{sf}");
    // Both are answers, not timeouts.
    assert!(start.elapsed() < Duration::from_millis(900), "{:?}", start.elapsed());

    // A name with an A record but no AAAA resolves; one with neither is
    // NODATA, also NotFound.
    assert_eq!(r.resolve("ok.test", 1).unwrap(), vec![sa("127.0.0.1:1")]);
    let s2 = Server::start(zone(&[("empty.test", Rec::Ptr("x.test"))], true));
    let e = native(&s2).resolve("empty.test", 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(matches!(dns_error(&e), DnsError::NoData { .. }), "{e:?}");
}

#[test]
fn timeout_after_timeout_times_attempts() {
    let s = Server::start(|_, _| Vec::new());
    let r = NativeResolver::with_config(config(&[&s], Duration::from_millis(200), 3));
    let start = Instant::now();
    let e = r.resolve("silent.test", 1).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e:?}");
    assert!(matches!(dns_error(&e), DnsError::TimedOut { tries: 3, .. }), "{e:?}");
    assert!(took >= Duration::from_millis(590), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // Three tries of A and AAAA.
    assert_eq!(s.count(), 6, "{:?}", s.queries());
}

#[test]
fn failover_to_the_next_server() {
    let dead = Server::start(|_, _| Vec::new());
    let live = Server::start(zone(&[("fo.test", Rec::A(Ipv4Addr::new(127, 0, 0, 40)))], true));
    let r = NativeResolver::with_config(config(&[&dead, &live], Duration::from_millis(200), 1));
    let start = Instant::now();
    assert_eq!(r.resolve("fo.test", 1).unwrap(), vec![sa("127.0.0.40:1")]);
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(dead.count(), 2);
    assert_eq!(live.count(), 2);
}

#[test]
fn rotate_starts_at_the_next_server() {
    let s1 = Server::start(zone(&[("r.test", Rec::A(Ipv4Addr::new(127, 0, 0, 41)))], true));
    let s2 = Server::start(zone(&[("r.test", Rec::A(Ipv4Addr::new(127, 0, 0, 42)))], true));
    let mut c = config(&[&s1, &s2], Duration::from_secs(1), 1);
    let plain = NativeResolver::with_config(c.clone());
    for _ in 0..4 {
        assert_eq!(plain.resolve("r.test", 1).unwrap(), vec![sa("127.0.0.41:1")]);
    }
    assert_eq!((s1.count(), s2.count()), (8, 0));
    c.rotate = true;
    let rotating = NativeResolver::with_config(c);
    let got: Vec<IpAddr> = (0..4).map(|_| rotating.lookup("r.test").unwrap().addrs[0]).collect();
    assert_eq!(
        got,
        vec![ip("127.0.0.41"), ip("127.0.0.42"), ip("127.0.0.41"), ip("127.0.0.42")]
    );
    assert_eq!((s1.count(), s2.count()), (12, 4));
}

#[test]
fn refused_port_fails_fast() {
    // Nothing listens on this port: ICMP port unreachable -> ECONNREFUSED.
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = NativeResolver::with_config(ResolverConfig {
        nameservers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))],
        timeout: Duration::from_secs(3),
        attempts: 1,
        hosts_path: None,
        ..ResolverConfig::default()
    });
    let start = Instant::now();
    let e = r.resolve("nobody.test", 1).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}");
    assert!(matches!(dns_error(&e), DnsError::Network { .. }));
}

// ===== truncation =====

#[test]
fn truncated_reply_is_retried_over_tcp() {
    // 40 A records (> 512 bytes) are only sent over TCP.
    let many: Vec<(&'static str, Rec)> = (1..=40)
        .map(|i| ("big.test", Rec::A(Ipv4Addr::new(127, 0, 1, i))))
        .collect();
    let table = zone(&many, true);
    let s = Server::start(move |q, raw| {
        if q.tcp {
            table(q, raw)
        } else {
            vec![Action::Send(with_tc(reply(raw, RCODE::NoError, vec![], false)))]
        }
    });
    let addrs = native(&s).resolve("big.test", 1).unwrap();
    let want: Vec<SocketAddr> = (1..=40)
        .map(|i| SocketAddr::from((Ipv4Addr::new(127, 0, 1, i), 1)))
        .collect();
    assert_eq!(addrs, want);
    let qs = s.queries();
    assert_eq!(qs.iter().filter(|q| !q.tcp).count(), 2, "{qs:?}");
    assert_eq!(qs.iter().filter(|q| q.tcp).count(), 2, "{qs:?}");
}

// ===== spoofing and garbage =====

#[test]
fn wrong_id_and_wrong_source_are_ignored() {
    let s = Server::start(|q, raw| {
        if q.qtype != T_A {
            return vec![Action::Send(reply(raw, RCODE::NoError, vec![], true))];
        }
        let bogus = |a: u8| {
            reply(
                raw,
                RCODE::NoError,
                vec![rr(
                    &q.name,
                    RData::A(A {
                        address: u32::from(Ipv4Addr::new(127, 0, 0, a)),
                    }),
                )],
                false,
            )
        };
        vec![
            // Wrong transaction id, right source.
            Action::Send(with_id(bogus(66), q.id ^ 0x5a5a)),
            // Right id, wrong source port.
            Action::SendFromOther(bogus(77)),
            // A reply to another question with the right id.
            Action::Send(with_id(
                reply(
                    &dns_query(q.id, "other.test"),
                    RCODE::NoError,
                    vec![rr("other.test", RData::A(A { address: 0x7f000058 }))],
                    false,
                ),
                q.id,
            )),
            // NXDOMAIN with the wrong id must not end the lookup either.
            Action::Send(with_id(
                reply(raw, RCODE::NameError, vec![], true),
                q.id.wrapping_add(1),
            )),
            // The real answer, later.
            Action::SendAfter(Duration::from_millis(50), bogus(1)),
        ]
    });
    let addrs = native(&s).resolve("spoof.test", 1).unwrap();
    assert_eq!(addrs, vec![sa("127.0.0.1:1")]);
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

#[test]
fn garbage_replies_are_rejected() {
    // Garbage first, then the real answer: the lookup still succeeds.
    let rng = Mutex::new(Rng(0x9e37_79b9_7f4a_7c15));
    let table = zone(&[("g.test", Rec::A(Ipv4Addr::new(127, 0, 0, 3)))], true);
    let s = Server::start(move |q, raw| {
        let mut rng = rng.lock().unwrap();
        let mut with_right_id = rng.bytes(60);
        with_right_id[..2].copy_from_slice(&q.id.to_be_bytes());
        let mut out = vec![
            Action::Send(rng.bytes(7)),
            Action::Send(rng.bytes(300)),
            Action::Send(with_right_id),
            Action::Send(raw[..raw.len() - 3].to_vec()),
        ];
        for a in table(q, raw) {
            if let Action::Send(b) = a {
                // The real reply cut short, then whole.
                out.push(Action::Send(b[..b.len() - 2].to_vec()));
                out.push(Action::SendAfter(Duration::from_millis(30), b));
            }
        }
        out
    });
    assert_eq!(native(&s).resolve("g.test", 1).unwrap(), vec![sa("127.0.0.3:1")]);

    // Garbage and then nothing: a clean timeout, after the whole timeout.
    let rng = Mutex::new(Rng(42));
    let s = Server::start(move |q, _| {
        let mut rng = rng.lock().unwrap();
        let mut b = rng.bytes(100);
        b[..2].copy_from_slice(&q.id.to_be_bytes());
        vec![Action::Send(rng.bytes(50)), Action::Send(b)]
    });
    let r = NativeResolver::with_config(config(&[&s], Duration::from_millis(300), 1));
    let start = Instant::now();
    let e = r.resolve("g.test", 1).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e:?}");
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

// ===== hosts, search, literals =====

fn temp_file(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("greenrt-dns-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("file");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn hosts_file_takes_precedence() {
    let s = Server::start(zone(&[("pinned.test", Rec::A(Ipv4Addr::new(127, 0, 0, 51)))], true));
    let hosts = temp_file("hosts", "127.0.0.50 pinned.test pinned\n::1 v6only.test\n");
    let mut c = config(&[&s], Duration::from_secs(1), 1);
    c.hosts_path = Some(hosts.clone());
    let r = NativeResolver::with_config(c);
    assert_eq!(r.resolve("PINNED.test", 1).unwrap(), vec![sa("127.0.0.50:1")]);
    assert_eq!(r.resolve("pinned.test.", 1).unwrap(), vec![sa("127.0.0.50:1")]);
    assert_eq!(r.resolve("v6only.test", 1).unwrap(), vec![sa("[::1]:1")]);
    assert_eq!(r.reverse(ip("127.0.0.50")).unwrap(), "pinned.test");
    assert_eq!(s.count(), 0, "{:?}", s.queries());
    // Without the hosts file, the server answers.
    let r = native(&s);
    assert_eq!(r.resolve("pinned.test", 1).unwrap(), vec![sa("127.0.0.51:1")]);
    assert!(s.count() > 0);
    // localhost is loopback even when no hosts file says so.
    let addrs = r.resolve("localhost", 1).unwrap();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "{addrs:?}"
    );
    let _ = std::fs::remove_file(&hosts);
}

#[test]
fn search_domains_and_ndots() {
    let s = Server::start(zone(
        &[
            ("db.lab.test", Rec::A(Ipv4Addr::new(127, 0, 0, 60))),
            ("svc.lab", Rec::A(Ipv4Addr::new(127, 0, 0, 62))),
            ("a.b.test", Rec::A(Ipv4Addr::new(127, 0, 0, 61))),
        ],
        true,
    ));
    let mut c = config(&[&s], Duration::from_secs(1), 1);
    c.search = vec!["corp.test".into(), "lab.test".into()];
    c.ndots = 2;
    let r = NativeResolver::with_config(c);
    let log_from = |n: usize| s.names(T_A).split_off(n);

    assert_eq!(r.resolve("db", 1).unwrap(), vec![sa("127.0.0.60:1")]);
    assert_eq!(log_from(0), vec!["db.corp.test", "db.lab.test"]);

    // One dot, fewer than ndots: the search list first, the name last.
    let n = s.names(T_A).len();
    assert_eq!(r.resolve("svc.lab", 1).unwrap(), vec![sa("127.0.0.62:1")]);
    assert_eq!(log_from(n), vec!["svc.lab.corp.test", "svc.lab.lab.test", "svc.lab"]);

    // Two dots: the name as is first.
    let n = s.names(T_A).len();
    assert_eq!(r.resolve("a.b.test", 1).unwrap(), vec![sa("127.0.0.61:1")]);
    assert_eq!(log_from(n), vec!["a.b.test"]);

    // A trailing dot: only the name itself.
    let n = s.names(T_A).len();
    let e = r.resolve("db.", 1).unwrap_err();
    assert!(matches!(dns_error(&e), DnsError::NotFound { .. }), "{e:?}");
    assert_eq!(log_from(n), vec!["db"]);

    // Not found anywhere: every candidate asked, NotFound for the name.
    let n = s.names(T_A).len();
    let e = r.resolve("nope", 1).unwrap_err();
    assert!(
        matches!(dns_error(&e), DnsError::NotFound { name } if name == "nope"),
        "{e:?}"
    );
    assert_eq!(log_from(n), vec!["nope.corp.test", "nope.lab.test", "nope"]);
}

#[test]
fn ip_literals_bypass_dns() {
    let s = Server::start(|_, _| Vec::new());
    let r = native(&s);
    assert_eq!(r.resolve("127.0.0.1", 5).unwrap(), vec![sa("127.0.0.1:5")]);
    assert_eq!(r.resolve("::1", 5).unwrap(), vec![sa("[::1]:5")]);
    assert_eq!(r.resolve("[::1]", 5).unwrap(), vec![sa("[::1]:5")]);
    assert_eq!(dns::resolve("192.0.2.1", 6).unwrap(), vec![sa("192.0.2.1:6")]);
    assert_eq!(ThreadResolver::new().resolve("::1", 7).unwrap(), vec![sa("[::1]:7")]);
    assert_eq!(s.count(), 0);
    let e = r.resolve("bad..name", 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(s.count(), 0);
}

// ===== the system resolvers =====

#[test]
fn thread_resolver_resolves_localhost() {
    let before = greenrt::threadpool::default_pool().threads();
    let addrs = ThreadResolver::new().resolve("localhost", 80).unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80),
        "{addrs:?}"
    );
    assert!(
        greenrt::threadpool::default_pool().threads() >= before.max(1),
        "ran on the pool"
    );
    let blocking = dns::BlockingResolver.resolve("localhost", 80).unwrap();
    assert!(blocking.iter().all(|a| a.ip().is_loopback()), "{blocking:?}");
    // getnameinfo finds 127.0.0.1 in /etc/hosts (files come before DNS in
    // nsswitch), so this sends nothing over the network.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if hosts.lines().any(|l| l.split_whitespace().next() == Some("127.0.0.1")) {
        let name = ThreadResolver::new().reverse(ip("127.0.0.1")).unwrap();
        assert!(!name.is_empty());
    }
}

#[test]
fn resolver_env_selection() {
    if util::is_child() {
        let mode = std::env::var("DNS_CHILD_MODE").unwrap();
        match mode.as_str() {
            "native" => {
                let r = dns::resolver().unwrap();
                assert_eq!(r.kind(), greenrt::config::ResolverKind::Native);
                let dns::Resolver::Native(n) = r else {
                    panic!("not native")
                };
                assert_eq!(n.config().nameservers, vec![sa("127.0.0.1:53")]);
                assert_eq!(n.config().search, vec!["envtest.example".to_string()]);
                assert_eq!(n.config().ndots, 4);
                println!("CHILD-OK");
            }
            "missing" => {
                let e = dns::resolve("name.test", 1).unwrap_err();
                assert!(e.to_string().contains("GREENRT_RESOLV_CONF"), "{e}");
                assert_eq!(dns::resolve("127.0.0.1", 1).unwrap(), vec![sa("127.0.0.1:1")]);
                println!("CHILD-OK");
            }
            "bogus" => {
                let _ = dns::resolve("name.test", 1);
                println!("CHILD-NOT-EXITED");
            }
            _ => unreachable!(),
        }
        return;
    }
    let conf = temp_file(
        "resolvconf",
        "nameserver 127.0.0.1\nsearch envtest.example\noptions ndots:4\n",
    );
    util::assert_child_prints(
        "resolver_env_selection",
        &[
            ("DNS_CHILD_MODE", "native"),
            ("GREENRT_RESOLVER", "native"),
            ("GREENRT_RESOLV_CONF", conf.to_str().unwrap()),
        ],
        "CHILD-OK",
    );

    util::assert_child_prints(
        "resolver_env_selection",
        &[
            ("DNS_CHILD_MODE", "missing"),
            ("GREENRT_RESOLVER", "native"),
            ("GREENRT_RESOLV_CONF", "/nonexistent/greenrt/resolv.conf"),
        ],
        "CHILD-OK",
    );

    let out = util::run_child(
        "resolver_env_selection",
        &[("DNS_CHILD_MODE", "bogus"), ("GREENRT_RESOLVER", "c-ares")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("GREENRT_RESOLVER=\"c-ares\"") && stderr.contains("thread, native, block"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("CHILD-NOT-EXITED"));
    let _ = std::fs::remove_file(&conf);
}

#[test]
fn parse_resolver_values() {
    use greenrt::config::{parse_resolver, ResolverKind};
    assert_eq!(parse_resolver("thread"), Ok(ResolverKind::Thread));
    assert_eq!(parse_resolver("native"), Ok(ResolverKind::Native));
    assert_eq!(parse_resolver("block"), Ok(ResolverKind::Block));
    let e = parse_resolver("ares").unwrap_err();
    assert_eq!(e.variable, "GREENRT_RESOLVER");
    assert_eq!(
        e.to_string(),
        "greenrt: invalid GREENRT_RESOLVER=\"ares\"; accepted values: thread, native, block"
    );
}

// ===== cooperation =====

#[test]
fn concurrent_lookups_share_the_hub() {
    // Every answer is delayed 100 ms: 50 lookups one after another would
    // take at least 5 s.
    let s = Server::start(|q, raw| {
        let answers = match (q.qtype, q.name.strip_prefix('h').and_then(|r| r.strip_suffix(".test"))) {
            (T_A, Some(i)) => {
                let i: u8 = i.parse().unwrap();
                vec![rr(
                    &q.name,
                    RData::A(A {
                        address: u32::from(Ipv4Addr::new(127, 0, 2, i)),
                    }),
                )]
            }
            _ => vec![],
        };
        let soa = answers.is_empty();
        vec![Action::SendAfter(
            Duration::from_millis(100),
            reply(raw, RCODE::NoError, answers, soa),
        )]
    });
    let r = native(&s);
    let switches = greenrt::hub::switch_count();
    let start = Instant::now();
    let gs: Vec<_> = (0..50u8)
        .map(|i| {
            let r = r.clone();
            greenrt::spawn(move || r.resolve(&format!("h{i}.test"), 9))
        })
        .collect();
    greenrt::joinall(&gs, Some(Duration::from_secs(10))).unwrap();
    let took = start.elapsed();
    for (i, g) in gs.iter().enumerate() {
        let addrs = g.get().unwrap().unwrap();
        assert_eq!(addrs, vec![SocketAddr::from((Ipv4Addr::new(127, 0, 2, i as u8), 9))]);
    }
    assert!(took < Duration::from_millis(2500), "lookups did not overlap: {took:?}");
    assert!(took >= Duration::from_millis(95), "{took:?}");
    assert!(greenrt::hub::switch_count() >= switches + 50);
    assert_eq!(s.count(), 100);
}

/// UDP sockets of this network namespace connected to `to` (from
/// /proc/net/udp, where a connected socket shows its peer).
fn udp_sockets_connected_to(to: SocketAddr) -> usize {
    let SocketAddr::V4(v4) = to else { unreachable!() };
    let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(v4.ip().octets()), v4.port());
    std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(2) == Some(want.as_str()))
        .count()
}

#[test]
fn timeout_interrupts_a_lookup_and_closes_its_socket() {
    let s = Server::start(|_, _| Vec::new());
    let r = NativeResolver::with_config(config(&[&s], Duration::from_secs(5), 2));
    let addr = s.addr;
    // While the lookup waits, its socket is there...
    let watcher = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(60));
        udp_sockets_connected_to(addr)
    });
    let start = Instant::now();
    let res = greenrt::with_timeout(Duration::from_millis(150), || r.resolve("slow.test", 1));
    assert!(res.is_err(), "the Timeout should have fired");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(watcher.get().unwrap(), 1, "the lookup's socket was not seen");
    // ...and once the Timeout unwound the lookup, it is closed.
    assert_eq!(udp_sockets_connected_to(addr), 0, "the lookup's socket leaked");
    assert_eq!(s.count(), 2);
}

// ===== fuzzing on stable =====

/// Valid replies to start mutating from: each accepted by `fuzz_reply`.
fn corpus() -> Vec<Vec<u8>> {
    let q_a = dns_query(0x1234, "example.com");
    let mut q_aaaa = Packet::new_query(0x2345);
    q_aaaa.questions.push(Question::new(
        Name::new_unchecked("www.example.com"),
        QTYPE::TYPE(TYPE::AAAA),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let q_aaaa = q_aaaa.build_bytes_vec().unwrap();
    let mut q_ptr = Packet::new_query(0x3456);
    q_ptr.questions.push(Question::new(
        Name::new_unchecked("1.0.0.127.in-addr.arpa"),
        QTYPE::TYPE(TYPE::PTR),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let q_ptr = q_ptr.build_bytes_vec().unwrap();
    vec![
        reply(
            &q_a,
            RCODE::NoError,
            vec![rr("example.com", RData::A(A { address: 0x7f000001 }))],
            false,
        ),
        reply(
            &q_a,
            RCODE::NoError,
            vec![
                rr("example.com", RData::CNAME(CNAME(Name::new_unchecked("b.example.com")))),
                rr(
                    "b.example.com",
                    RData::CNAME(CNAME(Name::new_unchecked("c.example.com"))),
                ),
                rr("c.example.com", RData::A(A { address: 0x7f000002 })),
            ],
            false,
        ),
        reply(&q_a, RCODE::NameError, vec![], true),
        reply(&q_a, RCODE::ServerFailure, vec![], false),
        with_tc(reply(&q_a, RCODE::NoError, vec![], false)),
        reply(
            &q_aaaa,
            RCODE::NoError,
            vec![rr("www.example.com", RData::AAAA(AAAA { address: 1 }))],
            false,
        ),
        reply(&q_aaaa, RCODE::NoError, vec![], true),
        reply(
            &q_ptr,
            RCODE::NoError,
            vec![rr(
                "1.0.0.127.in-addr.arpa",
                RData::PTR(PTR(Name::new_unchecked("localhost"))),
            )],
            false,
        ),
    ]
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            2 => {
                let keep = rng.below(m.len() + 1);
                m.truncate(keep);
            }
            3 => {
                let i = rng.below(m.len() + 1);
                let n = 1 + rng.below(8);
                let extra = rng.bytes(n);
                m.splice(i..i, extra);
            }
            4 if m.len() > 2 => {
                // A compression pointer to a random offset.
                let i = rng.below(m.len() - 1);
                let target = rng.below(m.len()) as u16;
                m[i] = 0xc0 | (target >> 8) as u8;
                m[i + 1] = target as u8;
            }
            5 if m.len() >= 12 => {
                // A section count set to something large.
                let field = 4 + 2 * rng.below(4);
                let v = [0u16, 1, 2, 0x7fff, 0xffff][rng.below(5)];
                m[field..field + 2].copy_from_slice(&v.to_be_bytes());
            }
            6 if m.len() > 4 => {
                // Duplicate a slice.
                let a = rng.below(m.len());
                let b = (a + 1 + rng.below(16)).min(m.len());
                let chunk = m[a..b].to_vec();
                let at = rng.below(m.len() + 1);
                m.splice(at..at, chunk);
            }
            _ => {
                if m.len() >= 4 {
                    // Flags and RCODE.
                    m[2] = rng.next() as u8;
                    m[3] = rng.next() as u8;
                }
            }
        }
    }
    m
}

#[test]
fn fuzz_reply_parser_never_panics() {
    let corpus = corpus();
    for c in &corpus {
        assert!(dns::fuzz_reply(c) >= 1, "corpus entry not accepted: {c:?}");
    }
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut accepted = 0usize;
    let start = Instant::now();
    const RANDOM: usize = 50_000;
    const MUTATED: usize = 150_000;
    for _ in 0..RANDOM {
        let len = rng.below(600);
        let data = rng.bytes(len);
        accepted += dns::fuzz_reply(&data);
    }
    for _ in 0..MUTATED {
        let base = &corpus[rng.below(corpus.len())];
        let data = mutate(&mut rng, base);
        accepted += dns::fuzz_reply(&data);
    }
    // The mutated inputs must reach past the header checks often enough
    // for the run to mean something.
    assert!(accepted > MUTATED / 20, "only {accepted} inputs accepted");
    eprintln!(
        "fuzz_reply: {} inputs, {accepted} accepted, {:?}",
        RANDOM + MUTATED,
        start.elapsed()
    );
}
