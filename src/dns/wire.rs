//! DNS messages on the wire, through the `simple-dns` crate: building a
//! query, and deciding what a reply says about it.
//!
//! # Why `simple-dns`
//!
//! It parses and writes RFC 1035 messages (with name compression, EDNS
//! and the record types a stub resolver needs) with a single dependency,
//! `bitflags`, and builds in a few seconds on two cores. `hickory-proto`
//! is the most complete choice but pulls in `url`, `idna`, `rand`,
//! `tracing` and friends, and its current release needs a newer Rust than
//! this crate's MSRV; `domain` is excellent but larger (octseq, bytes,
//! time) than a stub resolver needs. Everything here only needs a header,
//! one question and the answer section.
//!
//! # What counts as a reply
//!
//! [`check_reply`] is strict, like glibc's `res_queriesmatch` and c-ares'
//! `same_questions`: the transaction id must match, the QR bit must be
//! set, the opcode must be QUERY, and the question must be the one asked
//! (same name, ignoring ASCII case, same type and class). Anything else is
//! a [`Reject`]: the caller ignores it and keeps waiting, so a spoofed or
//! stray datagram cannot end a lookup. Bytes that do not parse are
//! rejected the same way; nothing here panics on any input (see the
//! `dns_reply` fuzz target and the stable-Rust fuzz test in `tests/dns.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{header_buffer, Name, Packet, PacketFlag, Question, CLASS, OPCODE, QCLASS, QTYPE, RCODE, TYPE};

/// How many CNAME records one reply may chain through before the chain
/// counts as a loop.
pub(crate) const MAX_CHAIN_IN_REPLY: usize = 16;

/// The record types the resolver asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Reverse lookup: a name.
    Ptr,
}

impl QType {
    fn wire(self) -> TYPE {
        match self {
            QType::A => TYPE::A,
            QType::Aaaa => TYPE::AAAA,
            QType::Ptr => TYPE::PTR,
        }
    }
}

/// One datum from an answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Datum {
    /// An A or AAAA record.
    Ip(IpAddr),
    /// A PTR record's target.
    Name(String),
}

/// What a reply that matched the query says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The TC bit: ask again over TCP.
    Truncated,
    /// NOERROR. `data` holds the records of the asked type found at the
    /// end of the CNAME chain that starts at the question's name;
    /// `canonical` is the name the chain ends in (the question's name when
    /// there is no CNAME) and `aliases` the names passed on the way.
    /// `negative` is set when `data` is empty and the authority section
    /// holds an SOA record: the server says the chain's end has no such
    /// record (NODATA). Empty `data` without it, with `canonical`
    /// different from the question, means the chain ends in a name whose
    /// records the server did not include: ask again for `canonical`.
    Answer {
        data: Vec<Datum>,
        canonical: String,
        aliases: Vec<String>,
        negative: bool,
    },
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL: the server could not answer.
    ServFail,
    /// Another RCODE (FORMERR, NOTIMP, REFUSED, ...), by number.
    Rcode(u16),
    /// The answer's CNAME records form a loop (or a chain longer than
    /// [`MAX_CHAIN_IN_REPLY`]).
    CnameLoop,
}

/// Why a datagram was not taken as the reply to the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Shorter than a header, or does not parse.
    Malformed,
    /// Another transaction id.
    WrongId,
    /// A query, not a response, or an opcode other than QUERY.
    NotAResponse,
    /// The question section is not the one asked.
    WrongQuestion,
}

/// The wire form of a recursive query for `name` (a presentation-format
/// name without the trailing dot), or `None` when `name` is not a valid
/// domain name (an empty label, a label over 63 octets, over 255 octets).
pub(crate) fn build_query(id: u16, name: &str, qtype: QType) -> Option<Vec<u8>> {
    let qname = valid_name(name)?;
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        qname,
        QTYPE::TYPE(qtype.wire()),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().ok()
}

/// `name` as a `Name` if it is a valid domain name to ask about.
pub(crate) fn valid_name(name: &str) -> Option<Name<'_>> {
    if name.is_empty() || name.starts_with('.') || name.contains("..") || name.ends_with('.') {
        return None;
    }
    let n = Name::new(name).ok()?;
    if n.get_labels().iter().any(|l| l.is_empty()) {
        return None;
    }
    Some(n)
}

/// Decides whether `msg` answers the query `id` for `qname`/`qtype`, and
/// what it says (see the module docs). Never panics.
pub(crate) fn check_reply(msg: &[u8], id: u16, qname: &str, qtype: QType) -> Result<Reply, Reject> {
    if header_buffer::id(msg).map_err(|_| Reject::Malformed)? != id {
        return Err(Reject::WrongId);
    }
    if msg.len() < 12 {
        return Err(Reject::Malformed);
    }
    if !header_buffer::has_flags(msg, PacketFlag::RESPONSE).map_err(|_| Reject::Malformed)? {
        return Err(Reject::NotAResponse);
    }
    if header_buffer::opcode(msg).map_err(|_| Reject::Malformed)? != OPCODE::StandardQuery {
        return Err(Reject::NotAResponse);
    }
    let want = valid_name(qname).ok_or(Reject::WrongQuestion)?;
    let truncated = header_buffer::has_flags(msg, PacketFlag::TRUNCATION).map_err(|_| Reject::Malformed)?;
    let packet = match Packet::parse(msg) {
        Ok(p) => p,
        // A truncated reply may be cut anywhere after its header; its
        // only use is to send us to TCP, where the real reply is checked.
        Err(_) if truncated => return Ok(Reply::Truncated),
        Err(_) => return Err(Reject::Malformed),
    };
    let rcode = packet.rcode();
    match packet.questions.as_slice() {
        [q] if q.qname == want && q.qtype == QTYPE::TYPE(qtype.wire()) && q.qclass == QCLASS::CLASS(CLASS::IN) => {}
        // Some servers leave the question out of an error reply.
        [] if !matches!(rcode, RCODE::NoError | RCODE::NameError) && !truncated => {}
        _ => return Err(Reject::WrongQuestion),
    }
    if truncated {
        return Ok(Reply::Truncated);
    }
    Ok(match rcode {
        RCODE::NoError => follow_chain(&packet, want, qtype),
        RCODE::NameError => Reply::NxDomain,
        RCODE::ServerFailure => Reply::ServFail,
        other => Reply::Rcode(rcode_number(other)),
    })
}

fn rcode_number(r: RCODE) -> u16 {
    match r {
        RCODE::Reserved => 0xfff,
        r => r as u16,
    }
}

/// Walks the CNAME chain from `qname` through the answer section and
/// collects the records of type `qtype` where it ends.
fn follow_chain(packet: &Packet<'_>, qname: Name<'_>, qtype: QType) -> Reply {
    let mut current = qname;
    let mut aliases = Vec::new();
    for _ in 0..=MAX_CHAIN_IN_REPLY {
        let mut data = Vec::new();
        let mut next = None;
        for rr in &packet.answers {
            if rr.name != current || rr.class != CLASS::IN {
                continue;
            }
            match (&rr.rdata, qtype) {
                (RData::A(a), QType::A) => data.push(Datum::Ip(IpAddr::V4(Ipv4Addr::from(a.address)))),
                (RData::AAAA(a), QType::Aaaa) => data.push(Datum::Ip(IpAddr::V6(Ipv6Addr::from(a.address)))),
                (RData::PTR(p), QType::Ptr) => data.push(Datum::Name(p.0.to_string())),
                (RData::CNAME(c), _) if next.is_none() => next = Some(c.0.clone()),
                _ => {}
            }
        }
        if !data.is_empty() {
            return Reply::Answer {
                data,
                canonical: current.to_string(),
                aliases,
                negative: false,
            };
        }
        match next {
            Some(target) => {
                aliases.push(current.to_string());
                current = target;
            }
            None => {
                let negative = packet.name_servers.iter().any(|rr| matches!(rr.rdata, RData::SOA(_)));
                return Reply::Answer {
                    data,
                    canonical: current.to_string(),
                    aliases,
                    negative,
                };
            }
        }
    }
    Reply::CnameLoop
}

/// The transaction id of a message, if it has a header.
pub(crate) fn message_id(msg: &[u8]) -> Option<u16> {
    if msg.len() < 12 {
        return None;
    }
    header_buffer::id(msg).ok()
}

/// The PTR name for `ip`: `4.3.2.1.in-addr.arpa` or the nibbles under
/// `ip6.arpa`.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::{A, CNAME};
    use simple_dns::ResourceRecord;

    fn reply(id: u16, q: &str, answers: Vec<ResourceRecord<'_>>) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        p.questions.push(Question::new(
            Name::new_unchecked(q),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers = answers;
        p.build_bytes_vec_compressed().unwrap()
    }

    #[test]
    fn query_round_trips() {
        let q = build_query(0x1234, "Example.COM", QType::Aaaa).unwrap();
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert!(p.has_flags(PacketFlag::RECURSION_DESIRED));
        assert!(!p.has_flags(PacketFlag::RESPONSE));
        assert_eq!(p.questions[0].qname.to_string(), "Example.COM");
        assert_eq!(p.questions[0].qtype, QTYPE::TYPE(TYPE::AAAA));
        assert!(build_query(1, "a..b", QType::A).is_none());
        assert!(build_query(1, "", QType::A).is_none());
        assert!(build_query(1, &"x".repeat(64), QType::A).is_none());
    }

    #[test]
    fn chain_is_followed_case_insensitively() {
        let a = Name::new_unchecked("www.example.com");
        let b = Name::new_unchecked("EDGE.example.net");
        let b2 = Name::new_unchecked("edge.example.net");
        let msg = reply(
            7,
            "WWW.example.com",
            vec![
                ResourceRecord::new(a, CLASS::IN, 60, RData::CNAME(CNAME(b))),
                ResourceRecord::new(b2, CLASS::IN, 60, RData::A(A { address: 0x7f000009 })),
            ],
        );
        let r = check_reply(&msg, 7, "www.example.com", QType::A).unwrap();
        assert_eq!(
            r,
            Reply::Answer {
                data: vec![Datum::Ip("127.0.0.9".parse().unwrap())],
                // The chain's own spelling of the name.
                canonical: "EDGE.example.net".into(),
                aliases: vec!["www.example.com".into()],
                negative: false,
            }
        );
        assert_eq!(check_reply(&msg, 8, "www.example.com", QType::A), Err(Reject::WrongId));
        assert_eq!(
            check_reply(&msg, 7, "www.example.org", QType::A),
            Err(Reject::WrongQuestion)
        );
        assert_eq!(
            check_reply(&msg, 7, "www.example.com", QType::Aaaa),
            Err(Reject::WrongQuestion)
        );
    }

    #[test]
    fn cname_loop_detected() {
        let a = Name::new_unchecked("a.test");
        let b = Name::new_unchecked("b.test");
        let msg = reply(
            1,
            "a.test",
            vec![
                ResourceRecord::new(a.clone(), CLASS::IN, 60, RData::CNAME(CNAME(b.clone()))),
                ResourceRecord::new(b, CLASS::IN, 60, RData::CNAME(CNAME(a))),
            ],
        );
        assert_eq!(check_reply(&msg, 1, "a.test", QType::A), Ok(Reply::CnameLoop));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("127.0.0.1".parse().unwrap()), "1.0.0.127.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
